import AtriumAuth
import AtriumHTTP
import AtriumKubernetes
import AtriumLocal
import AtriumServices
import AtriumSimulated
import AtriumSpawn
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
    /// Which backend runs workspaces. Default: local.
    public var backend: BackendKind = .local
    /// How servers are run, whatever the backend.
    public var spawn: SpawnSettings = {
        var settings = SpawnSettings()
        settings.adaptiveSpawnLimit = true  // `concurrent_spawn_limit: auto`
        return settings
    }()
    /// `spawn.hub_api_url` as configured; `nil` derives it from `ip` and `port`.
    public var hubAPIURL: String?
    /// The local-process backend.
    public var local = LocalConfiguration()
    /// How often proxy activity is written to the store. Default: 10 s.
    public var activityFlushInterval: Duration = .seconds(10)
    /// How long the proxy trusts a checked session or token before asking the store again. Default: 10 s.
    public var proxyAuthCacheLifetime: Duration = .seconds(10)
    /// Connections accepted at once (0: as many as the descriptor limit allows, see
    /// `ConnectionLimits`). More wait in the kernel's accept queue.
    public var maxConnections = 0
    /// Connections held at once from one network address (0: an eighth of the connection cap,
    /// at least 64). More are closed on arrival.
    public var maxConnectionsPerAddress = 0
    /// How long a client connection may send nothing while the hub waits for it (a request
    /// head, the rest of a body) before it is closed. Default: 30 s.
    public var idleTimeout: Duration = .seconds(30)
    /// The built-in idle culler. Default: off.
    public var culler = CullerSettings()
    /// Whether `/hub/metrics` needs a credential with `read:metrics` (JupyterHub's
    /// `authenticate_prometheus`). Default: true.
    public var metricsAuthenticate = true

    /// The backends Atrium has.
    public enum BackendKind: String, Sendable, CaseIterable {
        case local
        /// No processes: random start delays and failures, for tests and load tests.
        case simulated
        /// One Deployment per server on a Kubernetes cluster.
        case kubernetes
    }

    /// The Kubernetes backend (its storage comes from `kubernetesStorage`).
    public var kubernetes = KubernetesConfiguration()
    /// `kubernetes.storage` and its settings, combined into `kubernetes.storage` by `validate()`'s rules.
    public var kubernetesStorage = KubernetesStorageSettings()

    /// The Kubernetes storage keys, checked together.
    public struct KubernetesStorageSettings: Sendable {
        /// `pvc` or `hostpath`. Default: pvc.
        public var kind = "pvc"
        /// Size of each user's claim. Default: 1Gi.
        public var size = "1Gi"
        /// Storage class of the claims; `nil` is the cluster's default.
        public var storageClass: String?
        /// The nodes' folder of per-user folders (hostpath). Default: /data/students.
        public var studentsDir = "/data/students"

        /// The storage these settings name.
        public var storage: WorkspaceInput.Storage {
            kind == "hostpath" ? .hostPath(studentsDir: studentsDir) : .persistentVolumeClaim(size: size, storageClass: storageClass)
        }
    }

    /// The simulated backend (its start delay comes from `simulatedStartDelay`).
    public var simulated = SimulatedBackendConfiguration()
    /// Bounds of the simulated start delay in seconds, checked together in `validate()`.
    public var simulatedStartDelay = (min: 0.5, max: 2.0)

    /// When the local backend makes a user's system account.
    public enum AccountCreation: String, Sendable, CaseIterable {
        case onStart = "on_start"
        case onApproval = "on_approval"
    }

    /// Settings of the local-process backend (see `LocalBackendConfiguration`).
    public struct LocalConfiguration: Sendable {
        /// A ready-made command: jupyterlab, jupyter-server, code-server, atrium-workspace. Default: jupyterlab.
        public var preset = "jupyterlab"
        /// A command that replaces the preset's (templates as documented).
        public var command: [String]?
        /// Extra environment, `KEY=VALUE` items.
        public var environment: [String] = []
        /// Per-user workspace folders. Default: `workspaces`.
        public var workspacesRoot: String?
        /// The folder of workspaces in effect: as configured, else `/var/lib/atrium/workspaces`
        /// when they are students' homes (`system_users`: a folder every account can pass
        /// through, wherever the hub was started), else `workspaces` in the hub's folder.
        public func effectiveWorkspacesRoot(euid: UInt32 = geteuid()) -> String {
            workspacesRoot ?? (effectiveIsolation(euid: euid) == .systemUsers ? "/var/lib/atrium/workspaces" : "workspaces")
        }
        /// Copied into a new workspace's `code` folder on its first start.
        public var starterFiles: String?
        /// Unix sockets. Default: `/tmp/atrium-<uid>` (short: socket paths are limited to 107 bytes).
        public var socketDirectory = "/tmp/atrium-\(getuid())"
        /// Server output. Default: `logs`.
        public var logDirectory = "logs"
        /// Between SIGTERM and SIGKILL. Default: 10 s.
        public var stopGracePeriod: Duration = .seconds(10)
        /// The Jupyter presets' own Python environment; nil: ``WorkspaceProgram/defaultPythonEnvironment(isRoot:home:)``.
        public var pythonEnvironment: String?
        /// Whether a missing Jupyter program is installed there at start-up. Default: true.
        public var setupPythonEnvironment = true
        /// Who workspaces run as; nil: `system_users` when the hub is root, else `hub_user`.
        public var isolation: LocalIsolation?
        /// With `system_users`: accounts made by the hub, or existing ones named as the hub users.
        public var systemUsers: SystemAccountSource = .create
        /// The start of every account name the hub makes. Default: `atrium-`.
        public var systemUserPrefix = "atrium-"
        /// The login shell of accounts the hub makes (what a workspace terminal runs).
        public var systemUserShell = "/bin/bash"
        /// Processes per server (cgroup `pids.max`); nil: no limit. Default: 512.
        public var pidsLimit: Int? = 512
        /// When a user's system account is made: when they are approved (or created approved;
        /// the default: useradd costs ~20–40 ms, better spent before the class than during its
        /// first Start), or at their first start (users added with the CLI always get it then).
        public var createSystemUsers: AccountCreation = .onApproval
        /// Where the account mapping lives. Default: `accounts.json` beside the database.
        public var accountsFile = "accounts.json"

        /// The isolation in effect for a hub running with effective uid `euid`.
        public func effectiveIsolation(euid: UInt32 = geteuid()) -> LocalIsolation {
            isolation ?? (euid == 0 ? .systemUsers : .hubUser)
        }

        public init() {}
    }

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
        if backend == .local, local.command == nil, LocalBackendConfiguration.presets[local.preset] == nil {
            throw ConfigurationError(
                key: "local.preset", problem: "must be one of \(LocalBackendConfiguration.presets.keys.sorted().joined(separator: ", ")), or set local.command")
        }
        if let command = local.command, command.isEmpty || command[0].isEmpty {
            throw ConfigurationError(key: "local.command", problem: "must name a program")
        }
        for item in local.environment where !item.contains("=") {
            throw ConfigurationError(key: "local.environment", problem: "items are KEY=VALUE, not '\(item)'")
        }
        if local.socketDirectory.utf8.count > 80 {
            throw ConfigurationError(key: "local.socket_dir", problem: "is too long for Unix socket paths (at most 80 bytes)")
        }
        if backend == .kubernetes {
            if kubernetes.command == nil, KubernetesConfiguration.presets[kubernetes.preset] == nil, kubernetes.image == nil || kubernetes.port == nil {
                throw ConfigurationError(
                    key: "kubernetes.preset",
                    problem: "must be one of \(KubernetesConfiguration.presets.keys.sorted().joined(separator: ", ")), or set kubernetes.image, kubernetes.port and kubernetes.command")
            }
            if !["pvc", "hostpath"].contains(kubernetesStorage.kind) {
                throw ConfigurationError(key: "kubernetes.storage", problem: "must be pvc or hostpath, not '\(kubernetesStorage.kind)'")
            }
            if kubernetesStorage.kind == "hostpath", !kubernetesStorage.studentsDir.hasPrefix("/") {
                throw ConfigurationError(key: "kubernetes.students_dir", problem: "must be an absolute path on the nodes")
            }
            if kubernetes.namespace.range(of: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", options: .regularExpression) == nil || kubernetes.namespace.count > 63 {
                throw ConfigurationError(key: "kubernetes.namespace", problem: "must be a DNS label (lower-case letters, digits and '-')")
            }
            if let bad = kubernetes.apiServerCIDRs.first(where: { !Self.isCIDR($0) }) {
                throw ConfigurationError(key: "kubernetes.api_server_cidrs", problem: "'\(bad)' is not a CIDR such as 172.18.0.2/32 or fd00::1/128")
            }
            if kubernetes.endpointMode == .apiProxy, kubernetes.networkPolicy, kubernetes.apiServerCIDRs.isEmpty {
                throw ConfigurationError(
                    key: "kubernetes.api_server_cidrs",
                    problem: "must list the API server's addresses with endpoint_mode api_proxy, so the workspaces' NetworkPolicy admits its service proxy (kubectl get endpoints kubernetes -n default shows them), or set kubernetes.network_policy: false")
            }
        }
        if simulatedStartDelay.max < simulatedStartDelay.min {
            throw ConfigurationError(key: "simulated.start_delay_max", problem: "must not be shorter than simulated.start_delay_min")
        }
        if culler.enabled, culler.timeout <= .zero, culler.maxAge == nil, culler.pendingTimeout == nil {
            throw ConfigurationError(key: "culler.timeout", problem: "must be longer than 0s when the culler is on (or set culler.max_age or culler.pending_timeout)")
        }
        if culler.enabled, culler.interval < .seconds(1) {
            throw ConfigurationError(key: "culler.cull_every", problem: "must be at least 1s")
        }
        if let overlap = auth.adminUsers.intersection(auth.blockedUsers).sorted().first {
            throw ConfigurationError(key: "auth.blocked_users", problem: "blocks \(overlap), who is also in auth.admin_users")
        }
    }
}

extension HubConfiguration {
    /// `a.b.c.d/n` (n ≤ 32) or an IPv6 address with `/n` (n ≤ 128).
    static func isCIDR(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let bits = Int(parts[1]), parts[1].allSatisfy(\.isNumber) else { return false }
        let address = String(parts[0])
        if address.contains(":") {
            var storage = in6_addr()
            return bits <= 128 && inet_pton(AF_INET6, address, &storage) == 1
        }
        var storage = in_addr()
        return bits <= 32 && inet_pton(AF_INET, address, &storage) == 1
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
