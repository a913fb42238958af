import AtriumModel
import AtriumServices
import AtriumSpawn
import AtriumStore
import Foundation
import Logging
import Synchronization
import Testing

/// A switch a test flips and the manager's reply timer reads.
final class Flag: Sendable {
    let value = Mutex(false)
}

/// The culler service over a real manager and an in-memory SQLite store, driven by a manual clock.
struct CullerFixture {
    let store: Store
    let backend: TestBackend
    let manager: ServerManager
    let activity: ActivityRecorder
    let clock: ManualClock
    /// Set before a start that must answer "pending" without waiting for its server.
    let startsAnswerAtOnce: Flag

    static func with(_ body: (CullerFixture) async throws -> Void) async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let store = try await Store.open(":memory:", logger: logger)
        _ = try await store.migrate()
        _ = try await store.createUsers([NewUser(name: "ann"), NewUser(name: "bob"), NewUser(name: "cat"), NewUser(name: "root", admin: true)])
        let backend = TestBackend()
        var settings = SpawnSettings()
        settings.allowNamedServers = true
        settings.profiles = [SpawnProfile(name: "cpu"), SpawnProfile(name: "gpu")]  // the first is the default
        // Starts and stops finish inside the call, however loaded the machine: the reply
        // timeouts never run out (each call waits for its event), unless a test says that
        // starts should answer "pending" at once.
        // Distinct lengths: the flag below lets starts answer at once, never stops.
        settings.slowSpawnTimeout = .seconds(5)
        settings.slowStopTimeout = .seconds(6)
        let startsAnswerAtOnce = Flag()
        let slowSpawn = settings.slowSpawnTimeout
        let manager = ServerManager(
            store: store, backend: AnyBackend(backend), settings: settings, probe: AlwaysReady(), logger: logger,
            replyTimer: { duration in
                if duration == slowSpawn, startsAnswerAtOnce.value.withLock({ $0 }) { return }
                try await Task.sleep(for: .seconds(1_000_000))
            })
        let fixture = CullerFixture(
            store: store, backend: backend, manager: manager, activity: ActivityRecorder(), clock: ManualClock(),
            startsAnswerAtOnce: startsAnswerAtOnce)
        do {
            try await body(fixture)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    func culler(_ configure: (inout CullerSettings) -> Void = { _ in }) -> IdleCuller<ManualClock> {
        var settings = CullerSettings()
        settings.enabled = true
        configure(&settings)
        var logger = Logger(label: "culler")
        logger.logLevel = .critical
        let clock = clock
        return IdleCuller(settings: settings, manager: manager, store: store, activity: activity, clock: clock, now: { clock.date }, logger: logger)
    }

    @discardableResult
    func start(_ user: String, _ server: String = "", profile: String? = nil) async throws -> StartOutcome {
        let record = try #require(try await store.user(named: user))
        let outcome = try await manager.start(user: record, serverName: server, profile: profile)
        // The manager stamps starts with the wall clock. Until the test moves the manual clock,
        // its zero follows the end of the latest start, so "600 s later" is past a 600 s
        // timeout however long the starts took on a busy machine.
        if clock.now.offset == .zero { clock.rebase() }
        return outcome
    }

    func phase(_ user: String, _ server: String = "") async throws -> ServerPhase? {
        let record = try #require(try await store.user(named: user))
        return try await store.server(userID: record.id, name: server)?.phase
    }

    /// Activity on a server at the manual clock's date, as the proxy would note it.
    func touch(_ user: String, _ server: String = "") async throws {
        let record = try #require(try await store.user(named: user))
        activity.touch(user: user, userID: record.id, server: server, at: clock.date)
    }
}

@Suite("Idle culler")
struct IdleCullerTests {
    @Test("the service passes once at start, then every cull_every: an idle server is stopped, an active one kept")
    func serviceLoop() async throws {
        try await CullerFixture.with { f in
            try await f.start("ann")
            try await f.start("bob")
            let culler = f.culler { $0.timeout = .seconds(600) }
            let run = Task { try await culler.run() }
            await f.clock.waitForSleepers()  // the first pass is done: nothing was idle
            #expect(try await f.phase("ann") == .running)

            f.clock.advance(by: .seconds(299))  // not yet a pass
            try await f.touch("bob")
            #expect(try await f.phase("ann") == .running)
            f.clock.advance(by: .seconds(1))  // second pass at 300 s: still inside the window
            await f.clock.waitForSleepers()
            #expect(try await f.phase("ann") == .running)

            f.clock.advance(by: .seconds(300))  // third pass at 600 s: ann idle since her start
            await f.clock.waitForSleepers()
            #expect(try await f.phase("ann") == .stopped)
            #expect(try await f.phase("bob") == .running)  // bob was active at 299 s

            f.clock.advance(by: .seconds(300))  // at 900 s bob is idle for 601 s
            await f.clock.waitForSleepers()
            #expect(try await f.phase("bob") == .stopped)
            run.cancel()
            _ = try? await run.value
        }
    }

