import AtriumHTTP
import AtriumStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import SQLKit
import Testing

/// Issue 19, item 12: a database that refuses writes (read-only, full) was reported healthy and
/// every write was a bare 500. Real SQLite faults, made with SQLite's own switches on the
/// store's one writer connection: `query_only` (writes fail with SQLITE_READONLY) and
/// `max_page_count` (growing fails with SQLITE_FULL).
@Suite("Database faults answer 503 with their class")
struct DatabaseFaultTests {
    func withHub(_ body: @escaping @Sendable (TestHub, any TestClientProtocol) async throws -> Void) async throws {
        let t = try await TestHub.make()
        let app = Application(router: HubRouter.build(t.hub))
        try await app.test(.router) { client in try await body(t, client) }
        try await t.store.close()
    }

    func auth(_ token: String) -> HTTPFields { [.authorization: "token \(token)", .contentType: "application/json"] }

    static func json(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any] ?? [:]
    }

    @Test("read-only: /hub/health is 503 naming it, a write is 503 read-only (never 500), reads still work, and health recovers")
    func readOnly() async throws {
        try await withHub { t, client in
            try await client.execute(uri: "/hub/health", method: .get) { #expect($0.status == .ok) }
            try await t.store.sql.raw("PRAGMA query_only = 1").run()
            try await client.execute(uri: "/hub/health", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                #expect(Self.json(response.body)["database"] as? String == "read-only")
            }
            try await client.execute(
                uri: "/hub/api/users", method: .post, headers: auth(t.adminToken), body: ByteBuffer(string: #"{"usernames": ["bob"]}"#)
            ) { response in
                #expect(response.status == .serviceUnavailable)
                #expect((Self.json(response.body)["message"] as? String)?.contains("read-only") == true, "\(String(buffer: response.body))")
                #expect(response.headers[.retryAfter] != nil)
            }
            try await client.execute(uri: "/hub/api/users/alice", method: .get, headers: auth(t.adminToken)) { #expect($0.status == .ok) }
            try await t.store.sql.raw("PRAGMA query_only = 0").run()
            try await client.execute(uri: "/hub/health", method: .get) { #expect($0.status == .ok) }
            #expect(try await t.store.user(named: "bob") == nil)
        }
    }

    @Test("full: creating users on a database that cannot grow is 503 disk full, and nothing is half-written")
    func full() async throws {
        try await withHub { t, client in
            let pages = try await t.store.sql.raw("PRAGMA page_count").first()?.decode(column: "page_count", as: Int.self) ?? 0
            try await t.store.sql.raw("PRAGMA max_page_count = \(unsafeRaw: String(pages))").run()
            let names = (0..<2000).map { "user-with-a-long-name-to-fill-pages-\($0)" }
            let body = try JSONSerialization.data(withJSONObject: ["usernames": names])
            try await client.execute(uri: "/hub/api/users", method: .post, headers: auth(t.adminToken), body: ByteBuffer(bytes: body)) { response in
                #expect(response.status == .serviceUnavailable)
                #expect((Self.json(response.body)["message"] as? String)?.contains("disk full") == true, "\(String(buffer: response.body))")
            }
            #expect(try await t.store.user(named: names[0]) == nil)
        }
    }
}
