import AtriumAuth
import AtriumModel
import AtriumSpawn
import AtriumStore
import Foundation
import Logging
import Synchronization
import Testing

/// The manager's reply timeouts, moved by the test: until a timeout's length is expired no call
/// gives up waiting and answers "pending"; after it, every call waiting that long does at once.
/// No outcome depends on wall time.
final class ReplyTimeouts: Sendable {
    private struct State {
        var expired: Set<Duration> = []
        var sleepers: [UUID: (duration: Duration, continuation: CheckedContinuation<Void, any Error>)] = [:]
    }
    private let state = Mutex(State())

    /// From now on every reply timeout of this length has run out, those waiting and those to come.
    func expire(_ duration: Duration) {
        let waiting = state.withLock { s -> [CheckedContinuation<Void, any Error>] in
            s.expired.insert(duration)
            let due = s.sleepers.filter { $0.value.duration == duration }
            for id in due.keys { s.sleepers[id] = nil }
            return due.values.map(\.continuation)
        }
        for sleeper in waiting { sleeper.resume() }
    }

    @Sendable func sleep(_ duration: Duration) async throws {
        let id = UUID()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let now = state.withLock { s -> Bool in
                    if s.expired.contains(duration) { return true }
                    s.sleepers[id] = (duration, continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.sleepers.removeValue(forKey: id) }?.continuation.resume(throwing: CancellationError())
        }
    }
}

/// The manager over a real (in-memory SQLite) store and a scripted backend.
struct ManagerFixture {
    let store: Store
    let backend: ScriptedBackend
    let manager: ServerManager
    let alice: UserRecord
    let timeouts: ReplyTimeouts

    static func make(_ configure: (inout SpawnSettings) -> Void = { _ in }, store: Store? = nil, backend: ScriptedBackend? = nil) async throws
        -> ManagerFixture
    {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let store = try await {
            if let store { return store }
            let s = try await Store.open(":memory:", logger: logger)
            _ = try await s.migrate()
            _ = try await s.createUsers([NewUser(name: "alice"), NewUser(name: "bob")])
            return s
        }()
        let backend = backend ?? ScriptedBackend()
        var settings = SpawnSettings()
        // Distinct lengths, so a test can let one kind of reply give up and not the other.
        settings.slowSpawnTimeout = .seconds(5)
        settings.slowStopTimeout = .seconds(6)
        configure(&settings)
        let timeouts = ReplyTimeouts()
        let manager = ServerManager(
            store: store, backend: AnyBackend(backend), settings: settings, probe: ScriptedProbe(backend: backend), logger: logger,
            replyTimer: timeouts.sleep)
        let alice = try #require(try await store.user(named: "alice"))
        return ManagerFixture(store: store, backend: backend, manager: manager, alice: alice, timeouts: timeouts)
    }

    /// Runs `body` with a fixture and closes its store whatever happens.
    static func with(_ configure: (inout SpawnSettings) -> Void = { _ in }, _ body: (ManagerFixture) async throws -> Void) async throws {
        let f = try await make(configure)
        do {
            try await body(f)
        } catch {
            try? await f.store.close()
            throw error
        }
        try await f.store.close()
    }

    func phase(_ server: String = "", user: String = "alice") async throws -> ServerPhase? {
        let record = try #require(try await store.user(named: user))
        return try await store.server(userID: record.id, name: server)?.phase
    }

