import AtriumAuth
import AtriumModel
import AtriumStore
import Foundation
import Hummingbird

/// `/hub/api/users/{name}/tokens…`: list, create (secret shown once), read and revoke.
struct TokensAPI {
    let hub: Hub

    func register(on api: RouterGroup<HubRequestContext>) {
        api.get("users/:name/tokens", use: list)
        api.post("users/:name/tokens", use: create)
        api.get("users/:name/tokens/:token_id", use: get)
        api.delete("users/:name/tokens/:token_id", use: delete)
    }

    /// Longest expiry accepted: 10 years.
    static let maxExpiry: Double = 10 * 365 * 24 * 3600

    func list(_ request: Request, context: HubRequestContext) async throws -> Response {
        let name = try UsersAPI.pathName(context)
        let user = try await hub.store.user(named: name)
        try context.require(["read:tokens"], user: name, groups: user?.groups ?? [])
        guard user != nil else { throw APIError.notFound("No such user: \(name)") }
        let now = Date()
        let tokens = try await hub.store.tokens(ofUser: name).filter { $0.expiresAt.map { $0 > now } ?? true }
        return JSONResponse.make(.object(["api_tokens": .array(tokens.map { Models.token($0, owner: user) })]))
    }

    func create(_ request: Request, context: HubRequestContext) async throws -> Response {
        let name = try UsersAPI.pathName(context)
        let owner = try await hub.store.user(named: name)
        let body = try await JSONBody.read(request, context: context, allowEmpty: true)
        var context = context
        if context.identity == nil, case .object(let auth)? = body.fields["auth"] {
            // As JupyterHub: with no credential, the body's `auth` {username, password} logs in
            // (lockout and failure counting included) and the token is for that user.
            guard case .string(let username)? = auth["username"], case .string(let password)? = auth["password"] else {
                throw APIError.badRequest("auth must hold username and password")
            }
            let user: UserRecord
            do { user = try await hub.authenticator.login(name: username, password: password, address: context.remoteAddress) } catch {
                throw APIError.forbidden("Missing or invalid credentials.")
            }
            context.identity = Identity(user: user, scopes: Permissions.scopes(of: user), credential: .session)
        }
        let identity = try context.requireIdentity()
        // As JupyterHub: a missing owner and one out of reach are the same 403, worded so it
        // does not tell whether the user exists.
        guard let owner, identity.scopes.allows("tokens", user: name, groups: owner.groups) else {
            throw APIError.forbidden("User \(name) not found or no permissions to generate tokens")
        }
        // Fields JupyterHub does not read are ignored, as it ignores them.
        let expiresIn = try body.number("expires_in")
        if let expiresIn, expiresIn < 0 || expiresIn > Self.maxExpiry || !expiresIn.isFinite {
            throw APIError.badRequest("expires_in must be between 0 (no expiry) and \(Int(Self.maxExpiry)) seconds")
        }
        let note = try body.string("note")
        if let note, note.utf8.count > 1000 { throw APIError.badRequest("note is longer than 1000 bytes") }
        let scopes: [String]
        do {
            scopes = try Permissions.requestedTokenScopes(scopes: try body.strings("scopes"), roles: try body.strings("roles"), owner: owner)
        } catch let error as ScopeError {
            throw APIError.badRequest(error.description)
        } catch let error as AccountError {
            throw APIError.badRequest(error.message)
        }
        // A new token never grants more than the credential creating it holds.
        let ownerScopes = Permissions.scopes(of: owner)
        let granted = scopes == ["inherit"] ? ownerScopes : ((try? ScopeSet(expanding: scopes, owner: owner.name)) ?? ScopeSet()).intersection(ownerScopes)
        guard identity.scopes.covers(granted) else {
            throw APIError.forbidden("Not assigning requested scopes beyond those of the requesting credential")
        }
        let (secret, record) = try await TokenHashing.issue(
            for: owner, scopes: scopes, note: note ?? (identity.user.name == owner.name ? "Requested via api" : "Requested via api by user \(identity.user.name)"),
            expiresIn: (expiresIn ?? 0) > 0 ? expiresIn : nil, store: hub.store)
        hub.logger.info("token created", metadata: ["atrium.user": "\(name)", "atrium.token": "a\(record.id)"])
        return JSONResponse.make(Models.token(record, owner: owner, secret: secret), status: .created)
    }

    private func tokenID(_ context: HubRequestContext) -> Int64? {
        guard let raw = context.parameters.get("token_id"), raw.first == "a" else { return nil }
        return Int64(raw.dropFirst())
    }

    func get(_ request: Request, context: HubRequestContext) async throws -> Response {
        let name = try UsersAPI.pathName(context)
        let user = try await hub.store.user(named: name)
        try context.require(["read:tokens"], user: name, groups: user?.groups ?? [])
        guard let user else { throw APIError.notFound("No such user: \(name)") }
        guard let id = tokenID(context), let token = try await hub.store.token(id: id, ofUser: name) else {
            throw APIError.notFound("No such token")
        }
        return JSONResponse.make(Models.token(token, owner: user))
    }

    func delete(_ request: Request, context: HubRequestContext) async throws -> Response {
        let name = try UsersAPI.pathName(context)
        let user = try await hub.store.user(named: name)
        try context.require(["tokens"], user: name, groups: user?.groups ?? [])
        guard user != nil else { throw APIError.notFound("No such user: \(name)") }
        guard let id = tokenID(context), try await hub.store.deleteToken(id: id, ofUser: name) else {
            throw APIError.notFound("No such token")
        }
        return Response(status: .noContent)
    }
}
