import AtriumModel
@testable import AtriumStore
import Foundation
import SQLKit
import Testing

/// The store conformance suite: every test runs on SQLite and on PostgreSQL (each in a fresh
/// database) and must behave the same. Split over `StoreConformanceTests+*.swift` by concern.
/// A few tests also run on SQLite `:memory:`, the store the route tests use.
@Suite("Store conformance")
struct StoreConformanceTests {
    @Test(
        "PostgreSQL is configured for the conformance suite",
        .enabled(
            if: StoreKind.includesPostgres,
            "ATRIUM_TEST_POSTGRES_URL is unset: the PostgreSQL store cases are skipped"))
    func postgresIsConfigured() async throws {
        let url = try #require(TestEnvironment.postgresURL, "CI=true requires ATRIUM_TEST_POSTGRES_URL")
        let store = try await Store.open(url, logger: TestEnvironment.logger)
        let ok = try await store.sql.raw("SELECT 1 AS one").first()?.decode(column: "one", as: Int.self)
        try await store.close()
        #expect(store.kind == .postgres)
        #expect(ok == 1)
    }

    // MARK: Opening and migrations

    @Test("opening picks the engine from the location", arguments: StoreKind.all)
    func openPicksEngine(_ kind: StoreKind) async throws {
        try await withStore(kind, migrate: false) { store in
            #expect(store.kind == (kind == .postgres ? .postgres : .sqlite))
        }
    }

    @Test("a SQLite file in a missing folder is a configuration error")
    func missingFolder() async {
        await expectStoreError(.badConfiguration) {
            try await Store.open("/nonexistent-\(UUID().uuidString)/atrium.sqlite", logger: TestEnvironment.logger)
        }
    }

    @Test("migrate applies every migration once and is idempotent", arguments: StoreKind.all)
    func migrateIsIdempotent(_ kind: StoreKind) async throws {
        try await withStore(kind, migrate: false) { store in
            let first = try await store.migrate()
            #expect(first == Array(1...Store.latestSchemaVersion))
            #expect(try await store.currentSchemaVersion() == Store.latestSchemaVersion)
            let second = try await store.migrate()
            #expect(second.isEmpty)
            #expect(try await store.currentSchemaVersion() == Store.latestSchemaVersion)
            #expect(try await store.userCount() == 0)
        }
    }

    @Test("a schema newer than the binary is refused", arguments: StoreKind.engines)
    func schemaTooNew(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let future = Store.latestSchemaVersion + 1
            try await store.sql.raw(
                "INSERT INTO schema_migrations (version, summary, applied) VALUES (\(bind: future), 'future', 0)").run()
            await expectStoreError(.schemaTooNew) { try await store.migrate() }
        }
    }

    // MARK: Transactions

    struct Boom: Error {}

    @Test("a transaction that throws midway leaves nothing behind", arguments: StoreKind.all)
    func transactionRollsBack(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            await #expect(throws: Boom.self) {
                try await store.transaction { db in
                    try await db.raw(
                        "INSERT INTO users (name, admin, created, approval, cookie_id) VALUES ('ghost', \(bind: false), 0, 'approved', 'c1')"
                    ).run()
                    try await db.raw(
                        "INSERT INTO user_groups (name, properties, created) VALUES ('ghosts', '{}', 0)").run()
                    throw Boom()
                }
            }
            #expect(try await store.user(named: "ghost") == nil)
            #expect(try await store.group(named: "ghosts") == nil)
            #expect(try await store.userCount() == 0)
            // The connection is usable afterwards and a successful transaction commits.
            let n = try await store.transaction { db in
                try await db.raw(
                    "INSERT INTO users (name, admin, created, approval, cookie_id) VALUES ('real', \(bind: false), 0, 'approved', 'c2')"
                ).run()
                return 1
            }
            #expect(n == 1)
            #expect(try await store.user(named: "real") != nil)
        }
    }

    @Test("a batch that hits a constraint midway creates nothing", arguments: StoreKind.engines)
    func batchFailureIsAtomic(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.makeUsers(["taken"])
            await #expect(throws: (any Error).self) {
                try await store.transaction { db in
                    for name in ["new1", "new2", "taken", "new3"] {
                        try await db.raw(
                            "INSERT INTO users (name, admin, created, approval, cookie_id) VALUES (\(bind: name), \(bind: false), 0, 'approved', 'c')"
                        ).run()
                    }
                }
            }
            #expect(try await store.userNames() == ["taken"])
        }
    }

    // MARK: Bulk

    @Test("1,000 users are created, queried and grouped in one batch", arguments: StoreKind.all)
    func thousandUsers(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let names = (0..<1000).map { String(format: "user%04d", $0) }
            let first = try await store.createUsers(names.map { NewUser(name: $0) }, now: t0)
            #expect(first.created.count == 1000)
            #expect(first.created.map(\.name) == names)
            #expect(first.existing.isEmpty)
            #expect(try await store.userCount() == 1000)

            let more = (500..<1500).map { String(format: "user%04d", $0) }
            let second = try await store.createUsers(more.map { NewUser(name: $0) }, now: t0)
            #expect(second.created.count == 500)
            #expect(second.existing == Array(more.prefix(500)))
            #expect(try await store.userCount() == 1500)

            let all = try await store.users(UserQuery())
            #expect(all.total == 1500)
            #expect(all.users.count == 1500)

            _ = try await store.createGroups(["everyone"], members: names)
            let group = try #require(try await store.group(named: "everyone"))
            #expect(group.users.count == 1000)
            #expect(try await store.userNames { $0.group = "everyone"; $0.limit = 3 } == ["user0000", "user0001", "user0002"])
            let restricted = try await store.users({ var q = UserQuery(); q.names = Set(names); return q }())
            #expect(restricted.total == 1000)
            #expect(restricted.users.allSatisfy { $0.groups == ["everyone"] })

            try await store.removeMembers(Array(names.prefix(600)), fromGroup: "everyone")
            #expect(try await store.group(named: "everyone")?.users.count == 400)

            let servers = try await store.servers(ofUserIDs: first.created.map(\.id))
            #expect(servers.isEmpty)
        }
    }
}
