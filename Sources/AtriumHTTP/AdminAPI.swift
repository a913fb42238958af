import AtriumAuth
import AtriumModel
import AtriumSpawn
import AtriumStore
import Foundation
import Hummingbird

/// Atrium's admin endpoints that JupyterHub's API has no equivalent for (documented in
/// `docs/openapi-atrium.yml`): bulk creation from a roster with generated passwords, a
/// password reset that generates the new password, and deleting a user with their stored files.
struct AdminAPI {
    let hub: Hub

    /// Most users one roster may create.
    static let maxRoster = 5000

    func register(on api: RouterGroup<HubRequestContext>) {
        api.post("roster", use: roster)
        api.post("users/:name/reset-password", use: resetPassword)
        api.post("users/:name/delete-forever", use: deleteForever)
    }

    private var nativeMode: Bool { hub.authenticator.configuration.mode == .native }

    /// `POST /roster` `{"csv": "…"}`: creates every user of the roster or none. Returns the
    /// created users with their generated passwords (native mode), shown this once.
    func roster(_ request: Request, context: HubRequestContext) async throws -> Response {
        let identity = try context.requireUnfiltered(["admin:users"])
        let body = try await JSONBody.read(request, context: context)
        try body.only(["csv"])
        guard let text = try body.string("csv") else { throw APIError.badRequest("Field 'csv' (the roster's text) is required") }
        let roster: Roster
        do { roster = try Roster.parse(text) } catch { throw APIError.badRequest(error.description) }
        guard roster.entries.count <= Self.maxRoster else {
            throw APIError.badRequest("The roster lists \(roster.entries.count) users; at most \(Self.maxRoster) at a time")
        }
        var problems: [String] = []
        let blocked = hub.authenticator.configuration.blockedUsers
        let profiles = Set(hub.spawnSettings.profiles.map(\.name))
        var existing: [String] = []
        for chunk in roster.entries.chunked(500) {
            var query = UserQuery()
            query.names = Set(chunk.map(\.name))
            existing += try await hub.store.users(query).users.map(\.name)
        }
        let taken = Set(existing)
        for entry in roster.entries {
            if taken.contains(entry.name) { problems.append("line \(entry.line): user \(entry.name) already exists") }
            if blocked.contains(entry.name) { problems.append("line \(entry.line): user \(entry.name) is blocked by the configuration") }
            if let profile = entry.profile, !profiles.contains(profile) {
                let known = profiles.isEmpty ? "this hub has no profiles" : "use one of \(profiles.sorted().joined(separator: ", "))"
                problems.append("line \(entry.line): no profile \(profile) (\(known))")
            }
        }
        guard problems.isEmpty else {
            let shown = problems.prefix(20).joined(separator: "; ") + (problems.count > 20 ? " (and \(problems.count - 20) more)" : "")
            throw APIError.badRequest("The roster has \(problems.count) problem\(problems.count == 1 ? "" : "s"): \(shown)")
        }
        let accounts = try await Self.hashedPasswords(for: roster.entries.map(\.name), native: nativeMode, authenticator: hub.authenticator)
        let users = roster.entries.map { entry in
            NewUser(name: entry.name, admin: entry.admin, approval: .approved, passwordHash: accounts[entry.name]?.hash)
        }
        let result = try await hub.store.createUsers(users)
        hub.manager?.usersApproved(result.created.map { ($0.name, $0.id) })
        // Names taken by someone else between the check and the insert are reported, not fatal:
        // the users that were created must still get their passwords shown.
        let skipped = Set(result.existing)
        let created = roster.entries.filter { !skipped.contains($0.name) }
        // Groups: create the missing ones, then add members group by group.
        var members: [String: [String]] = [:]
        for entry in created { for group in entry.groups { members[group, default: []].append(entry.name) } }
        for group in members.keys.sorted() {
            guard try await hub.store.group(named: group) == nil else { continue }
            // Created by someone else meanwhile is as good as created here.
            do { _ = try await hub.store.createGroups([group]) } catch let error as StoreError where error.code == .alreadyExists {}
        }
        for (group, names) in members { try await hub.store.addMembers(names, toGroup: group) }
        // A profile is remembered by the default server and used by its starts.
        let ids = Dictionary(result.created.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for entry in created {
            guard let profile = entry.profile, let user = ids[entry.name] else { continue }
            var server = ServerRecord(userID: user.id, userName: user.name, name: "")
            server.state = .object(["profile": .string(profile)])
            _ = try await hub.store.saveServer(server)
        }
        hub.logger.info("roster imported", metadata: ["atrium.count": "\(result.created.count)", "atrium.by": "\(identity.user.name)"])
        let items: [JSONValue] = created.map { entry in
            .object([
                "name": .string(entry.name), "line": .number(Double(entry.line)),
                "password": accounts[entry.name].map { JSONValue.string($0.password) } ?? .null,
                "groups": .array(entry.groups.map(JSONValue.string)),
                "profile": entry.profile.map(JSONValue.string) ?? .null, "admin": .bool(entry.admin),
            ])
        }
        return JSONResponse.make(
            .object(["users": .array(items), "skipped": .array(result.existing.map(JSONValue.string))]), status: .created)
    }

    /// Generated passwords and their hashes, hashed a few at a time (bcrypt is slow on purpose).
    static func hashedPasswords(for names: [String], native: Bool, authenticator: Authenticator) async throws -> [String: (password: String, hash: String)] {
        guard native else { return [:] }
        return try await withThrowingTaskGroup(of: (String, String, String).self) { group in
            var result: [String: (password: String, hash: String)] = [:]
            var pending = names[...]
            var running = 0
            let width = max(2, ProcessInfo.processInfo.activeProcessorCount)
            while true {
                while running < width, let name = pending.popFirst() {
                    group.addTask {
                        let password = Authenticator.generatedPassword()
                        return (name, password, try await authenticator.hash(password))
                    }
                    running += 1
                }
                guard let item = try await group.next() else { break }
                running -= 1
                result[item.0] = (item.1, item.2)
            }
            return result
        }
    }

    /// `POST /users/{name}/reset-password`: sets a generated password and returns it once. The
    /// user's sessions end and any lockout is lifted.
    func resetPassword(_ request: Request, context: HubRequestContext) async throws -> Response {
        let name = try UsersAPI.pathName(context)
        let existing = try await hub.store.user(named: name)
        let identity = try context.require(["admin:users"], user: name, groups: existing?.groups ?? [])
        guard existing != nil else { throw APIError.notFound("No such user: \(name)") }
        guard nativeMode else { throw APIError.badRequest("This hub uses a shared password: there is no password of \(name) to reset") }
        let password = Authenticator.generatedPassword()
        do { try await hub.authenticator.setPassword(name: name, password) } catch let error as AccountError {
            throw APIError.badRequest(error.message)
        }
        hub.logger.info("password reset by admin", metadata: ["atrium.user": "\(name)", "atrium.by": "\(identity.user.name)"])
        return JSONResponse.make(.object(["name": .string(name), "password": .string(password)]))
    }

    /// `POST /users/{name}/delete-forever`: stops the user's servers, deletes their stored
    /// files through the backend, then the user. Cannot be undone.
    func deleteForever(_ request: Request, context: HubRequestContext) async throws -> Response {
        let name = try UsersAPI.pathName(context)
        let existing = try await hub.store.user(named: name)
        let identity = try context.require(["delete:users"], user: name, groups: existing?.groups ?? [])
        guard existing != nil else { throw APIError.notFound("No such user: \(name)") }
        guard name != identity.user.name else { throw APIError.badRequest("You cannot delete your own account") }
        if let manager = hub.manager {
            do { try await manager.removeAll(user: name, deletingFiles: true) } catch let error as SpawnError {
                throw ServersAPI.apiError(error)
            }
        }
        try await hub.store.deleteUser(name)
        hub.logger.notice("user and files deleted", metadata: ["atrium.user": "\(name)", "atrium.by": "\(identity.user.name)"])
        return Response(status: .noContent)
    }
}

extension Array {
    fileprivate func chunked(_ size: Int) -> [[Element]] {
        stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}
