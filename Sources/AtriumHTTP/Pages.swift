import AtriumAuth
import AtriumModel
import AtriumStore
import Foundation
import HTTPTypes
import Hummingbird

/// The server-rendered pages: login, logout, signup, home, change password (own, and an admin's
/// reset of another's), and `/hub/authorize` where admins approve signups. Every POST checks
/// the XSRF token; nothing changes on GET.
struct Pages {
    let hub: Hub

    func register(on router: Router<HubRequestContext>) {
        router.get("/", use: { _, _ in Response.redirect(to: "/hub/home") })
        router.get("/hub", use: { _, _ in Response.redirect(to: "/hub/home") })
        router.get("/hub/health", use: health)
        router.get("/favicon.ico", use: favicon)
        router.get("/hub/favicon.ico", use: favicon)
        router.get("/hub/login", use: loginPage)
        router.post("/hub/login", use: login)
        router.get("/hub/logout", use: logoutPage)
        router.post("/hub/logout", use: logout)
        router.get("/hub/signup", use: signupPage)
        router.post("/hub/signup", use: signup)
        router.get("/hub/home", use: home)
        router.post("/hub/spawn", use: spawn)
        router.post("/hub/stop", use: stopServer)
        router.get("/hub/change-password", use: changePasswordPage)
        router.post("/hub/change-password", use: changePassword)
        router.get("/hub/change-password/:name", use: adminPasswordPage)
        router.post("/hub/change-password/:name", use: adminPassword)
        router.get("/hub/authorize", use: authorizePage)
        router.post("/hub/authorize/:name", use: authorize)
        router.post("/hub/security/csp-report", use: cspReport)
    }

    /// `POST /hub/security/csp-report`: a browser reporting a violation of the pages'
    /// Content-Security-Policy (their `report-uri`). As JupyterHub: only from a logged-in
    /// browser, logged as a warning and counted in `jupyterhub_csp_reports_total`; no XSRF check
    /// (browsers send these reports themselves).
    func cspReport(_ request: Request, context: HubRequestContext) async throws -> Response {
        guard sessionUser(context) != nil else { throw APIError(.forbidden, "CSP reports are accepted from logged-in browsers only") }
        let body = try await request.body.collect(upTo: 16 * 1024)
        hub.metrics.countCSPReport()
        hub.logger.warning("content security violation", metadata: ["atrium.report": "\(String(decoding: body.readableBytesView.prefix(2048), as: UTF8.self))"])
        return Response(status: .ok)
    }

    private var auth: AuthConfiguration { hub.authenticator.configuration }
    private var signupEnabled: Bool { auth.mode == .native && auth.enableSignup }

    /// Common values: the XSRF token (and its cookie when new) and who is logged in.
    func base(_ request: Request, _ context: HubRequestContext, title: String) -> ([String: Any], [Cookie]) {
        let (xsrf, cookie) = hub.xsrfToken(request)
        var values: [String: Any] = [
            "title": title, "xsrf": xsrf, "signupEnabled": signupEnabled, "minLength": auth.passwordPolicy.minimumLength,
        ]
        if let identity = context.identity, context.viaCookie {
            values["user"] = ["name": identity.user.name, "isAdmin": identity.user.admin, "xsrf": xsrf] as [String: Any]
        }
        return (values, cookie.map { [$0] } ?? [])
    }

    /// The hub's icon: a small SVG (browsers ask for `/favicon.ico` on every page).
    static let faviconSVG = """
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#1f6feb"/>\
        <path d="M8 25 L16 7 L24 25 M11.5 18 H20.5" stroke="#fff" stroke-width="3.2" fill="none" stroke-linecap="round" stroke-linejoin="round"/></svg>
        """

    func favicon(_ request: Request, context: HubRequestContext) async throws -> Response {
        Response(
            status: .ok, headers: [.contentType: "image/svg+xml", .cacheControl: "public, max-age=86400"],
            body: .init(byteBuffer: ByteBuffer(string: Self.faviconSVG)))
    }

