import AtriumModel
@testable import AtriumStore
import Foundation
import Logging
import SQLKit
import Testing

/// The databases the store conformance suite runs on.
///
/// PostgreSQL cases need `ATRIUM_TEST_POSTGRES_URL` (a server where the user may
/// `CREATE DATABASE`; `scripts/test.sh` starts one). Without it they are left out of the
/// arguments and the test "PostgreSQL is configured for the conformance suite" reports the
/// skip; under `CI=true` they stay in and fail.
enum StoreKind: String, Sendable, CaseIterable, CustomTestStringConvertible {
    /// SQLite in a fresh temporary file (WAL, several connections).
    case sqlite
    /// SQLite in memory (one connection).
    case sqliteMemory
    /// PostgreSQL, in a fresh database per test.
    case postgres

    /// Whether PostgreSQL cases run: when configured, and always under CI (where they then fail).
    static var includesPostgres: Bool { TestEnvironment.postgresURL != nil || TestEnvironment.isCI }

    /// The two engines every conformance test runs on.
    static var engines: [StoreKind] { includesPostgres ? [.sqlite, .postgres] : [.sqlite] }

    /// Both engines plus SQLite in memory.
    static var all: [StoreKind] { includesPostgres ? allCases : [.sqlite, .sqliteMemory] }

    var testDescription: String {
        switch self {
        case .sqlite: "SQLite file"
        case .sqliteMemory: "SQLite :memory:"
        case .postgres: "PostgreSQL"
        }
    }
}

/// Environment of the test run.
enum TestEnvironment {
    static var postgresURL: String? {
        guard let url = ProcessInfo.processInfo.environment["ATRIUM_TEST_POSTGRES_URL"], !url.isEmpty else { return nil }
        return url
    }

    static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    static let logger: Logger = {
        var logger = Logger(label: "atrium.store-tests")
        logger.logLevel = .warning
        return logger
    }()
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
}

/// A fixed instant (2027-01-15T08:00:00Z), a whole number of seconds so it survives storage exactly.
let t0 = Date(timeIntervalSince1970: 1_800_000_000)

/// Runs `body` with a fresh, migrated store of `kind`, then closes and deletes the database,
/// whether `body` succeeded or not.
func withStore<R: Sendable>(
    _ kind: StoreKind, migrate: Bool = true, _ body: (Store) async throws -> R
) async throws -> R {
    let database = try await TestDatabase.create(kind)
    let store: Store
    do {
        store = try await Store.open(database.location, logger: TestEnvironment.logger)
    } catch {
        try? await database.destroy()
        throw error
    }
    let result: Result<R, any Error>
    do {
        if migrate { try await store.migrate() }
        result = .success(try await body(store))
    } catch {
        result = .failure(error)
    }
    try? await store.close()
    try await database.destroy()
    return try result.get()
}

/// One throwaway database: a temporary SQLite file, memory, or a PostgreSQL database.
struct TestDatabase: Sendable {
    let kind: StoreKind
    /// What ``Store/open(_:logger:)`` takes.
    let location: String
    /// The temporary folder (SQLite file) or the database name (PostgreSQL).
    let handle: String

    static func create(_ kind: StoreKind) async throws -> TestDatabase {
        switch kind {
        case .sqliteMemory:
            return TestDatabase(kind: kind, location: ":memory:", handle: "")
        case .sqlite:
            let folder = FileManager.default.temporaryDirectory
                .appendingPathComponent("atrium-store-test-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            return TestDatabase(kind: kind, location: folder.appendingPathComponent("atrium.sqlite").path, handle: folder.path)
        case .postgres:
            let base = try postgresBaseURL()
            let name = "atrium_t_" + (0..<6).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
            try await withAdminStore(base) { admin in
                try await admin.sql.raw("CREATE DATABASE \(unsafeRaw: name)").run()
            }
            guard var components = URLComponents(string: base) else { throw FixtureError(description: "bad URL \(base)") }
            components.path = "/" + name
            return TestDatabase(kind: kind, location: components.string!, handle: name)
        }
    }

    /// Deletes what ``create(_:)`` made. Call after the store is closed.
    func destroy() async throws {
        switch kind {
        case .sqliteMemory:
            break
        case .sqlite:
            try FileManager.default.removeItem(atPath: handle)
        case .postgres:
            try await Self.withAdminStore(try Self.postgresBaseURL()) { admin in
                try await admin.sql.raw("DROP DATABASE IF EXISTS \(unsafeRaw: handle) WITH (FORCE)").run()
            }
        }
    }

    /// The server URL; a failure under CI when it is not configured (elsewhere the case is
    /// not generated, but cancel it should it be).
    static func postgresBaseURL() throws -> String {
        if let url = TestEnvironment.postgresURL { return url }
        if TestEnvironment.isCI {
            throw FixtureError(description: "CI=true but ATRIUM_TEST_POSTGRES_URL is not set: PostgreSQL store tests cannot run")
        }
        try Test.cancel("ATRIUM_TEST_POSTGRES_URL is not set: PostgreSQL case skipped (scripts/test.sh starts a server)")
    }

    private static func withAdminStore(_ url: String, _ body: (Store) async throws -> Void) async throws {
        let admin = try await Store.open(url, logger: TestEnvironment.logger)
        do { try await body(admin) } catch {
            try? await admin.close()
            throw error
        }
        try await admin.close()
    }
}

/// Expects `body` to throw a ``StoreError`` with `code`.
func expectStoreError(
    _ code: StoreError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> some Any
) async {
    let error = await #expect(throws: StoreError.self, sourceLocation: sourceLocation) { _ = try await body() }
    #expect(error?.code == code, "got \(String(describing: error))", sourceLocation: sourceLocation)
}

extension Store {
    /// Creates approved, non-admin users named `names` at `now`.
    @discardableResult
    func makeUsers(_ names: [String], now: Date = t0) async throws -> [UserRecord] {
        try await createUsers(names.map { NewUser(name: $0) }, now: now).created
    }

    /// The named user, which must exist.
    func requireUser(_ name: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> UserRecord {
        try #require(try await user(named: name), "no user \(name)", sourceLocation: sourceLocation)
    }

    /// Names of the users a query returns, in order.
    func userNames(_ configure: (inout UserQuery) -> Void = { _ in }) async throws -> [String] {
        var query = UserQuery()
        configure(&query)
        return try await users(query).users.map(\.name)
    }

    /// A token row for `user` with made-up hash material.
    func makeToken(
        for user: UserRecord, prefix: String = "abcd", scopes: [String] = ["inherit"], note: String? = nil,
        created: Date = t0, expiresAt: Date? = nil
    ) async throws -> TokenRecord {
        try await insertToken(TokenRecord(
            userID: user.id, userName: user.name, prefix: prefix, salt: "00ff", hash: UUID().uuidString,
            scopes: scopes, note: note, created: created, expiresAt: expiresAt))
    }
}
