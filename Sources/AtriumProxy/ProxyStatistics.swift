import NIOConcurrencyHelpers

/// Counters of the proxy's traffic, shared by all connections; read them with `snapshot`
/// (for example to render Prometheus metrics). Cheap to update from event loops.
public final class ProxyStatistics: Sendable {
    /// A consistent copy of all counters.
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

        /// An all-zero snapshot.
        public init() {}
    }

    private let counters = NIOLockedValueBox(Snapshot())

    /// Creates zeroed statistics.
    public init() {}

    /// The current values.
    public var snapshot: Snapshot { counters.withLockedValue { $0 } }

    func recordForwardedRequest() { counters.withLockedValue { $0.forwardedRequests += 1 } }
    func addRequestBytes(_ count: Int) { counters.withLockedValue { $0.requestBytes += count } }
    func addResponseBytes(_ count: Int) { counters.withLockedValue { $0.responseBytes += count } }
    func recordUpstreamError() { counters.withLockedValue { $0.upstreamErrors += 1 } }
    func recordResponse(statusCode: Int) {
        counters.withLockedValue { $0.responsesByStatusClass[statusCode / 100, default: 0] += 1 }
    }
    func webSocketOpened() { counters.withLockedValue { $0.openWebSockets += 1 } }
    func webSocketClosed() { counters.withLockedValue { $0.openWebSockets -= 1 } }
}
