import AtriumProxy
import AtriumStore
import Prometheus
import Synchronization

/// The hub's Prometheus metrics: JupyterHub's names where JupyterHub has the metric
/// (`jupyterhub_…`, same labels and buckets), Atrium's own under `atrium_…`.
///
/// One instance per hub, each with its own ``registry``: tests run many hubs in one process, so
/// nothing here is global. (`atrium serve` also points swift-metrics' `MetricsSystem` at the
/// same registry, so metrics of libraries land there too.)
///
/// Two kinds of metrics, kept apart on purpose:
/// - **Events** are recorded when they happen, through the `record…` methods: request and
///   spawn durations, culls. Each method is cheap, thread-safe and never throws.
/// - **State** (users, servers, the spawn queue, the proxy's counters) is never maintained by
///   hand: the `/hub/metrics` handler takes a ``Snapshot`` at scrape time and ``exposition(_:)``
///   sets the gauges from it, so they cannot drift from the store.
public final class HubMetrics: Sendable {
    /// How a start request ended: the `status` and `reason` labels of
    /// `jupyterhub_server_spawn_duration_seconds`, as JupyterHub sets them (`ServerSpawnStatus`,
    /// `ServerSpawnFailureReason`): a refused request is a `failure` with its reason, a server
    /// that did not come up an `error`.
    public enum SpawnStatus: Sendable, CaseIterable {
        /// The server became ready: `{status="success", reason=""}`.
        case success
        /// The backend failed, or the server never answered: `{status="error", reason=""}`.
        case error
        /// A start was asked for while a start or stop was pending (HTTP 400):
        /// `{status="failure", reason="already-pending"}`.
        case alreadyPending
        /// Too many starts running and waiting (HTTP 429): `{status="failure", reason="throttled"}`.
        case throttled
        /// `spawn.active_server_limit` reached (HTTP 429): `{status="failure", reason="too-many-users"}`.
        case tooManyUsers

        /// The `status` and `reason` labels.
        public var labels: SpawnLabels {
            switch self {
            case .success: SpawnLabels(status: "success", reason: "")
            case .error: SpawnLabels(status: "error", reason: "")
            case .alreadyPending: SpawnLabels(status: "failure", reason: "already-pending")
            case .throttled: SpawnLabels(status: "failure", reason: "throttled")
            case .tooManyUsers: SpawnLabels(status: "failure", reason: "too-many-users")
            }
        }
    }

    /// One series of `jupyterhub_server_spawn_duration_seconds`.
    public struct SpawnLabels: Sendable, Hashable {
        public var status: String
        public var reason: String

        /// Every series JupyterHub creates empty at start-up (its `failure` with no reason
        /// included, which Atrium never records but dashboards may select).
        static let precreated: [SpawnLabels] =
            SpawnStatus.allCases.map(\.labels) + [SpawnLabels(status: "failure", reason: "")]
    }

    /// The `status` label of `jupyterhub_server_stop_seconds`.
    public enum StopStatus: String, Sendable, CaseIterable {
        /// The backend stopped the server.
        case success
        /// The backend's stop threw; the server is marked failed.
        case failure
    }

    /// The `period` label of `jupyterhub_active_users`, with its length.
    public enum ActivePeriod: String, Sendable, CaseIterable {
        /// The last 24 hours.
        case day = "24h"
        /// The last 7 days.
        case week = "7d"
        /// The last 30 days.
        case month = "30d"

        /// The period's length.
        public var duration: Duration {
            switch self {
            case .day: .seconds(86_400)
            case .week: .seconds(7 * 86_400)
            case .month: .seconds(30 * 86_400)
            }
        }
    }

    /// What the state gauges show, read at scrape time.
    public struct Snapshot: Sendable, Equatable {
        /// Every user in the store.
        public var totalUsers = 0
        /// Users whose last activity lies within each period.
        public var activeUsers: [ActivePeriod: Int] = [:]
        /// Server rows by phase.
        public var serversByPhase: [ServerPhase: Int] = [:]
        /// Starts running now (holding one of `spawn.concurrent_spawn_limit` slots).
        public var spawnsInProgress = 0
        /// Starts waiting for a slot.
        public var spawnsQueued = 0
        /// The proxy's counters, when the hub has a proxy.
        public var proxy: ProxyStatistics.Snapshot?

