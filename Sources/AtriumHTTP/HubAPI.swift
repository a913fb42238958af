import AtriumAuth
import AtriumModel
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
        do {
            _ = try await hub.store.userCount()
            return JSONResponse.make(.object(["status": .string("ok")]))
        } catch {
            context.logger.error("health check: database unreachable", metadata: ["atrium.error": "\(error)"])
            return JSONResponse.make(.object(["status": .string("unhealthy"), "message": .string("database unreachable")]), status: .serviceUnavailable)
        }
    }
}