    /// Waits (bounded) until the server's stored phase is `phase`.
    func waitFor(_ phase: ServerPhase, _ server: String = "", user: String = "alice") async throws {
        for _ in 0..<500 {
            if try await self.phase(server, user: user) == phase { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("server never reached \(phase)")
    }
}

@Suite("Server manager")
struct ServerManagerTests {
    @Test("a fast start answers ready, publishes the route and records the phase, the token and progress")
    func fastStart() async throws {
        try await ManagerFixture.with { f in
            let outcome = try await f.manager.start(user: f.alice, serverName: "")
            #expect(outcome == .ready(url: "/user/alice/"))
            #expect(f.manager.routes.route(user: "alice", server: "")?.endpoint.address == .tcp(host: "127.0.0.1", port: 10_001))
            #expect(try await f.phase() == .running)
            let tokens = try await f.store.tokens(ofUser: "alice")
            #expect(tokens.count == 1)
            #expect(tokens[0].scopes.contains("access:servers!server=alice/"))
            var events: [ProgressEvent] = []
            for await event in try await f.manager.progress(user: "alice", serverName: "") { events.append(event) }
            #expect(events.last?.ready == true)

            #expect(try await f.manager.stop(user: "alice", serverName: "") == .stopped)
            #expect(f.manager.routes.route(user: "alice", server: "") == nil)
            #expect(try await f.phase() == .stopped)
            #expect(try await f.store.tokens(ofUser: "alice").isEmpty)
            #expect(f.backend.script.withLock { $0.stops } == 1)
        }
    }

    @Test("a slow start answers pending, streams progress, and finishes in the background")
    func slowStart() async throws {
        try await ManagerFixture.with { f in
            f.backend.script.withLock { $0.holdStarts = true }
            f.timeouts.expire(.seconds(5))  // starts answer "pending" at once
            #expect(try await f.manager.start(user: f.alice, serverName: "") == .pending(url: "/user/alice/"))
            #expect(try await f.phase() == .pending)
            let stream = try await f.manager.progress(user: "alice", serverName: "")
            // As JupyterHub: asking again while the start is pending is the same start (202).
            let again = try await f.manager.start(user: f.alice, serverName: "")
            guard case .pending = again else { Issue.record("a second start while pending answered \(again)"); return }
            f.backend.releaseStarts()
            var events: [ProgressEvent] = []
            for await event in stream { events.append(event) }
            #expect(events.first?.message == "Server requested")
            #expect(events.contains { $0.message == "scripted start 1" })
            #expect(events.last == ProgressEvent(progress: 100, message: "Server ready at /user/alice/", ready: true, url: "/user/alice/"))
            try await f.waitFor(.running)
            await expectRejected(.alreadyRunning) { try await f.manager.start(user: f.alice, serverName: "") }
        }
    }

    @Test("a stop during a start cancels the start and the route never goes up")
    func stopDuringStart() async throws {
        try await ManagerFixture.with { f in
            f.backend.script.withLock { $0.holdStarts = true }
            f.timeouts.expire(.seconds(5))  // starts answer "pending" at once
            #expect(try await f.manager.start(user: f.alice, serverName: "") == .pending(url: "/user/alice/"))
            for _ in 0..<200 where f.backend.heldCount == 0 { try await Task.sleep(for: .milliseconds(5)) }
            let stopping = Task { try await f.manager.stop(user: "alice", serverName: "") }
            try await Task.sleep(for: .milliseconds(20))
            f.backend.releaseStarts()
            #expect(try await stopping.value == .stopped)
            #expect(f.manager.routes.route(user: "alice", server: "") == nil)
            #expect(try await f.phase() == .stopped)
            #expect(f.backend.script.withLock { $0.running.isEmpty })
            // Stopping a stopped server is done at once (JupyterHub answers 204 to it).
            #expect(try await f.manager.stop(user: "alice", serverName: "") == .stopped)
        }
    }

    @Test("a failing start reports the reason, cleans up and can be retried")
    func failingStart() async throws {
        try await ManagerFixture.with { f in
            f.backend.script.withLock { $0.failNextStart = "image not found" }
            do {
                _ = try await f.manager.start(user: f.alice, serverName: "")
                Issue.record("start should fail")
            } catch let error as SpawnError {
                #expect(error.code == .backendFailed)
                #expect(error.message.contains("image not found"))
            }
            #expect(try await f.phase() == .failed)
            #expect(try await f.store.tokens(ofUser: "alice").isEmpty)
            var events: [ProgressEvent] = []
            for await event in try await f.manager.progress(user: "alice", serverName: "") { events.append(event) }
            #expect(events.last?.failed == true)
            #expect(try await f.manager.start(user: f.alice, serverName: "") == .ready(url: "/user/alice/"))
        }
    }

    /// Issue 18 items 3 and 5: a stop the backend failed was recorded as failed while the
    /// workspace ran on, its token revoked and its route gone; and the failed stop's task was never
    /// cleared, so a later start waited the whole slow-spawn timeout. The reply timers here never
    /// run out by themselves: a start or stop left waiting never answers, and the time limit
    /// ends the test.
    @Test("a stop the backend fails answers the reason and leaves the server running, reachable, with its token; a retry stops it; a start after is ready at once",
          .timeLimit(.minutes(1)))
    func failedStopLeavesItRunning() async throws {
        try await ManagerFixture.with { f in
            #expect(try await f.manager.start(user: f.alice, serverName: "") == .ready(url: "/user/alice/"))
            let tokens = try await f.store.tokens(ofUser: "alice").count
            f.backend.script.withLock { $0.failNextStop = "the API server is unreachable" }
            do {
                _ = try await f.manager.stop(user: "alice", serverName: "")
                Issue.record("the failed stop answered as if it had stopped")
            } catch let error as SpawnError {
                #expect(error.code == .backendFailed)
                #expect(error.message.contains("the API server is unreachable"))
                #expect(error.message.contains("still runs"))
            }
            #expect(try await f.phase() == .running)
            #expect(f.manager.routes.all.map(\.user) == ["alice"])
            #expect(try await f.store.tokens(ofUser: "alice").count == tokens)
            #expect(try await f.manager.stop(user: "alice", serverName: "") == .stopped)
            #expect(try await f.phase() == .stopped)
            #expect(f.manager.routes.all.isEmpty)
            #expect(try await f.manager.start(user: f.alice, serverName: "") == .ready(url: "/user/alice/"))
        }
    }

    @Test("the concurrent-spawn limit queues starts up to a bound, then refuses with a retry time")
    func spawnLimit() async throws {
        try await ManagerFixture.with({
            $0.concurrentSpawnLimit = 2
            $0.spawnQueueLimit = 1
        }) { f in
            f.backend.script.withLock { $0.holdStarts = true }
            f.timeouts.expire(.seconds(5))  // starts answer "pending" at once
            var users: [UserRecord] = []
            _ = try await f.store.createUsers((1...4).map { NewUser(name: "u\($0)") })
            for i in 1...4 { users.append(try #require(try await f.store.user(named: "u\(i)"))) }
            for user in users.prefix(3) { #expect(try await f.manager.start(user: user, serverName: "") == .pending(url: "/user/\(user.name)/")) }
            for _ in 0..<200 where f.backend.heldCount < 2 { try await Task.sleep(for: .milliseconds(5)) }
            #expect(f.backend.heldCount == 2)  // the third waits in the queue
            #expect(await f.manager.queuedSpawns == 1)
            do {
                _ = try await f.manager.start(user: users[3], serverName: "")
                Issue.record("the fourth start should be refused")
            } catch let error as SpawnError {
                guard case .tooBusy(let seconds) = error.code else { Issue.record("wrong code \(error.code)"); return }
                #expect(seconds >= 1)
            }
            f.backend.releaseStarts()
            for user in users.prefix(3) { try await f.waitFor(.running, user: user.name) }
        }
    }

    @Test("the active-server limit refuses starts beyond it")
    func activeLimit() async throws {
        try await ManagerFixture.with({ $0.activeServerLimit = 1 }) { f in
            _ = try await f.manager.start(user: f.alice, serverName: "")
            let bob = try #require(try await f.store.user(named: "bob"))
            await #expect(throws: SpawnError.self) { try await f.manager.start(user: bob, serverName: "") }
        }
    }

    @Test("suspend keeps the state; the next start resumes it")
    func suspendResume() async throws {
        try await ManagerFixture.with { f in
            _ = try await f.manager.start(user: f.alice, serverName: "")
            #expect(try await f.manager.suspend(user: "alice", serverName: "") == .stopped)
            #expect(try await f.phase() == .suspended)
            #expect(f.manager.routes.route(user: "alice", server: "") == nil)
            #expect(try await f.manager.start(user: f.alice, serverName: "") == .ready(url: "/user/alice/"))
            let s = f.backend.script.withLock { $0 }
            #expect(s.suspends == 1)
            #expect(s.resumes == 1)
            #expect(s.nextID == 2)  // the same server, no new one
        }
    }

    @Test("named servers: create, limit, conflict, remove")
    func namedServers() async throws {
        try await ManagerFixture.with({ $0.namedServerLimitPerUser = 2 }) { f in
            try await f.manager.createNamed(user: f.alice, serverName: "lab1", userOptions: .object([:]))
            await #expect(throws: SpawnError(.conflict, "Server alice/lab1 already exists")) {
                try await f.manager.createNamed(user: f.alice, serverName: "lab1", userOptions: .object([:]))
            }
            #expect(try await f.manager.start(user: f.alice, serverName: "lab2") == .ready(url: "/user/alice/lab2/"))
            await #expect(throws: SpawnError.self) { try await f.manager.start(user: f.alice, serverName: "lab3") }
            #expect(try await f.manager.stop(user: "alice", serverName: "lab2", remove: true) == .stopped)
            #expect(try await f.phase("lab2") == nil)
            #expect(f.backend.script.withLock { $0.removes } == 1)
            #expect(try await f.manager.start(user: f.alice, serverName: "lab3") == .ready(url: "/user/alice/lab3/"))
            try await f.manager.removeAll(user: "alice")
            #expect(try await f.phase("lab1") == nil)
            #expect(try await f.phase("lab3") == nil)
            #expect(f.backend.script.withLock { $0.running.isEmpty })
        }
    }

    @Test("a new manager over the same store reattaches to running servers and cleans up dead ones")
    func restore() async throws {
        let first = try await ManagerFixture.make()
        _ = try await first.manager.start(user: first.alice, serverName: "")
        let bob = try #require(try await first.store.user(named: "bob"))
        _ = try await first.manager.start(user: bob, serverName: "")
        first.backend.crash(id: 2)  // bob's server dies while the hub is down
        let startsBefore = first.backend.script.withLock { $0.starts }

        let second = try await ManagerFixture.make(store: first.store, backend: first.backend)
        let report = try await second.manager.restore()
        #expect(report.reattached == 1)
        #expect(report.cleaned == 1)
        #expect(second.manager.routes.route(user: "alice", server: "") != nil)
        #expect(second.manager.routes.route(user: "bob", server: "") == nil)
        #expect(try await second.phase() == .running)
        #expect(try await second.phase(user: "bob") == .stopped)
        #expect(first.backend.script.withLock { $0.starts } == startsBefore)
        // The reattached server is fully managed: it stops.
        #expect(try await second.manager.stop(user: "alice", serverName: "") == .stopped)
        try await first.store.close()
    }

    @Test("a crash noticed by the proxy takes the route down")
    func crash() async throws {
        try await ManagerFixture.with { f in
            _ = try await f.manager.start(user: f.alice, serverName: "")
            f.backend.crash(id: 1)
            await f.manager.checkHealth(user: "alice", serverName: "")
            #expect(f.manager.routes.route(user: "alice", server: "") == nil)
            #expect(try await f.phase() == .failed)
        }
    }

    func expectRejected(_ reason: ServerLifecycle.Rejection.Reason, _ body: () async throws -> some Any) async {
        do {
            _ = try await body()
            Issue.record("expected a rejection: \(reason.rawValue)")
        } catch let error as SpawnError {
            #expect(error.code == .rejected)
            #expect(error.message.contains(reason.rawValue))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }
}