    func checkXSRF(_ request: Request, _ form: FormBody) throws {
        guard hub.xsrfMatches(request, submitted: form["_xsrf"]) else {
            throw APIError.forbidden("The form's XSRF token is missing or stale: reload the page and try again.")
        }
    }

    /// A local path to return to after login; anything else is ignored (no open redirects).
    func safeNext(_ request: Request) -> String? {
        guard let next = request.uri.queryParameters["next"].map(String.init),
              next.hasPrefix("/"), !next.hasPrefix("//"), !next.contains("\\"), !next.contains("\r"), !next.contains("\n")
        else { return nil }
        return next
    }

    func loginRedirect(_ request: Request) -> Response {
        let path = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
        let next = path.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "/hub/home"
        return Response.redirect(to: "/hub/login?next=\(next)", type: .found)
    }

    func sessionUser(_ context: HubRequestContext) -> Identity? {
        context.viaCookie ? context.identity : nil
    }

    func health(_ request: Request, context: HubRequestContext) async throws -> Response {
        try await HubAPI(hub: hub).health(request, context: context)
    }

    // MARK: login, logout, signup

    func loginPage(_ request: Request, context: HubRequestContext) async throws -> Response {
        if sessionUser(context) != nil { return Response.redirect(to: safeNext(request) ?? "/hub/home") }
        var (values, cookies) = base(request, context, title: "Log in")
        values["next"] = safeNext(request)
        values["sharedPassword"] = auth.mode == .sharedPassword
        if request.uri.queryParameters["signed_up"] != nil { values["notice"] = "Account created. You can log in once an administrator approves it." }
        if request.uri.queryParameters["logged_out"] != nil { values["notice"] = "You have been logged out." }
        return hub.pages.render("login", values, cookies: cookies)
    }

    func login(_ request: Request, context: HubRequestContext) async throws -> Response {
        let form = try await FormBody.read(request, context: context)
        var (values, cookies) = base(request, context, title: "Log in")
        values["next"] = safeNext(request)
        values["username"] = form["username"] ?? ""
        values["sharedPassword"] = auth.mode == .sharedPassword
        guard hub.xsrfMatches(request, submitted: form["_xsrf"]) else {
            values["error"] = "Your login form was stale: please try again."
            return hub.pages.render("login", values, status: .forbidden, cookies: cookies)
        }
        let began = ContinuousClock.now
        do {
            let user = try await hub.authenticator.login(name: form["username"] ?? "", password: form["password"] ?? "", address: context.remoteAddress)
            hub.metrics.recordLogin(success: true, seconds: (ContinuousClock.now - began).seconds)
            var response = Response.redirect(to: safeNext(request) ?? "/hub/home")
            response.setCookie(hub.sessionCookie(for: user.name, cookieID: user.cookieID, request: request))
            for cookie in cookies { response.setCookie(cookie) }
            hub.logger.info("login", metadata: ["atrium.user": "\(user.name)"])
            return response
        } catch let refusal as LoginRefusal {
            hub.metrics.recordLogin(success: false, seconds: (ContinuousClock.now - began).seconds)
            values["error"] = refusal.message
            let status: HTTPResponse.Status = if case .lockedOut = refusal { .tooManyRequests } else { .forbidden }
            return hub.pages.render("login", values, status: status, cookies: cookies)
        }
    }

    func logoutPage(_ request: Request, context: HubRequestContext) async throws -> Response {
        let (values, cookies) = base(request, context, title: "Log out")
        return hub.pages.render("logout", values, cookies: cookies)
    }

    func logout(_ request: Request, context: HubRequestContext) async throws -> Response {
        let form = try await FormBody.read(request, context: context)
        try checkXSRF(request, form)
        let began = ContinuousClock.now
        defer { hub.metrics.recordLogout(seconds: (ContinuousClock.now - began).seconds) }
        // As JupyterHub: logging out rotates the user's cookie id, so the old cookie (replayed,
        // or in another browser) no longer opens a session here or through the proxy (whose
        // cache forgets it within `auth_cache_lifetime`).
        if let identity = sessionUser(context) {
            try await hub.store.rotateCookieID(identity.user.name)
            hub.logger.info("logout", metadata: ["atrium.user": "\(identity.user.name)"])
        }
        var response = Response.redirect(to: "/hub/login?logged_out=1")
        response.setCookie(hub.clearedSessionCookie(request))
        return response
    }

