import AtriumAuth
import AtriumModel
import AtriumProxy
import AtriumSpawn
import AtriumStore
import Foundation
import HTTPTypes
import Logging
import Testing

@testable import AtriumHTTP

/// The proxy's gatekeeper against a real (in-memory) store: routing by path, credentials, scopes.
@Suite("Proxy gatekeeper")
struct GatekeeperTests {
    func withGatekeeper(_ body: (HubGatekeeper, RouteTable, Store) async throws -> Void) async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let store = try await Store.open(":memory:", logger: logger)
        do {
            try await store.migrate()
            var auth = AuthConfiguration()
            auth.bcryptCost = 4
            let hub = try Hub(
                store: store, authenticator: Authenticator(configuration: auth, store: store, logger: logger),
                settings: HTTPSettings(cookieSecret: Array(repeating: 7, count: 32), atriumVersion: "test", apiVersion: "5.4.0"),
                logger: logger)
            let routes = RouteTable()
            for (user, server, port) in [("alice", "", 1), ("alice", "lab", 2), ("al ice", "", 3)] {
                routes.publish(LiveRoute(user: user, userID: 1, server: server,
                                         endpoint: WorkspaceEndpoint(address: .tcp(host: "127.0.0.1", port: port), secret: "s\(port)")))
            }
            // A cache lifetime no loaded machine outlasts: the tests decide on the cache, not the clock.
            try await body(HubGatekeeper(hub: hub, routes: routes, activity: ActivityRecorder(), cacheLifetime: 3600), routes, store)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    @Test("paths map to the default or a named server; anything else is the hub's", arguments: [
        ("/user/alice/", 1), ("/user/alice", 1), ("/user/alice/tree/x.ipynb", 1), ("/user/alice?x=1", 1),
        ("/user/alice/lab/", 2), ("/user/alice/lab", 2), ("/user/alice/labx/", 1), ("/user/al%20ice/api", 3),
        ("/user/bob/", nil), ("/user/", nil), ("/user//x", nil), ("/hub/home", nil), ("/user/%ZZ/", nil),
    ] as [(String, Int?)])
    func routing(path: String, port: Int?) async throws {
        try await withGatekeeper { gatekeeper, _, _ in
            let route = gatekeeper.route(for: path)
            if let port {
                #expect(route?.endpoint.address == .tcp(host: "127.0.0.1", port: port))
            } else {
                #expect(route == nil)
            }
        }
    }

    @Test("a token needs access:servers for that server; the decision is cached; a bad token goes to the hub")
    func tokens() async throws {
        try await withGatekeeper { gatekeeper, _, store in
            let users = try await store.createUsers([NewUser(name: "alice"), NewUser(name: "bob")]).created
            let own = try await TokenHashing.issue(for: users[0], scopes: ["inherit"], note: nil, expiresIn: nil, store: store).secret
            let other = try await TokenHashing.issue(for: users[1], scopes: ["inherit"], note: nil, expiresIn: nil, store: store).secret
            let narrow = try await TokenHashing.issue(for: users[0], scopes: ["read:users!user=alice"], note: nil, expiresIn: nil, store: store).secret
            func request(_ path: String, _ authorization: String) -> HTTPRequest {
                var r = HTTPRequest(method: .get, scheme: nil, authority: "hub", path: path)
                r.headerFields[.authorization] = authorization
                return r
            }
            let mine = request("/user/alice/lab/", "token \(own)")
            #expect(gatekeeper.decideImmediately(mine) == nil)  // not cached yet
            guard case .forward(let target) = await gatekeeper.decide(mine) else { Issue.record("owner refused"); return }
            #expect(target.secret == "s2")
            #expect(target.key == RouteKey(user: "alice", server: "lab"))
            #expect(gatekeeper.decideImmediately(mine) == .forward(target))  // cached now
            #expect(await gatekeeper.decide(request("/user/alice/", "Bearer \(other)")) == .hub)
            #expect(await gatekeeper.decide(request("/user/alice/", "token \(narrow)")) == .hub)
            #expect(await gatekeeper.decide(request("/user/alice/", "token not-a-token")) == .hub)
            #expect(await gatekeeper.decide(request("/user/alice/?token=\(own)", "")) != .hub)
        }
    }

    @Test("JupyterLab's own workspace token, or any token the hub does not know, never hides a valid session cookie")
    func cookieBesideForeignToken() async throws {
        try await withGatekeeper { gatekeeper, _, store in
            let alice = try await store.createUsers([NewUser(name: "alice"), NewUser(name: "bob")]).created[0]
            let bob = try #require(try await store.user(named: "bob"))
            let cookie = gatekeeper.hub.sessions.encode(name: alice.name, cookieID: alice.cookieID)
            let bobCookie = gatekeeper.hub.sessions.encode(name: bob.name, cookieID: bob.cookieID)
            func request(_ path: String, authorization: String?, cookie: String?) -> HTTPRequest {
                var r = HTTPRequest(method: .get, scheme: nil, authority: "hub", path: path)
                if let authorization { r.headerFields[.authorization] = authorization }
                if let cookie { r.headerFields[.cookie] = "_xsrf=abc; \(SessionCodec.cookieName)=\(cookie)" }
                return r
            }
            // What JupyterLab sends: its page config's token (the workspace secret) and the cookie.
            let lab = request("/user/alice/api/kernels", authorization: "token s1", cookie: cookie)
            guard case .forward(let target) = await gatekeeper.decide(lab) else { Issue.record("the cookie was ignored"); return }
            #expect(target.key == RouteKey(user: "alice", server: ""))
            #expect(gatekeeper.decideImmediately(lab) == .forward(target))  // decided from memory after that
            // The same in the WebSocket URL's query, and an unknown token.
            #expect(await gatekeeper.decide(request("/user/alice/api/kernels/k/channels?token=s1", authorization: nil, cookie: cookie)) == .forward(target))
            let unknown = request("/user/alice/api/status", authorization: "token not-a-hub-token", cookie: cookie)
            #expect(await gatekeeper.decide(unknown) == .forward(target))
            #expect(gatekeeper.decideImmediately(unknown) == .forward(target), "an unknown token is remembered as unknown")
            // A workspace secret is never a credential by itself, and another user's cookie gets nothing.
            #expect(await gatekeeper.decide(request("/user/alice/", authorization: "token s1", cookie: nil)) == .hub)
            #expect(await gatekeeper.decide(request("/user/alice/", authorization: "token s1", cookie: bobCookie)) == .hub)
            #expect(await gatekeeper.decide(request("/user/alice/", authorization: "token s1", cookie: "forged")) == .hub)
        }
    }
}
