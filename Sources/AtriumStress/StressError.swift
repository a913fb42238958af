/// Why a stress run could not go on. The `userMessage` says what to check or fix.
public struct StressError: Error, CustomStringConvertible, Sendable {
    /// The kinds of failure the command line tells apart.
    public enum Code: Sendable, Equatable {
        /// Missing or invalid options; the command exits with status 1.
        case badArguments
        /// No connection to the hub at all (connection refused, unknown host).
        case unreachable
        /// The hub refused the token (401 or 403).
        case unauthorized
        /// The hub answered, but not as expected (a 5xx, a body that is not the JSON it should be).
        case badAnswer
        /// Requests kept timing out or their connections broke, retries used up.
        case network
        /// A state-changing request was about to go out during `--dry-run` (a bug in the tool).
        case dryRun
    }

    /// What went wrong.
    public let code: Code
    /// One line for the person at the terminal, naming what to fix when there is a fix.
    public let userMessage: String

    /// Short and stable, for logs and the JSON report.
    public var reason: String {
        switch code {
        case .badArguments: "bad_arguments"
        case .unreachable: "unreachable"
        case .unauthorized: "unauthorized"
        case .badAnswer: "bad_answer"
        case .network: "network"
        case .dryRun: "dry_run"
        }
    }

    public init(_ code: Code, _ userMessage: String) {
        self.code = code
        self.userMessage = userMessage
    }

    public var description: String { userMessage }
}
