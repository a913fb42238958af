import AtriumAuth
import AtriumHTTP
import Foundation
import Logging

/// The hub's whole configuration: one tree of values with defaults, read from a YAML file, then
/// `ATRIUM_…` environment variables, then command-line flags, and validated once at start-up.
/// Every key is listed, with its type, default and meaning, in ``ConfigurationKeys/all``.
public struct HubConfiguration: Sendable {
    /// Address to listen on. Default: `127.0.0.1`.
    public var ip = "127.0.0.1"
    /// Port to listen on (0 picks a free one). Default: 8000.
    public var port = 8000
    /// SQLite file path, `:memory:`, or a `postgres://` URL. Default: `atrium.sqlite`.
    public var db = "atrium.sqlite"
    /// File holding the cookie-signing secret (created with mode 0600). Default: `atrium_cookie_secret`.
    public var cookieSecretFile = "atrium_cookie_secret"
    /// When cookies get the `Secure` flag. Default: auto.
    public var cookieSecure: HTTPSettings.CookieSecurity = .auto
    /// How long a browser session lasts. Default: 14 days.
    public var sessionLifetime: Duration = .seconds(14 * 24 * 3600)
    /// Name shown on pages. Default: Atrium.
    public var hubName = "Atrium"
    /// Default page size for paginating clients. Default: 50.
    public var apiPageDefaultLimit = 50
    /// Largest page for paginating clients. Default: 200.
    public var apiPageMaxLimit = 200
    /// Log level. Default: info.
    public var logLevel: Logger.Level = .info
    /// Authentication.
    public var auth = AuthConfiguration()

    public init() {}

    /// Cross-key checks, after every source has been applied.
    public func validate() throws(ConfigurationError) {
        if auth.mode == .sharedPassword {
            guard let shared = auth.sharedPassword, !shared.isEmpty else {
                throw ConfigurationError(key: "auth.shared_password", problem: "is required when auth.mode is shared_password")
            }
            if shared.count < 8 { throw ConfigurationError(key: "auth.shared_password", problem: "must be at least 8 characters") }
            if let admin = auth.adminPassword, admin == shared {
                throw ConfigurationError(key: "auth.admin_password", problem: "must differ from auth.shared_password")
            }
        }
        if apiPageDefaultLimit > apiPageMaxLimit {
            throw ConfigurationError(key: "api_page_default_limit", problem: "is larger than api_page_max_limit (\(apiPageMaxLimit))")
        }
        if let overlap = auth.adminUsers.intersection(auth.blockedUsers).sorted().first {
            throw ConfigurationError(key: "auth.blocked_users", problem: "blocks \(overlap), who is also in auth.admin_users")
        }
    }
}

/// A configuration value that cannot be used; the message names the key.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let key: String
    public let problem: String
    public var source: String?

    public init(key: String, problem: String, source: String? = nil) {
        self.key = key
        self.problem = problem
        self.source = source
    }

    public var description: String {
        "configuration key '\(key)'\(source.map { " (from \($0))" } ?? ""): \(problem)"
    }
}
