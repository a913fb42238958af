import AtriumModel
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresKit
@preconcurrency import AsyncKit
import SQLKit
import SQLiteKit

/// Which database engine a store talks to.
public enum DatabaseKind: String, Sendable {
    case sqlite, postgres
}

/// The hub's persistent state over SQLKit: SQLite by default, PostgreSQL for scale. Every
/// method is one statement or one transaction; nothing here caches rows.
public final class Store: Sendable {
    /// The database writes and transactions go through.
    public let sql: any SQLDatabase
    /// Where single-statement reads go. With a SQLite file, a pool of its own: in WAL mode
    /// readers run beside the one writer instead of queueing behind it, and each statement sees
    /// every committed write. Elsewhere the same database as ``sql``.
    let reader: any SQLDatabase
    /// The engine behind ``sql``.
    public let kind: DatabaseKind
    private let shutdownHook: @Sendable () async throws -> Void

    private init(sql: any SQLDatabase, reader: (any SQLDatabase)? = nil, kind: DatabaseKind, shutdown: @escaping @Sendable () async throws -> Void) {
        self.sql = sql
        self.reader = reader ?? sql
        self.kind = kind
        self.shutdownHook = shutdown
    }

    /// Opens the database named by `location`: a `postgres://` or `postgresql://` URL, `:memory:`,
    /// or a file path for SQLite (created if missing).
    public static func open(_ location: String, logger: Logger) async throws -> Store {
        if location.hasPrefix("postgres://") || location.hasPrefix("postgresql://") {
            let configuration: SQLPostgresConfiguration
            do { configuration = try SQLPostgresConfiguration(url: location) } catch {
                throw StoreError(.badConfiguration, "cannot read the PostgreSQL URL (expected postgres://user:password@host:port/database)")
            }
            let pool = PostgresPool(configuration: try PostgresClient.Configuration(configuration.coreConfiguration), logger: logger)
            let store = Store(sql: PooledPostgres(pool: pool, logger: logger), kind: .postgres) { await pool.close() }
            do { _ = try await store.sql.raw("SELECT 1").all() } catch {
                await pool.close()
                throw StoreError(.badConfiguration, "cannot connect to PostgreSQL at \(redacted(location)): \(String(reflecting: error))")
            }
            return store
        }
        let storage: SQLiteConfiguration.Storage
        if location == ":memory:" {
            storage = .memory(identifier: UUID().uuidString)
        } else {
            let directory = URL(fileURLWithPath: location).deletingLastPathComponent().path
            guard FileManager.default.fileExists(atPath: directory) else {
                throw StoreError(.badConfiguration, "the folder for the database file \(location) does not exist")
            }
            // A new database is created readable by the hub's user only (it holds password and
            // token hashes); SQLite gives its -wal and -shm files the same mode.
            if !FileManager.default.fileExists(atPath: location) {
                _ = FileManager.default.createFile(atPath: location, contents: nil, attributes: [.posixPermissions: 0o600])
            }
            storage = .file(path: location)
        }
        let pool = EventLoopGroupConnectionPool(
            source: SQLiteConnectionSource(configuration: .init(storage: storage, enableForeignKeys: true), threadPool: .singleton),
            // One connection: SQLite has one writer anyway, and sqlite-nio's busy handler spins on
            // NIO's shared thread pool, so competing connections could starve the lock holder.
            // Transactions lease the connection whole (withSession), which serializes them.
            maxConnectionsPerEventLoop: 1, requestTimeout: .seconds(60), logger: logger,
            on: MultiThreadedEventLoopGroup.singleton.next())
        let box = PoolBox(pool: pool)
        // Readers: a second pool on the same file. Not for `:memory:`, whose connections share a
        // cache with table locks, where a reader would fail while the writer holds one.
        let readers: PoolBox<SQLiteConnectionSource>? =
            location == ":memory:"
            ? nil
            : PoolBox(
                pool: EventLoopGroupConnectionPool(
                    source: SQLiteConnectionSource(configuration: .init(storage: storage, enableForeignKeys: true), threadPool: .singleton),
                    maxConnectionsPerEventLoop: 2, requestTimeout: .seconds(60), logger: logger,
                    on: MultiThreadedEventLoopGroup.singleton.next()))
        let store = Store(
            sql: PooledSQLite(box: box, logger: logger).sql(queryLogLevel: .trace),
            reader: readers.map { PooledSQLite(box: $0, logger: logger).sql(queryLogLevel: .trace) }, kind: .sqlite
        ) {
            try await readers?.pool.shutdownAsync()
            try await box.pool.shutdownAsync()
        }
        do {
            // WAL lets readers proceed while one writer writes; it is a property of the file.
            if location != ":memory:" { _ = try await store.sql.raw("PRAGMA journal_mode=WAL").all() }
            _ = try await store.sql.raw("PRAGMA synchronous=NORMAL").all()
        } catch {
            try? await readers?.pool.shutdownAsync()
            try? await pool.shutdownAsync()
            throw StoreError(.badConfiguration, "cannot open the SQLite database \(location): \(String(reflecting: error))")
        }
        return store
    }

