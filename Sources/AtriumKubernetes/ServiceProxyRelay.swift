import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// A relay on loopback to the API server's service proxy, for a hub that runs outside the
/// cluster (`kubernetes.endpoint_mode: api_proxy`): the hub's proxy sends workspace traffic here
/// and the relay passes it to `/api/v1/namespaces/{ns}/services/http:{name}:{port}/proxy/…` with
/// the cluster's credentials, as `kubectl proxy` would, but narrower and with the API server's
/// rewriting undone:
/// - Only paths under `/{key}/api/v1/namespaces/{namespace}/services/{name}/proxy` pass; `key` is
///   random per start and only the hub learns it (from ``basePath(service:port:)``), so other
///   programs on the machine cannot borrow the hub's credentials.
/// - The API server drops `Authorization` once it has authenticated the hub, so the workspace's
///   secret (`Authorization: token …` from the hub's proxy) travels as the `token` query
///   parameter, which jupyter-server reads too; it is taken out of `Location` headers again.
/// - The API server prefixes absolute paths in `Location` and in HTML attributes with the proxy
///   path; the relay removes that prefix, so the browser sees `/user/…` links. Requests ask for
///   uncompressed responses, so HTML can be read.
/// - WebSocket (and any other) upgrades become a byte tunnel.
///
/// The listener is bound by ``start(connection:namespace:host:port:logger:)``, before the hub
/// restores its servers (their endpoints name the relay's port); as a `Service`, the relay runs
/// until graceful shutdown and then closes its listener.
public final class ServiceProxyRelay: Service, Sendable {
    /// The address the hub's proxy connects to.
    public let host: String
    public let port: Int
    /// Which paths pass (this namespace's service proxy, under the random key).
    let routes: RelayRoutes
    let listener: any Channel

    /// The namespace whose services the relay reaches; no other.
    public var namespace: String { routes.namespace }

    /// Binds the relay's listener; `port` 0 picks a free port.
    public static func start(
        connection: ClusterConnection, namespace: String, host: String = "127.0.0.1", port: Int = 0, logger: Logger
    ) async throws -> ServiceProxyRelay {
        let upstream = try RelayUpstream(connection: connection)
        let key = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let routes = RelayRoutes(key: key, namespace: namespace)
        let listener: any Channel
        do {
            listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try RelayHandler.configure(channel: channel, routes: routes, upstream: upstream, logger: logger)
                    }
                }
                .bind(host: host, port: port).get()
        } catch {
            throw KubernetesError.configuration(
                "the relay to the API server cannot listen on \(host):\(port) (\(error)); set kubernetes.api_proxy_port to a free port, or 0 for any")
        }
        let bound = listener.localAddress?.port ?? port
        logger.info("relaying workspace traffic through the API server's service proxy", metadata: [
            "atrium.relay": "\(host):\(bound)", "atrium.apiserver": "\(connection.server.absoluteString)",
        ])
        return ServiceProxyRelay(host: host, port: bound, routes: routes, listener: listener)
    }

    init(host: String, port: Int, routes: RelayRoutes, listener: any Channel) {
        self.host = host
        self.port = port
        self.routes = routes
        self.listener = listener
    }

    /// The path the hub's proxy puts in front of a workspace's paths to reach `service` on `port`.
    public func basePath(service: String, port: Int) -> String {
        "/\(routes.key)/api/v1/namespaces/\(routes.namespace)/services/http:\(service):\(port)/proxy"
    }

    /// Waits for graceful shutdown (or cancellation), then closes the listener.
    public func run() async throws {
        try? await gracefulShutdown()
        try await close()
    }

    /// Closes the listener; open connections end when their peers close them.
    public func close() async throws {
        do {
            try await listener.close()
        } catch ChannelError.alreadyClosed {
            return
        }
    }
}

/// Which paths the relay accepts and what becomes of them.
struct RelayRoutes: Sendable {
    let key: String
    let namespace: String

    /// A request the relay may pass on: the path for the API server and the prefix the API server
    /// will put in front of the workspace's absolute paths.
    struct Route: Equatable {
        var uri: String
        var proxyPath: String
    }

