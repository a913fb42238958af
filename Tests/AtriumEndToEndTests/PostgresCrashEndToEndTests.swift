import AtriumTestSupport
import Foundation
import NIOHTTP1
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A hub on a PostgreSQL server that crashes (every PostgreSQL process killed with SIGKILL)
/// while write transactions are in flight, then comes back (issue: the hub wedged until
/// restarted, its pool deadlocked, SIGTERM ignored).
@Suite("PostgreSQL crash under concurrent writes, end to end", .serialized, .enabled(if: PrivatePostgres.binaries != nil, "needs PostgreSQL's binaries"))
struct PostgresCrashEndToEndTests {
    /// What the writers have seen: answers by status, after the crash and after the return.
    final class Tally: Sendable {
        let state = Mutex<(phase: Int, statuses: [Int: [Int: Int]], running: Bool)>((0, [:], true))
        var running: Bool { state.withLock { $0.running } }
        func stop() { state.withLock { $0.running = false } }
        func record(_ status: Int) { state.withLock { $0.statuses[$0.phase, default: [:]][status, default: 0] += 1 } }
        func advance() { state.withLock { $0.phase += 1 } }
        func count(phase: Int) -> Int { state.withLock { $0.statuses[phase, default: [:]].values.reduce(0, +) } }
        func statuses(phase: Int) -> [Int: Int] { state.withLock { $0.statuses[phase, default: [:]] } }
    }

    @Test("killed -9 during 12 concurrent writers: 503 while away, the very next write after its return succeeds, no connection lost, SIGTERM honoured")
    func crashDuringWrites() async throws {
        let postgres = try await HubProcess.offload { try PrivatePostgres() }
        defer { postgres.remove() }
        let hub = try HubProcess()
        let token = try await hub.start(config: """
            backend: simulated
            db: \(postgres.url)
            auth:
              bcrypt_cost: 4
            """)
        let api = API(base: hub.baseURL + "/hub/api", token: token)
        let tally = Tally()

        // Twelve writers, each creating users one after another: every request is a transaction.
        let writers = Task {
            await withTaskGroup(of: Void.self) { group in
                for writer in 0..<12 {
                    group.addTask {
                        var n = 0
                        while tally.running {
                            n += 1
                            let reply = try? await api.call(.POST, "/users/w\(writer)-\(n)")
                            tally.record(reply?.status ?? -1)
                        }
                    }
                }
            }
        }
        func waitFor(_ what: String, _ condition: () -> Bool) async throws {
            for _ in 0..<1200 where !condition() { try await Task.sleep(for: .milliseconds(50)) }
            try #require(condition(), "gave up waiting for \(what)")
        }
        try await waitFor("writes before the crash") { tally.count(phase: 0) >= 48 }

        // The crash, with transactions in flight.
        postgres.crash()
        tally.advance()
        // While the database is away every write is answered, and with 503 (never 500, never a hang).
        try await waitFor("answers while the database is away") { tally.count(phase: 1) >= 24 }
        let health = try await API(base: hub.baseURL + "/hub").call(.GET, "/health")
        #expect(health.status == 503, "health while the database is away: \(health.status) \(health.text)")

        tally.stop()
        _ = await writers.value
        let away = tally.statuses(phase: 1)
        #expect(Set(away.keys).isSubset(of: [201, 503]), "answers while the database was away: \(away)")
        #expect((away[503] ?? 0) > 0, "no write failed while the database was away: \(away)")

        // The database returns; the hub is not restarted. The first write after it succeeds.
        try await HubProcess.offload { try postgres.start() }
        let back = ContinuousClock.now
        let first = try await api.call(.POST, "/users/first-after-return")
        let recovery = ContinuousClock.now - back
        #expect(first.status == 201, "the first write after the database returned: \(first.status) \(first.text)")
        print("postgres crash: first write \(recovery) after the database returned; answers while away: \(away)")
        #expect(try await API(base: hub.baseURL + "/hub").call(.GET, "/health").status == 200)

        // No connection was lost to the crash: three times the pool's size of writes at once all land.
        let statuses = await withTaskGroup(of: Int.self) { group in
            for n in 0..<60 { group.addTask { (try? await api.call(.POST, "/users/after-\(n)"))?.status ?? -1 } }
            return await group.reduce(into: [Int: Int]()) { $0[$1, default: 0] += 1 }
        }
        #expect(statuses == [201: 60], "writes after the return: \(statuses)")

        // SIGTERM stops it by itself.
        try #require(hub.isRunning)
        hub.terminate()
        let status = try await hub.waitForExit()
        #expect(status != nil, "the hub did not exit within 60 s of SIGTERM")
    }
}
