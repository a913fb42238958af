import AtriumAuth
import Hummingbird

/// The per-request context: Hummingbird's core storage plus who is asking.
public struct HubRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by ``AuthenticationMiddleware`` when the request carries valid credentials.
    public var identity: Identity?
    /// Whether the identity came from a session cookie (state changes then need an XSRF token).
    public var viaCookie = false

    /// The client's network address (the TCP peer), for throttling logins by address.
    public var remoteAddress: String?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.remoteAddress = source.channel.remoteAddress?.ipAddress
    }

    /// Largest request body read whole (JSON and forms). 1 MiB.
    public var maxUploadSize: Int { 1 << 20 }
}
