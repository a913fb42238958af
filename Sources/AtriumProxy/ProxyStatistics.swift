import Synchronization

/// Counters of the proxy's traffic, shared by all connections; read them with `snapshot`
/// (for example to render Prometheus metrics). Updated from every event loop on every request,
/// so each counter is a relaxed atomic: no lock for connections to queue on.
public final class ProxyStatistics: Sendable {
    /// A copy of all counters (each read atomically; together, nearly simultaneous).
    public struct Snapshot: Sendable, Hashable {
        /// Requests forwarded to a workspace (including WebSocket upgrade requests).
        public var forwardedRequests = 0
        /// Request body bytes (and client-to-workspace WebSocket bytes) sent upstream.
        public var requestBytes = 0
        /// Response body bytes (and workspace-to-client WebSocket bytes) sent downstream.
        public var responseBytes = 0
        /// WebSocket tunnels currently open.
        public var openWebSockets = 0
        /// Forwarded requests that failed before a response started (answered with 503).
        public var upstreamErrors = 0
        /// Responses sent for forwarded requests, by status class (1 for 1xx … 5, for 5xx).
        public var responsesByStatusClass: [Int: Int] = [:]
        /// Client connections closed on arrival because their address held its share already.
        public var refusedConnections = 0
        /// Client connections closed because the client sent nothing for the idle timeout.
        public var idleClosedConnections = 0

        /// An all-zero snapshot.
        public init() {}
    }

    private let forwardedRequests = Atomic<Int>(0)
    private let requestBytes = Atomic<Int>(0)
    private let responseBytes = Atomic<Int>(0)
    private let openWebSockets = Atomic<Int>(0)
    private let upstreamErrors = Atomic<Int>(0)
    private let status1xx = Atomic<Int>(0)
    private let status2xx = Atomic<Int>(0)
    private let status3xx = Atomic<Int>(0)
    private let status4xx = Atomic<Int>(0)
    private let status5xx = Atomic<Int>(0)
    private let refusedConnections = Atomic<Int>(0)
    private let idleClosedConnections = Atomic<Int>(0)

    /// Creates zeroed statistics.
    public init() {}

    /// The current values.
    public var snapshot: Snapshot {
        var s = Snapshot()
        s.forwardedRequests = forwardedRequests.load(ordering: .relaxed)
        s.requestBytes = requestBytes.load(ordering: .relaxed)
        s.responseBytes = responseBytes.load(ordering: .relaxed)
        s.openWebSockets = openWebSockets.load(ordering: .relaxed)
        s.upstreamErrors = upstreamErrors.load(ordering: .relaxed)
        s.refusedConnections = refusedConnections.load(ordering: .relaxed)
        s.idleClosedConnections = idleClosedConnections.load(ordering: .relaxed)
        let classes = [
            status1xx.load(ordering: .relaxed), status2xx.load(ordering: .relaxed), status3xx.load(ordering: .relaxed),
            status4xx.load(ordering: .relaxed), status5xx.load(ordering: .relaxed),
        ]
        for (index, value) in classes.enumerated() where value > 0 { s.responsesByStatusClass[index + 1] = value }
        return s
    }

    func recordForwardedRequest() { forwardedRequests.wrappingAdd(1, ordering: .relaxed) }
    func addRequestBytes(_ count: Int) { requestBytes.wrappingAdd(count, ordering: .relaxed) }
    func addResponseBytes(_ count: Int) { responseBytes.wrappingAdd(count, ordering: .relaxed) }
    func recordUpstreamError() { upstreamErrors.wrappingAdd(1, ordering: .relaxed) }
    func recordResponse(statusCode: Int) {
        switch statusCode / 100 {
        case 1: status1xx.wrappingAdd(1, ordering: .relaxed)
        case 2: status2xx.wrappingAdd(1, ordering: .relaxed)
        case 3: status3xx.wrappingAdd(1, ordering: .relaxed)
        case 4: status4xx.wrappingAdd(1, ordering: .relaxed)
        default: status5xx.wrappingAdd(1, ordering: .relaxed)
        }
    }
    func recordRefusedConnection() { refusedConnections.wrappingAdd(1, ordering: .relaxed) }
    func recordIdleClose() { idleClosedConnections.wrappingAdd(1, ordering: .relaxed) }
    func webSocketOpened() { openWebSockets.wrappingAdd(1, ordering: .relaxed) }
    func webSocketClosed() { openWebSockets.wrappingSubtract(1, ordering: .relaxed) }
}
