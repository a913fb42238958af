import AtriumAuth
import AtriumModel
import AtriumSpawn
import AtriumStore
import Foundation
import Hummingbird

/// `/hub/api/users…`: JupyterHub's user endpoints.
struct UsersAPI {
    let hub: Hub

    func register(on api: RouterGroup<HubRequestContext>) {
        api.get("users", use: list)
        api.post("users", use: createMany)
        api.get("users/:name", use: get)
        api.post("users/:name", use: createOne)
        api.patch("users/:name", use: patch)
        api.delete("users/:name", use: delete)
        api.post("users/:name/activity", use: activity)
    }

    /// Validates a user name from a body or path, the way the API reports it.
    static func validName(_ raw: String, normalize: Bool = false) throws -> String {
        let name = normalize ? Authenticator.normalize(raw) : raw
        do { return try UserName(name).rawValue } catch { throw APIError.badRequest(error.description) }
    }

    static func pathName(_ context: HubRequestContext, _ key: String = "name") throws -> String {
        let raw = try context.parameters.require(key)
        guard let decoded = raw.removingPercentEncoding else {
            throw APIError.badRequest("Path segment \(key) is not valid percent-encoded UTF-8")
        }
        // Names are stored composed (NFC): a decomposed spelling names the same user.
        return NameRules.canonical(decoded)
    }

    /// Writes users' uses kept in memory before `last_activity` is read. Best effort: on a
    /// database that refuses writes the reads still answer (the uses stay for the next flush).
    func flushActivity(_ context: HubRequestContext) async {
        do { try await hub.activity.flushUsers(to: hub.store) } catch {
            context.logger.warning("could not write users' activity before reading it", metadata: ["atrium.error": "\(error)"])
        }
    }

    func list(_ request: Request, context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        // JupyterHub's `needs_scope('list:users', post_filter=True)`: a plain user (whose
        // `read:users:name` reaches only themself) may not list users.
        guard identity.scopes.hasAny("list:users") else {
            throw APIError.forbidden("Action is not authorized with current scopes; requires any of [list:users]")
        }
        if case .only(let filters)? = identity.scopes.entries["list:users"],
            filters.contains(where: { if case .server = $0 { true } else { false } })
        {
            throw APIError.forbidden("list:users may only be filtered by user or group (!user=NAME, !group=NAME)")
        }
        let page = try PageRequest(request, settings: hub.settings)
        await flushActivity(context)  // last_activity as of now (the culler reads it)
        var query = UserQuery()
        query.offset = page.offset
        query.limit = page.limit
        if let sort = request.uri.queryParameters["sort"] {
            guard let parsed = UserSort.parse(String(sort)) else {
                throw APIError.badRequest("Unsupported sort '\(sort)': use id, name, last_activity or created, with - for descending")
            }
            (query.sort, query.descending) = parsed
        }
        if let state = request.uri.queryParameters["state"], !state.isEmpty {
            if state == "idle" {
                // Atrium's addition: running, but quiet for `idle_for` seconds (default 600).
                let seconds = try PageRequest.integer(request, "idle_for") ?? 600
                query.idleBefore = Date().addingTimeInterval(-Double(seconds))
            } else {
                guard let parsed = UserStateFilter(rawValue: String(state)) else {
                    throw APIError.badRequest("Unsupported state '\(state)': use active, ready, inactive or idle")
                }
                query.state = parsed
            }
        }
        if let filter = request.uri.queryParameters["name_filter"], !filter.isEmpty { query.nameFilter = String(filter) }
        if let approval = request.uri.queryParameters["approval"], !approval.isEmpty {
            guard let parsed = Approval(rawValue: String(approval)) else {
                throw APIError.badRequest("Unsupported approval '\(approval)': use approved, pending or revoked")
            }
            query.approval = parsed
        }
        if let group = request.uri.queryParameters["group"], !group.isEmpty { query.group = String(group) }
        if request.flag("admin") { query.adminOnly = true }

        // A filtered list scope (list:users!group=x) narrows the listing itself.
        if !identity.scopes.hasUnfiltered("list:users") {
            query.names = try await visibleNames(identity)
        }
        let (users, total) = try await hub.store.users(query)
        let servers = try await hub.store.servers(ofUserIDs: users.count == total && total > 2000 ? nil : users.map(\.id))
        let includeStopped = request.flag("include_stopped_servers")
        let items = users.map { Models.user($0, servers: servers[$0.id] ?? [], identity: identity, includeStopped: includeStopped) }
        return page.response(items, total: total, request: request)
    }