    @Test("activity the proxy has not written yet still counts: the culler flushes it first")
    func unflushedActivity() async throws {
        try await CullerFixture.with { f in
            try await f.start("ann")
            f.clock.advance(by: .seconds(590))
            try await f.touch("ann")
            f.clock.advance(by: .seconds(20))
            #expect(await f.culler().cullOnce().isEmpty)
            #expect(try await f.phase("ann") == .running)
        }
    }

    @Test("suspend instead of stop keeps the workspace for a resume")
    func suspend() async throws {
        try await CullerFixture.with { f in
            try await f.start("ann")
            f.clock.advance(by: .seconds(600))
            let records = await f.culler { $0.action = .suspend }.cullOnce()
            #expect(records.map(\.decision.action) == [.suspend])
            #expect(records.first?.outcome == .done)
            #expect(try await f.phase("ann") == .suspended)
            #expect(f.backend.counts.withLock { $0.suspends } == 1)
        }
    }

    @Test("remove_named_servers deletes an idle named server; the default server is only stopped")
    func removeNamed() async throws {
        try await CullerFixture.with { f in
            try await f.start("ann")
            try await f.start("ann", "lab")
            f.clock.advance(by: .seconds(600))
            let records = await f.culler { $0.removeNamedServers = true }.cullOnce()
            #expect(Set(records.map(\.decision.action)) == [.stop, .remove])
            #expect(try await f.phase("ann") == .stopped)
            #expect(try await f.phase("ann", "lab") == nil)
        }
    }

    @Test("cull_named_servers off leaves named servers running")
    func namedServersKept() async throws {
        try await CullerFixture.with { f in
            try await f.start("ann", "lab")
            f.clock.advance(by: .seconds(9999))
            #expect(await f.culler { $0.cullNamedServers = false }.cullOnce().isEmpty)
            #expect(try await f.phase("ann", "lab") == .running)
        }
    }

    @Test("max_age stops a server that is active all the time")
    func maxAge() async throws {
        try await CullerFixture.with { f in
            try await f.start("ann")
            let culler = f.culler { $0.maxAge = .seconds(3600) }
            for _ in 0..<6 {
                f.clock.advance(by: .seconds(590))
                try await f.touch("ann")
                #expect(await culler.cullOnce().isEmpty)
            }
            f.clock.advance(by: .seconds(60))
            try await f.touch("ann")
            let records = await culler.cullOnce()
            #expect(records.map(\.decision.reason.label) == ["max_age"])
            #expect(try await f.phase("ann") == .stopped)
        }
    }

    @Test("a start stuck pending longer than pending_timeout is cancelled")
    func stuckPending() async throws {
        try await CullerFixture.with { f in
            f.backend.counts.withLock { $0.hangStarts = true }
            f.startsAnswerAtOnce.value.withLock { $0 = true }
            let outcome = try await withTimeout { try await f.start("ann") }
            #expect(outcome == .pending(url: "/user/ann/"))
            let culler = f.culler { $0.pendingTimeout = .seconds(300) }
            f.clock.advance(by: .seconds(200))
            #expect(await culler.cullOnce().isEmpty)
            f.clock.advance(by: .seconds(100))
            let records = await culler.cullOnce()
            #expect(records.map(\.decision.reason.label) == ["stuck_pending"])
            #expect(try await f.phase("ann") == .stopped)
        }
    }

