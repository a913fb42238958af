import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The hub's built-in reverse proxy: forwards requests under `configuration.pathPrefix` to
/// workspace servers, as the gatekeeper decides, and leaves every other request to the hub.
///
/// Install one handler per connection in the hub's HTTP/1 pipeline, after the HTTP codecs and
/// before the hub's request loop:
/// ```swift
/// let proxy = ReverseProxy(gatekeeper: gatekeeper, logger: logger)
/// let app = Application(
///     router: router,
///     server: .http1(configuration: .init(additionalChannelHandlers: [proxy.makeHandler()]))
/// )
/// ```
/// Upstream connections are opened on the event loop of the client connection they serve, so a
/// proxied exchange never hops threads.
public struct ReverseProxy: Sendable {
    /// The proxy's settings.
    public let configuration: ProxyConfiguration
    /// Authentication, authorization and routing, owned by the hub.
    public let gatekeeper: any ProxyGatekeeper
    /// Traffic counters shared by all connections.
    public let statistics: ProxyStatistics
    /// The proxy's logger; connection handlers add `atrium.user` and `atrium.server` metadata.
    public let logger: Logger
    /// Open client connections by network address, for ``ProxyConfiguration/maxConnectionsPerAddress``.
    let connections = ConnectionsByAddress()

    /// Creates a proxy.
    /// - Parameters:
    ///   - configuration: Path prefix, cookies to strip, timeouts, limits.
    ///   - gatekeeper: Decides, per request, whether and where to forward it.
    ///   - statistics: Counters to update; pass a shared instance to read them elsewhere.
    ///   - logger: Where the proxy logs (never cookies or tokens).
    public init(
        configuration: ProxyConfiguration = .init(),
        gatekeeper: any ProxyGatekeeper,
        statistics: ProxyStatistics = .init(),
        logger: Logger
    ) {
        self.configuration = configuration
        self.gatekeeper = gatekeeper
        self.statistics = statistics
        self.logger = logger
    }

    /// A new handler for one client connection. Call once per connection.
    public func makeHandler() -> ProxyHandler {
        ProxyHandler(proxy: self)
    }
}

/// Open client connections by network address, shared by every connection's handler.
final class ConnectionsByAddress: Sendable {
    private let counts = NIOLockedValueBox<[String: Int]>([:])

    /// Counts a new connection from `address`; `false` (and nothing counted) when `address`
    /// already holds `limit` (0: no limit).
    func open(_ address: String, limit: Int) -> Bool {
        counts.withLockedValue { counts in
            let held = counts[address, default: 0]
            if limit > 0, held >= limit { return false }
            counts[address] = held + 1
            return true
        }
    }

    /// Forgets a connection ``open(_:limit:)`` counted.
    func close(_ address: String) {
        counts.withLockedValue { counts in
            let held = counts[address, default: 0] - 1
            counts[address] = held > 0 ? held : nil
        }
    }

    /// Connections held from `address` now.
    func count(_ address: String) -> Int { counts.withLockedValue { $0[address, default: 0] } }
}