    /// Names reachable through filtered `list:users` scopes.
    private func visibleNames(_ identity: Identity) async throws -> Set<String> {
        guard case .only(let filters)? = identity.scopes.entries["list:users"] else { return [] }
        var names = Set<String>()
        for filter in filters {
            switch filter {
            case .user(let name), .server(let name, _): names.insert(name)
            case .group(let group): names.formUnion(try await hub.store.group(named: group)?.users ?? [])
            }
        }
        return names
    }

    func get(_ request: Request, context: HubRequestContext) async throws -> Response {
        let name = try Self.pathName(context)
        await flushActivity(context)
        let user = try await hub.store.user(named: name)
        let identity = try context.require(
            ["read:users", "read:users:name", "read:servers", "read:users:groups", "read:users:activity", "read:roles:users"],
            user: name, groups: user?.groups ?? [])
        guard let user else { throw APIError.notFound("No such user: \(name)") }
        let servers = try await hub.store.servers(ofUserIDs: [user.id])[user.id] ?? []
        var model = Models.user(user, servers: servers, identity: identity, includeStopped: request.flag("include_stopped_servers"))
        // What each running server uses now, for admins (atrium_usage), as in GET …/servers/{name}.
        if let manager = hub.manager, identity.scopes.allows("admin:server_state", user: user.name, groups: user.groups),
            case .object(var fields) = model, case .object(var listed)? = fields["servers"]
        {
            for (name, value) in listed {
                guard case .object(var server) = value, server["ready"] == .bool(true) else { continue }
                server["atrium_usage"] = Models.usage(await manager.usage(user: user.name, serverName: name))
                listed[name] = .object(server)
            }
            fields["servers"] = .object(listed)
            model = .object(fields)
        }
        return JSONResponse.make(model)
    }

    func createMany(_ request: Request, context: HubRequestContext) async throws -> Response {
        let identity = try context.requireUnfiltered(["admin:users"])
        let body = try await JSONBody.read(request, context: context)
        try body.only(["usernames", "admin"])
        guard let raw = try body.strings("usernames") else { throw APIError.badRequest("Field 'usernames' (a list of names) is required") }
        guard !raw.isEmpty else { throw APIError.badRequest("Field 'usernames' must not be empty") }
        let admin = try body.bool("admin") ?? false
        var invalid: [String] = []
        var names: [String] = []
        for name in raw {
            if let valid = try? Self.validName(name, normalize: true),
               !hub.authenticator.configuration.blockedUsers.contains(valid)
            {
                names.append(valid)
            } else {
                // As JupyterHub: the names as normalized, quoted only when they hold characters
                // that would not show.
                let shown = Authenticator.normalize(String(name.prefix(64)))
                let plain = shown.unicodeScalars.allSatisfy { ![.control, .format].contains($0.properties.generalCategory) && $0.value != 0x7F }
                invalid.append(plain && !shown.isEmpty ? shown : NameRules.escaped(shown))
            }
        }
        guard invalid.isEmpty else { throw APIError.badRequest("Invalid usernames: \(invalid.joined(separator: ", "))") }
        let result = try await hub.store.createUsers(names.map { NewUser(name: $0, admin: admin) })
        if result.created.isEmpty {
            throw APIError.conflict("All \(Set(names).count) users already exist")
        }
        hub.logger.info("users created", metadata: ["atrium.count": "\(result.created.count)", "atrium.by": "\(identity.user.name)"])
        hub.manager?.usersApproved(result.created.filter { $0.approval == .approved }.map { ($0.name, $0.id) })
        let items = result.created.map { Models.user($0, servers: [], identity: identity, includeStopped: false) }
        return JSONResponse.make(.array(items), status: .created)
    }

