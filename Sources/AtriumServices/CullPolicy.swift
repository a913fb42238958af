import AtriumModel
import Foundation

/// A server, with what the culler needs to judge it.
public struct CullCandidate: Sendable, Equatable {
    public var user: String
    public var admin: Bool
    public var groups: [String]
    /// `""` for the default server.
    public var server: String
    public var state: ServerLifecycle.State
    /// When it became ready.
    public var started: Date?
    /// When its current start was asked for.
    public var requested: Date?
    /// The latest activity the hub has seen (proxy traffic or the server's own reports).
    public var lastActivity: Date?
    public var profile: String?

    public init(
        user: String, admin: Bool = false, groups: [String] = [], server: String = "", state: ServerLifecycle.State, started: Date? = nil,
        requested: Date? = nil, lastActivity: Date? = nil, profile: String? = nil
    ) {
        self.user = user
        self.admin = admin
        self.groups = groups
        self.server = server
        self.state = state
        self.started = started
        self.requested = requested
        self.lastActivity = lastActivity
        self.profile = profile
    }
}

/// A user, for `cull_users`.
public struct UserCullCandidate: Sendable, Equatable {
    public var user: String
    public var admin: Bool
    public var groups: [String]
    public var created: Date
    public var lastActivity: Date?
    /// Servers not stopped (suspended ones count: the user still has a workspace).
    public var activeServers: Int

    public init(user: String, admin: Bool = false, groups: [String] = [], created: Date, lastActivity: Date? = nil, activeServers: Int = 0) {
        self.user = user
        self.admin = admin
        self.groups = groups
        self.created = created
        self.lastActivity = lastActivity
        self.activeServers = activeServers
    }
}

/// Why something is culled: the label in logs and metrics, with the figures.
public enum CullReason: Sendable, Equatable, CustomStringConvertible {
    /// No activity for `inactive` (≥ the timeout).
    case idle(inactive: Duration, timeout: Duration)
    /// Running for `age` (≥ max age), active or not.
    case maxAge(age: Duration, maxAge: Duration)
    /// Its start has been pending for `waited` (≥ the pending timeout).
    case stuckPending(waited: Duration, limit: Duration)

    /// A short label for metrics: `idle`, `max_age`, `stuck_pending`.
    public var label: String {
        switch self {
        case .idle: "idle"
        case .maxAge: "max_age"
        case .stuckPending: "stuck_pending"
        }
    }

    public var description: String {
        switch self {
        case .idle(let inactive, let timeout): "inactive for \(inactive.readable) (timeout \(timeout.readable))"
        case .maxAge(let age, let maxAge): "running for \(age.readable) (max age \(maxAge.readable))"
        case .stuckPending(let waited, let limit): "pending for \(waited.readable) (limit \(limit.readable))"
        }
    }
}

/// What the culler does to one server or user.
public enum CullAction: String, Sendable, Equatable {
    case stop, suspend
    /// Stop and delete a named server (`remove_named_servers`).
    case remove
    /// Delete the user (`cull_users`); their stored files stay.
    case deleteUser = "delete_user"
}

/// One thing to cull, and why.
public struct CullDecision: Sendable, Equatable {
    public var action: CullAction
    public var reason: CullReason
}

/// The culler's rules as pure functions of a snapshot and a time: no I/O, no clock, so every
/// rule is tested step by step.
public struct CullPolicy: Sendable {
    public let settings: CullerSettings

    public init(settings: CullerSettings) {
        self.settings = settings
    }

    /// What to do with a server at `now`, or `nil` to leave it.
    ///
    /// A running server's inactivity counts from its latest activity, or from when it became
    /// ready if that is later (a restarted server is not judged by its previous run's
    /// activity) — as JupyterHub resets a server's activity when it spawns.
    public func decide(_ server: CullCandidate, now: Date) -> CullDecision? {
        if server.server.isEmpty ? !settings.cullDefaultServers : !settings.cullNamedServers { return nil }
        switch server.state {
        case .starting:
            guard let limit = settings.pendingTimeout, limit > .zero, let requested = server.requested else { return nil }
            let waited = Self.elapsed(from: requested, to: now)
            guard waited >= limit else { return nil }
            return CullDecision(action: .stop, reason: .stuckPending(waited: waited, limit: limit))
        case .running:
            guard let started = server.started else { return nil }
            let limits = settings.limits(groups: server.groups, profile: server.profile)
            let age = Self.elapsed(from: started, to: now)
            let since = max(server.lastActivity ?? started, started)
            let inactive = Self.elapsed(from: since, to: now)
            let action: CullAction = !server.server.isEmpty && settings.removeNamedServers ? .remove : CullAction(settings.action)
            if limits.timeout > .zero, inactive >= limits.timeout {
                return CullDecision(action: action, reason: .idle(inactive: inactive, timeout: limits.timeout))
            }
            if let maxAge = limits.maxAge, maxAge > .zero, age >= maxAge {
                return CullDecision(action: action, reason: .maxAge(age: age, maxAge: maxAge))
            }
            return nil
        case .stopped, .stopping, .suspending, .suspended, .failed:
            return nil
        }
    }

    /// Whether to delete a user at `now` (only with `cull_users`): every server stopped, and
    /// inactive for the timeout (or older than the max age). Inactivity counts from the user's
    /// last activity, or their creation if they never had any.
    public func decide(_ user: UserCullCandidate, now: Date) -> CullDecision? {
        guard settings.cullUsers, user.activeServers == 0 else { return nil }
        if user.admin && !settings.cullAdminUsers { return nil }
        let limits = settings.limits(groups: user.groups, profile: nil)
        let inactive = Self.elapsed(from: max(user.lastActivity ?? user.created, user.created), to: now)
        if limits.timeout > .zero, inactive >= limits.timeout {
            return CullDecision(action: .deleteUser, reason: .idle(inactive: inactive, timeout: limits.timeout))
        }
        let age = Self.elapsed(from: user.created, to: now)
        if let maxAge = limits.maxAge, maxAge > .zero, age >= maxAge {
            return CullDecision(action: .deleteUser, reason: .maxAge(age: age, maxAge: maxAge))
        }
        return nil
    }

    static func elapsed(from start: Date, to end: Date) -> Duration {
        .milliseconds(Int64(((end.timeIntervalSince(start)) * 1000).rounded(.down)))
    }
}

extension CullAction {
    init(_ action: CullerSettings.Action) {
        switch action {
        case .stop: self = .stop
        case .suspend: self = .suspend
        }
    }
}

extension Duration {
    /// `2h 5m`, `10m 3s`, `45s`: for log lines.
    var readable: String {
        let total = max(0, Int(components.seconds))
        let (d, h, m, s) = (total / 86400, total % 86400 / 3600, total % 3600 / 60, total % 60)
        var parts: [String] = []
        if d > 0 { parts.append("\(d)d") }
        if h > 0 { parts.append("\(h)h") }
        if m > 0 && d == 0 { parts.append("\(m)m") }
        if (s > 0 || parts.isEmpty) && d == 0 && h == 0 { parts.append("\(s)s") }
        return parts.joined(separator: " ")
    }
}
