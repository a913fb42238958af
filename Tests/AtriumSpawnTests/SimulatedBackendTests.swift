import AsyncHTTPClient
import AtriumModel
import AtriumSimulated
import AtriumSpawn
import AtriumStore
import Foundation
import Logging
import Testing

@Suite("Simulated backend")
struct SimulatedBackendTests {
    static func manager(
        store: Store, endpoint: SimulatedEndpoint, failureRate: Double, limit: Int
    ) -> ServerManager {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var configuration = SimulatedBackendConfiguration()
        configuration.startDelay = 0.01...0.05
        configuration.failureRate = failureRate
        configuration.stopDelay = 0.001
        var settings = SpawnSettings()
        settings.concurrentSpawnLimit = limit
        // The answer waits for the start's outcome however loaded the machine is: a start still
        // queued after a shorter wait would answer "pending" and count as neither.
        settings.slowSpawnTimeout = .seconds(600)
        return ServerManager(
            store: store, backend: AnyBackend(SimulatedBackend(configuration: configuration, endpoint: endpoint, logger: logger)),
            settings: settings, probe: HTTPReadinessProbe(client: .shared), logger: logger)
    }

    @Test("200 servers started at once under a spawn limit: each is ready or failed with a cluster's reason, and answers HTTP with its secret only")
    func manyServers() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let store = try await Store.open(":memory:", logger: logger)
        try await store.migrate()
        let endpoint = SimulatedEndpoint()
        do {
            let names = (0..<200).map { "sim\($0)" }
            let users = try await store.createUsers(names.map { NewUser(name: $0) }).created
            let manager = Self.manager(store: store, endpoint: endpoint, failureRate: 0.2, limit: 20)
            let outcomes = await withTaskGroup(of: Bool.self) { group in
                for user in users {
                    group.addTask {
                        if case .ready = try? await manager.start(user: user, serverName: "") { return true }
                        return false
                    }
                }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            let ready = outcomes.filter { $0 }.count
            #expect(ready > 100 && ready < 200, "ready \(ready) of 200 with a 20% failure rate")
            #expect(endpoint.runningCount == ready)
            #expect(manager.routes.all.count == ready)
            for record in try await store.activeServers() where record.phase == .failed {
                let reason = await manager.failure(user: record.userName, serverName: "") ?? ""
                #expect(["ImagePullBackOff", "CrashLoopBackOff", "Unschedulable", "OOMKilled"].contains { reason.contains($0) })
            }

            let route = try #require(manager.routes.all.first)
            guard case .tcp(let host, let port) = route.endpoint.address else { Issue.record("no TCP endpoint"); return }
            var request = HTTPClientRequest(url: "http://\(host):\(port)/user/\(route.user)/")
            request.headers.add(name: "Authorization", value: "token \(route.endpoint.secret ?? "")")
            let answer = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
            #expect(answer.status == .ok)
            #expect(String(buffer: try await answer.body.collect(upTo: 4096)).hasPrefix("simulated workspace for \(route.user)"))
            var anonymous = HTTPClientRequest(url: "http://\(host):\(port)/user/\(route.user)/")
            anonymous.headers.add(name: "Authorization", value: "token wrong")
            #expect(try await HTTPClient.shared.execute(anonymous, timeout: .seconds(5)).status == .forbidden)

            for route in manager.routes.all { _ = try await manager.stop(user: route.user, serverName: "") }
            #expect(endpoint.runningCount == 0)

            // A restarted hub finds no simulated servers (they lived in the old process) and cleans up.
            var started = false
            for _ in 0..<30 where !started {  // starts fail 20% of the time here
                started = (try? await manager.start(user: users[0], serverName: "")) != nil
            }
            #expect(started)
            let restarted = Self.manager(store: store, endpoint: SimulatedEndpoint(), failureRate: 0, limit: 20)
            let report = try await restarted.restore()
            #expect(report.reattached == 0)
            #expect(try await store.activeServers().filter { $0.phase != .failed }.isEmpty)
        } catch {
            await endpoint.shutdown()
            try? await store.close()
            throw error
        }
        await endpoint.shutdown()
        try await store.close()
    }
}