    func createOne(_ request: Request, context: HubRequestContext) async throws -> Response {
        let identity = try context.requireUnfiltered(["admin:users"])
        let name = try Self.validName(try Self.pathName(context), normalize: true)
        let body = try await JSONBody.read(request, context: context, allowEmpty: true)
        try body.only(["admin", "name", "usernames"])
        guard !hub.authenticator.configuration.blockedUsers.contains(name) else {
            throw APIError.badRequest("User \(name) is blocked and cannot be created")
        }
        let admin = try body.bool("admin") ?? false
        let result = try await hub.store.createUsers([NewUser(name: name, admin: admin)])
        guard let user = result.created.first else { throw APIError.conflict("User \(name) already exists") }
        hub.manager?.usersApproved([(user.name, user.id)])
        return JSONResponse.make(Models.user(user, servers: [], identity: identity, includeStopped: false), status: .created)
    }

    func patch(_ request: Request, context: HubRequestContext) async throws -> Response {
        let name = try Self.pathName(context)
        let existing = try await hub.store.user(named: name)
        let identity = try context.require(["admin:users"], user: name, groups: existing?.groups ?? [])
        let body = try await JSONBody.read(request, context: context)
        try body.only(["name", "admin", "approval"])
        guard body.has("name") || body.has("admin") || body.has("approval") else {
            throw APIError.badRequest("Give at least one of 'name', 'admin' or 'approval' to change")
        }
        let newName = try body.string("name").map { try Self.validName($0, normalize: true) }
        let admin = try body.bool("admin")
        // Atrium's addition: approve or revoke (a revoked user cannot log in; their data stays).
        let approval = try body.string("approval").map { raw in
            guard let parsed = Approval(rawValue: raw) else { throw APIError.badRequest("approval must be approved, pending or revoked, not '\(raw)'") }
            return parsed
        }
        guard existing != nil else { throw APIError.notFound("No such user: \(name)") }
        if let approval, approval != .approved, name == identity.user.name {
            throw APIError.badRequest("You cannot take away your own approval")
        }
        var current = name
        if let newName, newName != name {
            if try await hub.store.user(named: newName) != nil {
                throw APIError.badRequest("User \(newName) already exists, username must be unique")
            }
            // A server reached at /user/{old name}/ would go on answering there, for whoever
            // takes the old name next: a user with servers that are not stopped is not renamed.
            if let user = existing {
                let servers = try await hub.store.servers(ofUserIDs: [user.id])[user.id] ?? []
                let live = servers.filter { [.pending, .running, .stopping, .suspended].contains($0.phase) }
                if !live.isEmpty {
                    let list = live.map { "\($0.name.isEmpty ? "default" : $0.name) (\($0.phase.rawValue))" }.joined(separator: ", ")
                    throw APIError.badRequest("Stop \(name)'s servers before renaming the user: \(list)")
                }
                do {
                    for server in servers { try await hub.manager?.forget(user: name, serverName: server.name) }
                } catch let error as SpawnError {
                    throw APIError.badRequest("\(error.message): stop it before renaming the user")
                }
            }
            do { _ = try await hub.store.renameUser(name, to: newName) } catch let error as StoreError where error.code == .alreadyExists {
                throw APIError.badRequest(error.userMessage)
            }
            current = newName
        }
        if let admin {
            guard identity.scopes.hasUnfiltered("admin:users") else {
                throw APIError.forbidden("Changing the admin flag requires the unfiltered admin:users scope")
            }
            try await hub.store.setAdmin(current, admin)
        }
        if let approval {
            guard identity.scopes.hasUnfiltered("admin:users") else {
                throw APIError.forbidden("Changing the approval requires the unfiltered admin:users scope")
            }
            try await hub.store.setApproval(current, approval)
            hub.logger.info("approval changed", metadata: ["atrium.user": "\(current)", "atrium.approval": "\(approval.rawValue)", "atrium.by": "\(identity.user.name)"])
        }
        guard let user = try await hub.store.user(named: current) else { throw APIError.notFound("No such user: \(current)") }
        if approval == .approved { hub.manager?.usersApproved([(user.name, user.id)]) }
        let servers = try await hub.store.servers(ofUserIDs: [user.id])[user.id] ?? []
        return JSONResponse.make(Models.user(user, servers: servers, identity: identity, includeStopped: false))
    }

