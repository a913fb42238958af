import AtriumAuth
import AtriumModel
import AtriumStore
import Foundation
import HTTPTypes
import Hummingbird

/// Resolves the request's credentials into an ``Identity``: an API token (`Authorization:
/// token …` or `Bearer …`, or `?token=`), else the session cookie. Never rejects by itself; the
/// handlers decide what an anonymous request may do. Users who are blocked, pending or revoked
/// have no identity, whatever credential they hold.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext
    let hub: Hub

    /// Token use is written at most this often per token.
    static let activityResolution: TimeInterval = 60

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let now = Date()
        // As JupyterHub: a token it does not know falls through to the session cookie, so a
        // front end that sends its own workspace token beside the cookie is still recognised.
        for secret in Self.tokenSecrets(request) {
            if let identity = try await identity(forToken: secret, now: now) {
                context.identity = identity
                break
            }
        }
        if context.identity == nil, let cookie = request.cookies[SessionCodec.cookieName]?.value,
            let user = try await hub.sessionUser(cookie: cookie, now: now)
        {
            try await recordUse(of: user, now: now)
            context.identity = Identity(user: user, scopes: Permissions.scopes(of: user), credential: .session)
            context.viaCookie = true
        }
        return try await next(request, context)
    }

    /// Every token the request carries: `Authorization`, then `?token=`.
    static func tokenSecrets(_ request: Request) -> [String] {
        var found: [String] = []
        if let secret = Hub.tokenSecret(authorization: request.headers[.authorization]) { found.append(secret) }
        if let query = request.uri.queryParameters["token"], !query.isEmpty, !found.contains(String(query)) { found.append(String(query)) }
        return found
    }

    private func identity(forToken secret: String, now: Date) async throws -> Identity? {
        guard let (token, owner) = try await hub.tokenOwner(secret: secret, now: now) else { return nil }
        if token.lastActivity.map({ now.timeIntervalSince($0) > Self.activityResolution }) ?? true {
            try await hub.store.recordTokenActivity([token.id: now])
        }
        try await recordUse(of: owner, now: now)
        return Identity(user: owner, scopes: Permissions.scopes(of: token, owner: owner), credential: .token(id: token.id))
    }

    /// Using the hub (a token or a session) is activity of the user, as in JupyterHub: the idle
    /// culler's `--cull-users` reads it. Written to the store at most once per
    /// ``activityResolution``; the uses between are kept by ``Hub/activity`` and written before
    /// anyone reads `last_activity` through the API, so a user active within the culler's
    /// timeout never looks idle to it, however short the timeout.
    private func recordUse(of user: UserRecord, now: Date) async throws {
        if user.lastActivity.map({ now.timeIntervalSince($0) > Self.activityResolution }) ?? true {
            try await hub.store.recordUserActivity(user.name, at: now)
        } else {
            hub.activity.touchUser(user.name, at: now)
        }
    }
}

/// Refuses cookie-authenticated API calls that change state without a matching XSRF token.
struct XSRFMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext
    let hub: Hub

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if context.viaCookie, ![.get, .head, .options].contains(request.method) {
            let submitted = request.headers[.init("X-XSRFToken")!] ?? request.uri.queryParameters["_xsrf"].map(String.init)
            guard hub.xsrfMatches(request, submitted: submitted) else {
                throw APIError.forbidden("'_xsrf' argument missing or does not match the _xsrf cookie (send it as the X-XSRFToken header)")
            }
        }
        return try await next(request, context)
    }
}

extension HubRequestContext {
    /// The identity, or a 403 as JupyterHub answers unauthenticated API calls.
    func requireIdentity() throws -> Identity {
        guard let identity else { throw APIError.forbidden("Missing or invalid credentials.") }
        return identity
    }

    /// Requires any of `scopes` reaching user `name` (member of `groups`).
    @discardableResult
    func require(_ scopes: [String], user name: String, groups: [String] = [], server: String? = nil) throws -> Identity {
        let identity = try requireIdentity()
        guard scopes.contains(where: { identity.scopes.allows($0, user: name, groups: groups, server: server) }) else {
            throw APIError.forbidden("Action is not authorized with current scopes; requires any of [\(scopes.joined(separator: ", "))]")
        }
        return identity
    }

    /// Requires any of `scopes` without a filter.
    @discardableResult
    func requireUnfiltered(_ scopes: [String]) throws -> Identity {
        let identity = try requireIdentity()
        guard scopes.contains(where: { identity.scopes.hasUnfiltered($0) }) else {
            throw APIError.forbidden("Action is not authorized with current scopes; requires any of [\(scopes.joined(separator: ", "))]")
        }
        return identity
    }

    /// Requires any of `scopes` reaching group `name`.
    @discardableResult
    func require(_ scopes: [String], group name: String) throws -> Identity {
        let identity = try requireIdentity()
        guard scopes.contains(where: { identity.scopes.allowsGroup($0, group: name) }) else {
            throw APIError.forbidden("Action is not authorized with current scopes; requires any of [\(scopes.joined(separator: ", "))]")
        }
        return identity
    }
}
