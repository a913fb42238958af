import AtriumAuth
import AtriumModel
import AtriumStore
import Foundation
import Hummingbird

/// `/hub/api/groups…`: JupyterHub's group endpoints, plus `PATCH /groups/{name}` to rename.
struct GroupsAPI {
    let hub: Hub

    func register(on api: RouterGroup<HubRequestContext>) {
        api.get("groups", use: list)
        api.post("groups", use: createMany)
        api.get("groups/:name", use: get)
        api.post("groups/:name", use: createOne)
        api.patch("groups/:name", use: rename)
        api.delete("groups/:name", use: delete)
        api.post("groups/:name/users", use: addUsers)
        api.delete("groups/:name/users", use: removeUsers)
        api.put("groups/:name/properties", use: setProperties)
    }

    static func validName(_ raw: String) throws -> String {
        do { return try GroupName(raw).rawValue } catch { throw APIError.badRequest(error.description) }
    }

    func list(_ request: Request, context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let page = try PageRequest(request, settings: hub.settings)
        var names: Set<String>?
        // JupyterHub's `needs_scope('list:groups', post_filter=True)`; a filter other than
        // `!group=` cannot select groups, and is refused as JupyterHub refuses it.
        switch identity.scopes.entries["list:groups"] {
        case nil: throw APIError.forbidden("Action is not authorized with current scopes; requires any of [list:groups]")
        case .all?: names = nil
        case .only(let filters)?:
            let groups = filters.compactMap { if case .group(let g) = $0 { g } else { nil } }
            guard groups.count == filters.count else {
                throw APIError.forbidden("list:groups may only be filtered by group (!group=NAME)")
            }
            names = Set(groups)
        }
        let (groups, total) = try await hub.store.groups(offset: page.offset, limit: page.limit, names: names)
        return page.response(groups.map { Models.group($0, identity: identity) }, total: total, request: request)
    }

    func get(_ request: Request, context: HubRequestContext) async throws -> Response {
        let name = try UsersAPI.pathName(context)
        let identity = try context.require(["read:groups", "read:groups:name", "read:roles:groups"], group: name)
        guard let group = try await hub.store.group(named: name) else { throw APIError.notFound("No such group: \(name)") }
        return JSONResponse.make(Models.group(group, identity: identity))
    }

    private func members(_ body: JSONBody) throws -> [String] {
        try (body.strings("users") ?? []).map { try UsersAPI.validName($0) }
    }

    func createMany(_ request: Request, context: HubRequestContext) async throws -> Response {
        try context.requireUnfiltered(["admin:groups"])
        let body = try await JSONBody.read(request, context: context)
        try body.only(["groups", "users"])
        guard let raw = try body.strings("groups"), !raw.isEmpty else {
            throw APIError.badRequest("Field 'groups' (a list of group names) is required")
        }
        let names = try raw.map(Self.validName)
        let groups = try await hub.store.createGroups(names, members: try await knownUsers(try members(body)))
        return JSONResponse.make(.array(groups.map { Models.group($0, identity: context.identity) }), status: .created)
    }

    func createOne(_ request: Request, context: HubRequestContext) async throws -> Response {
        try context.requireUnfiltered(["admin:groups"])
        let name = try Self.validName(try UsersAPI.pathName(context))
        let body = try await JSONBody.read(request, context: context, allowEmpty: true)
        try body.only(["users"])
        let groups = try await hub.store.createGroups([name], members: try await knownUsers(try members(body)))
        guard let group = groups.first else { throw APIError.notFound("No such group: \(name)") }
        return JSONResponse.make(Models.group(group, identity: context.identity), status: .created)
    }

    func rename(_ request: Request, context: HubRequestContext) async throws -> Response {
        let name = try UsersAPI.pathName(context)
        try context.requireUnfiltered(["admin:groups"])
        let body = try await JSONBody.read(request, context: context)
        try body.only(["name"])
        guard let newRaw = try body.string("name") else { throw APIError.badRequest("Field 'name' is required") }
        let newName = try Self.validName(newRaw)
        if newName != name { try await hub.store.renameGroup(name, to: newName) }
        guard let group = try await hub.store.group(named: newName) else { throw APIError.notFound("No such group: \(newName)") }
        return JSONResponse.make(Models.group(group, identity: context.identity))
    }

    func delete(_ request: Request, context: HubRequestContext) async throws -> Response {
        let name = try UsersAPI.pathName(context)
        try context.require(["delete:groups"], group: name)
        guard try await hub.store.deleteGroup(name) else { throw APIError.notFound("No such group: \(name)") }
        return Response(status: .noContent)
    }

    func addUsers(_ request: Request, context: HubRequestContext) async throws -> Response {
        try await changeMembers(request, context: context, add: true)
    }

    /// `names`, when every one is a user; else 400 "No such user", as JupyterHub answers (the
    /// group is what the path names; a wrong member is a mistake in the body).
    private func knownUsers(_ names: [String]) async throws -> [String] {
        for name in names where try await hub.store.user(named: name) == nil {
            throw APIError.badRequest("No such user: \(name)")
        }
        return names
    }

    func removeUsers(_ request: Request, context: HubRequestContext) async throws -> Response {
        try await changeMembers(request, context: context, add: false)
    }

    private func changeMembers(_ request: Request, context: HubRequestContext, add: Bool) async throws -> Response {
        let name = try UsersAPI.pathName(context)
        try context.require(["groups"], group: name)
        let body = try await JSONBody.read(request, context: context)
        try body.only(["users"])
        guard body.has("users") else { throw APIError.badRequest("Field 'users' (a list of names) is required") }
        guard try await hub.store.group(named: name) != nil else { throw APIError.notFound("No such group: \(name)") }
        let users = try await knownUsers(try members(body))
        if add { try await hub.store.addMembers(users, toGroup: name) } else { try await hub.store.removeMembers(users, fromGroup: name) }
        guard let group = try await hub.store.group(named: name) else { throw APIError.notFound("No such group: \(name)") }
        return JSONResponse.make(Models.group(group, identity: context.identity))
    }

    func setProperties(_ request: Request, context: HubRequestContext) async throws -> Response {
        let name = try UsersAPI.pathName(context)
        try context.require(["groups"], group: name)
        let body = try await JSONBody.read(request, context: context)
        try await hub.store.setGroupProperties(name, .object(body.fields))
        guard let group = try await hub.store.group(named: name) else { throw APIError.notFound("No such group: \(name)") }
        return JSONResponse.make(Models.group(group, identity: context.identity))
    }
}
