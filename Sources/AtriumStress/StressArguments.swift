import Foundation

/// The command line's exit statuses, as hub-stress-test has them.
public enum ExitStatus: Int32, Sendable {
    case success = 0
    /// Missing or invalid options (ArgumentParser's own 64, EX_USAGE, is mapped to this).
    case badArguments = 1
    /// The run started but failed: the hub refused, or an operation failed for good.
    case runFailed = 128

    /// The status for a run's `report`.
    public static func of(_ report: StressReport) -> ExitStatus { report.success ? .success : .runFailed }

    /// The status for an error that ended a run.
    public static func of(_ error: any Error) -> ExitStatus {
        (error as? StressError)?.code == .badArguments ? .badArguments : .runFailed
    }

    /// The status for an exit code ArgumentParser picked: usage errors (64) become 1.
    public static func forParser(_ code: Int32) -> Int32 { code == 64 ? ExitStatus.badArguments.rawValue : code }
}

/// Where the hub is and how to get in: options first, then the environment hub-stress-test reads.
public struct HubTarget: Sendable, Equatable {
    public var endpoint: String
    public var token: String

    public init(endpoint: String, token: String) {
        self.endpoint = endpoint
        self.token = token
    }

    /// The target from `-e`/`-t` or `JUPYTERHUB_ENDPOINT`/`JUPYTERHUB_API_TOKEN`.
    ///
    /// - Throws: ``StressError`` `.badArguments` naming the option and the variable to set.
    public static func resolve(endpoint: String?, token: String?, environment: [String: String]) throws(StressError) -> HubTarget {
        func given(_ value: String?) -> String? { value.flatMap { $0.isEmpty ? nil : $0 } }
        guard let endpoint = given(endpoint) ?? given(environment["JUPYTERHUB_ENDPOINT"]) else {
            throw StressError(.badArguments, "No hub API URL: give -e/--endpoint (e.g. http://127.0.0.1:8000/hub/api) or set JUPYTERHUB_ENDPOINT.")
        }
        guard let url = URL(string: endpoint), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil else {
            throw StressError(.badArguments, "-e/--endpoint must be an http:// or https:// URL such as http://127.0.0.1:8000/hub/api, not '\(endpoint)'.")
        }
        guard let token = given(token) ?? given(environment["JUPYTERHUB_API_TOKEN"]) else {
            throw StressError(.badArguments, "No API token: give -t/--token or set JUPYTERHUB_API_TOKEN (an admin token, e.g. from `atrium token create NAME --admin`).")
        }
        return HubTarget(endpoint: endpoint, token: token)
    }
}
