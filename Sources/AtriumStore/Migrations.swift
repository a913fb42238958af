import Foundation
import SQLKit

/// One versioned schema change, written once for each engine where their SQL differs.
struct Migration: Sendable {
    let version: Int
    let summary: String
    let statements: @Sendable (DatabaseKind) -> [String]
}

extension Store {
    /// Every migration, oldest first. Append only: a released migration never changes.
    static let migrations: [Migration] = [
        Migration(version: 1, summary: "users, groups, tokens, servers, login failures") { kind in
            let id = kind == .sqlite ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGSERIAL PRIMARY KEY"
            return [
                """
                CREATE TABLE users (
                    id \(id),
                    name TEXT NOT NULL UNIQUE,
                    admin BOOLEAN NOT NULL DEFAULT FALSE,
                    created DOUBLE PRECISION NOT NULL,
                    last_activity DOUBLE PRECISION,
                    approval TEXT NOT NULL DEFAULT 'approved',
                    password_hash TEXT,
                    cookie_id TEXT NOT NULL
                )
                """,
                "CREATE INDEX users_last_activity ON users (last_activity)",
                "CREATE INDEX users_created ON users (created)",
                "CREATE INDEX users_approval ON users (approval)",
                """
                CREATE TABLE user_groups (
                    id \(id),
                    name TEXT NOT NULL UNIQUE,
                    properties TEXT NOT NULL DEFAULT '{}',
                    created DOUBLE PRECISION NOT NULL
                )
                """,
                """
                CREATE TABLE group_members (
                    group_id BIGINT NOT NULL REFERENCES user_groups (id) ON DELETE CASCADE,
                    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    PRIMARY KEY (group_id, user_id)
                )
                """,
                "CREATE INDEX group_members_user ON group_members (user_id)",
                """
                CREATE TABLE api_tokens (
                    id \(id),
                    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    prefix TEXT NOT NULL,
                    salt TEXT NOT NULL,
                    hash TEXT NOT NULL,
                    scopes TEXT NOT NULL,
                    note TEXT,
                    created DOUBLE PRECISION NOT NULL,
                    expires_at DOUBLE PRECISION,
                    last_activity DOUBLE PRECISION
                )
                """,
                "CREATE INDEX api_tokens_prefix ON api_tokens (prefix)",
                "CREATE INDEX api_tokens_user ON api_tokens (user_id)",
                """
                CREATE TABLE servers (
                    id \(id),
                    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    name TEXT NOT NULL,
                    phase TEXT NOT NULL DEFAULT 'stopped',
                    state TEXT NOT NULL DEFAULT '{}',
                    url TEXT,
                    started DOUBLE PRECISION,
                    last_activity DOUBLE PRECISION,
                    user_options TEXT NOT NULL DEFAULT '{}',
                    UNIQUE (user_id, name)
                )
                """,
                "CREATE INDEX servers_phase ON servers (phase)",
                """
                CREATE TABLE login_failures (
                    name TEXT PRIMARY KEY,
                    count INTEGER NOT NULL,
                    last_failure DOUBLE PRECISION NOT NULL,
                    locked_until DOUBLE PRECISION
                )
                """,
            ]
        },
        Migration(version: 2, summary: "servers.display_name") { _ in
            ["ALTER TABLE servers ADD COLUMN display_name TEXT"]
        },
    ]

    /// The newest schema version this binary knows.
    public static var latestSchemaVersion: Int { migrations.last?.version ?? 0 }

    /// Applies every migration not yet applied, each in its own transaction, and returns the
    /// versions it applied. Refuses a database whose schema is newer than this binary.
    @discardableResult
    public func migrate() async throws -> [Int] {
        // PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against a concurrent one (a
        // duplicate key in pg_type): under the migration lock.
        let kind = self.kind
        try await transaction { db in
            if kind == .postgres { try await db.raw("SELECT pg_advisory_xact_lock(\(literal: Self.migrationLock))").run() }
            try await db.raw(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, summary TEXT NOT NULL, applied DOUBLE PRECISION NOT NULL)"
            ).run()
        }
        let current = try await currentSchemaVersion()
        guard current <= Self.latestSchemaVersion else {
            throw StoreError(
                .schemaTooNew,
                "the database schema is version \(current) but this atrium knows only up to \(Self.latestSchemaVersion): upgrade atrium")
        }
        var applied: [Int] = []
        for migration in Self.migrations where migration.version > current {
            // Another process (a hub starting, `atrium migrate`, `atrium token create`) may be
            // migrating the same new database: one at a time (SQLite's BEGIN IMMEDIATE takes the
            // write lock; PostgreSQL an advisory lock), and a migration already applied by the
            // other is skipped, not run twice.
            do {
                let ran = try await transaction { db in
                    if kind == .postgres { try await db.raw("SELECT pg_advisory_xact_lock(\(literal: Self.migrationLock))").run() }
                    let now = try await db.raw("SELECT MAX(version) AS v FROM schema_migrations").first()?.decode(column: "v", as: Int?.self) ?? 0
                    guard now < migration.version else { return false }
                    for statement in migration.statements(kind) {
                        try await db.raw(SQLQueryString(statement)).run()
                    }
                    try await db.insert(into: "schema_migrations")
                        .columns("version", "summary", "applied")
                        .values(SQLBind(migration.version), SQLBind(migration.summary), SQLBind(Date().storedValue))
                        .run()
                    return true
                }
                if ran { applied.append(migration.version) }
            } catch {
                // The other migrator won the race (SQLite: busy, then "already exists"): fine
                // when the migration is in place now.
                if let now = try? await currentSchemaVersion(), now >= migration.version { continue }
                throw error
            }
        }
        return applied
    }

    /// The PostgreSQL advisory lock key migrations hold ("atrm").
    static let migrationLock = 0x6174_726d

    /// The highest applied migration, 0 for an empty database.
    public func currentSchemaVersion() async throws -> Int {
        let row = try await sql.raw("SELECT MAX(version) AS v FROM schema_migrations").first()
        return try row?.decode(column: "v", as: Int?.self) ?? 0
    }
}
