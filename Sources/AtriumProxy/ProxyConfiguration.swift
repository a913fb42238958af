/// Settings of the built-in reverse proxy.
public struct ProxyConfiguration: Sendable, Hashable {
    /// Requests whose path starts with this prefix are candidates for forwarding; all others go
    /// straight to the hub's own routes. Must start and end with `/`.
    public var pathPrefix: String
    /// Cookies removed from the `Cookie` header before a request is forwarded, so the hub's
    /// session never reaches a workspace. Other cookies are kept.
    public var strippedCookieNames: Set<String>
    /// Query parameters removed before a request is forwarded: `token`, a hub API token a client
    /// may send as `?token=`, never reaches a workspace (the proxy sends the workspace its own
    /// secret in `Authorization`).
    public var strippedQueryParameters: Set<String>
    /// How long to wait for the TCP or Unix-socket connection to a workspace.
    public var connectTimeout: Duration
    /// Whether clients reach the hub over TLS (terminated in front of it); decides
    /// `X-Forwarded-Proto` and the default `X-Forwarded-Port`.
    public var behindTLS: Bool
    /// Upper bound, in bytes, of request body data held by one connection while it waits (for the
    /// gatekeeper's decision, the upstream connection, or the previous response). The proxy stops
    /// reading from the socket while it waits, so this is only reached by a misbehaving peer; a
    /// connection exceeding it is closed.
    public var maxBufferedBytes: Int
    /// How long a client connection may go without sending anything while the hub waits for it
    /// (a request head, after connecting or after the previous response; the rest of a request
    /// body) before it is closed: the bound on idle keep-alive connections and on slowly sent
    /// headers and bodies. Never applies while the client waits for an answer, nor to a
    /// WebSocket. `nil`: no limit.
    public var clientIdleTimeout: Duration?
    /// Client connections held at once from one network address; more are closed as soon as
    /// they are accepted, so one client cannot take every connection the hub accepts. 0: no limit.
    public var maxConnectionsPerAddress: Int

    /// Creates a configuration; every parameter has the documented default.
    public init(
        pathPrefix: String = "/user/",
        strippedCookieNames: Set<String> = ["atrium-session"],
        strippedQueryParameters: Set<String> = ["token"],
        connectTimeout: Duration = .seconds(10),
        behindTLS: Bool = false,
        maxBufferedBytes: Int = 1 << 20,
        clientIdleTimeout: Duration? = .seconds(30),
        maxConnectionsPerAddress: Int = 0
    ) {
        self.pathPrefix = pathPrefix
        self.strippedCookieNames = strippedCookieNames
        self.strippedQueryParameters = strippedQueryParameters
        self.connectTimeout = connectTimeout
        self.behindTLS = behindTLS
        self.maxBufferedBytes = maxBufferedBytes
        self.clientIdleTimeout = clientIdleTimeout
        self.maxConnectionsPerAddress = maxConnectionsPerAddress
    }
}
