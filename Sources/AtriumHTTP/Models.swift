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
        o["state"] = includeState ? (s.state.objectValue?["backend"] ?? .object([:])) : .null
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

    /// The User model as `identity` may see it: names for `read:users:name`, the rest with
    /// `read:users`, servers with `read:servers`.
    static func user(_ u: UserRecord, servers: [ServerRecord], identity: Identity, includeStopped: Bool) -> JSONValue {
        let scopes = identity.scopes
        var o: [String: JSONValue] = ["kind": .string("user"), "name": .string(u.name)]
        let groups = u.groups
        if scopes.allows("read:users", user: u.name, groups: groups) {
            o["admin"] = .bool(u.admin)
            o["roles"] = .array(Permissions.roles(of: u).map(JSONValue.string))
            o["groups"] = .array(groups.map(JSONValue.string))
            o["created"] = date(u.created)
            o["last_activity"] = date(u.lastActivity)
            o["approval"] = .string(u.approval.rawValue)
            o["user_info"] = .object([:])
            o["auth_state"] = .null
            let defaultServer = servers.first { $0.name.isEmpty }
            o["server"] = defaultServer.flatMap { $0.phase == .running ? .string(serverURL(user: u.name, server: "")) : nil } ?? .null
            let pendingDefault: JSONValue
            switch defaultServer?.phase {
            case .pending?: pendingDefault = .string("spawn")
            case .stopping?: pendingDefault = .string("stop")
            default: pendingDefault = .null
            }
            o["pending"] = pendingDefault
        } else if scopes.allows("read:users:activity", user: u.name, groups: groups) {
            o["last_activity"] = date(u.lastActivity)
        }
        if scopes.allows("read:users:groups", user: u.name, groups: groups) {
            o["groups"] = .array(groups.map(JSONValue.string))
        }
        if scopes.allows("read:servers", user: u.name, groups: groups) {
            var map: [String: JSONValue] = [:]
            for s in servers where includeStopped || isListed(s) {
                map[s.name] = server(s, includeState: scopes.allows("admin:server_state", user: u.name, groups: groups))
            }
            o["servers"] = .object(map)
        }
        return .object(o)
    }

    static func group(_ g: GroupRecord) -> JSONValue {
        .object([
            "kind": .string("group"),
            "name": .string(g.name),
            "users": .array(g.users.map(JSONValue.string)),
            "properties": g.properties == .null ? .object([:]) : g.properties,
            "roles": .array([]),
        ])
    }

    static func token(_ t: TokenRecord, secret: String? = nil) -> JSONValue {
        var o: [String: JSONValue] = [
            "id": .string("a\(t.id)"),
            "kind": .string("api_token"),
            "user": .string(t.userName),
            "roles": .array([]),
            "scopes": .array(t.scopes.map(JSONValue.string)),
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
