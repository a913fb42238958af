/// Why a server operation was refused or failed. The HTTP layer maps ``code`` to a status.
public struct SpawnError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// The command makes no sense in the server's state (HTTP 400).
        case rejected
        /// No such server (HTTP 404).
        case notFound
        /// Named servers are off or the user has as many as allowed (HTTP 400).
        case notAllowed
        /// Too many starts queued or too many servers active (HTTP 429), retry after `seconds`.
        case tooBusy(retryAfter: Int)
        /// The backend failed to start or stop the server (HTTP 500, with the reason).
        case backendFailed
        /// A server with this name exists already (HTTP 409).
        case conflict
    }

    public let code: Code
    /// Shown to the user.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
