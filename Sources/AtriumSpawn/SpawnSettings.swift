import AtriumModel
import Foundation

/// A named set of spawn options users choose from (KubeSpawner's profile list).
public struct SpawnProfile: Sendable, Equatable {
    public var name: String
    public var displayName: String
    public var limits: ResourceLimits
    public var image: String?
    public var command: [String]?
    public var environment: [String: String]

    public init(
        name: String, displayName: String? = nil, limits: ResourceLimits = .init(), image: String? = nil, command: [String]? = nil,
        environment: [String: String] = [:]
    ) {
        self.name = name
        self.displayName = displayName ?? name
        self.limits = limits
        self.image = image
        self.command = command
        self.environment = environment
    }
}

/// How the hub runs servers, whatever the backend.
public struct SpawnSettings: Sendable {
    /// Starts running at once; more wait in a queue. Default: 100 (JupyterHub's concurrent_spawn_limit).
    /// With ``adaptiveSpawnLimit``, the most the adapted limit may reach.
    public var concurrentSpawnLimit = 100
    /// Whether the number of starts at once adapts to the machine (see ``SpawnAdmission``),
    /// from the number of cores up to ``concurrentSpawnLimit``. The hub's configuration turns
    /// it on by default (`concurrent_spawn_limit: auto`).
    public var adaptiveSpawnLimit = false
    /// The cores the adaptive limit starts from. Default: the machine's active processors.
    public var cores = ProcessInfo.processInfo.activeProcessorCount
    /// Starts that may wait for a slot; beyond it the API answers 429 with Retry-After. Default: 1,000.
    public var spawnQueueLimit = 1_000
    /// Servers running or starting at once; 0 is no limit. Beyond it: 429.
    public var activeServerLimit = 0
    /// How long the backend may take to start a server. Default: 120 s.
    public var startTimeout: Duration = .seconds(120)
    /// How long the started server may take to answer HTTP. Default: 30 s.
    public var readyTimeout: Duration = .seconds(30)
    /// After this long the API answers 202 and the start goes on in the background. Default: 10 s.
    public var slowSpawnTimeout: Duration = .seconds(10)
    /// After this long a stop answers 202 and goes on in the background. Default: 10 s.
    public var slowStopTimeout: Duration = .seconds(10)
    /// Whether users may have named servers besides the default one. Default: true.
    public var allowNamedServers = true
    /// Named servers per user; 0 is no limit. Default: 0.
    public var namedServerLimitPerUser = 0
    /// Whether stopping the hub stops the servers. Default: false (a restarted hub reattaches).
    public var stopServersOnShutdown = false
    /// The hub API's URL as workspaces reach it (`JUPYTERHUB_API_URL`).
    public var hubAPIURL = "http://127.0.0.1:8000/hub/api"
    /// Limits for servers started without a profile.
    public var defaultLimits = ResourceLimits()
    /// Profiles users may choose from, in display order; empty means no choice.
    public var profiles: [SpawnProfile] = []

    public init() {}

    /// The profile called `name`, or the first one when `name` is nil; `nil` without profiles.
    public func profile(named name: String?) -> SpawnProfile? {
        guard let name else { return profiles.first }
        return profiles.first { $0.name == name }
    }
}
