import Hummingbird

/// Builds the hub's router: pages at `/hub/…`, the REST API at `/hub/api/…`.
public enum HubRouter {
    public static func build(_ hub: Hub) -> Router<HubRequestContext> {
        let router = Router(context: HubRequestContext.self)
        router.add(middleware: RequestMetricsMiddleware(metrics: hub.metrics))
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