    @Test("group and profile rules give different timeouts")
    func rules() async throws {
        try await CullerFixture.with { f in
            _ = try await f.store.createGroups(["staff"], members: ["bob"])
            try await f.start("ann")
            try await f.start("bob")
            try await f.start("cat", profile: "gpu")
            let culler = f.culler {
                $0.rules = [CullRule(group: "staff", timeout: .seconds(7200)), CullRule(profile: "gpu", timeout: .seconds(60))]
            }
            f.clock.advance(by: .seconds(60))
            let first = await culler.cullOnce()
            #expect(first.map(\.user) == ["cat"])
            f.clock.advance(by: .seconds(540))
            #expect(await culler.cullOnce().map(\.user) == ["ann"])
            f.clock.advance(by: .seconds(6600))
            #expect(await culler.cullOnce().map(\.user) == ["bob"])
        }
    }

    @Test("cull_users deletes idle users once their servers are stopped, admins only with cull_admin_users")
    func cullUsers() async throws {
        try await CullerFixture.with { f in
            try await f.start("ann")
            try await f.start("bob")
            f.clock.advance(by: .seconds(300))
            try await f.touch("bob")
            f.clock.advance(by: .seconds(300))
            let records = await f.culler { $0.cullUsers = true; $0.cullAdminUsers = false }.cullOnce()
            // ann's server is stopped, then ann goes; cat never had a server and is deleted too;
            // bob was active 300 s ago; root is an admin.
            #expect(Set(records.filter { $0.server == nil }.map(\.user)) == ["ann", "cat"])
            #expect(try await f.store.user(named: "ann") == nil)
            #expect(try await f.store.user(named: "cat") == nil)
            #expect(try await f.store.user(named: "bob") != nil)
            #expect(try await f.store.user(named: "root") != nil)
        }
    }

    @Test("no more than `concurrency` culls run at once")
    func concurrency() async throws {
        try await CullerFixture.with { f in
            let names = (1...12).map { "u\($0)" }
            _ = try await f.store.createUsers(names.map { NewUser(name: $0) })
            for name in names { try await f.start(name) }
            f.clock.advance(by: .seconds(600))
            let records = await f.culler { $0.concurrency = 3 }.cullOnce()
            #expect(records.count == 12)
            #expect(records.allSatisfy { $0.outcome == .done })
            let most = f.backend.counts.withLock { $0.mostStopsAtOnce }
            #expect(most <= 3)
            #expect(most >= 2)
        }
    }

    @Test("every cull is reported with its reason and action")
    func reported() async throws {
        try await CullerFixture.with { f in
            try await f.start("ann")
            f.clock.advance(by: .seconds(700))
            let seen = Seen()
            var settings = CullerSettings()
            settings.enabled = true
            let clock = f.clock
            let culler = IdleCuller(
                settings: settings, manager: f.manager, store: f.store, activity: f.activity, clock: clock, now: { clock.date },
                logger: Logger(label: "culler"), onCull: { seen.add($0) })
            await culler.cullOnce()
            let record = try #require(seen.records.first)
            #expect(record.decision.action == .stop)
            #expect(record.decision.reason.label == "idle")
            #expect(record.user == "ann" && record.server == "" && record.outcome == .done)
        }
    }
}

final class Seen: Sendable {
    private let inner = Mutex<[IdleCuller<ManualClock>.Record]>([])
    func add(_ record: IdleCuller<ManualClock>.Record) { inner.withLock { $0.append(record) } }
    var records: [IdleCuller<ManualClock>.Record] { inner.withLock { $0 } }
}

/// Bounds a call that must not hang a test.
func withTimeout<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(30))
            throw CancellationError()
        }
        let first = try await group.next()!
        group.cancelAll()
        return first
    }
}