    func signupPage(_ request: Request, context: HubRequestContext) async throws -> Response {
        var (values, cookies) = base(request, context, title: "Sign up")
        guard signupEnabled else {
            values["text"] = "Signup is not enabled on this hub."
            values["link"] = "/hub/login"
            values["linkText"] = "Log in"
            return hub.pages.render("message", values, status: .notFound, cookies: cookies)
        }
        values["minLength"] = auth.passwordPolicy.minimumLength
        return hub.pages.render("signup", values, cookies: cookies)
    }

    func signup(_ request: Request, context: HubRequestContext) async throws -> Response {
        guard signupEnabled else { throw APIError.notFound("Signup is not enabled on this hub.") }
        let form = try await FormBody.read(request, context: context)
        try checkXSRF(request, form)
        var (values, cookies) = base(request, context, title: "Sign up")
        values["minLength"] = auth.passwordPolicy.minimumLength
        values["username"] = form["username"] ?? ""
        guard form["password"] == form["password_confirm"] else {
            values["error"] = "The two passwords differ."
            return hub.pages.render("signup", values, status: .badRequest, cookies: cookies)
        }
        do {
            let user = try await hub.authenticator.signup(name: form["username"] ?? "", password: form["password"] ?? "")
            values["username"] = ""
            values["notice"] = user.approval == .approved
                ? "Account \(user.name) created: you can log in now."
                : "Account \(user.name) created. An administrator must approve it before you can log in."
            return hub.pages.render("signup", values, status: .created, cookies: cookies)
        } catch let error as AccountError {
            values["error"] = error.message
            return hub.pages.render("signup", values, status: .badRequest, cookies: cookies)
        }
    }

    // MARK: home

    // MARK: passwords

    func changePasswordPage(_ request: Request, context: HubRequestContext) async throws -> Response {
        guard sessionUser(context) != nil else { return loginRedirect(request) }
        let (values, cookies) = base(request, context, title: "Change password")
        return hub.pages.render("change_password", values, cookies: cookies)
    }

    func changePassword(_ request: Request, context: HubRequestContext) async throws -> Response {
        guard let identity = sessionUser(context) else { return loginRedirect(request) }
        let form = try await FormBody.read(request, context: context)
        try checkXSRF(request, form)
        var (values, cookies) = base(request, context, title: "Change password")
        guard form["new_password"] == form["new_password_confirm"] else {
            values["error"] = "The two new passwords differ."
            return hub.pages.render("change_password", values, status: .badRequest, cookies: cookies)
        }
        do {
            try await hub.authenticator.changePassword(
                name: identity.user.name, current: form["current_password"] ?? "", new: form["new_password"] ?? "")
        } catch let error as AccountError {
            values["error"] = error.message
            return hub.pages.render("change_password", values, status: .badRequest, cookies: cookies)
        }
        // The password change rotated the cookie id: issue this browser a fresh session.
        guard let user = try await hub.store.user(named: identity.user.name) else { return loginRedirect(request) }
        values["notice"] = "Your password was changed. Other browsers were logged out."
        var response = hub.pages.render("change_password", values, cookies: cookies)
        response.setCookie(hub.sessionCookie(for: user.name, cookieID: user.cookieID, request: request))
        return response
    }

    private func requireAdmin(_ request: Request, _ context: HubRequestContext) throws -> Identity? {
        guard let identity = sessionUser(context) else { return nil }
        guard identity.scopes.hasUnfiltered("admin:users") else {
            throw APIError.forbidden("Only administrators may do this.")
        }
        return identity
    }

    func adminPasswordPage(_ request: Request, context: HubRequestContext) async throws -> Response {
        guard try requireAdmin(request, context) != nil else { return loginRedirect(request) }
        let target = try UsersAPI.pathName(context)
        guard try await hub.store.user(named: target) != nil else { throw APIError.notFound("No such user: \(target)") }
        var (values, cookies) = base(request, context, title: "Set password")
        values["target"] = target
        values["targetPath"] = try context.parameters.require("name")
        return hub.pages.render("admin_password", values, cookies: cookies)
    }

