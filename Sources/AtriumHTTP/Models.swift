import AtriumAuth
import AtriumModel
import AtriumSpawn
import AtriumStore
import Foundation

/// JupyterHub's JSON models, built field by field so names and `null`s match exactly.
enum Models {
    static func date(_ date: Date?) -> JSONValue { date.map { .string(Timestamp.format($0)) } ?? .null }

    /// The path where a user's server is reached.
    static func serverURL(user: String, server: String) -> String {
        ServerManager.baseURL(user: user, server: server)
    }

    static func progressURL(user: String, server: String) -> String {
        let escapedUser = user.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/", "?", "#", "%"])) ?? user
        return server.isEmpty
            ? "/hub/api/users/\(escapedUser)/server/progress"
            : "/hub/api/users/\(escapedUser)/servers/\(server)/progress"
    }

    /// `atrium_usage`: what a running server uses now (null when stopped or not measured).
    static func usage(_ u: ResourceUsage?) -> JSONValue {
        guard let u else { return .null }
        return .object([
            "memory_bytes": u.memoryBytes.map { .number(Double($0)) } ?? .null,
            "cpu_seconds": u.cpuSeconds.map { .number(($0 * 1000).rounded() / 1000) } ?? .null,
            "tasks": u.tasks.map { .number(Double($0)) } ?? .null,
        ])
    }

    /// The Server model. `state` only for holders of `admin:server_state`.
    static func server(_ s: ServerRecord, includeState: Bool) -> JSONValue {
        let ready = s.phase == .running
        let pending: JSONValue
        switch s.phase {
        case .pending: pending = .string("spawn")
        case .stopping: pending = .string("stop")
        default: pending = .null
        }
        var o: [String: JSONValue] = [
            "name": .string(s.name),
            "display_name": .string(s.displayName ?? s.name),
            "full_name": .string("\(s.userName)/\(s.name)"),
            "ready": .bool(ready),
            "pending": pending,
            "stopped": .bool(!ready && pending == .null),
            "url": .string(serverURL(user: s.userName, server: s.name)),
            "progress_url": .string(progressURL(user: s.userName, server: s.name)),
            "full_url": .null,
            "full_progress_url": .null,
            "started": date(s.started),
            "last_activity": date(s.lastActivity),
            "user_options": s.userOptions,
            "atrium_phase": .string(s.phase.rawValue),
        ]
        // Only the backend's part: the proxy secret and the server token id stay in the hub.
        // Without admin:server_state the key is left out, as JupyterHub leaves it.
        if includeState { o["state"] = s.state.objectValue?["backend"] ?? .object([:]) }
        // Why it failed (a crash, "out of memory"), for admins: users get a generic message.
        if includeState, s.phase == .failed, case .string(let reason)? = s.state.objectValue?["failure"] {
            o["atrium_failure"] = .string(reason)
        }
        return .object(o)
    }

    /// Servers listed without `include_stopped_servers`: those active, and those whose last start
    /// failed (as JupyterHub keeps a failed server's entry, `ready: false`, until the next start
    /// or stop), so a script can see that and why (its progress stream) instead of nothing.
    static func isListed(_ s: ServerRecord) -> Bool {
        [.pending, .running, .stopping, .failed].contains(s.phase)
    }

    /// JupyterHub's access map for the User model (`apihandlers/base.py` `user_model`): the
    /// keys each scope shows.
    static let userAccess: [(scope: String, keys: Set<String>)] = [
        ("read:users", ["kind", "name", "user_info", "admin", "roles", "groups", "server", "pending", "created", "last_activity", "approval"]),
        ("read:users:name", ["kind", "name", "user_info", "admin"]),
        ("read:users:groups", ["kind", "name", "groups"]),
        ("read:users:activity", ["kind", "name", "last_activity"]),
        ("read:servers", ["kind", "name", "servers"]),
        ("read:roles:users", ["kind", "name", "roles", "admin"]),
        ("admin:auth_state", ["kind", "name", "auth_state"]),
    ]

