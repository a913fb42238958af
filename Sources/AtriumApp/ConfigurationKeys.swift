import AtriumAuth
import AtriumHTTP
import AtriumModel
import Foundation
import Logging

/// One configuration key: its name, how to read it, its default, and its documentation.
public struct ConfigurationKey: Sendable {
    public let name: String
    public let type: String
    public let summary: String
    public let secret: Bool
    let apply: @Sendable (inout HubConfiguration, ConfigInput) throws(ConfigurationError) -> Void
    let show: @Sendable (HubConfiguration) -> String

    /// The environment variable that sets this key: `ATRIUM_` + the key upper-cased, dots as `__`.
    public var environmentName: String { "ATRIUM_" + name.uppercased().replacingOccurrences(of: ".", with: "__") }
}

/// A raw value from YAML, the environment or a flag, with helpers that name the key on error.
struct ConfigInput {
    enum Raw {
        case text(String)
        case yaml(Any)
    }

    let key: String
    let raw: Raw

    private func fail(_ problem: String) -> ConfigurationError { ConfigurationError(key: key, problem: problem) }

    func string() throws(ConfigurationError) -> String {
        switch raw {
        case .text(let s): return s
        case .yaml(let v):
            if let s = v as? String { return s }
            if let i = v as? Int { return String(i) }
            throw fail("must be a string")
        }
    }

    func int(_ range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        let value: Int?
        switch raw {
        case .text(let s): value = Int(s.trimmingCharacters(in: .whitespaces))
        case .yaml(let v): value = (v as? Int) ?? (v as? String).flatMap { Int($0) }
        }
        guard let value else { throw fail("must be a whole number") }
        guard range.contains(value) else { throw fail("must be between \(range.lowerBound) and \(range.upperBound), not \(value)") }
        return value
    }

    func bool() throws(ConfigurationError) -> Bool {
        switch raw {
        case .yaml(let v as Bool): return v
        case .yaml(let v as String), .text(let v as String):
            switch v.lowercased() {
            case "true", "yes", "1", "on": return true
            case "false", "no", "0", "off": return false
            default: throw fail("must be true or false, not '\(v)'")
            }
        default: throw fail("must be true or false")
        }
    }

    func list() throws(ConfigurationError) -> [String] {
        switch raw {
        case .text(let s): return s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        case .yaml(let v):
            if v is NSNull { return [] }
            guard let items = v as? [Any] else { throw fail("must be a list of names") }
            var out: [String] = []
            for item in items {
                guard let s = item as? String else { throw fail("must be a list of names (strings)") }
                out.append(s)
            }
            return out
        }
    }

    func names() throws(ConfigurationError) -> Set<String> {
        var out = Set<String>()
        for name in try list() {
            let normalized = Authenticator.normalize(name)
            do { _ = try UserName(normalized) } catch { throw fail(error.description) }
            out.insert(normalized)
        }
        return out
    }

    /// A duration with a unit: `90s`, `10m`, `2h`, `14d` (or `500ms`).
    func duration() throws(ConfigurationError) -> Duration {
        let text = try string().trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            if let value = Double(number), value >= 0, value.isFinite {
                return .milliseconds(Int64((value * scale * 1000).rounded()))
            }
        }
        throw fail("must be a duration with a unit, such as 90s, 10m, 2h or 14d (not '\(text)')")
    }

    func choice<T: RawRepresentable & CaseIterable>(_: T.Type) throws(ConfigurationError) -> T where T.RawValue == String {
        let text = try string()
        guard let value = T(rawValue: text) else {
            throw fail("must be one of \(T.allCases.map(\.rawValue).joined(separator: ", ")), not '\(text)'")
        }
        return value
    }
}

extension Duration {
    /// `90s`, `10m`, `2h`, `14d`: the shortest exact form.
    var configText: String {
        let ms = Int64(seconds * 1000)
        if ms % 86_400_000 == 0, ms > 0 { return "\(ms / 86_400_000)d" }
        if ms % 3_600_000 == 0, ms > 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0, ms > 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }
}

extension Logger.Level {
    static let names: [String] = Logger.Level.allCases.map(\.rawValue)
}

/// Every key, in the order `atrium config print` and the README list them.
public enum ConfigurationKeys {
    static func key(
        _ name: String, _ type: String, _ summary: String, secret: Bool = false,
        show: @escaping @Sendable (HubConfiguration) -> String,
        apply: @escaping @Sendable (inout HubConfiguration, ConfigInput) throws(ConfigurationError) -> Void
    ) -> ConfigurationKey {
        ConfigurationKey(name: name, type: type, summary: summary, secret: secret, apply: apply, show: show)
    }

    static func names(_ set: Set<String>) -> String { "[" + set.sorted().joined(separator: ", ") + "]" }

