/// JupyterHub's scope vocabulary: names, the subscope hierarchy, and the filters that narrow a
/// scope to one user, group or server (`read:users!user=alice`).
///
/// Atrium keeps JupyterHub's names exactly so tokens, roles and clients written for JupyterHub
/// keep working; see <https://jupyterhub.readthedocs.io/en/stable/rbac/scopes.html>.
public enum Scopes {
    /// Every scope Atrium knows, with the scopes it directly implies.
    public static let hierarchy: [String: [String]] = [
        "(no_scope)": [],
        "self": [],
        "inherit": [],
        "admin-ui": [],
        "admin:users": ["admin:auth_state", "users", "read:roles:users", "delete:users"],
        "admin:auth_state": [],
        "users": ["read:users", "list:users", "users:activity"],
        "delete:users": [],
        "list:users": ["read:users:name"],
        "read:users": ["read:users:name", "read:users:groups", "read:users:activity"],
        "read:users:name": [],
        "read:users:groups": [],
        "read:users:activity": [],
        "read:roles": ["read:roles:users", "read:roles:services", "read:roles:groups"],
        "read:roles:users": [],
        "read:roles:services": [],
        "read:roles:groups": [],
        "users:activity": ["read:users:activity"],
        "admin:servers": ["admin:server_state", "servers"],
        "admin:server_state": [],
        "servers": ["read:servers", "start:servers", "delete:servers"],
        "read:servers": ["read:users:name"],
        "start:servers": [],
        "delete:servers": [],
        "tokens": ["read:tokens"],
        "read:tokens": [],
        "admin:groups": ["groups", "read:roles:groups", "delete:groups"],
        "groups": ["read:groups", "list:groups"],
        "list:groups": ["read:groups:name"],
        "read:groups": ["read:groups:name"],
        "read:groups:name": [],
        "delete:groups": [],
        "admin:services": ["list:services", "read:services"],
        "list:services": ["read:services:name"],
        "read:services": ["read:services:name"],
        "read:services:name": [],
        "read:hub": [],
        "access:servers": [],
        "access:services": [],
        "users:shares": ["read:users:shares"],
        "read:users:shares": [],
        "groups:shares": ["read:groups:shares"],
        "read:groups:shares": [],
        "shares": ["read:shares", "users:shares", "groups:shares"],
        "read:shares": [],
        "proxy": [],
        "shutdown": [],
        "read:metrics": [],
    ]

    /// A token's only scope when it was created with none: it identifies its owner and may do
    /// nothing else (JupyterHub's `(no_scope)`).
    public static let noScope = "(no_scope)"

    /// The scopes `self` stands for, each narrowed to the user (JupyterHub's `user` role).
    public static let selfScopes: [String] = [
        "read:users", "users:activity", "servers", "tokens", "access:servers", "users:shares", "read:shares",
    ]

    /// The scopes of JupyterHub's default `admin` role.
    public static let adminRole: [String] = [
        "admin-ui", "admin:users", "admin:servers", "tokens", "admin:groups", "list:services", "read:services",
        "read:hub", "proxy", "shutdown", "access:services", "access:servers", "read:roles", "read:metrics", "shares",
    ]

    /// Default roles by name, as JupyterHub defines them. `server` uses placeholders that are
    /// filled with the owning user and server (`!user`, `!server`).
    public static let defaultRoles: [String: [String]] = [
        "user": ["self"],
        "admin": adminRole,
        "server": ["users:activity!user", "access:servers!server"],
        "token": ["inherit"],
    ]
}

/// One filter that narrows a scope.
public enum ScopeFilter: Hashable, Sendable, CustomStringConvertible {
    /// Only this user's resources (and their servers).
    case user(String)
    /// Only the resources of members of this group.
    case group(String)
    /// Only this server, `user/server` (the default server is `user/`).
    case server(user: String, name: String)

    public var description: String {
        switch self {
        case .user(let n): "user=\(n)"
        case .group(let n): "group=\(n)"
        case .server(let u, let s): "server=\(u)/\(s)"
        }
    }
}

/// Why a scope string was refused.
public struct ScopeError: Error, Sendable, Equatable, CustomStringConvertible {
    public let scope: String
    public let reason: String
    public init(scope: String, reason: String) {
        self.scope = scope
        self.reason = reason
    }
    public var description: String { "invalid scope \(NameRules.escaped(scope)): \(reason)" }
}

/// A set of scopes, fully expanded: each base scope maps either to "everything" or to the
/// filters it is limited to.
public struct ScopeSet: Sendable, Equatable {
    /// How far one base scope reaches.
    public enum Reach: Sendable, Equatable {
        case all
        case only(Set<ScopeFilter>)
    }

    public private(set) var entries: [String: Reach] = [:]

    public init() {}

    /// Parses and expands `scopes` (subscopes inherit their parent's filter). `self` and the
    /// `!user`/`!server` placeholders are resolved for `owner`; `inherit` is kept out (the caller
    /// resolves it against the owner's scopes).
    public init(expanding scopes: [String], owner: String? = nil, ownerServer: String = "") throws(ScopeError) {
        for raw in scopes {
            let (base, filter) = try Self.parse(raw, owner: owner, ownerServer: ownerServer)
            if base == "self" {
                guard let owner else { continue }
                for s in Scopes.selfScopes { insertExpanded(s, filter: .user(owner)) }
                continue
            }
            if base == "inherit" { continue }
            insertExpanded(base, filter: filter)
        }
    }

