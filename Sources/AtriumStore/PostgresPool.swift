import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresKit
import SQLKit
import Synchronization

/// The hub's PostgreSQL connections: PostgresNIO's `PostgresClient` (the pool PostgresKit
/// recommends over AsyncKit's, which deadlocked after a database crash: leases of dead
/// connections never came back), with what a hub needs on top of it when the database goes away:
///
/// - a bounded wait for a connection: a request that cannot get one answers 503 (``DatabaseFault``
///   `.unreachable`) instead of queueing behind a server that is gone; while the database is
///   known to be away the wait is short, so every request fails fast;
/// - recovery as soon as the database returns: the client's reconnect back-off grows to a
///   minute, and its circuit breaker then fails every request until an attempt succeeds, so while
///   the database is away a fresh client replaces the old one every few seconds, and the first
///   one to connect after the return is used at once.
final class PostgresPool: Sendable {
    /// No connection could be had within the wait: the database is away or every connection busy.
    struct Unavailable: Error, CustomStringConvertible {
        let reason: String
        var description: String { "no PostgreSQL connection: \(reason)" }
    }

    private struct Current {
        var client: PostgresClient
        var runner: Task<Void, Never>
        var started: ContinuousClock.Instant
        /// Since when leases have failed (nil while the database answers).
        var awaySince: ContinuousClock.Instant?
        var closed = false
    }

    private let configuration: PostgresClient.Configuration
    private let logger: Logger
    private let state: Mutex<Current>
    /// How long a request waits for a connection while the database answers.
    let leaseTimeout: Duration
    /// How long it waits while the database is known to be away.
    let awayLeaseTimeout: Duration
    /// The youngest a client may be replaced at while the database is away.
    let replaceAfter: Duration

    init(
        configuration: PostgresClient.Configuration, logger: Logger, leaseTimeout: Duration = .seconds(10),
        awayLeaseTimeout: Duration = .milliseconds(500), replaceAfter: Duration = .seconds(2)
    ) {
        self.configuration = configuration
        self.logger = logger
        self.leaseTimeout = leaseTimeout
        self.awayLeaseTimeout = awayLeaseTimeout
        self.replaceAfter = replaceAfter
        let (client, runner) = Self.makeClient(configuration, logger: logger)
        state = Mutex(Current(client: client, runner: runner, started: .now))
    }

    private static func makeClient(_ configuration: PostgresClient.Configuration, logger: Logger) -> (PostgresClient, Task<Void, Never>) {
        // The client logs every failed reconnect at info; the pool says once that the database is away.
        var background = logger
        background.logLevel = max(logger.logLevel, .warning)
        let client = PostgresClient(configuration: configuration, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, backgroundLogger: background)
        return (client, Task { await client.run() })
    }

    /// Leases a connection (waiting at most the lease timeout) for `body`.
    func withConnection<R: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> R) async throws -> R {
        let (client, away) = state.withLock { ($0.client, $0.awaySince != nil) }
        let leased = LeaseFlag()
        do {
            let result = try await withThrowingTaskGroup(of: R?.self) { group in
                group.addTask {
                    try await client.withConnection { connection in
                        leased.set()
                        return try await body(connection)
                    }
                }
                group.addTask {
                    try await Task.sleep(for: away ? self.awayLeaseTimeout : self.leaseTimeout)
                    if leased.isSet { return nil }
                    throw Unavailable(reason: "none free within \(away ? self.awayLeaseTimeout : self.leaseTimeout)")
                }
                while let next = try await group.next() {
                    if let value = next {
                        group.cancelAll()
                        return value
                    }
                }
                throw Unavailable(reason: "the lease ended without a result")
            }
            if away { markReturned() }
            return result
        } catch {
            if leased.isSet {
                // The connection died under the query: the database went away (or the query failed).
                if DatabaseFault.classify(error) == .unreachable { markAway(client, replace: false) }
                throw error
            }
            markAway(client, replace: true)
            if error is Unavailable { throw error }
            throw Unavailable(reason: String(describing: error))
        }
    }

    private func markReturned() {
        let wasAway = state.withLock { current in
            defer { current.awaySince = nil }
            return current.awaySince != nil
        }
        if wasAway { logger.notice("PostgreSQL answers again") }
    }

    /// Records that the database is away. When `client` could not give a connection at all
    /// (`replace`), replaces it with a fresh one (whose first attempt connects at once) if it is
    /// old enough, so recovery never waits out a back-off grown while the database was away. A
    /// connection lost under a query alone replaces nothing: the others may be fine.
    private func markAway(_ client: PostgresClient, replace: Bool) {
        let retired: Task<Void, Never>? = state.withLock { current in
            let now = ContinuousClock.now
            if current.awaySince == nil {
                current.awaySince = now
                logger.warning("PostgreSQL is unreachable: requests that need it answer 503 until it returns")
            }
            guard replace, !current.closed, current.client === client, current.started.duration(to: now) >= replaceAfter else { return nil }
            let old = current.runner
            (current.client, current.runner) = Self.makeClient(configuration, logger: logger)
            current.started = now
            return old
        }
        // Cancelling `run()` closes the old client and every connection it still has.
        retired?.cancel()
    }

    /// Closes every connection; leases after this fail.
    func close() async {
        let runner = state.withLock { current in
            current.closed = true
            return current.runner
        }
        runner.cancel()
        await runner.value
    }
}