    public static let all: [ConfigurationKey] = [
        key("ip", "string", "Address to listen on.", show: { $0.ip }) { c, v throws(ConfigurationError) in c.ip = try v.string() },
        key("port", "integer 0–65535", "Port to listen on; 0 picks a free port (printed at start).", show: { "\($0.port)" }) { c, v throws(ConfigurationError) in
            c.port = try v.int(0...65535)
        },
        key("db", "path or URL", "SQLite file, `:memory:`, or `postgres://user:password@host:port/database`.", secret: false,
            show: { Self.maskedURL($0.db) }) { c, v throws(ConfigurationError) in
            let text = try v.string()
            guard !text.isEmpty else { throw ConfigurationError(key: v.key, problem: "must not be empty") }
            c.db = text
        },
        key("cookie_secret_file", "path", "File holding the cookie-signing secret; created with mode 0600 on first start.",
            show: { $0.cookieSecretFile }) { c, v throws(ConfigurationError) in c.cookieSecretFile = try v.string() },
        key("cookie_secure", "auto | always | never", "When session cookies get the Secure flag (auto: when the request came over https).",
            show: { $0.cookieSecure.rawValue }) { c, v throws(ConfigurationError) in c.cookieSecure = try v.choice(HTTPSettings.CookieSecurity.self) },
        key("session_lifetime", "duration", "How long a browser session lasts.", show: { $0.sessionLifetime.configText }) { c, v throws(ConfigurationError) in
            c.sessionLifetime = try v.duration()
        },
        key("hub_name", "string", "Name shown on the pages.", show: { $0.hubName }) { c, v throws(ConfigurationError) in c.hubName = try v.string() },
        key("api_page_default_limit", "integer 1–10000", "Page size for clients that ask for JupyterHub pagination without a limit.",
            show: { "\($0.apiPageDefaultLimit)" }) { c, v throws(ConfigurationError) in c.apiPageDefaultLimit = try v.int(1...10_000) },
        key("api_page_max_limit", "integer 1–10000", "Largest page for clients that ask for JupyterHub pagination.",
            show: { "\($0.apiPageMaxLimit)" }) { c, v throws(ConfigurationError) in c.apiPageMaxLimit = try v.int(1...10_000) },
        key("log_level", Logger.Level.names.joined(separator: " | "), "Log level.", show: { $0.logLevel.rawValue }) { c, v throws(ConfigurationError) in
            c.logLevel = try v.choice(Logger.Level.self)
        },
        key("auth.mode", "native | shared_password", "native: own passwords, signup with approval. shared_password: workshop mode.",
            show: { $0.auth.mode.rawValue }) { c, v throws(ConfigurationError) in c.auth.mode = try v.choice(AuthConfiguration.Mode.self) },
        key("auth.admin_users", "list of names", "Admins: created at start, approved at signup.", show: { names($0.auth.adminUsers) }) { c, v throws(ConfigurationError) in
            c.auth.adminUsers = try v.names()
        },
        key("auth.allowed_users", "list of names", "When not empty, only these users (and admins) may log in.",
            show: { names($0.auth.allowedUsers) }) { c, v throws(ConfigurationError) in c.auth.allowedUsers = try v.names() },
        key("auth.blocked_users", "list of names", "Users who may never log in.", show: { names($0.auth.blockedUsers) }) { c, v throws(ConfigurationError) in
            c.auth.blockedUsers = try v.names()
        },
        key("auth.enable_signup", "boolean", "Offer /hub/signup (native mode).", show: { "\($0.auth.enableSignup)" }) { c, v throws(ConfigurationError) in
            c.auth.enableSignup = try v.bool()
        },
        key("auth.open_signup", "boolean", "New signups may log in at once, without approval.", show: { "\($0.auth.openSignup)" }) { c, v throws(ConfigurationError) in
            c.auth.openSignup = try v.bool()
        },
        key("auth.shared_password", "string (secret)", "The workshop password (shared_password mode; at least 8 characters).", secret: true,
            show: { $0.auth.sharedPassword == nil ? "null" : "********" }) { c, v throws(ConfigurationError) in c.auth.sharedPassword = try v.string() },
        key("auth.admin_password", "string (secret)", "The admins' password in shared_password mode (admins cannot use the shared one).", secret: true,
            show: { $0.auth.adminPassword == nil ? "null" : "********" }) { c, v throws(ConfigurationError) in c.auth.adminPassword = try v.string() },
        key("auth.password_min_length", "integer 1–1024", "Shortest password accepted.", show: { "\($0.auth.passwordPolicy.minimumLength)" }) { c, v throws(ConfigurationError) in
            c.auth.passwordPolicy.minimumLength = try v.int(1...1024)
        },
        key("auth.reject_common_passwords", "boolean", "Refuse the 19,640 most common passwords.",
            show: { "\($0.auth.passwordPolicy.rejectCommon)" }) { c, v throws(ConfigurationError) in c.auth.passwordPolicy.rejectCommon = try v.bool() },
        key("auth.max_failed_logins", "integer 0–1000", "Failed logins within auth.failure_window that lock a name (0: never lock).",
            show: { "\($0.auth.maxFailedLogins)" }) { c, v throws(ConfigurationError) in c.auth.maxFailedLogins = try v.int(0...1000) },
        key("auth.lockout_duration", "duration", "How long a locked name stays locked.", show: { $0.auth.lockoutDuration.configText }) { c, v throws(ConfigurationError) in
            c.auth.lockoutDuration = try v.duration()
        },
        key("auth.failure_window", "duration", "Failures further apart than this start the count again.",
            show: { $0.auth.failureWindow.configText }) { c, v throws(ConfigurationError) in c.auth.failureWindow = try v.duration() },
        key("auth.bcrypt_cost", "integer 4–16", "bcrypt cost (log2 rounds) for new password hashes.", show: { "\($0.auth.bcryptCost)" }) { c, v throws(ConfigurationError) in
            c.auth.bcryptCost = UInt8(try v.int(4...16))
        },
    ]

    static func maskedURL(_ url: String) -> String {
        guard url.contains("://"), var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "********"
        return components.string ?? url
    }

    static let byName: [String: ConfigurationKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
}