        /// All zero, no proxy.
        public init() {}
    }

    /// JupyterHub's buckets for spawn durations (seconds).
    public static let spawnBuckets: [Double] = [0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 180, 300, 600]
    /// JupyterHub's buckets for the event loop's interval (seconds): it measures every 50 ms.
    public static let eventLoopBuckets: [Double] = [0.05, 0.055, 0.06, 0.065, 0.07, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
    /// The Prometheus client's default buckets (seconds), which JupyterHub uses for the rest.
    public static let defaultBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]

    /// Where every metric of this hub is registered; `/hub/metrics` renders it.
    public let registry: PrometheusCollectorRegistry

    private let spawnDurations: [SpawnLabels: ValueHistogram]
    private let stopDurations: [StopStatus: ValueHistogram]
    private let loginDurations: [Bool: ValueHistogram]
    private let logoutDurations: ValueHistogram
    private let proxyAddDurations: [Bool: ValueHistogram]
    private let proxyDeleteDurations: [Bool: ValueHistogram]
    private let serverPollDurations: [Bool: ValueHistogram]
    private let checkRoutesDurations: ValueHistogram
    private let proxyPollDurations: ValueHistogram
    private let eventLoopIntervals: ValueHistogram
    private let cspReports: Counter
    private let hubStartup: ValueHistogram
    private let initSpawners: ValueHistogram
    private let totalUsers: Gauge
    private let runningServers: Gauge
    private let activeUsers: [ActivePeriod: Gauge]
    private let servers: [ServerPhase: Gauge]
    private let spawnsInProgress: Gauge
    private let spawnsQueued: Gauge
    private let openWebSockets: Gauge

    private struct RequestKey: Hashable {
        var method: String
        var handler: String
        var code: Int
    }

    private struct CullKey: Hashable {
        var reason: String
        var action: String
    }

    /// Looked up on every request: a small cache in front of the registry's own lookup, which
    /// validates names and labels each time.
    private let requestDurations = Mutex<[RequestKey: ValueHistogram]>([:])
    private let culls = Mutex<[CullKey: Counter]>([:])
    /// Proxy totals already added to the counters: a scrape adds only what is new.
    private let proxySeen = Mutex<ProxyStatistics.Snapshot>(ProxyStatistics.Snapshot())