    func adminPassword(_ request: Request, context: HubRequestContext) async throws -> Response {
        guard let admin = try requireAdmin(request, context) else { return loginRedirect(request) }
        let target = try UsersAPI.pathName(context)
        let form = try await FormBody.read(request, context: context)
        try checkXSRF(request, form)
        guard try await hub.store.user(named: target) != nil else { throw APIError.notFound("No such user: \(target)") }
        var (values, cookies) = base(request, context, title: "Set password")
        values["target"] = target
        values["targetPath"] = try context.parameters.require("name")
        guard form["new_password"] == form["new_password_confirm"] else {
            values["error"] = "The two passwords differ."
            return hub.pages.render("admin_password", values, status: .badRequest, cookies: cookies)
        }
        do {
            try await hub.authenticator.setPassword(name: target, form["new_password"] ?? "")
        } catch let error as AccountError {
            values["error"] = error.message
            return hub.pages.render("admin_password", values, status: .badRequest, cookies: cookies)
        }
        hub.logger.info("password reset by admin", metadata: ["atrium.user": "\(target)", "atrium.by": "\(admin.user.name)"])
        values["notice"] = "The password of \(target) was changed."
        return hub.pages.render("admin_password", values, cookies: cookies)
    }

    // MARK: authorize

    func authorizePage(_ request: Request, context: HubRequestContext) async throws -> Response {
        guard try requireAdmin(request, context) != nil else { return loginRedirect(request) }
        var (values, cookies) = base(request, context, title: "Authorize users")
        var pending = UserQuery()
        pending.approval = .pending
        pending.sort = .created
        let waiting = try await hub.store.users(pending)
        var rows = waiting.users
        let query = request.uri.queryParameters["q"].map(String.init) ?? ""
        values["query"] = query
        var others = UserQuery()
        others.limit = 200
        others.sort = .name
        if query.isEmpty { others.approval = .revoked } else { others.nameFilter = query }
        rows += try await hub.store.users(others).users.filter { $0.approval != .pending }
        let xsrf = values["xsrf"] as? String ?? ""
        values["rows"] = rows.map { u -> [String: Any] in
            ["name": u.name, "path": u.name.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? u.name,
             "approval": u.approval.rawValue, "approved": u.approval == .approved,
             "created": String(Timestamp.format(u.created).prefix(16)).replacingOccurrences(of: "T", with: " "), "xsrf": xsrf]
        }
        values["pendingCount"] = waiting.total
        if let done = request.uri.queryParameters["done"] { values["notice"] = String(done) }
        return hub.pages.render("authorize", values, cookies: cookies)
    }

    func authorize(_ request: Request, context: HubRequestContext) async throws -> Response {
        guard let admin = try requireAdmin(request, context) else { return loginRedirect(request) }
        let target = try UsersAPI.pathName(context)
        let form = try await FormBody.read(request, context: context)
        try checkXSRF(request, form)
        guard try await hub.store.user(named: target) != nil else { throw APIError.notFound("No such user: \(target)") }
        let done: String
        switch form["action"] {
        case "approve":
            try await hub.store.setApproval(target, .approved)
            if let approved = try await hub.store.user(named: target) { hub.manager?.usersApproved([(approved.name, approved.id)]) }
            done = "\(target) approved"
        case "revoke":
            guard target != admin.user.name else { throw APIError.badRequest("You cannot revoke your own approval.") }
            try await hub.store.setApproval(target, .revoked)
            done = "\(target) revoked"
        case "discard":
            guard target != admin.user.name else { throw APIError.badRequest("You cannot discard your own account.") }
            try await hub.store.deleteUser(target)
            done = "\(target) discarded"
        default:
            throw APIError.badRequest("action must be approve, revoke or discard")
        }
        hub.logger.info("authorize", metadata: ["atrium.user": "\(target)", "atrium.action": "\(form["action"] ?? "")", "atrium.by": "\(admin.user.name)"])
        return Response.redirect(to: "/hub/authorize?done=\(done.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")", type: .found)
    }
}