    /// Splits `raw` into base and filter, checking that the base exists.
    public static func parse(_ raw: String, owner: String? = nil, ownerServer: String = "")
        throws(ScopeError) -> (String, ScopeFilter?)
    {
        let parts = raw.split(separator: "!", maxSplits: 1, omittingEmptySubsequences: false)
        let base = String(parts[0])
        guard Scopes.hierarchy[base] != nil else { throw ScopeError(scope: raw, reason: "no such scope") }
        guard parts.count == 2 else { return (base, nil) }
        let filterText = String(parts[1])
        if filterText == "user", let owner { return (base, .user(owner)) }
        if filterText == "server", let owner { return (base, .server(user: owner, name: ownerServer)) }
        let kv = filterText.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard kv.count == 2, !kv[1].isEmpty else {
            throw ScopeError(scope: raw, reason: "a filter looks like !user=NAME, !group=NAME or !server=USER/NAME")
        }
        let value = String(kv[1])
        switch kv[0] {
        case "user": return (base, .user(value))
        case "group": return (base, .group(value))
        case "server":
            guard let slash = value.firstIndex(of: "/") else {
                throw ScopeError(scope: raw, reason: "a server filter is USER/SERVERNAME")
            }
            return (base, .server(user: String(value[..<slash]), name: String(value[value.index(after: slash)...])))
        default:
            throw ScopeError(scope: raw, reason: "unknown filter \(kv[0]) (use user, group or server)")
        }
    }

    private mutating func insertExpanded(_ base: String, filter: ScopeFilter?) {
        var stack = [base]
        var seen = Set<String>()
        while let next = stack.popLast() {
            guard seen.insert(next).inserted else { continue }
            insert(next, filter: filter)
            stack.append(contentsOf: Scopes.hierarchy[next] ?? [])
        }
    }

    private mutating func insert(_ base: String, filter: ScopeFilter?) {
        guard let filter else { entries[base] = .all; return }
        switch entries[base] {
        case .all: return
        case .only(var filters):
            filters.insert(filter)
            entries[base] = .only(filters)
        case nil:
            entries[base] = .only([filter])
        }
    }

    /// The union of two expanded sets.
    public func union(_ other: ScopeSet) -> ScopeSet {
        var result = self
        for (base, reach) in other.entries {
            switch reach {
            case .all: result.entries[base] = .all
            case .only(let filters): for f in filters { result.insert(base, filter: f) }
            }
        }
        return result
    }

    /// What both sets allow: a token's scopes never exceed its owner's. Filtered entries meet
    /// where they coincide, and a server filter survives under a user filter for the same user.
    /// A user filter against a group filter is dropped (the stricter reading).
    public func intersection(_ other: ScopeSet) -> ScopeSet {
        var result = ScopeSet()
        for (base, mine) in entries {
            guard let theirs = other.entries[base] else { continue }
            switch (mine, theirs) {
            case (.all, let r), (let r, .all): result.entries[base] = r
            case (.only(let a), .only(let b)):
                var kept = a.intersection(b)
                // A server filter on one side survives under the same user's filter on the other.
                for (mine, theirs) in [(a, b), (b, a)] {
                    for f in mine {
                        guard case .server(let user, _) = f, theirs.contains(.user(user)) else { continue }
                        kept.insert(f)
                    }
                }
                if !kept.isEmpty { result.entries[base] = .only(kept) }
            }
        }
        return result
    }

    /// Whether every scope of `other` is within this set.
    public func covers(_ other: ScopeSet) -> Bool { other.intersection(self) == other }

    /// Whether `base` is held without any filter.
    public func hasUnfiltered(_ base: String) -> Bool { entries[base] == .all }

    /// Whether `base` is held at all, in any reach.
    public func hasAny(_ base: String) -> Bool { entries[base] != nil }

    /// Whether `base` reaches `user` (a member of `groups`), and `server` of that user when given.
    public func allows(_ base: String, user: String, groups: [String] = [], server: String? = nil) -> Bool {
        switch entries[base] {
        case nil: return false
        case .all: return true
        case .only(let filters):
            for f in filters {
                switch f {
                case .user(let u) where u == user: return true
                case .group(let g) where groups.contains(g): return true
                case .server(let u, let s) where u == user && server == s: return true
                default: continue
                }
            }
            return false
        }
    }

    /// Whether `base` reaches group `group`.
    public func allowsGroup(_ base: String, group: String) -> Bool {
        switch entries[base] {
        case nil: return false
        case .all: return true
        case .only(let filters): return filters.contains(.group(group))
        }
    }

    /// The expanded scopes as strings, sorted, as `GET /hub/api/user` reports them.
    public var strings: [String] {
        var out: [String] = []
        for (base, reach) in entries {
            switch reach {
            case .all: out.append(base)
            case .only(let filters): out.append(contentsOf: filters.map { "\(base)!\($0)" })
            }
        }
        return out.sorted()
    }
}
