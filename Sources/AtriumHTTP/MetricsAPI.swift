import AtriumAuth
import AtriumProxy
import AtriumSpawn
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `GET /hub/metrics`: Prometheus' text format, for a credential holding `read:metrics`
/// (JupyterHub's scope, in its admin role), as JupyterHub answers with `authenticate_prometheus`.
struct MetricsAPI {
    let hub: Hub

    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    func register(on router: Router<HubRequestContext>) {
        router.get("hub/metrics", use: metrics)
    }

    func metrics(_ request: Request, context: HubRequestContext) async throws -> Response {
        if hub.settings.metricsRequireAuthentication { try context.requireUnfiltered(["read:metrics"]) }
        let text = hub.metrics.exposition(try await snapshot())
        return Response(
            status: .ok, headers: [.contentType: Self.contentType, .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// The state gauges, read now: a few counts in the store (indexed), the manager's queue and
    /// the proxy's counters.
    func snapshot() async throws -> HubMetrics.Snapshot {
        var snapshot = HubMetrics.Snapshot()
        let now = Date()
        snapshot.totalUsers = try await hub.store.userCount()
        for period in HubMetrics.ActivePeriod.allCases {
            snapshot.activeUsers[period] = try await hub.store.activeUserCount(since: now.addingTimeInterval(-period.duration.seconds))
        }
        snapshot.serversByPhase = try await hub.store.serverCountsByPhase()
        if let manager = hub.manager {
            snapshot.spawnsInProgress = await manager.spawnsInProgress
            snapshot.spawnsQueued = await manager.queuedSpawns
        }
        snapshot.proxy = hub.proxyStatistics?.snapshot
        return snapshot
    }
}

/// Records `jupyterhub_request_duration_seconds` for every request the router answers, labelled
/// with the route's pattern (`/hub/api/users/{name}`, or `NotFound`), never the raw path.
/// Placed first, so it sees the status of errors the inner middleware turn into responses.
/// The duration ends when the response head is ready: a streamed body (progress events) is
/// not waited for.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext
    let metrics: HubMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let began = ContinuousClock.now
        do {
            let response = try await next(request, context)
            record(request, context, code: response.status.code, since: began)
            return response
        } catch {
            let code = (error as? any HTTPResponseError)?.status.code ?? 500
            record(request, context, code: code, since: began)
            throw error
        }
    }

    private func record(_ request: Request, _ context: Context, code: Int, since began: ContinuousClock.Instant) {
        metrics.recordRequest(
            method: request.method.rawValue, handler: context.endpointPath ?? "NotFound", code: code,
            seconds: (ContinuousClock.now - began).seconds)
    }
}