    /// The User model as `identity` may see it, key by key as JupyterHub filters it; servers
    /// each as `read:servers` reaches them. `includeStopped` lists stopped servers too (the
    /// default server always, as JupyterHub's model always has it).
    static func user(_ u: UserRecord, servers: [ServerRecord], identity: Identity, includeStopped: Bool) -> JSONValue {
        let scopes = identity.scopes
        let groups = u.groups
        var allowed: Set<String> = []
        for (scope, keys) in userAccess where scopes.allows(scope, user: u.name, groups: groups) { allowed.formUnion(keys) }
        let defaultServer = servers.first { $0.name.isEmpty }
        var all: [String: JSONValue] = [
            "kind": .string("user"), "name": .string(u.name), "admin": .bool(u.admin),
            "roles": .array(Permissions.roles(of: u).map(JSONValue.string)), "groups": .array(groups.map(JSONValue.string)),
            "server": defaultServer.flatMap { $0.phase == .running ? .string(serverURL(user: u.name, server: "")) : nil } ?? .null,
            "created": date(u.created), "last_activity": date(u.lastActivity), "approval": .string(u.approval.rawValue),
            "user_info": .null, "auth_state": .null,
        ]
        switch defaultServer?.phase {
        case .pending?: all["pending"] = .string("spawn")
        case .stopping?: all["pending"] = .string("stop")
        default: all["pending"] = .null
        }
        var o = all.filter { allowed.contains($0.key) }
        var listed = servers
        if includeStopped, defaultServer == nil { listed.insert(ServerRecord(userID: u.id, userName: u.name, name: ""), at: 0) }
        var map: [String: JSONValue] = [:]
        for s in listed where (includeStopped || isListed(s)) && scopes.allows("read:servers", user: u.name, groups: groups, server: s.name) {
            map[s.name] = server(s, includeState: scopes.allows("admin:server_state", user: u.name, groups: groups, server: s.name))
        }
        if allowed.contains("servers") || !map.isEmpty {
            o["kind"] = .string("user")
            o["name"] = .string(u.name)
            o["servers"] = .object(map)
        }
        return .object(o)
    }

    /// The Group model as `identity` may see it (JupyterHub's access map for groups).
    static func group(_ g: GroupRecord, identity: Identity? = nil) -> JSONValue {
        let all: [String: JSONValue] = [
            "kind": .string("group"),
            "name": .string(g.name),
            "users": .array(g.users.map(JSONValue.string)),
            "properties": g.properties == .null ? .object([:]) : g.properties,
            "roles": .array([]),
        ]
        guard let scopes = identity?.scopes else { return .object(all) }
        let access: [(String, Set<String>)] = [
            ("read:groups", ["kind", "name", "properties", "users"]),
            ("read:groups:name", ["kind", "name"]),
            ("read:roles:groups", ["kind", "name", "roles"]),
        ]
        var allowed: Set<String> = []
        for (scope, keys) in access where scopes.allowsGroup(scope, group: g.name) { allowed.formUnion(keys) }
        return .object(all.filter { allowed.contains($0.key) })
    }

    /// The Token model. `scopes` are the token's effective scopes, expanded and bounded by its
    /// owner (JupyterHub's `get_scopes_for(token)`), when the owner is given.
    static func token(_ t: TokenRecord, owner: UserRecord? = nil, secret: String? = nil) -> JSONValue {
        let scopes = owner.map { Permissions.scopes(of: t, owner: $0).strings } ?? t.scopes
        var o: [String: JSONValue] = [
            "id": .string("a\(t.id)"),
            "kind": .string("api_token"),
            "user": .string(t.userName),
            "roles": .array([]),
            "scopes": .array(scopes.map(JSONValue.string)),
            "note": t.note.map(JSONValue.string) ?? .null,
            "created": date(t.created),
            "expires_at": date(t.expiresAt),
            "last_activity": date(t.lastActivity),
            "session_id": .null,
            "oauth_client": .string("Atrium"),
        ]
        if let secret { o["token"] = .string(secret) }
        return .object(o)
    }
}
