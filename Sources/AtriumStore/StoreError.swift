/// The store's one error type: what went wrong, in words for the client and for the log.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// Kinds of store failure.
    public enum Code: Sendable, Equatable {
        /// The row asked for does not exist.
        case notFound
        /// A unique name is already taken.
        case alreadyExists
        /// The database URL or path is unusable.
        case badConfiguration
        /// The schema is newer than this binary understands.
        case schemaTooNew
    }

    public let code: Code
    /// Safe to show to the client.
    public let userMessage: String

    public init(_ code: Code, _ userMessage: String) {
        self.code = code
        self.userMessage = userMessage
    }

    public var description: String { userMessage }
}