extension PostgresClient.Configuration {
    /// The client configuration for what `SQLPostgresConfiguration(url:)` read from a URL.
    init(_ connection: PostgresConnection.Configuration) throws {
        let tls: PostgresClient.Configuration.TLS
        switch (connection.tls.isEnforced, connection.tls.isAllowed, connection.tls.sslContext) {
        case (true, _, let context?): tls = .require(context.configuration)
        case (false, true, let context?): tls = .prefer(context.configuration)
        default: tls = .disable
        }
        if let host = connection.host, let port = connection.port {
            self.init(host: host, port: port, username: connection.username, password: connection.password, database: connection.database, tls: tls)
        } else if let socket = connection.unixSocketPath {
            self.init(unixSocketPath: socket, username: connection.username, password: connection.password, database: connection.database)
        } else {
            throw StoreError(.badConfiguration, "the PostgreSQL URL names neither a host nor a socket")
        }
    }
}

/// An `SQLDatabase` over ``PostgresPool``: each statement leases a connection, and
/// `withSession` keeps one for a transaction.
struct PooledPostgres: AsyncPostgresDatabase {
    let pool: PostgresPool
    let logger: Logger
    var eventLoop: any EventLoop { MultiThreadedEventLoopGroup.singleton.any() }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        let logger = logger
        try await pool.withConnection { connection in
            try await GuardedConnection(connection: connection, logger: logger).execute(sql: query, onRow)
        }
    }

    func withSession<R>(_ closure: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        let logger = logger
        let box = try await pool.withConnection { connection in
            UncheckedBox(value: try await closure(GuardedConnection(connection: connection, logger: logger)))
        }
        return box.value
    }
}

/// One leased connection as an `SQLDatabase` whose statements cannot hang on a dead connection.
///
/// PostgresNIO fails every statement in flight when its connection closes, but a statement
/// written in the instant of the close is lost with the closed channel's handlers and never
/// answers (its `query` awaits a promise nobody completes; seen after a database crash as
/// requests that never returned, holding their leases). So a statement on a closed connection
/// fails at once, one still unanswered a second after its connection closed fails then, and
/// none may run longer than ``statementLimit``, far beyond any statement the hub runs.
struct GuardedConnection: AsyncPostgresDatabase {
    static let statementLimit: TimeAmount = .seconds(60)
    static let checkInterval: TimeAmount = .seconds(1)
    let connection: PostgresConnection
    let logger: Logger
    var eventLoop: any EventLoop { connection.eventLoop }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws {
        guard !connection.isClosed else { throw PostgresPool.Unavailable(reason: "the connection closed") }
        let database = connection.sql(queryLogLevel: .trace, logger: logger)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let once = ResumeOnce(continuation)
            let watch = connection.eventLoop.scheduleTask(in: Self.checkInterval) {
                Self.check(once, connection: connection, deadline: .now() + Self.statementLimit - Self.checkInterval)
            }
            Task {
                do {
                    try await database.execute(sql: query, onRow)
                    once.resume(.success(()))
                } catch {
                    once.resume(.failure(error))
                }
                watch.cancel()
            }
        }
    }

    /// Fails the statement if its connection has closed or its time is up; looks again later otherwise.
    private static func check(_ once: ResumeOnce, connection: PostgresConnection, deadline: NIODeadline) {
        guard !once.isDone else { return }
        if connection.isClosed {
            once.resume(.failure(PostgresPool.Unavailable(reason: "the connection closed under a statement")))
        } else if NIODeadline.now() >= deadline {
            once.resume(.failure(PostgresPool.Unavailable(reason: "no answer to a statement within \(statementLimit.nanoseconds / 1_000_000_000) s")))
        } else {
            connection.eventLoop.scheduleTask(in: checkInterval) { check(once, connection: connection, deadline: deadline) }
        }
    }
}

/// A PostgreSQL `SQLDatabase` written with async/await: the future-based `execute` SQLKit
/// still requires runs the async one.
protocol AsyncPostgresDatabase: SQLDatabase {
    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) async throws
}

extension AsyncPostgresDatabase {
    var dialect: any SQLDialect { PostgresDialect() }
    var queryLogLevel: Logger.Level? { .trace }

    func execute(sql query: any SQLExpression, _ onRow: @escaping @Sendable (any SQLRow) -> Void) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        promise.completeWithTask { try await self.execute(sql: query, onRow) }
        return promise.futureResult
    }
}

/// A continuation resumed by whichever comes first.
private final class ResumeOnce: Sendable {
    private let continuation: Mutex<CheckedContinuation<Void, any Error>?>
    init(_ continuation: CheckedContinuation<Void, any Error>) { self.continuation = Mutex(continuation) }
    var isDone: Bool { continuation.withLock { $0 == nil } }
    func resume(_ result: Result<Void, any Error>) {
        continuation.withLock { stored in
            defer { stored = nil }
            return stored
        }?.resume(with: result)
    }
}

/// Whether a lease has been granted (set by the leasing task, read by the timer).
private final class LeaseFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// Carries a session's result (not required to be `Sendable` by `SQLDatabase`) out of the lease.
private struct UncheckedBox<T>: @unchecked Sendable { let value: T }