    /// Creates the metrics in a new registry, or in `registry` (one that swift-metrics'
    /// `MetricsSystem` also writes to, say). Every labelled series JupyterHub pre-creates is
    /// created here too, so dashboards see zeros rather than gaps.
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        func gauge(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Gauge {
            registry.makeGauge(descriptor: Self.descriptor(name, help), labels: labels)
        }
        func histogram(_ name: String, _ help: String, _ buckets: [Double], _ labels: [(String, String)] = []) -> ValueHistogram {
            registry.makeValueHistogram(descriptor: Self.descriptor(name, help), labels: labels, buckets: buckets)
        }
        spawnDurations = Dictionary(uniqueKeysWithValues: SpawnLabels.precreated.map { labels in
            (labels, histogram(
                Names.spawnDuration, "Time taken for server spawning operation", Self.spawnBuckets,
                [("status", labels.status), ("reason", labels.reason)]))
        })
        stopDurations = Dictionary(uniqueKeysWithValues: StopStatus.allCases.map { status in
            (status, histogram(Names.stopDuration, "Time taken for server stopping operation", Self.defaultBuckets, [("status", status.rawValue)]))
        })
        func outcomes(_ name: String, _ help: String, _ yes: String, _ no: String) -> [Bool: ValueHistogram] {
            [true: histogram(name, help, Self.defaultBuckets, [("status", yes)]), false: histogram(name, help, Self.defaultBuckets, [("status", no)])]
        }
        loginDurations = outcomes(Names.loginDuration, "duration for all authentication attempts", "success", "failure")
        logoutDurations = histogram(Names.logoutDuration, "duration for all logout requests", Self.defaultBuckets)
        proxyAddDurations = outcomes(Names.proxyAddDuration, "Duration for adding user routes to proxy", "success", "failure")
        proxyDeleteDurations = outcomes(Names.proxyDeleteDuration, "Duration for deleting user routes from proxy", "success", "failure")
        serverPollDurations = outcomes(Names.serverPollDuration, "Time taken to poll if server is running", "running", "stopped")
        checkRoutesDurations = histogram(Names.checkRoutesDuration, "Time taken to validate all routes in proxy", Self.defaultBuckets)
        proxyPollDurations = histogram(Names.proxyPollDuration, "Duration for polling all routes from proxy", Self.defaultBuckets)
        eventLoopIntervals = histogram(Names.eventLoopInterval, "Distribution of measured event loop intervals", Self.eventLoopBuckets)
        cspReports = registry.makeCounter(descriptor: Self.descriptor(Names.cspReports, "content security policy violation reports"))
        hubStartup = histogram(Names.hubStartup, "Time taken for Hub to start", Self.defaultBuckets)
        initSpawners = histogram(
            Names.initSpawners, "Time taken for spawners to initialize (reattaching to the servers found running)", Self.defaultBuckets)
        totalUsers = gauge(Names.totalUsers, "Total number of users")
        runningServers = gauge(Names.runningServers, "The number of user servers currently running")
        activeUsers = Dictionary(uniqueKeysWithValues: ActivePeriod.allCases.map { period in
            (period, gauge(Names.activeUsers, "Number of users who were active in the given time period", [("period", period.rawValue)]))
        })
        servers = Dictionary(uniqueKeysWithValues: ServerPhase.allCases.map { phase in
            (phase, gauge(Names.servers, "Servers by state (the phase stored for each server)", [("state", phase.rawValue)]))
        })
        spawnsInProgress = gauge(Names.spawnsInProgress, "Server starts running now (each holds a spawn slot)")
        spawnsQueued = gauge(Names.spawnQueueLength, "Server starts waiting for a spawn slot")
        openWebSockets = gauge(Names.proxyOpenWebSockets, "WebSocket connections the proxy holds open")
    }

    // MARK: - Events

    /// Records one request to the hub's router. `handler` is the route pattern
    /// (`/hub/api/users/{name}`), never the raw path, so the series stay few.
    public func recordRequest(method: String, handler: String, code: Int, seconds: Double) {
        let key = RequestKey(method: method, handler: handler, code: code)
        let histogram = requestDurations.withLock { cache in
            if let existing = cache[key] { return existing }
            let made = registry.makeValueHistogram(
                descriptor: Self.descriptor(Names.requestDuration, "Request duration for all HTTP requests"),
                labels: [("method", method), ("handler", handler), ("code", String(code))], buckets: Self.defaultBuckets)
            cache[key] = made
            return made
        }
        histogram.record(seconds)
    }

    /// Records how a start request ended and how long it took from the request (queue time
    /// included) to that outcome.
    public func recordSpawn(_ status: SpawnStatus, seconds: Double) {
        spawnDurations[status.labels]?.record(seconds)
    }

    /// Records one login attempt (the form or the API) and how long checking it took.
    public func recordLogin(success: Bool, seconds: Double) {
        loginDurations[success]?.record(seconds)
    }

    /// Records one logout.
    public func recordLogout(seconds: Double) {
        logoutDurations.record(seconds)
    }

    /// Records a route added to the built-in proxy's table (a server became ready).
    public func recordProxyAdd(success: Bool = true, seconds: Double) {
        proxyAddDurations[success]?.record(seconds)
    }

    /// Records a route taken out of the built-in proxy's table.
    public func recordProxyDelete(success: Bool = true, seconds: Double) {
        proxyDeleteDurations[success]?.record(seconds)
    }

    /// Records one poll of a backend for whether a server still runs, and its answer.
    public func recordServerPoll(running: Bool, seconds: Double) {
        serverPollDurations[running]?.record(seconds)
    }

    /// Records one check of the proxy's routes against the servers.
    public func recordCheckRoutes(seconds: Double) {
        checkRoutesDurations.record(seconds)
    }