    func delete(_ request: Request, context: HubRequestContext) async throws -> Response {
        let name = try Self.pathName(context)
        let existing = try await hub.store.user(named: name)
        let identity = try context.require(["delete:users"], user: name, groups: existing?.groups ?? [])
        guard existing != nil else { throw APIError.notFound("No such user: \(name)") }
        // Their servers go first: a deleted user must not leave processes behind.
        if let manager = hub.manager {
            do { try await manager.removeAll(user: name) } catch let error as SpawnError { throw ServersAPI.apiError(error) }
        }
        try await hub.store.deleteUser(name)
        hub.logger.info("user deleted", metadata: ["atrium.user": "\(name)", "atrium.by": "\(identity.user.name)"])
        return Response(status: .noContent)
    }

    /// `POST /users/{name}/activity`: `{"last_activity": ts, "servers": {"": {"last_activity": ts}}}`.
    func activity(_ request: Request, context: HubRequestContext) async throws -> Response {
        let name = try Self.pathName(context)
        let existing = try await hub.store.user(named: name)
        try context.require(["users:activity"], user: name, groups: existing?.groups ?? [])
        guard let user = existing else { throw APIError.notFound("No such user: \(name)") }
        let body = try await JSONBody.read(request, context: context, allowEmpty: true)
        try body.only(["last_activity", "servers"])
        func parse(_ value: JSONValue?, _ field: String) throws -> Date? {
            guard let value, value != .null else { return nil }
            guard case .string(let text) = value, let date = Timestamp.parse(text) else {
                throw APIError.badRequest("\(field) must be an ISO-8601 timestamp")
            }
            // As JupyterHub: stored as given (clocks differ), except more than 59 minutes ahead.
            guard date.timeIntervalSinceNow <= 59 * 60 else {
                throw APIError.badRequest("Rejecting activity from more than an hour in the future: \(Timestamp.format(date))")
            }
            return date
        }
        // As JupyterHub: an empty body says nothing, and that is a client's mistake.
        let hasUserActivity = body.fields["last_activity"].map { $0 != .null } ?? false
        let hasServers = body.fields["servers"].map { value -> Bool in
            if case .object(let servers) = value { return !servers.isEmpty }
            return value != .null
        } ?? false
        guard hasUserActivity || hasServers else {
            throw APIError.badRequest("body must contain at least one of `last_activity` or `servers`")
        }
        let userActivity = try parse(body.fields["last_activity"], "last_activity")
        var serverActivity: [(userID: Int64, server: String, at: Date)] = []
        if let servers = try body.object("servers") {
            let known = Set((try await hub.store.servers(ofUserIDs: [user.id])[user.id] ?? []).map(\.name))
            for (server, info) in servers {
                guard case .object(let fields) = info else { throw APIError.badRequest("servers.\(server) must be an object") }
                // The default server always exists in JupyterHub's model, started or not.
                guard server.isEmpty || known.contains(server) else {
                    throw APIError.badRequest("No such server '\(server)' for user \(name)")
                }
                guard let at = try parse(fields["last_activity"], "servers.\(server).last_activity") else {
                    throw APIError.badRequest("servers.\(server).last_activity is required")
                }
                serverActivity.append((user.id, server, at))
            }
        }
        if let userActivity { try await hub.store.recordUserActivity(name, at: userActivity) }
        try await hub.store.recordServerActivity(serverActivity)
        return JSONResponse.make(.object([:]))
    }
}
