import AtriumAuth
import AtriumHTTP
import AtriumKubernetes
import AtriumLocal
import AtriumModel
import AtriumServices
import AtriumSpawn
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

    /// YAML `null` or `~`, or the text `null`.
    var isNull: Bool {
        switch raw {
        case .text(let s): return ["null", "none", "~"].contains(s.lowercased())
        case .yaml(let v): return v is NSNull
        }
    }

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
        case .yaml(let v as String), .text(let v):
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
        if let seconds = DurationText.seconds(text) { return .milliseconds(Int64((seconds * 1000).rounded())) }
        throw fail("must be a duration with a unit, such as 90s, 10m, 2h or 14d (not '\(text)')")
    }

    /// A size in bytes: `536870912`, `512M`, `2G`, `1.5Gi`.
    func bytes() throws(ConfigurationError) -> Int64 {
        let text = try string().trimmingCharacters(in: .whitespaces)
        let units: [(String, Double)] = [
            ("Ki", 1024), ("Mi", 1_048_576), ("Gi", 1_073_741_824), ("K", 1000), ("M", 1_000_000), ("G", 1_000_000_000), ("", 1),
        ]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            if let value = Double(text.dropLast(suffix.count)), value > 0, value.isFinite { return Int64(value * scale) }
        }
        throw fail("must be a size such as 536870912, 512M, 2G or 1.5Gi (not '\(text)')")
    }

    func number() throws(ConfigurationError) -> Double {
        let value: Double?
        switch raw {
        case .text(let s): value = Double(s.trimmingCharacters(in: .whitespaces))
        case .yaml(let v): value = (v as? Double) ?? (v as? Int).map(Double.init) ?? (v as? String).flatMap(Double.init)
        }
        guard let value, value > 0, value.isFinite else { throw fail("must be a positive number") }
        return value
    }

    func profiles() throws(ConfigurationError) -> [SpawnProfile] {
        guard case .yaml(let v) = raw else { throw fail("is a list of maps: set it in the YAML configuration file") }
        if v is NSNull { return [] }
        guard let items = v as? [Any] else { throw fail("must be a list of {name, display_name, cpu, memory, command}") }
        var out: [SpawnProfile] = []
        for (i, item) in items.enumerated() {
            guard let map = item as? [String: Any], let name = map["name"] as? String, !name.isEmpty else {
                throw fail("item \(i) needs a name")
            }
            let known: Set<String> = ["name", "display_name", "cpu", "memory", "command", "image"]
            if let unknown = map.keys.first(where: { !known.contains($0) }) { throw fail("item \(name) has an unknown field \(unknown)") }
            var profile = SpawnProfile(name: name, displayName: map["display_name"] as? String)
            if let cpu = map["cpu"] { profile.limits.cpu = try ConfigInput(key: "\(key)[\(name)].cpu", raw: .yaml(cpu)).number() }
            if let memory = map["memory"] { profile.limits.memory = try ConfigInput(key: "\(key)[\(name)].memory", raw: .yaml(memory)).bytes() }
            if let command = map["command"] { profile.command = try ConfigInput(key: "\(key)[\(name)].command", raw: .yaml(command)).list() }
            profile.image = map["image"] as? String
            if out.contains(where: { $0.name == name }) { throw fail("has two profiles called \(name)") }
            out.append(profile)
        }
        return out
    }

    func cullRules() throws(ConfigurationError) -> [CullRule] {
        guard case .yaml(let v) = raw else { throw fail("is a list of maps: set it in the YAML configuration file") }
        if v is NSNull { return [] }
        guard let items = v as? [Any] else { throw fail("must be a list of {group, profile, timeout, max_age}") }
        var out: [CullRule] = []
        for (i, item) in items.enumerated() {
            guard let map = item as? [String: Any] else { throw fail("item \(i) must be a map") }
            let known: Set<String> = ["group", "profile", "timeout", "max_age"]
            if let unknown = map.keys.sorted().first(where: { !known.contains($0) }) { throw fail("item \(i) has an unknown field \(unknown)") }
            var rule = CullRule(group: map["group"].map { "\($0)" }, profile: map["profile"].map { "\($0)" })
            guard rule.group != nil || rule.profile != nil else { throw fail("item \(i) must name a group or a profile") }
            if let timeout = map["timeout"] { rule.timeout = try ConfigInput(key: "\(key)[\(i)].timeout", raw: .yaml(timeout)).duration() }
            if let maxAge = map["max_age"] { rule.maxAge = try ConfigInput(key: "\(key)[\(i)].max_age", raw: .yaml(maxAge)).duration() }
            guard rule.timeout != nil || rule.maxAge != nil else { throw fail("item \(i) sets neither timeout nor max_age") }
            out.append(rule)
        }
        return out
    }

    /// `KEY=VALUE` items as a map.
    func pairs() throws(ConfigurationError) -> [String: String] {
        var out: [String: String] = [:]
        for item in try list() {
            let parts = item.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, !parts[0].isEmpty else { throw fail("items are KEY=VALUE, not '\(item)'") }
            out[String(parts[0])] = String(parts[1])
        }
        return out
    }

    /// A Kubernetes resource quantity (`250m`, `2Gi`), checked with the API server's grammar.
    func quantity() throws(ConfigurationError) -> String {
        // YAML reads 1.5 or 1.5e9 as a number.
        if case .yaml(let number as Double) = raw { return "\(number)" }
        let text = try string().trimmingCharacters(in: .whitespaces)
        if let problem = KubernetesValidation.quantityProblem(text) { throw fail(problem) }
        return text
    }

    /// KEY=VALUE pairs that become Kubernetes labels (a node selector): qualified-name keys and
    /// label values, as the API server checks them.
    func labelPairs() throws(ConfigurationError) -> [String: String] {
        let pairs = try pairs()
        for (key, value) in pairs.sorted(by: { $0.key < $1.key }) {
            if let problem = KubernetesValidation.qualifiedNameProblem(key) ?? KubernetesValidation.labelValueProblem(value) { throw fail(problem) }
        }
        return pairs
    }

    /// A Kubernetes object name (a storage class): a DNS subdomain.
    func subdomain() throws(ConfigurationError) -> String {
        let text = try string()
        if let problem = KubernetesValidation.subdomainProblem(text) { throw fail(problem) }
        return text
    }

    func tolerations() throws(ConfigurationError) -> [Toleration] {
        guard case .yaml(let v) = raw else { throw fail("is a list of maps: set it in the YAML configuration file") }
        if v is NSNull { return [] }
        guard let items = v as? [Any] else { throw fail("must be a list of {key, operator, value, effect}") }
        var out: [Toleration] = []
        for (i, item) in items.enumerated() {
            guard let map = item as? [String: Any] else { throw fail("item \(i) must be a map") }
            let known: Set<String> = ["key", "operator", "value", "effect"]
            if let unknown = map.keys.sorted().first(where: { !known.contains($0) }) { throw fail("item \(i) has an unknown field \(unknown)") }
            let op = map["operator"] as? String
            if let op, !["Exists", "Equal"].contains(op) { throw fail("item \(i): operator must be Exists or Equal") }
            let effect = map["effect"] as? String
            if let effect, !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(effect) {
                throw fail("item \(i): effect must be NoSchedule, PreferNoSchedule or NoExecute")
            }
            let tolerationKey = map["key"] as? String
            let value = map["value"].map { "\($0)" }
            if let tolerationKey, let problem = KubernetesValidation.qualifiedNameProblem(tolerationKey) { throw fail("item \(i): \(problem)") }
            if let value, let problem = KubernetesValidation.labelValueProblem(value) { throw fail("item \(i): \(problem)") }
            if op == "Exists", let value, !value.isEmpty { throw fail("item \(i): value must be empty when operator is Exists") }
            if tolerationKey == nil, op != "Exists" { throw fail("item \(i): without a key the operator must be Exists") }
            out.append(Toleration(key: tolerationKey, operator: op, value: value, effect: effect))
        }
        return out
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
        key("auth.max_failed_logins_per_address", "integer 0–100000",
            "Failed logins within auth.failure_window from one network address, under any names, that lock the address out (0: never).",
            show: { "\($0.auth.maxFailedLoginsPerAddress)" }) { c, v throws(ConfigurationError) in c.auth.maxFailedLoginsPerAddress = try v.int(0...100_000) },
        key("auth.lockout_duration", "duration", "How long a locked name stays locked.", show: { $0.auth.lockoutDuration.configText }) { c, v throws(ConfigurationError) in
            c.auth.lockoutDuration = try v.duration()
        },
        key("auth.failure_window", "duration", "Failures further apart than this start the count again.",
            show: { $0.auth.failureWindow.configText }) { c, v throws(ConfigurationError) in c.auth.failureWindow = try v.duration() },
        key("auth.bcrypt_cost", "integer 4–16", "bcrypt cost (log2 rounds) for new password hashes.", show: { "\($0.auth.bcryptCost)" }) { c, v throws(ConfigurationError) in
            c.auth.bcryptCost = UInt8(try v.int(4...16))
        },
        key("backend", "local | simulated | kubernetes", "Which backend runs workspaces (simulated: no processes, for tests and load tests).", show: { $0.backend.rawValue }) { c, v throws(ConfigurationError) in
            c.backend = try v.choice(HubConfiguration.BackendKind.self)
        },
        key("spawn.concurrent_spawn_limit", "auto or integer 1–100000",
            "Starts running at once; more wait in the queue. auto: from the number of cores up to 100, adapting to how fast servers become ready.",
            show: { $0.spawn.adaptiveSpawnLimit ? "auto" : "\($0.spawn.concurrentSpawnLimit)" }) { c, v throws(ConfigurationError) in
                if (try? v.string())?.trimmingCharacters(in: .whitespaces).lowercased() == "auto" {
                    c.spawn.adaptiveSpawnLimit = true
                    c.spawn.concurrentSpawnLimit = 100
                } else {
                    c.spawn.adaptiveSpawnLimit = false
                    c.spawn.concurrentSpawnLimit = try v.int(1...100_000)
                }
            },
        key("spawn.spawn_queue_limit", "integer 0–1000000", "Starts that may wait for a slot; beyond it the API answers 429 with Retry-After.",
            show: { "\($0.spawn.spawnQueueLimit)" }) { c, v throws(ConfigurationError) in c.spawn.spawnQueueLimit = try v.int(0...1_000_000) },
        key("spawn.active_server_limit", "integer 0–1000000", "Servers running or starting at once (0: no limit); beyond it 429.",
            show: { "\($0.spawn.activeServerLimit)" }) { c, v throws(ConfigurationError) in c.spawn.activeServerLimit = try v.int(0...1_000_000) },
        key("spawn.start_timeout", "duration", "How long the backend may take to start a server.",
            show: { $0.spawn.startTimeout.configText }) { c, v throws(ConfigurationError) in c.spawn.startTimeout = try v.duration() },
        key("spawn.ready_timeout", "duration", "How long a started server may take to answer HTTP.",
            show: { $0.spawn.readyTimeout.configText }) { c, v throws(ConfigurationError) in c.spawn.readyTimeout = try v.duration() },
        key("spawn.slow_spawn_timeout", "duration", "After this the API answers 202 and the start goes on in the background.",
            show: { $0.spawn.slowSpawnTimeout.configText }) { c, v throws(ConfigurationError) in c.spawn.slowSpawnTimeout = try v.duration() },
        key("spawn.slow_stop_timeout", "duration", "After this a stop answers 202 and goes on in the background.",
            show: { $0.spawn.slowStopTimeout.configText }) { c, v throws(ConfigurationError) in c.spawn.slowStopTimeout = try v.duration() },
        key("spawn.allow_named_servers", "boolean", "Users may have named servers besides the default one.",
            show: { "\($0.spawn.allowNamedServers)" }) { c, v throws(ConfigurationError) in c.spawn.allowNamedServers = try v.bool() },
        key("spawn.named_server_limit_per_user", "integer 0–1000", "Named servers per user (0: no limit).",
            show: { "\($0.spawn.namedServerLimitPerUser)" }) { c, v throws(ConfigurationError) in c.spawn.namedServerLimitPerUser = try v.int(0...1000) },
        key("spawn.stop_servers_on_shutdown", "boolean", "Stop every server when the hub stops (default: leave them running; the next hub reattaches).",
            show: { "\($0.spawn.stopServersOnShutdown)" }) { c, v throws(ConfigurationError) in c.spawn.stopServersOnShutdown = try v.bool() },
        key("spawn.hub_api_url", "URL", "The hub API as workspaces reach it (JUPYTERHUB_API_URL); default http://IP:PORT/hub/api.",
            show: { $0.hubAPIURL ?? "null" }) { c, v throws(ConfigurationError) in c.hubAPIURL = try v.string() },
        key("spawn.memory_limit", "bytes (512M, 2G)", "Memory limit of servers started without a profile.",
            show: { $0.spawn.defaultLimits.memory.map { "\($0)" } ?? "null" }) { c, v throws(ConfigurationError) in c.spawn.defaultLimits.memory = try v.bytes() },
        key("spawn.cpu_limit", "number of cores", "CPU limit of servers started without a profile (enforced by backends that can).",
            show: { $0.spawn.defaultLimits.cpu.map { "\($0)" } ?? "null" }) { c, v throws(ConfigurationError) in c.spawn.defaultLimits.cpu = try v.number() },
        key("spawn.profiles", "list of {name, display_name, cpu, memory, command} (YAML only)", "Profiles users choose from when starting.",
            show: { $0.spawn.profiles.isEmpty ? "[]" : "[" + $0.spawn.profiles.map(\.name).joined(separator: ", ") + "]" }) { c, v throws(ConfigurationError) in
            c.spawn.profiles = try v.profiles()
        },
        key("local.preset", "jupyterlab | jupyter-server | code-server | atrium-workspace", "The program the local backend runs.",
            show: { $0.local.preset }) { c, v throws(ConfigurationError) in c.local.preset = try v.string() },
        key("local.command", "list of strings", "A command replacing the preset's; templates {username} {server_name} {base_url} {port} {socket} {workspace} {code} {io} {data}.",
            show: { $0.local.command.map { "[" + $0.joined(separator: ", ") + "]" } ?? "null" }) { c, v throws(ConfigurationError) in
            c.local.command = try v.list()
        },
        key("local.python_env", "path or auto",
            "The Python environment the jupyterlab and jupyter-server presets use when their program is not on PATH (auto: /opt/atrium/jupyter for root, else ~/.local/share/atrium/jupyter).",
            show: { $0.local.pythonEnvironment ?? "auto" }) { c, v throws(ConfigurationError) in
            let text = try v.string()
            c.local.pythonEnvironment = text == "auto" ? nil : text
        },
        key("local.setup_python_env", "boolean",
            "When the Jupyter preset's program is missing at start-up, create local.python_env and pip-install it there (progress on the hub's output); false stops start-up with the commands to run.",
            show: { "\($0.local.setupPythonEnvironment)" }) { c, v throws(ConfigurationError) in c.local.setupPythonEnvironment = try v.bool() },
        key("local.environment", "list of KEY=VALUE", "Extra environment for local servers (same templates, plus {secret}).",
            show: { "[" + $0.local.environment.map { $0.split(separator: "=").first.map(String.init) ?? $0 }.map { "\($0)=…" }.joined(separator: ", ") + "]" }) {
            c, v throws(ConfigurationError) in c.local.environment = try v.list()
        },
        key("local.workspaces_root", "path or auto", "Per-user workspace folders ({root}/{user}/code, io, data; with system_users the accounts' homes, {root}/{account}). auto: /var/lib/atrium/workspaces with system_users, else workspaces.",
            show: { $0.local.workspacesRoot ?? "auto" }) { c, v throws(ConfigurationError) in
            let text = try v.string()
            c.local.workspacesRoot = text == "auto" ? nil : text
        },
        key("local.starter_files", "path", "Copied into a new workspace's code folder on its first start; never overwrites.",
            show: { $0.local.starterFiles ?? "null" }) { c, v throws(ConfigurationError) in c.local.starterFiles = try v.string() },
        key("local.socket_dir", "path", "Where Unix sockets go (mode 0700; keep it short).",
            show: { $0.local.socketDirectory }) { c, v throws(ConfigurationError) in c.local.socketDirectory = try v.string() },
        key("local.log_dir", "path", "Where each server's output is written.",
            show: { $0.local.logDirectory }) { c, v throws(ConfigurationError) in c.local.logDirectory = try v.string() },
        key("local.stop_grace_period", "duration", "Between SIGTERM and SIGKILL when a server stops.",
            show: { $0.local.stopGracePeriod.configText }) { c, v throws(ConfigurationError) in c.local.stopGracePeriod = try v.duration() },
        key("local.isolation", "system_users | hub_user",
            "Who workspaces run as: system_users gives each hub user a Unix account (needs root; the default when the hub is root); hub_user runs them all as the hub's user (the default otherwise).",
            show: { $0.local.isolation?.rawValue ?? "auto" }) { c, v throws(ConfigurationError) in
            c.local.isolation = try v.string() == "auto" ? nil : try v.choice(LocalIsolation.self)
        },
        key("local.system_users", "create | existing",
            "With system_users: create makes one account per hub user (useradd); existing runs each hub user as the account of the same name.",
            show: { $0.local.systemUsers.rawValue }) { c, v throws(ConfigurationError) in c.local.systemUsers = try v.choice(SystemAccountSource.self) },
        key("local.system_user_prefix", "text", "The start of account names the hub makes (atrium-ann); names that are not valid Unix names get a short hash.",
            show: { $0.local.systemUserPrefix }) { c, v throws(ConfigurationError) in c.local.systemUserPrefix = try v.string() },
        key("local.system_user_shell", "path", "The login shell of accounts the hub makes.",
            show: { $0.local.systemUserShell }) { c, v throws(ConfigurationError) in c.local.systemUserShell = try v.string() },
        key("local.pids_limit", "integer 16–1000000 or null", "Processes and threads per server (cgroup pids.max); stops a fork bomb.",
            show: { $0.local.pidsLimit.map { "\($0)" } ?? "null" }) { c, v throws(ConfigurationError) in
            c.local.pidsLimit = v.isNull ? nil : try v.int(16...1_000_000)
        },
        key("local.create_system_users", "on_start | on_approval",
            "With system_users and create: make a user's account at their first start, or as soon as they are approved (or created approved) through the API or the admin panel.",
            show: { $0.local.createSystemUsers.rawValue }) { c, v throws(ConfigurationError) in
            c.local.createSystemUsers = try v.choice(HubConfiguration.AccountCreation.self)
        },
        key("local.accounts_file", "path", "Where the hub keeps which account each hub user has (mode 0600).",
            show: { $0.local.accountsFile }) { c, v throws(ConfigurationError) in c.local.accountsFile = try v.string() },
        key("simulated.start_delay_min", "duration", "Shortest simulated start (starts take a uniform random time between min and max).",
            show: { Duration.milliseconds(Int64($0.simulatedStartDelay.min * 1000)).configText }) { c, v throws(ConfigurationError) in
            c.simulatedStartDelay.min = try v.duration().seconds
        },
        key("simulated.start_delay_max", "duration", "Longest simulated start.",
            show: { Duration.milliseconds(Int64($0.simulatedStartDelay.max * 1000)).configText }) { c, v throws(ConfigurationError) in
            c.simulatedStartDelay.max = try v.duration().seconds
        },
        key("simulated.failure_rate", "number 0–1", "Share of simulated starts that fail.",
            show: { "\($0.simulated.failureRate)" }) { c, v throws(ConfigurationError) in
            let text = try v.string()
            guard let rate = Double(text), rate >= 0, rate <= 1 else {
                throw ConfigurationError(key: v.key, problem: "must be a number from 0 to 1, not '\(text)'")
            }
            c.simulated.failureRate = rate
        },
        key("simulated.failure_reasons", "list of strings", "Reasons failed simulated starts give, chosen at random.",
            show: { "[" + $0.simulated.failureReasons.joined(separator: ", ") + "]" }) { c, v throws(ConfigurationError) in
            let reasons = try v.list()
            guard !reasons.isEmpty else { throw ConfigurationError(key: v.key, problem: "needs at least one reason") }
            c.simulated.failureReasons = reasons
        },
        key("kubernetes.namespace", "DNS label", "Namespace the Kubernetes backend creates workspaces in.",
            show: { $0.kubernetes.namespace }) { c, v throws(ConfigurationError) in c.kubernetes.namespace = try v.string() },
        key("kubernetes.preset", "code-server | jupyterlab | jupyter-server", "Image, port, command and environment defaults of Kubernetes workspaces.",
            show: { $0.kubernetes.preset }) { c, v throws(ConfigurationError) in c.kubernetes.preset = try v.string() },
        key("kubernetes.image", "image reference", "Workspace image, replacing the preset's (a profile's image replaces this).",
            show: { $0.kubernetes.image ?? "null" }) { c, v throws(ConfigurationError) in c.kubernetes.image = try v.string() },
        key("kubernetes.port", "integer", "Port the workspace listens on, replacing the preset's.",
            show: { $0.kubernetes.port.map(String.init) ?? "null" }) { c, v throws(ConfigurationError) in c.kubernetes.port = try v.int(1...65535) },
        key("kubernetes.command", "list of strings", "Replaces the image's entrypoint; templates {username} {server_name} {base_url} {user_id} {port}.",
            show: { $0.kubernetes.command.map { "[" + $0.joined(separator: ", ") + "]" } ?? "null" }) { c, v throws(ConfigurationError) in
            c.kubernetes.command = try v.list()
        },
        key("kubernetes.args", "list of strings", "Arguments, replacing the preset's (same templates).",
            show: { $0.kubernetes.args.map { "[" + $0.joined(separator: ", ") + "]" } ?? "null" }) { c, v throws(ConfigurationError) in
            c.kubernetes.args = try v.list()
        },
        key("kubernetes.environment", "list of KEY=VALUE", "Extra environment of workspaces (same templates, plus {secret}).",
            show: { "[" + $0.kubernetes.environment.keys.sorted().map { "\($0)=…" }.joined(separator: ", ") + "]" }) { c, v throws(ConfigurationError) in
            c.kubernetes.environment = try v.pairs()
        },
        key("kubernetes.cpu_request", "quantity", "CPU requested per workspace.",
            show: { $0.kubernetes.requests["cpu"] ?? "null" }) { c, v throws(ConfigurationError) in c.kubernetes.requests["cpu"] = try v.quantity() },
        key("kubernetes.memory_request", "quantity", "Memory requested per workspace.",
            show: { $0.kubernetes.requests["memory"] ?? "null" }) { c, v throws(ConfigurationError) in c.kubernetes.requests["memory"] = try v.quantity() },
        key("kubernetes.cpu_limit", "quantity", "CPU limit when no profile or spawn limit sets one.",
            show: { $0.kubernetes.limits["cpu"] ?? "null" }) { c, v throws(ConfigurationError) in c.kubernetes.limits["cpu"] = try v.quantity() },
        key("kubernetes.memory_limit", "quantity", "Memory limit when no profile or spawn limit sets one.",
            show: { $0.kubernetes.limits["memory"] ?? "null" }) { c, v throws(ConfigurationError) in c.kubernetes.limits["memory"] = try v.quantity() },
        key("kubernetes.node_selector", "list of KEY=VALUE", "Node labels workspaces must run on.",
            show: { "[" + $0.kubernetes.nodeSelector.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ") + "]" }) {
            c, v throws(ConfigurationError) in c.kubernetes.nodeSelector = try v.labelPairs()
        },
        key("kubernetes.tolerations", "list of {key, operator, value, effect} (YAML only)", "Taints workspaces tolerate.",
            show: { "[" + $0.kubernetes.tolerations.map { "\($0.key ?? "*"):\($0.effect ?? "*")" }.joined(separator: ", ") + "]" }) {
            c, v throws(ConfigurationError) in c.kubernetes.tolerations = try v.tolerations()
        },
        key("kubernetes.storage", "pvc | hostpath", "Per-user storage: a PersistentVolumeClaim, or {students_dir}/{user}/code, io, root on the node.",
            show: { $0.kubernetesStorage.kind }) { c, v throws(ConfigurationError) in c.kubernetesStorage.kind = try v.string() },
        key("kubernetes.storage_size", "quantity", "Size of each user's claim.",
            show: { $0.kubernetesStorage.size }) { c, v throws(ConfigurationError) in c.kubernetesStorage.size = try v.quantity() },
        key("kubernetes.storage_class", "name", "Storage class of the claims (default: the cluster's).",
            show: { $0.kubernetesStorage.storageClass ?? "null" }) { c, v throws(ConfigurationError) in c.kubernetesStorage.storageClass = try v.subdomain() },
        key("kubernetes.students_dir", "path", "With hostpath storage: the nodes' folder of per-user folders.",
            show: { $0.kubernetesStorage.studentsDir }) { c, v throws(ConfigurationError) in c.kubernetesStorage.studentsDir = try v.string() },
        key("kubernetes.starter_files_image", "image reference", "Image holding the starter files (default: the workspace image).",
            show: { $0.kubernetes.starterFilesImage ?? "null" }) { c, v throws(ConfigurationError) in c.kubernetes.starterFilesImage = try v.string() },
        key("kubernetes.starter_files_path", "path", "Folder in that image copied into an empty workspace on first start; never overwrites.",
            show: { $0.kubernetes.starterFilesPath ?? "null" }) { c, v throws(ConfigurationError) in c.kubernetes.starterFilesPath = try v.string() },
        key("kubernetes.delete_volume_on_delete_forever", "boolean", "Whether deleting a server forever deletes the user's claim (when no other server uses it).",
            show: { "\($0.kubernetes.deleteVolumeOnDeleteForever)" }) { c, v throws(ConfigurationError) in
            c.kubernetes.deleteVolumeOnDeleteForever = try v.bool()
        },
        key("kubernetes.endpoint_mode", "dns | api_proxy",
            "How the hub reaches workspaces: the Service's cluster DNS name (the hub runs in the cluster), or the API server's service proxy (the hub runs outside, e.g. on a laptop).",
            show: { $0.kubernetes.endpointMode.rawValue }) { c, v throws(ConfigurationError) in
            c.kubernetes.endpointMode = try v.choice(KubernetesConfiguration.EndpointMode.self)
        },
        key("kubernetes.api_proxy_port", "integer", "With api_proxy: the loopback port of the hub's relay to the API server (0: any free port).",
            show: { "\($0.kubernetes.apiProxyPort)" }) { c, v throws(ConfigurationError) in c.kubernetes.apiProxyPort = try v.int(0...65535) },
        key("kubernetes.api_server_cidrs", "list of CIDRs", "With api_proxy: the API server's addresses, which each workspace's NetworkPolicy admits.",
            show: { "[" + $0.kubernetes.apiServerCIDRs.joined(separator: ", ") + "]" }) { c, v throws(ConfigurationError) in
            c.kubernetes.apiServerCIDRs = try v.list()
        },
        key("kubernetes.cluster_domain", "domain", "The cluster's DNS domain.",
            show: { $0.kubernetes.clusterDomain }) { c, v throws(ConfigurationError) in c.kubernetes.clusterDomain = try v.string() },
        key("kubernetes.hub_pod_labels", "list of KEY=VALUE", "Labels of the hub's pods: the only peers workspaces' NetworkPolicy admits.",
            show: { "[" + $0.kubernetes.hubPodLabels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ") + "]" }) {
            c, v throws(ConfigurationError) in c.kubernetes.hubPodLabels = try v.pairs()
        },
        key("kubernetes.network_policy", "boolean", "Give each workspace a NetworkPolicy that admits only the hub.",
            show: { "\($0.kubernetes.networkPolicy)" }) { c, v throws(ConfigurationError) in c.kubernetes.networkPolicy = try v.bool() },
        key("kubernetes.uid", "integer", "The uid, gid and fsGroup workspaces run as.",
            show: { "\($0.kubernetes.uid)" }) { c, v throws(ConfigurationError) in c.kubernetes.uid = try v.int(1...2_147_483_647) },
        key("kubernetes.kubeconfig", "path", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config).",
            show: { $0.kubernetes.kubeconfig ?? "null" }) { c, v throws(ConfigurationError) in c.kubernetes.kubeconfig = try v.string() },
        key("kubernetes.context", "name", "kubeconfig context (default: its current context).",
            show: { $0.kubernetes.context ?? "null" }) { c, v throws(ConfigurationError) in c.kubernetes.context = try v.string() },
        key("kubernetes.in_cluster", "boolean", "Use the pod's service account instead of a kubeconfig.",
            show: { "\($0.kubernetes.inCluster)" }) { c, v throws(ConfigurationError) in c.kubernetes.inCluster = try v.bool() },
        key("kubernetes.request_timeout", "duration", "Deadline of each Kubernetes API request.",
            show: { $0.kubernetes.requestTimeout.configText }) { c, v throws(ConfigurationError) in c.kubernetes.requestTimeout = try v.duration() },
        key("culler.enabled", "boolean", "Run the built-in idle culler (off unless set).",
            show: { "\($0.culler.enabled)" }) { c, v throws(ConfigurationError) in c.culler.enabled = try v.bool() },
        key("culler.timeout", "duration", "A server with no activity for this long is culled (jupyterhub-idle-culler's --timeout).",
            show: { $0.culler.timeout.configText }) { c, v throws(ConfigurationError) in c.culler.timeout = try v.duration() },
        key("culler.cull_every", "duration", "Time between passes; 0s means timeout / 2.",
            show: { ($0.culler.cullEvery ?? .zero).configText }) { c, v throws(ConfigurationError) in
            let every = try v.duration()
            c.culler.cullEvery = every == .zero ? nil : every
        },
        key("culler.max_age", "duration", "Servers running longer are culled even when active; 0s: never.",
            show: { ($0.culler.maxAge ?? .zero).configText }) { c, v throws(ConfigurationError) in
            let age = try v.duration()
            c.culler.maxAge = age == .zero ? nil : age
        },
        key("culler.cull_users", "boolean", "Also delete users inactive for the timeout whose servers are all stopped (their files stay).",
            show: { "\($0.culler.cullUsers)" }) { c, v throws(ConfigurationError) in c.culler.cullUsers = try v.bool() },
        key("culler.cull_admin_users", "boolean", "With culler.cull_users, admins too.",
            show: { "\($0.culler.cullAdminUsers)" }) { c, v throws(ConfigurationError) in c.culler.cullAdminUsers = try v.bool() },
        key("culler.remove_named_servers", "boolean", "Remove idle named servers instead of stopping them.",
            show: { "\($0.culler.removeNamedServers)" }) { c, v throws(ConfigurationError) in c.culler.removeNamedServers = try v.bool() },
        key("culler.cull_default_servers", "boolean", "Cull users' default servers.",
            show: { "\($0.culler.cullDefaultServers)" }) { c, v throws(ConfigurationError) in c.culler.cullDefaultServers = try v.bool() },
        key("culler.cull_named_servers", "boolean", "Cull named servers.",
            show: { "\($0.culler.cullNamedServers)" }) { c, v throws(ConfigurationError) in c.culler.cullNamedServers = try v.bool() },
        key("culler.concurrency", "integer 1–1000", "Culls carried out at once.",
            show: { "\($0.culler.concurrency)" }) { c, v throws(ConfigurationError) in c.culler.concurrency = try v.int(1...1000) },
        key("culler.action", "stop | suspend", "What happens to an idle server (suspend keeps it for a quick resume).",
            show: { $0.culler.action.rawValue }) { c, v throws(ConfigurationError) in c.culler.action = try v.choice(CullerSettings.Action.self) },
        key("culler.pending_timeout", "duration", "Cancel starts still pending after this long; 0s: never.",
            show: { ($0.culler.pendingTimeout ?? .zero).configText }) { c, v throws(ConfigurationError) in
            let limit = try v.duration()
            c.culler.pendingTimeout = limit == .zero ? nil : limit
        },
        key("culler.rules", "list of {group, profile, timeout, max_age} (YAML only)", "Other limits for a group's members or a profile; the first match wins, timeout 0s never culls.",
            show: { $0.culler.rules.isEmpty ? "[]" : "[" + $0.culler.rules.map(\.summary).joined(separator: ", ") + "]" }) { c, v throws(ConfigurationError) in
            c.culler.rules = try v.cullRules()
        },
        key("proxy.activity_flush_interval", "duration", "How often activity seen by the proxy is written to the store.",
            show: { $0.activityFlushInterval.configText }) { c, v throws(ConfigurationError) in c.activityFlushInterval = try v.duration() },
        key("max_connections", "integer 0–1000000",
            "Client connections accepted at once (0: half of the file descriptor limit, after 256 kept for the hub); more wait in the kernel's queue.",
            show: { "\($0.maxConnections)" }) { c, v throws(ConfigurationError) in c.maxConnections = try v.int(0...1_000_000) },
        key("max_connections_per_address", "integer 0–1000000",
            "Client connections held at once from one network address (0: an eighth of the connection cap, at least 64); more are closed on arrival, so one client cannot take them all.",
            show: { "\($0.maxConnectionsPerAddress)" }) { c, v throws(ConfigurationError) in c.maxConnectionsPerAddress = try v.int(0...1_000_000) },
        key("idle_timeout", "duration",
            "A client connection that sends nothing this long while the hub waits for it (a request head, the rest of a body; idle keep-alive, slow headers) is closed. Never while the client waits for an answer, nor a WebSocket.",
            show: { $0.idleTimeout.configText }) { c, v throws(ConfigurationError) in c.idleTimeout = try v.duration() },
        key("proxy.auth_cache_lifetime", "duration", "How long the proxy trusts a checked session or token (a revoked one works at most this long).",
            show: { $0.proxyAuthCacheLifetime.configText }) { c, v throws(ConfigurationError) in c.proxyAuthCacheLifetime = try v.duration() },
        key("metrics.authenticate", "boolean", "/hub/metrics needs a token with read:metrics (false: anyone who reaches the hub may scrape).",
            show: { "\($0.metricsAuthenticate)" }) { c, v throws(ConfigurationError) in c.metricsAuthenticate = try v.bool() },
    ]

    static func maskedURL(_ url: String) -> String {
        guard url.contains("://"), var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "********"
        return components.string ?? url
    }

    static let byName: [String: ConfigurationKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })
    static let byEnvironmentName: [String: ConfigurationKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.environmentName, $0) })
}

extension CullRule {
    /// `group=staff timeout=2h`: how `atrium config print` shows a rule.
    var summary: String {
        var parts: [String] = []
        if let group { parts.append("group=\(group)") }
        if let profile { parts.append("profile=\(profile)") }
        if let timeout { parts.append("timeout=\(timeout.configText)") }
        if let maxAge { parts.append("max_age=\(maxAge.configText)") }
        return "{" + parts.joined(separator: " ") + "}"
    }
}
