import AtriumAuth
import AtriumModel
import AtriumSpawn
import AtriumStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `/hub/api/users/{name}/server…` and `…/servers/{server}…`: start, stop, named servers,
/// progress; and Atrium's additions: suspend, resume, logs.
struct ServersAPI {
    let hub: Hub

    func register(on api: RouterGroup<HubRequestContext>) {
        api.post("users/:name/server", use: { try await start($0, $1, named: false) })
        api.delete("users/:name/server", use: { try await stop($0, $1, named: false) })
        api.get("users/:name/server/progress", use: { try await progress($0, $1, named: false) })
        api.post("users/:name/server/suspend", use: { try await suspend($0, $1, named: false) })
        api.post("users/:name/server/resume", use: { try await start($0, $1, named: false) })
        api.get("users/:name/server/logs", use: { try await logs($0, $1, named: false) })

        api.get("users/:name/servers/:server", use: getNamed)
        api.put("users/:name/servers/:server", use: createNamed)
        api.post("users/:name/servers/:server", use: { try await start($0, $1, named: true) })
        api.patch("users/:name/servers/:server", use: patchNamed)
        api.delete("users/:name/servers/:server", use: { try await stop($0, $1, named: true) })
        api.get("users/:name/servers/:server/progress", use: { try await progress($0, $1, named: true) })
        api.post("users/:name/servers/:server/suspend", use: { try await suspend($0, $1, named: true) })
        api.post("users/:name/servers/:server/resume", use: { try await start($0, $1, named: true) })
        api.get("users/:name/servers/:server/logs", use: { try await logs($0, $1, named: true) })
    }

    var manager: ServerManager {
        get throws {
            guard let manager = hub.manager else { throw APIError(.serviceUnavailable, "This hub runs no workspace backend") }
            return manager
        }
    }

    /// The user (checked for `scopes`) and the server name from the path.
    func target(_ context: HubRequestContext, named: Bool, scopes: [String]) async throws -> (UserRecord, String, Identity) {
        let name = try UsersAPI.pathName(context)
        var server = ""
        if named {
            let raw = try UsersAPI.pathName(context, "server")
            do { server = try ServerName(raw).rawValue } catch { throw APIError.badRequest(error.description) }
        }
        let user = try await hub.store.user(named: name)
        let identity = try context.require(scopes, user: name, groups: user?.groups ?? [], server: server)
        guard let user else { throw APIError.notFound("No such user: \(name)") }
        return (user, server, identity)
    }

    static func apiError(_ error: SpawnError) -> APIError {
        switch error.code {
        case .rejected, .notAllowed: return APIError.badRequest(error.message)
        case .notFound: return APIError.notFound(error.message)
        case .conflict: return APIError.conflict(error.message)
        case .backendFailed: return APIError(.internalServerError, error.message)
        case .tooBusy(let seconds):
            var api = APIError(.tooManyRequests, error.message)
            api.headers[.retryAfter] = String(seconds)
            return api
        }
    }

