import AtriumModel
import Foundation

/// Resource limits of one workspace. `nil` means "the backend's default, or none".
public struct ResourceLimits: Sendable, Equatable, Codable {
    /// CPU cores (fractions allowed: 0.5 is half a core).
    public var cpu: Double?
    /// Memory in bytes.
    public var memory: Int64?

    public init(cpu: Double? = nil, memory: Int64? = nil) {
        self.cpu = cpu
        self.memory = memory
    }
}

/// Everything a backend needs to start one server.
public struct SpawnRequest: Sendable, Equatable {
    /// Owner of the server.
    public var user: String
    /// The owner's numeric id in the store (for per-user values such as a uid).
    public var userID: Int64
    /// `""` for the default server.
    public var serverName: String
    /// The URL prefix the workspace is served under, with slashes: `/user/alice/` or
    /// `/user/alice/lab2/`. The proxy forwards paths unchanged, so the workspace must serve here.
    public var baseURL: String
    /// Container image (Kubernetes) — local backends ignore it.
    public var image: String?
    /// Command and arguments; `nil` is the backend's configured default.
    public var command: [String]?
    /// Extra environment, on top of the backend's (the hub's `JUPYTERHUB_*` variables included).
    public var environment: [String: String]
    public var limits: ResourceLimits
    /// The profile the user chose, when profiles are configured.
    public var profile: String?
    /// What the client sent as user options.
    public var userOptions: JSONValue
    /// The per-server secret the proxy sends (`Authorization: token <secret>`); the workspace
    /// refuses requests without it.
    public var secret: String

    public init(
        user: String, userID: Int64, serverName: String, baseURL: String, image: String? = nil, command: [String]? = nil,
        environment: [String: String] = [:], limits: ResourceLimits = .init(), profile: String? = nil,
        userOptions: JSONValue = .object([:]), secret: String
    ) {
        self.user = user
        self.userID = userID
        self.serverName = serverName
        self.baseURL = baseURL
        self.image = image
        self.command = command
        self.environment = environment
        self.limits = limits
        self.profile = profile
        self.userOptions = userOptions
        self.secret = secret
    }
}

/// What a backend reports about a server. Reading it has no side effects.
public enum BackendStatus: Sendable, Equatable {
    /// Accepted but nothing runs yet (queued, scheduling, pulling).
    case pending(String?)
    /// Processes run but the endpoint does not answer yet.
    case starting
    /// The endpoint answers.
    case running
    /// It stopped by itself or never came up, with the reason.
    case failed(reason: String)
    /// Stopped with the workspace and its configuration kept.
    case suspended
    /// Nothing runs.
    case stopped
}

/// Where the proxy forwards a server's requests.
public struct WorkspaceEndpoint: Sendable, Hashable, Codable {
    public var address: WorkspaceAddress
    /// Sent as `Authorization: token <secret>` by the proxy and the readiness check.
    public var secret: String?
    /// Path prefix the proxy removes before forwarding, for programs that only serve at `/`
    /// (code-server). `nil` forwards the path unchanged (jupyter-server with its `base_url`).
    public var stripPrefix: String?
    /// A path the proxy puts in front of the forwarded path (after removing `stripPrefix`):
    /// the upstream serves the workspace below it, as the Kubernetes API server's service proxy
    /// does. `nil` adds nothing.
    public var basePath: String?

    public init(address: WorkspaceAddress, secret: String?, stripPrefix: String? = nil, basePath: String? = nil) {
        self.address = address
        self.secret = secret
        self.stripPrefix = stripPrefix
        self.basePath = basePath
    }
}

/// One step of a start, shown to the user while they wait (JupyterHub's progress events).
public struct ProgressEvent: Sendable, Equatable, Codable {
    /// 0…100.
    public var progress: Int
    public var message: String
    public var ready: Bool
    public var failed: Bool
    public var url: String?

    public init(progress: Int, message: String, ready: Bool = false, failed: Bool = false, url: String? = nil) {
        self.progress = progress
        self.message = message
        self.ready = ready
        self.failed = failed
        self.url = url
    }
}

/// Receives progress events from a backend while it starts a server.
public typealias ProgressSink = @Sendable (ProgressEvent) async -> Void

