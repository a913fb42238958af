import AtriumAuth
import AtriumHTTP
import AtriumModel
import AtriumProxy
import AtriumSimulated
import AtriumSpawn
import AtriumStore
import AtriumTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// `/hub/metrics` through the router, with an in-memory store and the simulated backend.
@Suite("Metrics: /hub/metrics through the router")
struct MetricsRouteTests {
    struct Fixture: Sendable {
        let hub: Hub
        let store: Store
        /// root's token holding only `read:metrics`.
        let metricsToken: String
        let adminToken: String
        let userToken: String
    }

    /// Every probe succeeds: the simulated servers need no HTTP round trip here.
    struct ReadyProbe: ReadinessProbe {
        func check(_ endpoint: WorkspaceEndpoint, path: String) async -> Bool { true }
    }

    func withHub(
        failureRate: Double = 0, authenticate: Bool = true, _ body: @escaping @Sendable (Fixture, any TestClientProtocol) async throws -> Void
    ) async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let store = try await Store.open(":memory:", logger: logger)
        try await store.migrate()
        var auth = AuthConfiguration()
        auth.bcryptCost = 4
        let authenticator = Authenticator(configuration: auth, store: store, logger: logger)
        var simulated = SimulatedBackendConfiguration()
        simulated.startDelay = 0.01...0.02
        simulated.stopDelay = 0.001
        simulated.failureRate = failureRate
        let endpoint = SimulatedEndpoint()
        let manager = ServerManager(
            store: store, backend: AnyBackend(SimulatedBackend(configuration: simulated, endpoint: endpoint, logger: logger)),
            settings: Self.spawnSettings, probe: ReadyProbe(), logger: logger)
        var settings = HTTPSettings(cookieSecret: Array(repeating: 7, count: 32), atriumVersion: "test", apiVersion: "5.4.0")
        settings.metricsRequireAuthentication = authenticate
        let hub = try Hub(
            store: store, authenticator: authenticator, settings: settings, manager: manager, proxyStatistics: ProxyStatistics(), logger: logger)
        let created = try await store.createUsers([NewUser(name: "root", admin: true), NewUser(name: "alice")]).created
        let (metricsToken, _) = try await TokenHashing.issue(for: created[0], scopes: ["read:metrics"], note: nil, expiresIn: nil, store: store)
        let (adminToken, _) = try await TokenHashing.issue(for: created[0], scopes: ["inherit"], note: nil, expiresIn: nil, store: store)
        let (userToken, _) = try await TokenHashing.issue(for: created[1], scopes: ["inherit"], note: nil, expiresIn: nil, store: store)
        let app = Application(router: HubRouter.build(hub))
        let fixture = Fixture(hub: hub, store: store, metricsToken: metricsToken, adminToken: adminToken, userToken: userToken)
        do {
            try await app.test(.router) { client in try await body(fixture, client) }
        } catch {
            await manager.shutdown()
            await endpoint.shutdown()
            try await store.close()
            throw error
        }
        await manager.shutdown()
        await endpoint.shutdown()
        try await store.close()
    }

    func auth(_ token: String) -> HTTPFields { [.authorization: "token \(token)"] }

    /// Scrapes `/hub/metrics` with the metrics token and parses the answer.
    func scrape(_ f: Fixture, _ client: any TestClientProtocol) async throws -> PrometheusExposition {
        try await client.execute(uri: "/hub/metrics", method: .get, headers: auth(f.metricsToken)) { response in
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "text/plain; version=0.0.4; charset=utf-8")
            return try PrometheusExposition(parsing: String(buffer: response.body))
        }
    }

    @Test("without read:metrics /hub/metrics is 403 JSON; with it, 200 in Prometheus' text format")
    func requiresScope() async throws {
        try await withHub { f, client in
            try await client.execute(uri: "/hub/metrics", method: .get) { response in
                #expect(response.status == .forbidden)
                #expect(response.headers[.contentType] == "application/json; charset=utf-8")
                let json = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
                #expect(json?["status"] as? Int == 403)
            }
            // The user role does not include read:metrics; the admin role does.
            try await client.execute(uri: "/hub/metrics", method: .get, headers: auth(f.userToken)) { #expect($0.status == .forbidden) }
            try await client.execute(uri: "/hub/metrics", method: .get, headers: auth(f.adminToken)) { #expect($0.status == .ok) }

            let metrics = try await scrape(f, client)
            #expect(metrics.types["jupyterhub_total_users"] == "gauge")
            #expect(metrics.types["jupyterhub_running_servers"] == "gauge")
            #expect(metrics.types["jupyterhub_active_users"] == "gauge")
            #expect(metrics.types["jupyterhub_request_duration_seconds"] == "histogram")
            #expect(metrics.types["jupyterhub_server_spawn_duration_seconds"] == "histogram")
            #expect(metrics.types["jupyterhub_server_stop_seconds"] == "histogram")
            #expect(metrics.types["atrium_proxy_requests_total"] == "counter")
            #expect(metrics.types["atrium_spawn_queue_length"] == "gauge")
            #expect(metrics.help["jupyterhub_total_users"] == "Total number of users")
            // JupyterHub's pre-created series are there before anything happened.
            let spawnSeries = [("success", ""), ("failure", ""), ("error", ""), ("failure", "already-pending"), ("failure", "throttled"), ("failure", "too-many-users")]
            for (status, reason) in spawnSeries {
                #expect(metrics.value("jupyterhub_server_spawn_duration_seconds_count", ["status": status, "reason": reason]) == 0)
            }
            #expect(metrics.value("jupyterhub_server_spawn_duration_seconds_bucket", ["status": "success", "reason": "", "le": "600.0"]) == 0)
            for (family, statuses) in [
                ("jupyterhub_login_duration_seconds", ["success", "failure"]), ("jupyterhub_proxy_add_duration_seconds", ["success", "failure"]),
                ("jupyterhub_proxy_delete_duration_seconds", ["success", "failure"]), ("jupyterhub_server_poll_duration_seconds", ["running", "stopped"]),
            ] {
                #expect(metrics.types[family] == "histogram", "\(family)")
                for status in statuses { #expect(metrics.value("\(family)_count", ["status": status]) != nil, "\(family) \(status)") }
            }
            for family in ["jupyterhub_logout_duration_seconds", "jupyterhub_check_routes_duration_seconds", "jupyterhub_proxy_poll_duration_seconds", "jupyterhub_event_loop_interval_seconds"] {
                #expect(metrics.types[family] == "histogram", "\(family)")
            }
            #expect(metrics.types["jupyterhub_csp_reports_total"] == "counter")
        }
    }

    @Test("metrics.authenticate false lets anyone scrape")
    func unauthenticated() async throws {
        try await withHub(authenticate: false) { _, client in
            try await client.execute(uri: "/hub/metrics", method: .get) { response in
                #expect(response.status == .ok)
                _ = try PrometheusExposition(parsing: String(buffer: response.body))
            }
        }
    }

    @Test("jupyterhub_total_users and jupyterhub_active_users follow the store")
    func users() async throws {
        try await withHub { f, client in
            #expect(try await scrape(f, client).value("jupyterhub_total_users") == 2)
            let body = ByteBuffer(string: #"{"usernames": ["u1", "u2", "u3", "u4", "u5"]}"#)
            try await client.execute(uri: "/hub/api/users", method: .post, headers: auth(f.adminToken), body: body) {
                #expect($0.status == .created)
            }
            let now = Date()
            try await f.store.recordUserActivity("u1", at: now.addingTimeInterval(-60))
            try await f.store.recordUserActivity("u2", at: now.addingTimeInterval(-3 * 86_400))
            try await f.store.recordUserActivity("u3", at: now.addingTimeInterval(-20 * 86_400))
            try await f.store.recordUserActivity("u4", at: now.addingTimeInterval(-40 * 86_400))

            let metrics = try await scrape(f, client)
            #expect(metrics.value("jupyterhub_total_users") == Double(try await f.store.userCount()))
            #expect(metrics.value("jupyterhub_total_users") == 7)
            // The admin whose token made these calls is active too: using the hub is activity.
            #expect(metrics.value("jupyterhub_active_users", ["period": "24h"]) == 2)
            #expect(metrics.value("jupyterhub_active_users", ["period": "7d"]) == 3)
            #expect(metrics.value("jupyterhub_active_users", ["period": "30d"]) == 4)
        }
    }

    @Test("a start and a stop move jupyterhub_running_servers and count in the spawn and stop histograms")
    func startAndStop() async throws {
        try await withHub { f, client in
            let before = try await scrape(f, client)
            #expect(before.value("jupyterhub_running_servers") == 0)
            #expect(before.value("jupyterhub_server_spawn_duration_seconds_count", ["status": "success", "reason": ""]) == 0)

            try await client.execute(uri: "/hub/api/users/alice/server", method: .post, headers: auth(f.adminToken)) {
                #expect($0.status == .created)
            }
            let running = try await scrape(f, client)
            #expect(running.value("jupyterhub_running_servers") == 1)
            #expect(running.value("atrium_servers", ["state": "running"]) == 1)
            #expect(running.value("jupyterhub_server_spawn_duration_seconds_count", ["status": "success", "reason": ""]) == 1)
            let spawnSeconds = try #require(running.value("jupyterhub_server_spawn_duration_seconds_sum", ["status": "success", "reason": ""]))
            #expect(spawnSeconds > 0)
            #expect(running.value("atrium_spawns_in_progress") == 0)
            #expect(running.value("atrium_spawn_queue_length") == 0)
            #expect(running.value("jupyterhub_proxy_add_duration_seconds_count", ["status": "success"]) == 1)
            #expect(running.value("jupyterhub_proxy_delete_duration_seconds_count", ["status": "success"]) == 0)

            // A second start while running is refused and is not a spawn.
            try await client.execute(uri: "/hub/api/users/alice/server", method: .post, headers: auth(f.adminToken)) {
                #expect($0.status == .badRequest)
            }

            try await client.execute(uri: "/hub/api/users/alice/server", method: .delete, headers: auth(f.adminToken)) {
                #expect($0.status == .noContent)
            }
            let stopped = try await scrape(f, client)
            #expect(stopped.value("jupyterhub_running_servers") == 0)
            #expect(stopped.value("atrium_servers", ["state": "stopped"]) == 1)
            #expect(stopped.value("jupyterhub_server_stop_seconds_count", ["status": "success"]) == 1)
            #expect(stopped.value("jupyterhub_proxy_delete_duration_seconds_count", ["status": "success"]) == 1)
            #expect(stopped.value("jupyterhub_server_spawn_duration_seconds_count", ["status": "success", "reason": ""]) == 1)
        }
    }

    /// The API waits for the start's outcome however loaded the machine is (the default slow
    /// spawn timeout answered 202 instead of the start's failure on a loaded machine).
    static var spawnSettings: SpawnSettings {
        var settings = SpawnSettings()
        settings.slowSpawnTimeout = .seconds(600)
        return settings
    }

    @Test("a failed start counts as status error, as JupyterHub counts a spawner's exception")
    func failedStart() async throws {
        try await withHub(failureRate: 1) { f, client in
            try await client.execute(uri: "/hub/api/users/alice/server", method: .post, headers: auth(f.adminToken)) {
                #expect($0.status.code >= 400)
            }
            let metrics = try await scrape(f, client)
            #expect(metrics.value("jupyterhub_server_spawn_duration_seconds_count", ["status": "error", "reason": ""]) == 1)
            #expect(metrics.value("jupyterhub_server_spawn_duration_seconds_count", ["status": "success", "reason": ""]) == 0)
            #expect(metrics.value("jupyterhub_running_servers") == 0)
            #expect(metrics.value("atrium_servers", ["state": "failed"]) == 1)
        }
    }

    @Test("request durations are labelled with the route pattern, method and status, never the raw path")
    func requestDurations() async throws {
        try await withHub { f, client in
            try await client.execute(uri: "/hub/api/users/alice", method: .get, headers: auth(f.adminToken)) { #expect($0.status == .ok) }
            try await client.execute(uri: "/hub/api/users/alice", method: .get, headers: auth(f.adminToken)) { #expect($0.status == .ok) }
            try await client.execute(uri: "/hub/api/users/root", method: .get, headers: auth(f.userToken)) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/hub/api/no-such/thing", method: .get) { #expect($0.status == .notFound) }

            let metrics = try await scrape(f, client)
            let counts = metrics.samples.filter { $0.name == "jupyterhub_request_duration_seconds_count" }
            let handlers = Set(counts.compactMap { $0.labels["handler"] })
            #expect(!handlers.contains { $0.contains("alice") || $0.contains("root") || $0.contains("no-such") }, "\(handlers)")
            let pattern = try #require(handlers.first { $0.hasSuffix("/hub/api/users/{name}") || $0.hasSuffix("/hub/api/users/:name") }, "\(handlers)")
            #expect(metrics.value("jupyterhub_request_duration_seconds_count", ["handler": pattern, "method": "GET", "code": "200"]) == 2)
            #expect(metrics.value("jupyterhub_request_duration_seconds_count", ["handler": pattern, "method": "GET", "code": "404"]) == 1)
            #expect(metrics.value("jupyterhub_request_duration_seconds_count", ["handler": "NotFound", "method": "GET", "code": "404"]) == 1)
            let seconds = try #require(metrics.value("jupyterhub_request_duration_seconds_sum", ["handler": pattern, "method": "GET", "code": "200"]))
            #expect(seconds > 0)  // no upper bound: a loaded machine may take any time
        }
    }

    @Test("culls recorded through HubMetrics appear as atrium_culls_total")
    func culls() async throws {
        try await withHub { f, client in
            f.hub.metrics.recordCull(reason: "inactive", action: "stop")
            f.hub.metrics.recordCull(reason: "inactive", action: "stop")
            f.hub.metrics.recordCull(reason: "max_age", action: "delete_user")
            let metrics = try await scrape(f, client)
            #expect(metrics.types["atrium_culls_total"] == "counter")
            #expect(metrics.value("atrium_culls_total", ["reason": "inactive", "action": "stop"]) == 2)
            #expect(metrics.value("atrium_culls_total", ["reason": "max_age", "action": "delete_user"]) == 1)
        }
    }

    @Test("Metrics: proxy counters follow the proxy's totals from one scrape to the next")
    func proxyTotals() throws {
        let metrics = HubMetrics()
        var snapshot = HubMetrics.Snapshot()
        var proxy = ProxyStatistics.Snapshot()
        proxy.forwardedRequests = 3
        proxy.requestBytes = 100
        proxy.responseBytes = 5000
        proxy.openWebSockets = 2
        proxy.responsesByStatusClass = [2: 3]
        snapshot.proxy = proxy
        let first = try PrometheusExposition(parsing: metrics.exposition(snapshot))
        #expect(first.value("atrium_proxy_requests_total") == 3)
        #expect(first.value("atrium_proxy_bytes_total", ["direction": "request"]) == 100)
        #expect(first.value("atrium_proxy_bytes_total", ["direction": "response"]) == 5000)
        #expect(first.value("atrium_proxy_responses_total", ["code": "2xx"]) == 3)
        #expect(first.value("atrium_proxy_responses_total", ["code": "5xx"]) == 0)
        #expect(first.value("atrium_proxy_open_websockets") == 2)
        proxy.forwardedRequests = 10
        proxy.upstreamErrors = 1
        proxy.openWebSockets = 0
        proxy.responsesByStatusClass = [2: 9, 5: 1]
        snapshot.proxy = proxy
        let again = try PrometheusExposition(parsing: metrics.exposition(snapshot))
        let second = try PrometheusExposition(parsing: metrics.exposition(snapshot))  // nothing new: nothing added
        for exposition in [again, second] {
            #expect(exposition.value("atrium_proxy_requests_total") == 10)
            #expect(exposition.value("atrium_proxy_upstream_errors_total") == 1)
            #expect(exposition.value("atrium_proxy_responses_total", ["code": "5xx"]) == 1)
            #expect(exposition.value("atrium_proxy_open_websockets") == 0)
        }
    }
}
