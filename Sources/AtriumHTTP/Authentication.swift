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
            // Best effort: a database that refuses writes must still let requests that only read through.
            do { try await hub.store.recordTokenActivity([token.id: now]) } catch {
                hub.logger.debug("could not record a token's use", metadata: ["atrium.error": "\(error)"])
            }
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
            do { try await hub.store.recordUserActivity(user.name, at: now) } catch {
                // Kept for the next flush: a refused write must not refuse the request.
                hub.activity.touchUser(user.name, at: now)
            }
        } else {
            hub.activity.touchUser(user.name, at: now)
        }
    }
}

/// XSRF protection of the API for browser sessions, as JupyterHub's (`_xsrf_utils.py`,
/// `apihandlers/base.py`):
/// - a cookie-authenticated POST with a body a cross-site HTML form can send (the CORS-safelisted
///   `text/plain`, `application/x-www-form-urlencoded`, `multipart/form-data`) loses the
///   cookie's identity, and so gets 403 "Missing or invalid credentials". (JupyterHub drops
///   every type but JSON; the admin panel's roster import sends `text/csv`, which no form can
///   send and a cross-site script cannot without a preflight the hub never grants.)
/// - a cookie-authenticated request must carry the signed `_xsrf` token (header `X-XSRFToken`,
///   or `?_xsrf=`) unless it is a read a browser makes on its own: a page navigation, a
///   same-origin `no-cors` fetch (an image), or a client that sends no `Sec-Fetch-Mode`. A
///   script's `fetch` or an `EventSource` (`Sec-Fetch-Mode: cors`) is checked, GETs included.
/// Token-authenticated requests are never checked.
struct XSRFMiddleware: RouterMiddleware {
    typealias Context = HubRequestContext
    let hub: Hub

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        guard context.viaCookie else { return try await next(request, context) }
        if request.method == .post, let type = request.headers[.contentType], Self.isFormType(type) {
            context.logger.warning("not allowing a cookie-authenticated POST with content-type \(type)")
            context.identity = nil
            context.viaCookie = false
            return try await next(request, context)
        }
        if Self.needsCheck(request) {
            let submitted = request.headers[.init("X-XSRFToken")!] ?? request.uri.queryParameters["_xsrf"].map(String.init)
            guard let submitted, !submitted.isEmpty else {
                throw APIError.forbidden("'_xsrf' argument missing from \(request.method) (send the _xsrf cookie's value as the X-XSRFToken header)")
            }
            guard hub.xsrfMatches(request, submitted: submitted) else {
                throw APIError.forbidden("XSRF cookie does not match \(request.method) argument")
            }
        }
        return try await next(request, context)
    }

    /// Whether `type` is a body an HTML form on another site can send.
    static func isFormType(_ type: String) -> Bool {
        let essence = type.lowercased().split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"].contains(essence)
    }

    /// JupyterHub's `_needs_check_xsrf` for a cookie-authenticated request.
    static func needsCheck(_ request: Request) -> Bool {
        let mode = request.headers[.init("Sec-Fetch-Mode")!] ?? "unspecified"
        let site = request.headers[.init("Sec-Fetch-Site")!] ?? "unspecified"
        let readOnly = [.get, .head, .options].contains(request.method)
        if mode == "websocket" { return false }
        if readOnly && (mode == "navigate" || mode == "unspecified") { return false }
        if readOnly && mode == "no-cors" && site == "same-origin" { return false }
        return true
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
            throw Self.refusal(scopes, identity)
        }
        return identity
    }

    /// As JupyterHub's `needs_scope`: a credential that holds one of the scopes, but filtered
    /// to other resources, gets the same 404 as for a resource that does not exist, so nobody
    /// learns which names exist; one that lacks them entirely gets 403.
    static func refusal(_ scopes: [String], _ identity: Identity) -> APIError {
        if scopes.contains(where: { identity.scopes.hasAny($0) }) {
            return APIError.notFound("No access to resources or resources not found")
        }
        return APIError.forbidden("Action is not authorized with current scopes; requires any of [\(scopes.joined(separator: ", "))]")
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
            throw Self.refusal(scopes, identity)
        }
        return identity
    }
}
