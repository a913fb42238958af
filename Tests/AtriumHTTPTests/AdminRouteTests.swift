import AtriumAuth
@testable import AtriumHTTP
import AtriumModel
import AtriumStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// The admin panel's pages and Atrium's admin endpoints (roster, password reset, delete with
/// files, approval), through Hummingbird's test client.
@Suite("Admin panel routes")
struct AdminRouteTests {
    static let xsrf = TestHub.xsrf

    struct Fixture: Sendable {
        let store: Store
        let adminToken: String
        let userToken: String
        /// Cookie headers of a logged-in browser session, without and with the XSRF header.
        let adminSession: HTTPFields
        let userSession: HTTPFields
    }

    func withHub(_ body: @escaping @Sendable (Fixture, any TestClientProtocol) async throws -> Void) async throws {
        let t = try await TestHub.make(passwordHash: try await PasswordHasher(cost: 4).hash("Correct-Horse-9"))
        let (store, hub, adminToken, userToken) = (t.store, t.hub, t.adminToken, t.userToken)
        let app = Application(router: HubRouter.build(hub))
        try await app.test(.router) { client in
            let admin = try await Self.login(client, "root")
            let user = try await Self.login(client, "alice")
            try await body(Fixture(store: store, adminToken: adminToken, userToken: userToken, adminSession: admin, userSession: user), client)
        }
        try await store.close()
    }

    static func login(_ client: any TestClientProtocol, _ name: String) async throws -> HTTPFields {
        var cookie = ""
        try await client.execute(
            uri: "/hub/login", method: .post, headers: [.cookie: "_xsrf=\(xsrf)", .contentType: "application/x-www-form-urlencoded"],
            body: ByteBuffer(string: "_xsrf=\(xsrf)&username=\(name)&password=Correct-Horse-9")
        ) { response in
            cookie = response.headers[values: .setCookie].first { $0.hasPrefix("atrium-session=") }.map { String($0.split(separator: ";")[0]) } ?? ""
        }
        return [.cookie: "_xsrf=\(xsrf); \(cookie)"]
    }

    static func withXSRF(_ headers: HTTPFields) -> HTTPFields {
        var h = headers
        h[.init("X-XSRFToken")!] = xsrf
        return h
    }

