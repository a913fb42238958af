import AtriumAuth
import AtriumModel
import AtriumStore
import Foundation
import Hummingbird

/// `/hub/api/`, `/info`, `/user`, and the health checks.
struct HubAPI {
    let hub: Hub

    func register(on api: RouterGroup<HubRequestContext>) {
        api.get("", use: root)
        api.get("info", use: info)
        api.get("user", use: whoami)
        api.get("health", use: health)
        api.get("authorizations/token/:token", use: tokenOwner)
        api.get("authorizations/cookie/:cookie_name/:cookie_value", use: cookieOwner)
        api.get("authorizations/cookie/:cookie_name", use: cookieOwner)
        api.get("proxy", use: proxyRoutes)
        api.post("shutdown", use: shutdown)
        api.post("proxy", use: proxyCheck)
        api.patch("proxy", use: proxyCheck)
    }

    func root(_ request: Request, context: HubRequestContext) async throws -> Response {
        JSONResponse.make(.object([
            "version": .string(hub.settings.apiVersion),
            "atrium_version": .string(hub.settings.atriumVersion),
        ]))
    }

    func info(_ request: Request, context: HubRequestContext) async throws -> Response {
        try context.requireUnfiltered(["read:hub"])
        let mode = hub.authenticator.configuration.mode
        return JSONResponse.make(.object([
            "version": .string(hub.settings.apiVersion),
            "atrium_version": .string(hub.settings.atriumVersion),
            "python": .string("n/a (Atrium is written in Swift)"),
            "sys_executable": .string(CommandLine.arguments.first ?? "atrium"),
            "authenticator": .object(["class": .string("atrium.\(mode.rawValue)"), "version": .string(hub.settings.atriumVersion)]),
            "spawner": .object(["class": .string("atrium"), "version": .string(hub.settings.atriumVersion)]),
        ]))
    }

    func whoami(_ request: Request, context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        let servers = try await hub.store.servers(ofUserIDs: [identity.user.id])[identity.user.id] ?? []
        guard case .object(var model) = Models.user(identity.user, servers: servers, identity: identity, includeStopped: false) else {
            throw APIError(.internalServerError, "user model")
        }
        model["scopes"] = .array(identity.scopes.strings.map(JSONValue.string))
        model["session_id"] = .null
        model["token_id"] = identity.tokenID.map(JSONValue.string) ?? .null
        return JSONResponse.make(.object(model))
    }

    /// Healthy when the database answers and the backend can serve (a Kubernetes watch cache
    /// that gave up makes the hub unhealthy rather than silently stale).
    func health(_ request: Request, context: HubRequestContext) async throws -> Response {
        if let problem = await hub.manager?.backendHealthProblem() {
            context.logger.error("health check: backend unhealthy", metadata: ["atrium.error": "\(problem)"])
            return JSONResponse.make(.object(["status": .string("unhealthy"), "message": .string("workspace backend unavailable")]), status: .serviceUnavailable)
        }
        // A write, not only a read: a full disk or a read-only database still answers reads.
        do {
            try await hub.store.probeWrite()
            return JSONResponse.make(.object(["status": .string("ok")]))
        } catch {
            let fault = DatabaseFault.classify(error)?.description ?? "unreachable"
            context.logger.error("health check: database \(fault)", metadata: ["atrium.error": "\(String(reflecting: error))"])
            return JSONResponse.make(
                .object(["status": .string("unhealthy"), "message": .string("database \(fault)"), "database": .string(fault)]),
                status: .serviceUnavailable)
        }
    }

    /// `GET /hub/api/authorizations/token/{token}`: who owns a token (deprecated in JupyterHub
    /// 2.0 for `/hub/api/user`, still served there and used by jhub-client). Any valid
    /// credential may ask; having the token is what lets one see its owner's name and groups.
    /// 404 for a token that is unknown or expired.
    func tokenOwner(_ request: Request, context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        context.logger.warning("/authorizations/token/:token is deprecated (as in JupyterHub 2.0): use /hub/api/user")
        let secret = context.parameters.get("token") ?? ""
        guard let record = try await TokenHashing.lookup(secret, in: hub.store), record.expiresAt.map({ $0 > Date() }) ?? true,
            let owner = try await hub.store.user(named: record.userName)
        else { throw APIError.notFound("No such token") }
        let servers = try await hub.store.servers(ofUserIDs: [owner.id])[owner.id] ?? []
        guard case .object(var model) = Models.user(owner, servers: servers, identity: identity, includeStopped: false) else {
            throw APIError(.internalServerError, "user model")
        }
        model["kind"] = .string("user")
        model["name"] = .string(owner.name)
        model["groups"] = .array(owner.groups.sorted().map(JSONValue.string))
        return JSONResponse.make(.object(model))
    }