    /// Records one collection of the proxy's per-route activity.
    public func recordProxyPoll(seconds: Double) {
        proxyPollDurations.record(seconds)
    }

    /// Records one measured interval of the hub's task scheduler (asked for every 50 ms).
    public func recordEventLoopInterval(seconds: Double) {
        eventLoopIntervals.record(seconds)
    }

    /// Counts one content-security-policy violation report a browser sent.
    public func countCSPReport() {
        cspReports.increment()
    }

    /// Records how a stop ended and how long the backend took.
    public func recordStop(_ status: StopStatus, seconds: Double) {
        stopDurations[status]?.record(seconds)
    }

    /// Records how long the hub took from launch to serving (once per process).
    public func recordHubStartup(seconds: Double) {
        hubStartup.record(seconds)
    }

    /// Records how long the hub took to reattach to the servers it found in the store.
    public func recordInitSpawners(seconds: Double) {
        initSpawners.record(seconds)
    }

    /// Counts one action of the idle culler: `atrium_culls_total{reason, action}`.
    ///
    /// For the culler (or anything else that removes idle resources). Keep both labels to a
    /// small fixed set — they become time series, so never put a user or server name in them.
    /// - Parameters:
    ///   - reason: why, for example `inactive`, `max_age`.
    ///   - action: what was done, for example `stop`, `suspend`, `delete_user`.
    public func recordCull(reason: String, action: String) {
        let key = CullKey(reason: reason, action: action)
        let counter = culls.withLock { cache in
            if let existing = cache[key] { return existing }
            let made = registry.makeCounter(
                descriptor: Self.descriptor(Names.culls, "Actions taken by the idle culler, by reason and action"),
                labels: [("reason", reason), ("action", action)])
            cache[key] = made
            return made
        }
        counter.increment()
    }

    // MARK: - Scrape

    /// Sets the state gauges from `snapshot`, brings the proxy counters up to its totals, and
    /// renders every metric of ``registry`` in Prometheus' text format (version 0.0.4).
    public func exposition(_ snapshot: Snapshot) -> String {
        totalUsers.set(Double(snapshot.totalUsers))
        runningServers.set(Double(snapshot.serversByPhase[.running] ?? 0))
        for (period, gauge) in activeUsers { gauge.set(Double(snapshot.activeUsers[period] ?? 0)) }
        for (phase, gauge) in servers { gauge.set(Double(snapshot.serversByPhase[phase] ?? 0)) }
        spawnsInProgress.set(Double(snapshot.spawnsInProgress))
        spawnsQueued.set(Double(snapshot.spawnsQueued))
        if let proxy = snapshot.proxy { catchUp(proxy) }
        return registry.emitToString()
    }