    /// Closes every connection. Call once, at shutdown.
    public func close() async throws { try await shutdownHook() }

    /// Runs `body` in one transaction on one connection: all of its writes land, or none do.
    public func transaction<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        let begin = kind == .sqlite ? "BEGIN IMMEDIATE" : "BEGIN"
        return try await sql.withSession { db in
            try await db.raw(SQLQueryString(begin)).run()
            do {
                let result = try await body(db)
                try await db.raw("COMMIT").run()
                return result
            } catch {
                try? await db.raw("ROLLBACK").run()
                throw error
            }
        }
    }

    /// Whether `error` is a unique-constraint violation in either database.
    static func isUniqueViolation(_ error: any Error) -> Bool {
        let text = String(reflecting: error)
        return text.contains("UNIQUE constraint failed") || text.contains("23505") || text.contains("duplicate key")
    }

    private static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url) else { return "the configured URL" }
        if components.password != nil { components.password = "***" }
        return components.string ?? "the configured URL"
    }
}

extension Date {
    /// Seconds since 1970 as stored in both databases.
    var storedValue: Double { timeIntervalSince1970 }
    init(stored: Double) { self.init(timeIntervalSince1970: stored) }
}

extension SQLRow {
    func date(_ column: String) throws -> Date { Date(stored: try decode(column: column, as: Double.self)) }
    func optionalDate(_ column: String) throws -> Date? {
        try decode(column: column, as: Double?.self).map(Date.init(stored:))
    }
    func json(_ column: String) throws -> JSONValue {
        guard let text = try decode(column: column, as: String?.self) else { return .null }
        return JSONValue(jsonText: text) ?? .null
    }
}

/// The connection pools are thread-safe (they lock internally) but are not marked `Sendable`.
struct PoolBox<Source: ConnectionPoolSource>: @unchecked Sendable {
    let pool: EventLoopGroupConnectionPool<Source>
}

/// An `SQLiteDatabase` that leases a connection from a pool for each query, so SQLite gets
/// several connections (WAL readers in parallel) and `withSession` pins one for a transaction.
struct PooledSQLite: SQLiteDatabase {
    let box: PoolBox<SQLiteConnectionSource>
    let logger: Logger
    var eventLoop: any EventLoop { box.pool.eventLoopGroup.any() }

    func query(
        _ query: String, _ binds: [SQLiteData], logger: Logger, _ onRow: @escaping @Sendable (SQLiteRow) -> Void
    ) -> EventLoopFuture<Void> {
        box.pool.withConnection(logger: logger) { $0.query(query, binds, logger: logger, onRow) }
    }

    func withConnection<T>(_ closure: @escaping @Sendable (SQLiteConnection) -> EventLoopFuture<T>) -> EventLoopFuture<T> {
        box.pool.withConnection(logger: logger) { closure($0) }
    }
}
