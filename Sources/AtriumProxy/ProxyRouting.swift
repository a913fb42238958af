import AtriumModel
import HTTPTypes

/// Identifies one workspace server: its owner and its name (`""` is the default server).
public struct RouteKey: Sendable, Hashable, CustomStringConvertible {
    public var user: String
    public var server: String

    public init(user: String, server: String = "") {
        self.user = user
        self.server = server
    }

    public var description: String { server.isEmpty ? user : "\(user)/\(server)" }
}

/// Where to forward one request, and with which credential.
public struct ProxyTarget: Sendable, Hashable {
    /// The workspace server's listening address.
    public var address: WorkspaceAddress
    /// The per-server secret only the proxy knows; sent upstream as `Authorization: token <secret>`,
    /// replacing whatever `Authorization` header the client sent. `nil` removes the header.
    public var secret: String?
    /// The server the request belongs to (for activity and errors).
    public var key: RouteKey
    /// A path prefix to remove before forwarding (`/user/alice/`), for programs that only serve
    /// at `/`; the rest of the path keeps a leading `/`. `nil` forwards the path unchanged.
    public var stripPrefix: String?
    /// A path put in front of the forwarded path, after `stripPrefix` is removed (an upstream
    /// that serves the workspace below it, like a Kubernetes service proxy). `nil` adds nothing.
    public var basePath: String?

    public init(address: WorkspaceAddress, secret: String?, key: RouteKey, stripPrefix: String? = nil, basePath: String? = nil) {
        self.address = address
        self.secret = secret
        self.key = key
        self.stripPrefix = stripPrefix
        self.basePath = basePath
    }
}

/// What the proxy does with one request under the proxied prefix.
public enum ProxyDecision: Sendable, Hashable {
    /// Forward it to the workspace.
    case forward(ProxyTarget)
    /// Let the hub's own routes answer (login redirect, 403, "not running" page, 503 JSON).
    case hub
}

/// The hub side of the proxy: authentication, authorization and the route table live here; the
/// proxy only moves bytes. Implementations must be cheap on the fast path: `decideImmediately`
/// runs on a NIO event loop and must not block.
public protocol ProxyGatekeeper: Sendable {
    /// Answers from memory when it can (a cached session or token and a live route); `nil` means
    /// "ask `decide`", which may touch the database.
    func decideImmediately(_ request: HTTPRequest) -> ProxyDecision?
    /// The slow path: may look up tokens or sessions in the store.
    func decide(_ request: HTTPRequest) async -> ProxyDecision
    /// Traffic was seen for `key` (a forwarded request or WebSocket data). Called often; must be
    /// cheap (record in memory, flush to the store in batches elsewhere).
    func recordActivity(_ key: RouteKey)
    /// Connecting to, or talking to, the workspace failed before a response started.
    func upstreamFailed(_ key: RouteKey, error: any Error)
}
