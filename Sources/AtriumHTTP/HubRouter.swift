import HTTPTypes
import Hummingbird

/// Builds the hub's router: pages at `/hub/…`, the REST API at `/hub/api/…`.
public enum HubRouter {
    public static func build(_ hub: Hub) -> Router<HubRequestContext> {
        let router = Router(context: HubRequestContext.self)
        router.add(middleware: VersionHeaderMiddleware(version: hub.settings.apiVersion))
        router.add(middleware: RequestMetricsMiddleware(metrics: hub.metrics))
        router.add(middleware: PreflightMiddleware())
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: AuthenticationMiddleware(hub: hub))
        Pages(hub: hub).register(on: router)
        AdminPages(hub: hub).register(on: router)
        MetricsAPI(hub: hub).register(on: router)
        let api = router.group("hub/api").add(middleware: XSRFMiddleware(hub: hub))
        HubAPI(hub: hub).register(on: api)
        UsersAPI(hub: hub).register(on: api)
        GroupsAPI(hub: hub).register(on: api)
        TokensAPI(hub: hub).register(on: api)
        ServersAPI(hub: hub).register(on: api)
        AdminAPI(hub: hub).register(on: api)
        UserRoutes(hub: hub).register(on: router)
        return router
    }
}

/// `X-JupyterHub-Version` on every answer, errors included, as JupyterHub sends it: single-user
/// servers and clients compare it with their own version.
struct VersionHeaderMiddleware<Context: RequestContext>: RouterMiddleware {
    let version: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            // Errors become answers only above every middleware: make this one here.
            response = try error.response(from: request, context: context)
        }
        response.headers[HTTPField.Name("X-JupyterHub-Version")!] = version
        // As JupyterHub's API handlers: nothing an API answer holds may be framed or run.
        if request.uri.path.hasPrefix("/hub/api"), response.headers[.contentSecurityPolicy] == nil {
            response.headers[.contentSecurityPolicy] = "frame-ancestors 'none'; report-uri /hub/security/csp-report; default-src 'none'"
        }
        return response
    }
}

/// `OPTIONS` on any API path (a browser's CORS preflight) answers 200 with the headers a client
/// may send, as JupyterHub's API handlers do; no credentials needed, nothing else happens.
/// Cross-origin access itself stays closed: no `Access-Control-Allow-Origin` is sent.
struct PreflightMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .options, request.uri.path.hasPrefix("/hub/api") else { return try await next(request, context) }
        var response = Response(status: .ok)
        response.headers[HTTPField.Name("Access-Control-Allow-Headers")!] = "accept, content-type, authorization, x-xsrftoken"
        response.headers[.allow] = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
        return response
    }
}