    /// `GET /hub/api/authorizations/cookie/{name}[/{value}]`: whose browser session a cookie
    /// value is (deprecated in JupyterHub 2.0 for OAuth, still served there). Token-authenticated
    /// only; the value comes from the path, or from the body (the older form). 404 for another
    /// cookie's name or a value that is no live session. The model is filtered by the token's
    /// scopes.
    func cookieOwner(_ request: Request, context: HubRequestContext) async throws -> Response {
        let identity = try context.requireIdentity()
        guard case .token = identity.credential else { throw APIError.forbidden("This endpoint needs an API token") }
        context.logger.warning("/authorizations/cookie is deprecated (as in JupyterHub 2.0): use /hub/api/user with OAuth tokens")
        let name = context.parameters.get("cookie_name").map { $0.removingPercentEncoding ?? $0 } ?? ""
        var value = context.parameters.get("cookie_value").map { $0.removingPercentEncoding ?? $0 }
        if value == nil {
            let body = try await request.body.collect(upTo: 16 * 1024)
            value = String(decoding: body.readableBytesView, as: UTF8.self)
        }
        guard name == SessionCodec.cookieName, let value, !value.isEmpty,
            let user = try await hub.sessionUser(cookie: value)
        else { throw APIError.notFound("No such session") }
        let servers = try await hub.store.servers(ofUserIDs: [user.id])[user.id] ?? []
        return JSONResponse.make(Models.user(user, servers: servers, identity: identity, includeStopped: false))
    }

    /// `POST /hub/api/shutdown` (scope `shutdown`): a clean stop of the hub, as JupyterHub's.
    /// `servers` (true/false) overrides `spawn.stop_servers_on_shutdown` for this stop; `proxy`
    /// is accepted (the proxy is part of the hub and stops with it). Answers 202 first.
    func shutdown(_ request: Request, context: HubRequestContext) async throws -> Response {
        let identity = try context.requireUnfiltered(["shutdown"])
        let body = try await JSONBody.read(request, context: context, allowEmpty: true)
        try body.only(["servers", "proxy"])
        let servers = try body.bool("servers")
        _ = try body.bool("proxy")
        if let servers { await hub.manager?.setStopServersOnShutdown(servers) }
        guard hub.shutdown.trigger() else { throw APIError(.serviceUnavailable, "The hub cannot be shut down from the API right now") }
        context.logger.notice("shutdown requested through the API", metadata: ["atrium.by": "\(identity.user.name)", "atrium.servers": "\(servers.map(String.init) ?? "as configured")"])
        return JSONResponse.make(.object(["message": .string("Shutting down Hub")]), status: .accepted)
    }

    /// `GET /hub/api/proxy`: the routing table, as JupyterHub reports its proxy's (scope
    /// `proxy`): `{routespec: {routespec, target, data: {user, server_name}}}`, the hub's own
    /// route `/` included. Paginated as every list is.
    func proxyRoutes(_ request: Request, context: HubRequestContext) async throws -> Response {
        try context.requireUnfiltered(["proxy"])
        var routes: [(String, JSONValue)] = [("/", .object(["routespec": .string("/"), "target": .string("hub"), "data": .object(["hub": .bool(true)])]))]
        for route in hub.manager?.routes.all ?? [] {
            let spec = Models.serverURL(user: route.user, server: route.server)
            routes.append((spec, .object([
                "routespec": .string(spec), "target": .string(route.endpoint.address.description),
                "data": .object(["user": .string(route.user), "server_name": .string(route.server)]),
            ])))
        }
        routes.sort { $0.0 < $1.0 }
        let page = try PageRequest(request, settings: hub.settings)
        let limit = page.limit ?? routes.count
        let slice = routes.dropFirst(page.offset).prefix(limit)
        let object = JSONValue.object(Dictionary(uniqueKeysWithValues: slice.map { ($0.0, $0.1) }))
        guard page.paginated else { return JSONResponse.make(object) }
        let next: JSONValue = page.offset + slice.count < routes.count
            ? .object(["offset": .number(Double(page.offset + slice.count)), "limit": .number(Double(limit))]) : .null
        return JSONResponse.make(.object([
            "items": object,
            "_pagination": .object(["offset": .number(Double(page.offset)), "limit": .number(Double(limit)), "total": .number(Double(routes.count)), "next": next]),
        ]))
    }

    /// `POST /hub/api/proxy`: checks the routes against the servers, as JupyterHub's does
    /// (``ServerManager/checkRoutes()``). `PATCH /hub/api/proxy` (a new proxy took over): the
    /// proxy is part of the hub, so it changes nothing, then checks the routes too. PATCH still
    /// wants a JSON object, as JupyterHub does.
    func proxyCheck(_ request: Request, context: HubRequestContext) async throws -> Response {
        try context.requireUnfiltered(["proxy"])
        if request.method == .patch {
            let body = try await JSONBody.read(request, context: context)
            try body.only(["api_url", "auth_token"])
        }
        await hub.manager?.checkRoutes()
        return Response(status: .ok)
    }
}