    static func json(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any] ?? [:]
    }

    static func roster(_ csv: String) -> ByteBuffer {
        let data = try! JSONSerialization.data(withJSONObject: ["csv": csv])
        return ByteBuffer(bytes: data)
    }

    @Test("the panel: admins get it, other users a 403 page, anonymous browsers the login page; the script is served")
    func adminPageAccess() async throws {
        try await withHub { f, client in
            try await client.execute(uri: "/hub/admin", method: .get, headers: f.adminSession) { response in
                #expect(response.status == .ok)
                let html = String(decoding: response.body.readableBytesView, as: UTF8.self)
                #expect(html.contains("id=\"users-body\""))
                #expect(html.contains("/hub/static/admin.js"))
                #expect(!html.contains("http://") && !html.contains("https://"), "nothing is loaded from the network")
            }
            try await client.execute(uri: "/hub/admin", method: .get, headers: f.userSession) { response in
                #expect(response.status == .forbidden)
                #expect(response.headers[.contentType]?.hasPrefix("text/html") == true)
            }
            try await client.execute(uri: "/hub/admin", method: .get) { response in
                #expect(response.status == .found)
                #expect(response.headers[.location]?.hasPrefix("/hub/login?next=") == true)
            }
            try await client.execute(uri: "/hub/static/admin.js", method: .get) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.contentType]?.hasPrefix("text/javascript") == true)
                #expect(String(decoding: response.body.readableBytesView, as: UTF8.self).contains("X-XSRFToken"))
            }
            try await client.execute(uri: "/hub/token", method: .get, headers: f.userSession) { #expect($0.status == .ok) }
            try await client.execute(uri: "/hub/token", method: .get) { #expect($0.status == .found) }
        }
    }

    @Test("admin endpoints: 403 for non-admins, XSRF enforced for cookie sessions")
    func adminEndpointsNeedAdminAndXSRF() async throws {
        try await withHub { f, client in
            for uri in ["/hub/api/roster", "/hub/api/users/root/reset-password", "/hub/api/users/root/delete-forever"] {
                try await client.execute(uri: uri, method: .post, headers: [.authorization: "token \(f.userToken)"], body: Self.roster("bob")) { response in
                    #expect(response.status == .forbidden, "\(uri)")
                    #expect(Self.json(response.body)["status"] as? Int == 403)
                }
                try await client.execute(uri: uri, method: .post, headers: Self.withXSRF(f.userSession), body: Self.roster("bob")) {
                    #expect($0.status == .forbidden, "\(uri)")
                }
            }
            // The admin's own session without the XSRF header is refused, and nothing changes.
            try await client.execute(uri: "/hub/api/roster", method: .post, headers: f.adminSession, body: Self.roster("bob")) { response in
                #expect(response.status == .forbidden)
                #expect((Self.json(response.body)["message"] as? String ?? "").contains("_xsrf"))
            }
            try await client.execute(uri: "/hub/api/users/alice", method: .patch, headers: f.adminSession, body: ByteBuffer(string: #"{"approval": "revoked"}"#)) {
                #expect($0.status == .forbidden)
            }
            #expect(try await f.store.user(named: "bob") == nil)
            #expect(try await f.store.user(named: "alice")?.approval == .approved)
            // With it, it works.
            try await client.execute(uri: "/hub/api/roster", method: .post, headers: Self.withXSRF(f.adminSession), body: Self.roster("bob")) {
                #expect($0.status == .created)
            }
        }
    }

    @Test("a roster creates users with groups, admin flags and passwords that log in")
    func rosterCreatesUsers() async throws {
        try await withHub { f, client in
            let csv = "username,group,profile,admin\r\nAnn,course-a,,\r\nben,course-a;tutors,,true\r\n\r\n# a comment\r\n\"cy\",,,no\r\n"
            var passwords: [String: String] = [:]
            try await client.execute(uri: "/hub/api/roster", method: .post, headers: Self.withXSRF(f.adminSession), body: Self.roster(csv)) { response in
                #expect(response.status == .created)
                let users = Self.json(response.body)["users"] as? [[String: Any]] ?? []
                #expect(users.map { $0["name"] as? String } == ["ann", "ben", "cy"])
                for u in users { passwords[u["name"] as! String] = u["password"] as? String }
                #expect(users.map { $0["line"] as? Int } == [2, 3, 6])
            }
            #expect(passwords.count == 3 && passwords.values.allSatisfy { $0.count == 14 })
            let ben = try #require(try await f.store.user(named: "ben"))
            #expect(ben.admin && ben.approval == .approved && ben.groups == ["course-a", "tutors"])
            #expect(try await f.store.group(named: "course-a")?.users.sorted() == ["ann", "ben"])
            try await client.execute(
                uri: "/hub/login", method: .post, headers: [.cookie: "_xsrf=\(Self.xsrf)", .contentType: "application/x-www-form-urlencoded"],
                body: ByteBuffer(string: "_xsrf=\(Self.xsrf)&username=cy&password=\(passwords["cy"] ?? "")")
            ) { #expect($0.status == .seeOther) }
        }
    }

    @Test("bad roster rows are a 400 naming each line, and nothing is created", arguments: [
        ("ann\nb/ob\ncarl", "line 2"),
        ("username,group,profile,admin\nann,,,maybe", "line 2: admin must be true or false"),
        ("ann\n\nann", "line 3: ann is listed twice (first on line 1)"),
        ("ann,g,,,extra", "line 1: 5 fields"),
        ("username,colour\nann,red", "line 1: unknown column"),
        ("ann,\"unterminated", "line 1: an unterminated quote"),
        ("root", "line 1: user root already exists"),
        ("ann,,gpu", "line 1: no profile gpu"),
        ("\n# nobody\n", "lists nobody"),
    ])
    func rosterErrors(_ csv: String, _ expected: String) async throws {
        try await withHub { f, client in
            try await client.execute(uri: "/hub/api/roster", method: .post, headers: Self.withXSRF(f.adminSession), body: Self.roster(csv)) { response in
                #expect(response.status == .badRequest)
                let message = Self.json(response.body)["message"] as? String ?? ""
                #expect(message.contains(expected), "\(message)")
            }
            #expect(try await f.store.userCount() == 2)
        }
    }

    @Test("roster and admin endpoints refuse malformed bodies with 400 JSON")
    func validation() async throws {
        try await withHub { f, client in
            let h: HTTPFields = [.authorization: "token \(f.adminToken)"]
            for body in ["", "{}", #"{"csv": 3}"#, #"{"csv": "a", "more": 1}"#, "[]"] {
                try await client.execute(uri: "/hub/api/roster", method: .post, headers: h, body: ByteBuffer(string: body)) { response in
                    #expect(response.status == .badRequest, "\(body)")
                    #expect(Self.json(response.body)["status"] as? Int == 400)
                }
            }
            try await client.execute(uri: "/hub/api/users/alice", method: .patch, headers: h, body: ByteBuffer(string: #"{"approval": "maybe"}"#)) {
                #expect($0.status == .badRequest)
            }
            try await client.execute(uri: "/hub/api/users/root", method: .patch, headers: h, body: ByteBuffer(string: #"{"approval": "revoked"}"#)) {
                #expect($0.status == .badRequest, "nobody revokes themselves")
            }
            try await client.execute(uri: "/hub/api/users/nobody/reset-password", method: .post, headers: h) { #expect($0.status == .notFound) }
            try await client.execute(uri: "/hub/api/users?state=idle&idle_for=-3", method: .get, headers: h) { #expect($0.status == .badRequest) }
            try await client.execute(uri: "/hub/api/users/root/delete-forever", method: .post, headers: h) { #expect($0.status == .badRequest) }
        }
    }

    @Test("approve, revoke (the user is logged out and cannot log in), reset password, delete forever")
    func perUserActions() async throws {
        try await withHub { f, client in
            let h = Self.withXSRF(f.adminSession)
            try await client.execute(uri: "/hub/api/users/alice", method: .patch, headers: h, body: ByteBuffer(string: #"{"approval": "revoked"}"#)) { response in
                #expect(response.status == .ok)
                #expect(Self.json(response.body)["approval"] as? String == "revoked")
            }
            try await client.execute(uri: "/hub/api/user", method: .get, headers: f.userSession) { #expect($0.status == .forbidden) }
            #expect(try await f.store.user(named: "alice") != nil, "their data stays")
            try await client.execute(uri: "/hub/api/users/alice", method: .patch, headers: h, body: ByteBuffer(string: #"{"approval": "approved"}"#)) {
                #expect($0.status == .ok)
            }
            var password = ""
            try await client.execute(uri: "/hub/api/users/alice/reset-password", method: .post, headers: h) { response in
                #expect(response.status == .ok)
                password = Self.json(response.body)["password"] as? String ?? ""
            }
            #expect(password.count == 14)
            #expect(try await PasswordHasher(cost: 4).verify(password, hash: try #require(try await f.store.user(named: "alice")?.passwordHash)))
            try await client.execute(uri: "/hub/api/users?state=idle", method: .get, headers: [.authorization: "token \(f.adminToken)"]) { response in
                #expect(response.status == .ok)
            }
            try await client.execute(uri: "/hub/api/users/alice/delete-forever", method: .post, headers: h) { #expect($0.status == .noContent) }
            #expect(try await f.store.user(named: "alice") == nil)
        }
    }
}
