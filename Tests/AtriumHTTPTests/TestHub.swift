import AtriumAuth
@testable import AtriumHTTP
import AtriumStore
import Logging

/// A hub over an in-memory store for route tests: an admin `root` and a user `alice`, each
/// with an `inherit` token (and the password hash given, if any).
struct TestHub {
    /// An XSRF token signed with the test hubs' cookie secret (forms and scripts send it back).
    static let xsrf = SessionCodec(secret: Array(repeating: 7, count: 32), lifetime: 3600).newXSRFToken()

    let store: Store
    let hub: Hub
    let adminToken: String
    let userToken: String

    static func make(passwordHash: String? = nil) async throws -> TestHub {
        let logger = Logger(label: "test")
        let store = try await Store.open(":memory:", logger: logger)
        try await store.migrate()
        var auth = AuthConfiguration()
        auth.bcryptCost = 4
        let authenticator = Authenticator(configuration: auth, store: store, logger: logger)
        let hub = try Hub(
            store: store, authenticator: authenticator,
            settings: HTTPSettings(cookieSecret: Array(repeating: 7, count: 32), atriumVersion: "test", apiVersion: "5.4.0"),
            logger: logger)
        let created = try await store.createUsers([
            NewUser(name: "root", admin: true, passwordHash: passwordHash), NewUser(name: "alice", passwordHash: passwordHash),
        ]).created
        let (adminToken, _) = try await TokenHashing.issue(for: created[0], scopes: ["inherit"], note: nil, expiresIn: nil, store: store)
        let (userToken, _) = try await TokenHashing.issue(for: created[1], scopes: ["inherit"], note: nil, expiresIn: nil, store: store)
        return TestHub(store: store, hub: hub, adminToken: adminToken, userToken: userToken)
    }
}