    /// The route for `uri` (`/{key}/api/v1/namespaces/{ns}/services/{name}/proxy[/…][?…]`), or
    /// `nil` when the key, namespace or shape is wrong.
    func route(_ uri: String) -> Route? {
        let keyPrefix = "/\(key)/"
        guard uri.hasPrefix(keyPrefix) else { return nil }
        let rest = String(uri.dropFirst(keyPrefix.count - 1))
        let pathEnd = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let segments = rest[..<pathEnd].split(separator: "/", omittingEmptySubsequences: false)
        // "", api, v1, namespaces, {ns}, services, {name}, proxy, …
        guard segments.count >= 8, segments[0].isEmpty, segments[1] == "api", segments[2] == "v1", segments[3] == "namespaces",
            segments[4] == namespace, segments[5] == "services", !segments[6].isEmpty, segments[7] == "proxy",
            !segments.contains(".."), !segments.contains(".")
        else { return nil }
        return Route(uri: rest, proxyPath: segments[0...7].joined(separator: "/"))
    }

    /// `token=secret`, as the relay puts it in a query.
    static func tokenParameter(_ secret: String) -> String {
        "token=" + (secret.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? secret)
    }

    /// `uri` with `token=secret` added to its query.
    static func addingToken(_ secret: String, to uri: String) -> String {
        uri + (uri.contains("?") ? "&" : "?") + tokenParameter(secret)
    }

    /// A `Location` with the API server's proxy prefix and the relay's `token` parameter removed.
    static func restoringLocation(_ location: String, proxyPath: String, secret: String?) -> String {
        var result = location
        if result.hasPrefix(proxyPath + "/") {
            result = String(result.dropFirst(proxyPath.count))
        } else if result == proxyPath {
            result = "/"
        }
        guard let secret, let queryStart = result.firstIndex(of: "?") else { return result }
        let added = tokenParameter(secret)
        let fragmentStart = result[queryStart...].firstIndex(of: "#") ?? result.endIndex
        let kept = result[result.index(after: queryStart)..<fragmentStart].split(separator: "&")
            .filter { $0 != added && $0 != "token=\(secret)" }
        return String(result[..<queryStart]) + (kept.isEmpty ? "" : "?" + kept.joined(separator: "&")) + result[fragmentStart...]
    }

    /// HTML with the API server's prefix taken out of absolute links (`{proxyPath}/x` is `/x` again).
    static func restoringHTML(_ body: ByteBuffer, proxyPath: String) -> ByteBuffer {
        let needle = Array((proxyPath + "/").utf8)
        let bytes = body.readableBytesView
        var output = ByteBuffer()
        output.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        var copiedFrom = index
        while index < bytes.endIndex {
            if bytes[index] == needle[0], bytes.endIndex - index >= needle.count, bytes[index..<index + needle.count].elementsEqual(needle) {
                output.writeBytes(bytes[copiedFrom..<index])
                output.writeInteger(UInt8(ascii: "/"))
                index += needle.count
                copiedFrom = index
            } else {
                index += 1
            }
        }
        output.writeBytes(bytes[copiedFrom..<bytes.endIndex])
        return output
    }
}

/// How to reach the API server: address, TLS and the bearer token (re-read from its file at most
/// once a minute, as the kubelet rotates service-account tokens).
final class RelayUpstream: Sendable {
    let host: String
    let port: Int
    let authority: String
    let tls: NIOSSLContext?
    let serverHostname: String?
    private let connection: ClusterConnection
    private let token = Mutex<(value: String?, read: ContinuousClock.Instant)?>(nil)

    init(connection: ClusterConnection) throws {
        guard let host = connection.server.host else { throw KubernetesError.configuration("the cluster's server URL has no host") }
        self.connection = connection
        self.host = host
        let https = connection.server.scheme == "https"
        port = connection.server.port ?? (https ? 443 : 80)
        authority = (host.contains(":") ? "[\(host)]" : host) + (connection.server.port.map { ":\($0)" } ?? "")
        do {
            tls = try connection.tlsConfiguration().map { try NIOSSLContext(configuration: $0) }
        } catch let error as KubernetesError {
            throw error
        } catch {
            throw KubernetesError.configuration("cannot set up TLS to the API server: \(error)")
        }
        // SNI takes names only; an IP address is checked against the certificate's IP entries.
        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        serverHostname = https && !isAddress ? host : nil
    }

    /// The bearer token to send now.
    func bearerToken() -> String? {
        let now = ContinuousClock.now
        return token.withLock { cached in
            if let cached, connection.tokenFile == nil || now - cached.read < .seconds(60) { return cached.value }
            let value = connection.currentToken()
            cached = (value, now)
            return value
        }
    }
}
