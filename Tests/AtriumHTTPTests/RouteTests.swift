import AtriumAuth
import AtriumHTTP
import AtriumModel
import AtriumStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// Routes through Hummingbird's test client, with an in-memory SQLite store.
@Suite("REST API and pages through the router")
struct RouteTests {
    struct Fixture: Sendable {
        let store: Store
        let adminToken: String
        let userToken: String
    }

    func withHub(_ body: @escaping @Sendable (Fixture, any TestClientProtocol) async throws -> Void) async throws {
        let t = try await TestHub.make()
        let (store, hub, adminToken, userToken) = (t.store, t.hub, t.adminToken, t.userToken)
        let app = Application(router: HubRouter.build(hub))
        let fixture = Fixture(store: store, adminToken: adminToken, userToken: userToken)
        try await app.test(.router) { client in try await body(fixture, client) }
        try await store.close()
    }

    static func json(_ buffer: ByteBuffer) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView), options: [.fragmentsAllowed])
    }

    func auth(_ token: String) -> HTTPFields { [.authorization: "token \(token)"] }

    @Test("health and version need no credentials; the API without credentials is 403 JSON")
    func anonymous() async throws {
        try await withHub { _, client in
            try await client.execute(uri: "/hub/health", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/hub/api/health", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/hub/api/users", method: .get) { response in
                #expect(response.status == .forbidden)
                #expect((Self.json(response.body) as? [String: Any])?["status"] as? Int == 403)
            }
            try await client.execute(uri: "/hub/api/no-such-thing", method: .get) { response in
                #expect(response.status == .notFound)
                #expect((Self.json(response.body) as? [String: Any])?["message"] != nil)
            }
        }
    }

    @Test("bad bodies are 400s that name the problem, and write nothing")
    func badBodies() async throws {
        try await withHub { f, client in
            let cases: [(String, String)] = [
                ("{not json", "not valid JSON"), ("[1,2]", "JSON object"), (#"{"usernames": "bob"}"#, "list of strings"),
                (#"{"usernames": ["ok"], "admin": "yes"}"#, "true or false"), (#"{"usernames": ["ok"], "extra": 1}"#, "Unknown field"),
                (#"{"usernames": [""]}"#, "Invalid usernames"), (#"{"usernames": ["a\u0001b"]}"#, "Invalid usernames"),
            ]
            for (body, expected) in cases {
                try await client.execute(uri: "/hub/api/users", method: .post, headers: auth(f.adminToken), body: ByteBuffer(string: body)) { response in
                    #expect(response.status == .badRequest, "\(body)")
                    let message = (Self.json(response.body) as? [String: Any])?["message"] as? String ?? ""
                    #expect(message.contains(expected), "\(body): \(message)")
                }
            }
            var bytes = Array(#"{"usernames": ["x"#.utf8)
            bytes += [0xFF, 0xFE]
            bytes += Array(#""]}"#.utf8)
            try await client.execute(uri: "/hub/api/users", method: .post, headers: auth(f.adminToken), body: ByteBuffer(bytes: bytes)) {
                #expect($0.status == .badRequest)
            }
            #expect(try await f.store.userCount() == 2)
        }
    }

    @Test("a user's token cannot create users, see others, or mint broader tokens")
    func userLimits() async throws {
        try await withHub { f, client in
            try await client.execute(uri: "/hub/api/users", method: .post, headers: auth(f.userToken), body: ByteBuffer(string: #"{"usernames": ["x"]}"#)) {
                #expect($0.status == .forbidden)
            }
            // As JupyterHub: out of a filtered scope's reach is 404, whether or not the user exists.
            try await client.execute(uri: "/hub/api/users/root", method: .get, headers: auth(f.userToken)) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/hub/api/users/nobody", method: .get, headers: auth(f.userToken)) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/hub/api/users/alice", method: .get, headers: auth(f.userToken)) { #expect($0.status == .ok) }
            try await client.execute(
                uri: "/hub/api/users/alice/tokens", method: .post, headers: auth(f.userToken), body: ByteBuffer(string: #"{"scopes": ["admin:users"]}"#)
            ) { #expect($0.status == .badRequest) }  // JupyterHub: 400, a scope the owner lacks
            try await client.execute(
                uri: "/hub/api/users/alice/tokens", method: .post, headers: auth(f.userToken), body: ByteBuffer(string: #"{"scopes": ["no:such"]}"#)
            ) { #expect($0.status == .badRequest) }
            try await client.execute(uri: "/hub/api/users?limit=-1", method: .get, headers: auth(f.adminToken)) { #expect($0.status == .badRequest) }
            try await client.execute(uri: "/hub/api/users?sort=colour", method: .get, headers: auth(f.adminToken)) { #expect($0.status == .badRequest) }
        }
    }

    @Test("as in JupyterHub: X-JupyterHub-Version on every answer, token notes, the server model's full_name")
    func jupyterHubDetails() async throws {
        try await withHub { f, client in
            for (uri, headers) in [("/hub/api/", HTTPFields()), ("/hub/api/users", HTTPFields()), ("/hub/login", HTTPFields()), ("/hub/api/user", auth(f.userToken))] {
                try await client.execute(uri: uri, method: .get, headers: headers) { response in
                    #expect(response.headers[HTTPField.Name("X-JupyterHub-Version")!] == "5.4.0", "\(uri): \(response.status)")
                }
            }
            // Its own token: "Requested via api"; one an admin makes for a user says who asked.
            try await client.execute(uri: "/hub/api/users/alice/tokens", method: .post, headers: auth(f.userToken), body: ByteBuffer(string: "{}")) { response in
                #expect((Self.json(response.body) as? [String: Any])?["note"] as? String == "Requested via api")
            }
            try await client.execute(uri: "/hub/api/users/alice/tokens", method: .post, headers: auth(f.adminToken), body: ByteBuffer(string: "{}")) { response in
                #expect((Self.json(response.body) as? [String: Any])?["note"] as? String == "Requested via api by user root")
            }
            // The deprecated token lookup: a valid credential learns the owner of a token it holds.
            try await client.execute(uri: "/hub/api/authorizations/token/\(f.userToken)", method: .get, headers: auth(f.adminToken)) { response in
                #expect(response.status == .ok)
                #expect((Self.json(response.body) as? [String: Any])?["name"] as? String == "alice")
            }
            try await client.execute(uri: "/hub/api/authorizations/token/\(f.adminToken)", method: .get, headers: auth(f.userToken)) { response in
                #expect((Self.json(response.body) as? [String: Any])?["name"] as? String == "root")
            }
            try await client.execute(uri: "/hub/api/authorizations/token/not-a-token", method: .get, headers: auth(f.userToken)) {
                #expect($0.status == .notFound)
            }
            try await client.execute(uri: "/hub/api/authorizations/token/\(f.userToken)", method: .get) { #expect($0.status == .forbidden) }
            // A CORS preflight needs no credentials and is answered, on any API path.
            for uri in ["/hub/api/users", "/hub/api/users/alice/server", "/hub/api/no-such-thing"] {
                try await client.execute(uri: uri, method: .options) { response in
                    #expect(response.status == .ok, "\(uri)")
                    #expect(response.headers[HTTPField.Name("Access-Control-Allow-Headers")!]?.contains("authorization") == true)
                    #expect(response.headers[HTTPField.Name("Access-Control-Allow-Origin")!] == nil)
                }
            }
            // The routing table (scope proxy): the hub's own route; POST and PATCH change nothing.
            try await client.execute(uri: "/hub/api/proxy", method: .get, headers: auth(f.adminToken)) { response in
                #expect(response.status == .ok)
                #expect(((Self.json(response.body) as? [String: Any])?["/"] as? [String: Any])?["routespec"] as? String == "/")
            }
            try await client.execute(uri: "/hub/api/proxy", method: .get, headers: auth(f.userToken)) { #expect($0.status == .forbidden) }
            try await client.execute(uri: "/hub/api/proxy", method: .post, headers: auth(f.adminToken)) { #expect($0.status == .ok) }
            try await client.execute(uri: "/hub/api/proxy", method: .patch, headers: auth(f.adminToken), body: ByteBuffer(string: #"{"api_url": "http://x"}"#)) {
                #expect($0.status == .ok)
            }
            try await client.execute(uri: "/hub/api/proxy", method: .patch, headers: auth(f.adminToken), body: ByteBuffer(string: "[1]")) {
                #expect($0.status == .badRequest)
            }
            // A token for a user who does not exist: 403, as JupyterHub (not 404).
            try await client.execute(uri: "/hub/api/users/ghost/tokens", method: .post, headers: auth(f.adminToken), body: ByteBuffer(string: "{}")) { response in
                #expect(response.status == .forbidden)
                #expect(String(buffer: response.body).contains("not found or no permissions"))
            }
            // limit=0 is read as 1, as JupyterHub does (never an empty page).
            try await client.execute(uri: "/hub/api/users?limit=0", method: .get, headers: auth(f.adminToken)) { response in
                #expect((Self.json(response.body) as? [Any])?.count == 1)
            }
            _ = try await f.store.saveServer(ServerRecord(userID: try #require(try await f.store.user(named: "alice")).id, userName: "alice", name: "lab"))
            try await client.execute(uri: "/hub/api/users/alice?include_stopped_servers", method: .get, headers: auth(f.adminToken)) { response in
                let servers = (Self.json(response.body) as? [String: Any])?["servers"] as? [String: Any]
                #expect((servers?["lab"] as? [String: Any])?["full_name"] as? String == "alice/lab")
            }
        }
    }

    @Test("groups: create, members, properties, rename, delete")
    func groups() async throws {
        try await withHub { f, client in
            let h = auth(f.adminToken)
            try await client.execute(uri: "/hub/api/groups/course", method: .post, headers: h, body: ByteBuffer(string: #"{"users": ["alice"]}"#)) {
                #expect($0.status == .created)
            }
            try await client.execute(uri: "/hub/api/groups/course", method: .post, headers: h) { #expect($0.status == .conflict) }
            // An unknown member is a mistake in the body: 400, as JupyterHub answers.
            try await client.execute(uri: "/hub/api/groups/course/users", method: .post, headers: h, body: ByteBuffer(string: #"{"users": ["nobody"]}"#)) {
                #expect($0.status == .badRequest)
            }
            try await client.execute(uri: "/hub/api/groups/other", method: .post, headers: h, body: ByteBuffer(string: #"{"users": ["nobody"]}"#)) {
                #expect($0.status == .badRequest)
            }
            try await client.execute(uri: "/hub/api/groups/no-such-group/users", method: .post, headers: h, body: ByteBuffer(string: #"{"users": ["alice"]}"#)) {
                #expect($0.status == .notFound)
            }
            try await client.execute(uri: "/hub/api/groups/course/properties", method: .put, headers: h, body: ByteBuffer(string: #"{"term": "2026"}"#)) { response in
                let group = Self.json(response.body) as? [String: Any]
                #expect((group?["properties"] as? [String: Any])?["term"] as? String == "2026")
                #expect(group?["users"] as? [String] == ["alice"])
            }
            try await client.execute(uri: "/hub/api/groups/course", method: .patch, headers: h, body: ByteBuffer(string: #"{"name": "course-2026"}"#)) {
                #expect($0.status == .ok)
            }
            try await client.execute(uri: "/hub/api/users/alice", method: .get, headers: h) { response in
                #expect((Self.json(response.body) as? [String: Any])?["groups"] as? [String] == ["course-2026"])
            }
            try await client.execute(uri: "/hub/api/groups/course-2026", method: .delete, headers: h) { #expect($0.status == .noContent) }
            try await client.execute(uri: "/hub/api/groups/course-2026", method: .get, headers: h) { #expect($0.status == .notFound) }
        }
    }

    @Test("a cookie session must send the XSRF token to change state through the API")
    func xsrfOnCookieWrites() async throws {
        try await withHub { f, client in
            try await f.store.setPasswordHash("alice", try await PasswordHasher(cost: 4).hash("Correct-Horse-9"))
            let xsrf = TestHub.xsrf
            var cookie = ""
            try await client.execute(
                uri: "/hub/login", method: .post, headers: [.cookie: "_xsrf=\(xsrf)", .contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: "_xsrf=\(xsrf)&username=alice&password=Correct-Horse-9")
            ) { response in
                #expect(response.status == .seeOther)
                cookie = response.headers[values: .setCookie].first { $0.hasPrefix("atrium-session=") }.map { String($0.split(separator: ";")[0]) } ?? ""
            }
            #expect(!cookie.isEmpty)
            let session: HTTPFields = [.cookie: "_xsrf=\(xsrf); \(cookie)"]
            try await client.execute(uri: "/hub/api/user", method: .get, headers: session) { #expect($0.status == .ok) }
            try await client.execute(uri: "/hub/api/users/alice/tokens", method: .post, headers: session) { #expect($0.status == .forbidden) }
            var withHeader = session
            withHeader[.init("X-XSRFToken")!] = xsrf
            try await client.execute(uri: "/hub/api/users/alice/tokens", method: .post, headers: withHeader) { #expect($0.status == .created) }
        }
    }

    /// Logs alice in with a password and returns her session cookie (`atrium-session=…`).
    func login(_ client: any TestClientProtocol, _ store: Store, xsrf: String) async throws -> String {
        try await store.setPasswordHash("alice", try await PasswordHasher(cost: 4).hash("Correct-Horse-9"))
        var cookie = ""
        try await client.execute(
            uri: "/hub/login", method: .post, headers: [.cookie: "_xsrf=\(xsrf)", .contentType: "application/x-www-form-urlencoded"],
            body: ByteBuffer(string: "_xsrf=\(xsrf)&username=alice&password=Correct-Horse-9")
        ) { response in
            cookie = response.headers[values: .setCookie].first { $0.hasPrefix("atrium-session=") }.map { String($0.split(separator: ";")[0]) } ?? ""
        }
        return cookie
    }

    @Test("an unknown token beside a valid session cookie: the cookie identifies the caller (as JupyterHub)")
    func foreignTokenBesideCookie() async throws {
        try await withHub { f, client in
            let xsrf = TestHub.xsrf
            let cookie = try await login(client, f.store, xsrf: xsrf)
            var headers: HTTPFields = [.cookie: "_xsrf=\(xsrf); \(cookie)", .authorization: "token a-workspace-secret"]
            try await client.execute(uri: "/hub/api/user", method: .get, headers: headers) { response in
                #expect(response.status == .ok)
                #expect((Self.json(response.body) as? [String: Any])?["name"] as? String == "alice")
            }
            // Cookie-authenticated, so writes still need the XSRF token.
            try await client.execute(uri: "/hub/api/users/alice/tokens", method: .post, headers: headers) { #expect($0.status == .forbidden) }
            headers[.init("X-XSRFToken")!] = xsrf
            try await client.execute(uri: "/hub/api/users/alice/tokens", method: .post, headers: headers) { #expect($0.status == .created) }
            // Without the cookie the unknown token is nobody.
            try await client.execute(uri: "/hub/api/user", method: .get, headers: [.authorization: "token a-workspace-secret"]) {
                #expect($0.status == .forbidden)
            }
        }
    }

    @Test("using a token or a session is the user's activity, as in JupyterHub (the idle culler's --cull-users reads it)")
    func tokenUseIsActivity() async throws {
        try await withHub { f, client in
            #expect(try await f.store.user(named: "alice")?.lastActivity == nil)
            try await client.execute(uri: "/hub/api/user", method: .get, headers: auth(f.userToken)) { #expect($0.status == .ok) }
            let after = try #require(try await f.store.user(named: "alice")?.lastActivity)
            #expect(abs(after.timeIntervalSinceNow) < 600)
            try await client.execute(uri: "/hub/api/users/alice", method: .get, headers: auth(f.adminToken)) { response in
                #expect((Self.json(response.body) as? [String: Any])?["last_activity"] is String)
            }
            #expect(try await f.store.user(named: "root")?.lastActivity != nil, "the admin's own token use counts too")
        }
    }

    @Test("activity for a default server that never started is accepted; {} is 400")
    func jupyterHubActivityCodes() async throws {
        try await withHub { f, client in
            let stamp = Timestamp.format(Date().addingTimeInterval(-5))
            let body = ByteBuffer(string: #"{"servers": {"": {"last_activity": "\#(stamp)"}}, "last_activity": "\#(stamp)"}"#)
            try await client.execute(uri: "/hub/api/users/alice/activity", method: .post, headers: auth(f.adminToken), body: body) {
                #expect($0.status == .ok)
            }
            try await client.execute(
                uri: "/hub/api/users/alice/activity", method: .post, headers: auth(f.adminToken), body: ByteBuffer(string: "{}")
            ) { response in
                #expect(response.status == .badRequest)
                #expect(String(buffer: response.body).contains("at least one of"))
            }
            let named = ByteBuffer(string: #"{"servers": {"nope": {"last_activity": "\#(stamp)"}}}"#)
            try await client.execute(uri: "/hub/api/users/alice/activity", method: .post, headers: auth(f.adminToken), body: named) {
                #expect($0.status == .badRequest)
            }
        }
    }

    @Test("logging out ends the session on the server: the old cookie no longer works")
    func logoutEndsSession() async throws {
        try await withHub { f, client in
            let xsrf = TestHub.xsrf
            let cookie = try await login(client, f.store, xsrf: xsrf)
            let session: HTTPFields = [.cookie: "_xsrf=\(xsrf); \(cookie)", .contentType: "application/x-www-form-urlencoded"]
            try await client.execute(uri: "/hub/api/user", method: .get, headers: session) { #expect($0.status == .ok) }
            try await client.execute(uri: "/hub/logout", method: .post, headers: session, body: ByteBuffer(string: "_xsrf=\(xsrf)")) { response in
                #expect(response.status == .seeOther)
                #expect(response.headers[.location] == "/hub/login?logged_out=1")
            }
            try await client.execute(uri: "/hub/api/user", method: .get, headers: session) { #expect($0.status == .forbidden) }
            try await client.execute(uri: "/hub/login?logged_out=1", method: .get) { response in
                #expect(String(buffer: response.body).contains("You have been logged out."))
            }
        }
    }

    @Test("a name and its decomposed twin are one user: no second account, no access to the first one's things")
    func unicodeTwins() async throws {
        try await withHub { f, client in
            let composed = "\u{E9}mile"  // é as one code point
            let decomposed = "e\u{301}mile"  // e + combining acute accent
            let first = ByteBuffer(string: #"{"usernames": ["\#(composed)"]}"#)
            try await client.execute(uri: "/hub/api/users", method: .post, headers: auth(f.adminToken), body: first) { #expect($0.status == .created) }
            let twin = ByteBuffer(string: #"{"usernames": ["\#(decomposed)"]}"#)
            try await client.execute(uri: "/hub/api/users", method: .post, headers: auth(f.adminToken), body: twin) { response in
                #expect(response.status != .created, "the decomposed twin was created as a second user")
            }
            let path = decomposed.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed)!
            try await client.execute(uri: "/hub/api/users/\(path)", method: .get, headers: auth(f.adminToken)) { response in
                #expect(response.status == .ok)
                #expect((Self.json(response.body) as? [String: Any])?["name"] as? String == composed)
            }
            let (users, _) = try await f.store.users(UserQuery())
            #expect(users.filter { Array($0.name.utf8) == Array(composed.utf8) }.count == 1)
            #expect(!users.contains { Array($0.name.utf8) == Array(decomposed.utf8) })
            for bad in ["..", ".", "a\u{202E}b", "zero\u{200B}width"] {
                let body = ByteBuffer(string: #"{"usernames": ["\#(bad)"]}"#)
                try await client.execute(uri: "/hub/api/users", method: .post, headers: auth(f.adminToken), body: body) {
                    #expect($0.status == .badRequest, "\(bad.unicodeScalars.map { String($0.value, radix: 16) })")
                }
            }
        }
    }

    @Test("a browser opening someone else's workspace gets an HTML page that says so; the icon is served")
    func foreignWorkspacePage() async throws {
        try await withHub { f, client in
            let xsrf = TestHub.xsrf
            let cookie = try await login(client, f.store, xsrf: xsrf)
            try await client.execute(uri: "/user/root/lab", method: .get, headers: [.cookie: cookie, .accept: "text/html,*/*"]) { response in
                #expect(response.status == .forbidden)
                #expect(response.headers[.contentType]?.hasPrefix("text/html") == true)
                #expect(String(buffer: response.body).contains("belongs to someone else"))
            }
            try await client.execute(uri: "/user/root/api/status", method: .get, headers: [.cookie: cookie]) { response in
                #expect(response.status == .forbidden)
                #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
            }
            try await client.execute(uri: "/favicon.ico", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType] == "image/svg+xml")
            }
        }
    }
}
