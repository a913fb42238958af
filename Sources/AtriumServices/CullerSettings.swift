/// How the idle culler decides: jupyterhub-idle-culler's options (same names, same defaults)
/// plus what it lacks — suspend instead of stop, a limit for starts stuck pending, and
/// different limits per group or profile. The culler is off unless `enabled`.
public struct CullerSettings: Sendable, Equatable {
    /// What the culler does to an idle server.
    public enum Action: String, Sendable, CaseIterable {
        /// Stop it (jupyterhub-idle-culler's behaviour). Its files stay.
        case stop
        /// Suspend it: the backend keeps what it can (a scaled-down Deployment, a folder) and a
        /// start resumes it.
        case suspend
    }

    /// Run the culler at all. Default: false.
    public var enabled = false
    /// A server with no activity for this long is culled. Default: 600 s (the culler's `--timeout`).
    public var timeout: Duration = .seconds(600)
    /// How often to look; `nil` means `timeout / 2` (the culler's `--cull-every=0`).
    public var cullEvery: Duration?
    /// Servers running longer than this are culled even when active; `nil` (the culler's 0): never.
    public var maxAge: Duration?
    /// Also delete users whose servers are all stopped and who were inactive for `timeout`.
    /// Their files are kept. Default: false.
    public var cullUsers = false
    /// With `cullUsers`, admins too. Default: true (as the culler).
    public var cullAdminUsers = true
    /// Remove named servers instead of only stopping them. Default: false.
    public var removeNamedServers = false
    /// Cull users' default servers. Default: true.
    public var cullDefaultServers = true
    /// Cull named servers. Default: true.
    public var cullNamedServers = true
    /// Culls carried out at once. Default: 10 (the culler's `--concurrency`).
    public var concurrency = 10
    /// Stop or suspend idle servers. Default: stop.
    public var action: Action = .stop
    /// A start still pending after this long is cancelled; `nil`: never.
    public var pendingTimeout: Duration?
    /// Limits for some groups or profiles; the first rule that matches a server wins.
    public var rules: [CullRule] = []

    public init() {}

    /// The time between two passes.
    public var interval: Duration { cullEvery ?? timeout / 2 }

    /// The limits that apply to a server of a user in `groups`, started with `profile`.
    public func limits(groups: [String], profile: String?) -> (timeout: Duration, maxAge: Duration?) {
        guard let rule = rules.first(where: { $0.matches(groups: groups, profile: profile) }) else { return (timeout, maxAge) }
        return (rule.timeout ?? timeout, rule.maxAge ?? maxAge)
    }
}

/// Different culling limits for the servers of a group's members or of a profile. A rule
/// names a group, a profile, or both (then both must match); the fields it leaves out keep
/// the culler's values. A timeout of zero means never idle-culled.
public struct CullRule: Sendable, Equatable {
    public var group: String?
    public var profile: String?
    public var timeout: Duration?
    public var maxAge: Duration?

    public init(group: String? = nil, profile: String? = nil, timeout: Duration? = nil, maxAge: Duration? = nil) {
        self.group = group
        self.profile = profile
        self.timeout = timeout
        self.maxAge = maxAge
    }

    func matches(groups: [String], profile serverProfile: String?) -> Bool {
        if let group, !groups.contains(group) { return false }
        if let profile, profile != serverProfile { return false }
        return group != nil || profile != nil
    }
}