    func mapping<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as SpawnError { throw Self.apiError(error) }
    }

    func start(_ request: Request, _ context: HubRequestContext, named: Bool) async throws -> Response {
        let (user, server, _) = try await target(context, named: named, scopes: ["start:servers"])
        let body = try await JSONBody.read(request, context: context, allowEmpty: true)
        // JupyterHub passes the whole body to the spawner as user options; a `profile` field
        // picks a profile, as KubeSpawner's profile list does.
        let options: JSONValue? = body.fields.isEmpty ? nil : .object(body.fields)
        let profile = try body.string("profile")
        let outcome = try await mapping { try await manager.start(user: user, serverName: server, userOptions: options, profile: profile) }
        switch outcome {
        case .ready: return Response(status: .created)
        case .pending: return Response(status: .accepted)
        }
    }

    func stop(_ request: Request, _ context: HubRequestContext, named: Bool) async throws -> Response {
        let (user, server, _) = try await target(context, named: named, scopes: ["delete:servers"])
        let body = try await JSONBody.read(request, context: context, allowEmpty: true)
        try body.only(["remove"])
        let remove = try body.bool("remove") ?? false
        if remove, !named { throw APIError.badRequest("Only named servers can be removed; stop the default server instead") }
        let outcome = try await mapping { try await manager.stop(user: user.name, serverName: server, remove: remove) }
        return Response(status: outcome == .stopped ? .noContent : .accepted)
    }

    func suspend(_ request: Request, _ context: HubRequestContext, named: Bool) async throws -> Response {
        let (user, server, _) = try await target(context, named: named, scopes: ["delete:servers"])
        let outcome = try await mapping { try await manager.suspend(user: user.name, serverName: server) }
        return Response(status: outcome == .stopped ? .noContent : .accepted)
    }

    func logs(_ request: Request, _ context: HubRequestContext, named: Bool) async throws -> Response {
        let (user, server, identity) = try await target(context, named: named, scopes: ["servers"])
        var lines = 100
        if let raw = request.uri.queryParameters["lines"] {
            guard let n = Int(raw), n >= 1, n <= 10_000 else { throw APIError.badRequest("lines must be a whole number from 1 to 10000") }
            lines = n
        }
        let output = try await mapping { try await manager.logs(user: user.name, serverName: server, lines: lines) }
        var body: [String: JSONValue] = ["lines": .array(output.map(JSONValue.string))]
        if identity.scopes.allows("admin:server_state", user: user.name, groups: user.groups) {
            body["atrium_usage"] = Models.usage(await (try manager).usage(user: user.name, serverName: server))
        }
        return JSONResponse.make(.object(body))
    }

    /// What a user who is not an admin is told when their server could not start.
    static let failureForUsers = "Your workspace could not start. Your instructor has been told; the details are in the hub's log and admin panel."

    func progress(_ request: Request, _ context: HubRequestContext, named: Bool) async throws -> Response {
        let (user, server, _) = try await target(context, named: named, scopes: ["read:servers"])
        let stream = try await mapping { try await manager.progress(user: user.name, serverName: server) }
        let detailed = context.identity?.user.admin ?? false
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"],
            body: ResponseBody { writer in
                for await event in stream {
                    var fields: [String: JSONValue] = [
                        "progress": .number(Double(event.progress)), "message": .string(event.message),
                        "html_message": .string(Self.escapeHTML(event.message)),
                    ]
                    if event.ready { fields["ready"] = .bool(true) }
                    if event.failed {
                        fields["failed"] = .bool(true)
                        // The reason names server paths and commands: for admins and the log.
                        if !detailed {
                            fields["message"] = .string(Self.failureForUsers)
                            fields["html_message"] = .string(Self.escapeHTML(Self.failureForUsers))
                        }
                    }
                    if let url = event.url { fields["url"] = .string(url) }
                    let data = (try? encoder.encode(JSONValue.object(fields))) ?? Data("{}".utf8)
                    var buffer = ByteBuffer(string: "data: ")
                    buffer.writeBytes(data)
                    buffer.writeString("\n\n")
                    try await writer.write(buffer)
                }
                try await writer.finish(nil)
            })
    }

    static func escapeHTML(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    func getNamed(_ request: Request, context: HubRequestContext) async throws -> Response {
        let (user, server, identity) = try await target(context, named: true, scopes: ["read:servers"])
        guard let record = try await hub.store.server(userID: user.id, name: server) else {
            throw APIError.notFound("No such server: \(user.name)/\(server)")
        }
        let admin = identity.scopes.allows("admin:server_state", user: user.name, groups: user.groups)
        guard case .object(var model) = Models.server(record, includeState: admin) else { return JSONResponse.make(.null) }
        if admin { model["atrium_usage"] = Models.usage(await (try manager).usage(user: user.name, serverName: server)) }
        return JSONResponse.make(.object(model))
    }

    func createNamed(_ request: Request, context: HubRequestContext) async throws -> Response {
        let (user, server, identity) = try await target(context, named: true, scopes: ["start:servers"])
        let body = try await JSONBody.read(request, context: context, allowEmpty: true)
        let options = try body.object("user_options").map(JSONValue.object) ?? .object([:])
        try await mapping { try await manager.createNamed(user: user, serverName: server, userOptions: options) }
        guard let record = try await hub.store.server(userID: user.id, name: server) else { throw APIError.notFound("No such server") }
        return JSONResponse.make(
            Models.server(record, includeState: identity.scopes.allows("admin:server_state", user: user.name, groups: user.groups)), status: .created)
    }

    func patchNamed(_ request: Request, context: HubRequestContext) async throws -> Response {
        let (user, server, identity) = try await target(context, named: true, scopes: ["start:servers"])
        let body = try await JSONBody.read(request, context: context)
        try body.only(["name", "display_name", "user_options"])
        guard var record = try await hub.store.server(userID: user.id, name: server) else {
            throw APIError.notFound("No such server: \(user.name)/\(server)")
        }
        guard record.phase == .stopped || record.phase == .failed else {
            throw APIError.badRequest("Server \(user.name)/\(server) must be stopped before it can be modified")
        }
        if let options = try body.object("user_options") {
            record.userOptions = .object(options)
            try await hub.store.saveServer(record)
        }
        var name = server
        if let newName = try body.string("name"), newName != server {
            do { name = try ServerName(newName).rawValue } catch { throw APIError.badRequest(error.description) }
            guard !name.isEmpty else { throw APIError.badRequest("A named server cannot be renamed to the default server") }
            try await mapping { try await manager.forget(user: user.name, serverName: server) }
            try await hub.store.renameServer(userID: user.id, from: server, to: name)
        }
        guard let updated = try await hub.store.server(userID: user.id, name: name) else { throw APIError.notFound("No such server") }
        return JSONResponse.make(Models.server(updated, includeState: identity.scopes.allows("admin:server_state", user: user.name, groups: user.groups)))
    }
}