/// A way to run workspace servers: local processes, Kubernetes, or a simulation.
///
/// Contract, for every implementation:
/// - The hub calls `start` for a key only when it believes the server is not running, and never
///   calls two state-changing methods (`start`, `suspend`, `stop`, `remove`, `deleteForever`)
///   for the same server concurrently. Calls for different servers run concurrently.
/// - `start` may be cancelled (Swift task cancellation) when a stop arrives during the start;
///   it must then throw promptly and leave what it created for `stop` to clean up (the hub
///   calls `stop` with the state it got from ``startState(_:)`` next).
/// - `State` is the backend's own memory of a server. The hub persists it (as JSON) after
///   every state-changing call, and a restarted hub hands it back, so everything needed to
///   find, stop or resume the server must be in it.
/// - `status` and `logs` read only: no side effects, safe to call at any time and concurrently.
/// - `stop`, `remove` and `deleteForever` are idempotent: stopping a stopped server succeeds.
/// - Errors thrown are shown to users: make their descriptions say what went wrong.
public protocol Backend: Sendable {
    associatedtype State: Codable & Sendable & Equatable

    /// A short name for logs and the API (`local`, `kubernetes`, `simulated`).
    var kind: String { get }

    /// The state the backend will use for a new start of `request`, before anything runs,
    /// given what it had before (`previous`, from a suspend). The hub persists this first, so a
    /// start interrupted by a crash can still be cleaned up.
    func startState(_ request: SpawnRequest, previous: State?) async throws -> State

    /// Starts (or resumes, when `state` came from a suspend) the server and returns once its
    /// processes run; the hub then waits for the endpoint to answer. Reports progress as it goes.
    func start(_ request: SpawnRequest, state: State, progress: ProgressSink) async throws -> State

    /// What runs now.
    func status(_ state: State) async -> BackendStatus

    /// Where the proxy should forward to.
    func endpoint(_ state: State) -> WorkspaceEndpoint

    /// Stops the processes but keeps the workspace and its configuration; returns the state to
    /// resume from.
    func suspend(_ state: State) async throws -> State

    /// Stops everything that runs. The user's files stay.
    func stop(_ state: State) async throws

    /// Deletes everything the backend made for this server except the user's stored files.
    func remove(user: String, serverName: String, state: State?) async throws

    /// Deletes everything, the user's stored files too. Only when explicitly asked.
    /// `userID` is the owner's id in the store (what per-user things such as a system account
    /// are bound to).
    func deleteForever(user: String, userID: Int64, serverName: String, state: State?) async throws

    /// The last `lines` lines of the server's output.
    func logs(user: String, serverName: String, state: State?, lines: Int) async throws -> [String]

    /// `nil` when the backend can serve, else what is wrong (a Kubernetes watch that gave up).
    /// Read by the hub's health check; no side effects. Default: always healthy.
    func healthProblem() async -> String?

    /// What a running server uses now, when the backend can tell; no side effects. Default: nil.
    func usage(_ state: State) async -> ResourceUsage?

    /// A user was approved (or created approved): make what the backend keeps per user ahead of
    /// their first start, when it is configured to (the local backend's system account).
    /// Idempotent. Default: nothing.
    func prepareUser(user: String, userID: Int64) async throws

    /// After a restart, once every stored server was reattached or cleaned up: stops whatever
    /// the backend started that none of `known` accounts for (processes of a start the hub was
    /// killed in before it stored their identity). Returns how many servers' leftovers it
    /// stopped. Default: nothing.
    func stopOrphans(known: [State]) async -> Int
}

extension Backend {
    public func stopOrphans(known: [State]) async -> Int { 0 }
    public func prepareUser(user: String, userID: Int64) async throws {}
    public func healthProblem() async -> String? { nil }
    public func usage(_ state: State) async -> ResourceUsage? { nil }
}

/// A running server's use of the machine (`atrium_usage` in the admin's server model).
public struct ResourceUsage: Sendable, Equatable, Codable {
    public var memoryBytes: Int64?
    public var cpuSeconds: Double?
    /// Processes and threads (what `pids.max` counts).
    public var tasks: Int?

    public init(memoryBytes: Int64?, cpuSeconds: Double?, tasks: Int?) {
        self.memoryBytes = memoryBytes
        self.cpuSeconds = cpuSeconds
        self.tasks = tasks
    }
}
