import AtriumAuth
import AtriumModel
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `/hub/admin` (the admin panel) and `/hub/token` (personal API tokens): server-rendered
/// shells whose scripts, served by the hub itself from `/hub/static/`, call the REST API with
/// the session cookie and the XSRF header. Nothing is loaded from the network.
struct AdminPages {
    let hub: Hub

    func register(on router: Router<HubRequestContext>) {
        router.get("/hub/admin", use: admin)
        router.get("/hub/token", use: token)
        router.get("/hub/static/admin.js", use: { _, _ in Self.script(AdminScript.admin) })
        router.get("/hub/static/token.js", use: { _, _ in Self.script(AdminScript.token) })
    }

    static func script(_ text: String) -> Response {
        Response(
            status: .ok,
            headers: [.contentType: "text/javascript; charset=utf-8", .cacheControl: "no-cache"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    func admin(_ request: Request, context: HubRequestContext) async throws -> Response {
        let pages = Pages(hub: hub)
        guard let identity = pages.sessionUser(context) else { return pages.loginRedirect(request) }
        var (values, cookies) = pages.base(request, context, title: "Admin")
        guard identity.scopes.hasUnfiltered("admin:users") else {
            values["title"] = "Not allowed"
            values["text"] = "Only administrators may open the admin panel."
            values["link"] = "/hub/home"
            values["linkText"] = "Back to your home page"
            return hub.pages.render("message", values, status: .forbidden, cookies: cookies)
        }
        values["me"] = identity.user.name
        values["native"] = hub.authenticator.configuration.mode == .native
        values["profiles"] = hub.spawnSettings.profiles.map(\.name).joined(separator: ", ")
        values["hasProfiles"] = !hub.spawnSettings.profiles.isEmpty
        values["wide"] = true
        return hub.pages.render("admin", values, cookies: cookies)
    }

    func token(_ request: Request, context: HubRequestContext) async throws -> Response {
        let pages = Pages(hub: hub)
        guard let identity = pages.sessionUser(context) else { return pages.loginRedirect(request) }
        var (values, cookies) = pages.base(request, context, title: "API tokens")
        values["me"] = identity.user.name
        return hub.pages.render("token", values, cookies: cookies)
    }
}
