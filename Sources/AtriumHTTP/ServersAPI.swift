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

        // `…/servers/` with an empty name is the default server, as in JupyterHub's routes.
        api.get("users/:name/servers", use: getNamed)
        api.put("users/:name/servers", use: createNamed)
        api.post("users/:name/servers", use: { try await start($0, $1, named: true) })
        api.patch("users/:name/servers", use: patchNamed)
        api.delete("users/:name/servers", use: { try await stop($0, $1, named: true) })
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

    /// The user (checked for `scopes`) and the server name from the path, as given: a name
    /// that is not a valid new name may still name an existing server (404 when it does not).
    func target(_ context: HubRequestContext, named: Bool, scopes: [String]) async throws -> (UserRecord, String, Identity) {
        let name = try UsersAPI.pathName(context)
        let server = named ? (context.parameters.get("server").map { $0.removingPercentEncoding ?? $0 } ?? "") : ""
        let user = try await hub.store.user(named: name)
        let identity = try context.require(scopes, user: name, groups: user?.groups ?? [], server: server)
        guard let user else { throw APIError.notFound("No such user: \(name)") }
        return (user, server, identity)
    }

    /// JupyterHub's `_check_named_server_request` for a server about to be created (or a
    /// rename's new name): named servers enabled, a valid name and display name.
    func checkNewServer(_ server: String, displayName: String?) throws {
        guard !server.isEmpty else { return }
        guard hub.spawnSettings.allowNamedServers else { throw APIError.badRequest("Named servers are not enabled.") }
        guard (try? ServerName(server)) != nil else { throw APIError.badRequest("Invalid server_name: \(Self.pythonRepr(server))") }
        if let displayName, !Self.isValidDisplayName(displayName) {
            throw APIError.badRequest("Invalid display_name: \(Self.pythonRepr(displayName))")
        }
    }

    /// A string quoted as JupyterHub's messages quote it (Python's `repr`).
    static func pythonRepr(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where Character(scalar) == quote: out += "\\" + String(quote)
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: out += String(format: "\\x%02x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        out.append(quote)
        return out
    }

    /// JupyterHub's `is_valid_display_name`: 1–255 characters, printable, single spaces only
    /// and none at either end.
    static func isValidDisplayName(_ s: String) -> Bool {
        guard (1...255).contains(s.count), !s.contains("  "), !s.hasPrefix(" "), !s.hasSuffix(" ") else { return false }
        return s.unicodeScalars.allSatisfy { c in
            if c == " " { return true }
            switch c.properties.generalCategory {
            case .control, .format, .surrogate, .privateUse, .unassigned, .spaceSeparator, .lineSeparator, .paragraphSeparator: return false
            default: return true
            }
        }
    }

    /// JupyterHub's `get_server_json_body`: `{display_name, user_options}`, or (the older
    /// form) the whole body as the user options.
    static func serverBody(_ body: JSONBody) throws -> (displayName: String?, userOptions: JSONValue?) {
        if body.fields.isEmpty { return (nil, nil) }
        if let value = body.fields["display_name"], value != .null {
            guard case .string = value else { throw APIError.badRequest("display_name must be a string") }
        }
        if let value = body.fields["user_options"], value != .null {
            guard case .object = value else { throw APIError.badRequest("user_options must be an object or null") }
        }
        let displayName: String? = if case .string(let d)? = body.fields["display_name"] { d } else { nil }
        if body.fields["display_name"] != nil || body.fields["user_options"] != nil {
            let options = body.fields["user_options"].flatMap { $0 == .null ? nil : $0 }
            return (displayName, options)
        }
        return (nil, .object(body.fields))
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
        let (displayName, options) = try Self.serverBody(body)
        let existing = try await hub.store.server(userID: user.id, name: server)
        if existing == nil { try checkNewServer(server, displayName: displayName ?? server) }
        // A `profile` field of the user options picks a profile, as KubeSpawner's profile list does.
        let profile: String? = if case .string(let p)? = options?.objectValue?["profile"] { p } else { nil }
        let outcome = try await mapping { try await manager.start(user: user, serverName: server, userOptions: options, profile: profile) }
        if let displayName, !displayName.isEmpty, !server.isEmpty {
            try await hub.store.setServerDisplayName(userID: user.id, name: server, displayName: displayName)
        } else if existing?.displayName == nil, !server.isEmpty {
            try await hub.store.setServerDisplayName(userID: user.id, name: server, displayName: server)
        }
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
        if !server.isEmpty {
            guard hub.spawnSettings.allowNamedServers else { throw APIError.badRequest("Named servers are not enabled.") }
            guard try await hub.store.server(userID: user.id, name: server) != nil else {
                throw APIError.notFound("\(user.name) has no server named '\(server)'")
            }
        } else if remove {
            throw APIError.badRequest("Cannot delete the default server")
        }
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
                    // As JupyterHub: `html_message` on the ready event (a link to the server)
                    // and on a failure, not on the events between.
                    var fields: [String: JSONValue] = ["progress": .number(Double(event.progress)), "message": .string(event.message)]
                    if event.ready {
                        fields["ready"] = .bool(true)
                        if let url = event.url {
                            let shown = Self.escapeHTML(url)
                            fields["html_message"] = .string("Server ready at <a href=\"\(shown)\">\(shown)</a>")
                        }
                    }
                    if event.failed {
                        fields["failed"] = .bool(true)
                        fields["html_message"] = .string(Self.escapeHTML(event.message))
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
        var record = try await hub.store.server(userID: user.id, name: server)
        // The default server always exists in JupyterHub's model, started or not.
        if record == nil, server.isEmpty { record = ServerRecord(userID: user.id, userName: user.name, name: "") }
        guard let record else { throw APIError.notFound("No such server: \(user.name)/\(server)") }
        let admin = identity.scopes.allows("admin:server_state", user: user.name, groups: user.groups, server: server)
        guard case .object(var model) = Models.server(record, includeState: admin) else { return JSONResponse.make(.null) }
        if admin { model["atrium_usage"] = Models.usage(await (try manager).usage(user: user.name, serverName: server)) }
        return JSONResponse.make(.object(model))
    }

    /// `PUT …/servers/{server}`: creates a named server without starting it (JupyterHub 6).
    func createNamed(_ request: Request, context: HubRequestContext) async throws -> Response {
        let (user, server, identity) = try await target(context, named: true, scopes: ["start:servers"])
        guard !server.isEmpty else { throw APIError.conflict("User \(user.name) already has a default server") }
        if try await hub.store.server(userID: user.id, name: server) != nil {
            throw APIError.conflict("User \(user.name) already has server \(server)")
        }
        let body = try await JSONBody.read(request, context: context, allowEmpty: true)
        let (displayName, options) = try Self.serverBody(body)
        let shown = (displayName?.isEmpty ?? true) ? server : displayName!
        try checkNewServer(server, displayName: shown)
        try await mapping { try await manager.createNamed(user: user, serverName: server, userOptions: options ?? .object([:])) }
        try await hub.store.setServerDisplayName(userID: user.id, name: server, displayName: shown)
        guard let record = try await hub.store.server(userID: user.id, name: server) else { throw APIError.notFound("No such server") }
        return JSONResponse.make(
            Models.server(record, includeState: identity.scopes.allows("admin:server_state", user: user.name, groups: user.groups, server: server)),
            status: .created)
    }

    /// `PATCH …/servers/{server}`: renames a stopped server, sets its user options or display
    /// name, as JupyterHub 6's `UserServerAPIHandler.patch`. Renaming the default server
    /// (`…/servers/`) turns it into a named one; a new default server exists from then on.
    func patchNamed(_ request: Request, context: HubRequestContext) async throws -> Response {
        let (user, server, identity) = try await target(context, named: true, scopes: ["start:servers"])
        let body = try await JSONBody.read(request, context: context, allowEmpty: true)
        guard !body.fields.isEmpty else { throw APIError.badRequest("Must specify at least one field to modify.") }
        let supported: Set<String> = ["name", "display_name", "user_options"]
        let unexpected = Set(body.fields.keys).subtracting(supported)
        guard unexpected.isEmpty else {
            throw APIError.badRequest("Unexpected fields: \(unexpected.sorted().joined(separator: ", ")), supported fields: \(supported.sorted().joined(separator: ","))")
        }
        let newName: String? = try {
            guard let value = body.fields["name"], value != .null else { return nil }
            guard case .string(let n) = value else { throw APIError.badRequest("name must be a string") }
            return n
        }()
        var displayName: String? = newName
        if let value = body.fields["display_name"], value != .null {
            guard case .string(let d) = value else { throw APIError.badRequest("display_name must be a string") }
            displayName = d
        }
        if let newName {
            guard hub.spawnSettings.allowNamedServers else { throw APIError.badRequest("Named servers are not enabled.") }
            if server.isEmpty {
                // Renaming the default server makes one more named server.
                do { try await manager.checkNamedServerLimit(user: user.name, userID: user.id) } catch let error as SpawnError { throw Self.apiError(error) }
            }
            if try await hub.store.server(userID: user.id, name: newName) == nil, !newName.isEmpty {
                try checkNewServer(newName, displayName: (displayName?.isEmpty ?? true) ? newName : displayName)
            }
        } else if let displayName, !displayName.isEmpty, !Self.isValidDisplayName(displayName) {
            throw APIError.badRequest("Invalid display_name: \(Self.pythonRepr(displayName))")
        }
        var record = try await hub.store.server(userID: user.id, name: server)
        if record == nil, server.isEmpty { record = ServerRecord(userID: user.id, userName: user.name, name: "") }
        guard var record else { throw APIError.notFound("User \(user.name) has no such server \(NameRules.escaped(server))") }
        guard record.phase == .stopped || record.phase == .failed else {
            throw APIError.badRequest("\(user.name)/\(server) is active. Please stop it before modifying it.")
        }
        var name = server
        if let newName {
            // The default server always exists: renaming onto it is a conflict too.
            let taken = try await hub.store.server(userID: user.id, name: newName) != nil
            if newName.isEmpty || taken {
                throw APIError.conflict("User \(user.name) already has server '\(newName)'")
            }
            try await mapping { try await manager.forget(user: user.name, serverName: server) }
            if server.isEmpty { try await hub.store.setServerDisplayName(userID: user.id, name: "", displayName: nil) }
            try await hub.store.renameServer(userID: user.id, from: server, to: newName)
            name = newName
        }
        if let value = body.fields["user_options"] {
            guard case .object = value else { throw APIError.badRequest("user_options must be a dict") }
            guard var renamed = try await hub.store.server(userID: user.id, name: name) else { throw APIError.notFound("No such server") }
            renamed.userOptions = value
            try await hub.store.saveServer(renamed)
        }
        if let displayName, !displayName.isEmpty {
            try await hub.store.setServerDisplayName(userID: user.id, name: name, displayName: displayName)
        }
        record = try await hub.store.server(userID: user.id, name: name) ?? record
        return JSONResponse.make(Models.server(record, includeState: identity.scopes.allows("admin:server_state", user: user.name, groups: user.groups, server: name)))
    }
}