    /// The proxy's counts are cumulative atomics in AtriumProxy; Prometheus' counters can only
    /// be incremented, so each scrape adds what grew since the last one (under a lock, so two
    /// scrapes at once never add the same growth twice).
    private func catchUp(_ totals: ProxyStatistics.Snapshot) {
        proxySeen.withLock { seen in
            func add(_ name: String, _ help: String, _ labels: [(String, String)], _ now: Int, _ before: Int) {
                let counter = registry.makeCounter(descriptor: Self.descriptor(name, help), labels: labels)
                if now > before { counter.increment(by: Int64(now - before)) }
            }
            add(Names.proxyRequests, "Requests forwarded to workspaces (WebSocket upgrades included)", [], totals.forwardedRequests, seen.forwardedRequests)
            let bytesHelp = "Bytes relayed by the proxy: request is client to workspace, response is workspace to client"
            add(Names.proxyBytes, bytesHelp, [("direction", "request")], totals.requestBytes, seen.requestBytes)
            add(Names.proxyBytes, bytesHelp, [("direction", "response")], totals.responseBytes, seen.responseBytes)
            add(
                Names.proxyUpstreamErrors, "Forwarded requests that failed before the workspace answered (the proxy answered 503)", [],
                totals.upstreamErrors, seen.upstreamErrors)
            let closedHelp = "Client connections the hub closed to protect itself, by reason"
            add(Names.connectionsClosed, closedHelp, [("reason", "address_limit")], totals.refusedConnections, seen.refusedConnections)
            add(Names.connectionsClosed, closedHelp, [("reason", "idle")], totals.idleClosedConnections, seen.idleClosedConnections)
            for statusClass in 1...5 {
                add(
                    Names.proxyResponses, "Responses to forwarded requests, by status class", [("code", "\(statusClass)xx")],
                    totals.responsesByStatusClass[statusClass] ?? 0, seen.responsesByStatusClass[statusClass] ?? 0)
            }
            seen = totals
        }
        openWebSockets.set(Double(totals.openWebSockets))
    }

    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    /// Every metric name, in one place (the README lists them).
    public enum Names {
        /// Histogram: requests to the hub's routes.
        public static let requestDuration = "jupyterhub_request_duration_seconds"
        /// Histogram: start requests by outcome.
        public static let spawnDuration = "jupyterhub_server_spawn_duration_seconds"
        /// Histogram: stops by outcome.
        public static let stopDuration = "jupyterhub_server_stop_seconds"
        /// Histogram: login attempts, by `status` (success, failure).
        public static let loginDuration = "jupyterhub_login_duration_seconds"
        /// Histogram: logouts.
        public static let logoutDuration = "jupyterhub_logout_duration_seconds"
        /// Histogram: routes added to the proxy, by `status`.
        public static let proxyAddDuration = "jupyterhub_proxy_add_duration_seconds"
        /// Histogram: routes deleted from the proxy, by `status`.
        public static let proxyDeleteDuration = "jupyterhub_proxy_delete_duration_seconds"
        /// Histogram: backend polls of a server, by `status` (running, stopped).
        public static let serverPollDuration = "jupyterhub_server_poll_duration_seconds"
        /// Histogram: checks of the routes against the servers.
        public static let checkRoutesDuration = "jupyterhub_check_routes_duration_seconds"
        /// Histogram: collections of the proxy's route activity.
        public static let proxyPollDuration = "jupyterhub_proxy_poll_duration_seconds"
        /// Histogram: measured scheduler intervals (asked for every 50 ms).
        public static let eventLoopInterval = "jupyterhub_event_loop_interval_seconds"
        /// Counter: CSP violation reports.
        public static let cspReports = "jupyterhub_csp_reports_total"
        /// Histogram: launch to listening.
        public static let hubStartup = "jupyterhub_hub_startup_duration_seconds"
        /// Histogram: reattaching to servers at start.
        public static let initSpawners = "jupyterhub_init_spawners_duration_seconds"
        /// Gauge: servers running.
        public static let runningServers = "jupyterhub_running_servers"
        /// Gauge: users.
        public static let totalUsers = "jupyterhub_total_users"
        /// Gauge: users active within a period.
        public static let activeUsers = "jupyterhub_active_users"
        /// Gauge: servers by stored state.
        public static let servers = "atrium_servers"
        /// Gauge: starts holding a slot.
        public static let spawnsInProgress = "atrium_spawns_in_progress"
        /// Gauge: starts waiting for a slot.
        public static let spawnQueueLength = "atrium_spawn_queue_length"
        /// Counter: requests forwarded to workspaces.
        public static let proxyRequests = "atrium_proxy_requests_total"
        /// Counter: bytes relayed, by direction.
        public static let proxyBytes = "atrium_proxy_bytes_total"
        /// Counter: responses to forwarded requests, by status class.
        public static let proxyResponses = "atrium_proxy_responses_total"
        /// Counter: forwarded requests the workspace never answered.
        public static let proxyUpstreamErrors = "atrium_proxy_upstream_errors_total"
        /// Counter: client connections closed on arrival (`reason="address_limit"`) or for
        /// sending nothing within the idle timeout (`reason="idle"`).
        public static let connectionsClosed = "atrium_connections_closed_total"
        /// Gauge: WebSocket tunnels open.
        public static let proxyOpenWebSockets = "atrium_proxy_open_websockets"
        /// Counter: the idle culler's actions.
        public static let culls = "atrium_culls_total"
    }
}
