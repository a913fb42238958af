import AtriumModel
import AtriumStore
import Foundation
import Logging

extension ServerManager {
    /// What a restart found.
    public struct RestoreReport: Sendable, Equatable {
        /// Servers running again behind live routes, with no new start.
        public var reattached = 0
        /// Servers found suspended (kept as they were).
        public var suspended = 0
        /// Servers whose processes were gone: cleaned up and marked stopped or failed.
        public var cleaned = 0
        /// Leftovers of starts no stored server accounts for (the hub was killed mid-start), stopped.
        public var orphans = 0

        public init() {}
    }

    /// Reloads every server with a stored state, asks the backend what runs, re-creates the
    /// live routes and cleans up the dead. Called once at start-up, before the hub serves.
    /// Servers that still start are waited for, all at once, up to the ready timeout.
    public func restore() async throws -> RestoreReport {
        var report = RestoreReport()
        var waits: [(Key, Task<Bool, Never>)] = []
        for record in try await store.activeServers() {
            let key = Key(user: record.userName, server: record.name)
            let stored = StoredState(record.state)
            var server = Managed(userID: record.userID, user: record.userName, name: record.name)
            server.backendState = stored.backend
            server.secret = stored.secret
            server.tokenID = stored.tokenID
            server.profile = stored.profile
            server.userOptions = record.userOptions
            server.started = record.started
            let status: BackendStatus = if let state = stored.backend { await poll(state) } else { .stopped }
            switch status {
            case .running, .starting, .pending:
                guard let state = stored.backend, var found = try? backend.endpoint(state) else { fallthrough }
                found.secret = stored.secret
                let endpoint = found
                server.lifecycle = ServerLifecycle(state: .starting)
                server.requested = Date()
                server.endpoint = endpoint
                server.generation = 1
                servers[key] = server
                let task = Task { () -> Bool in
                    do {
                        try await self.waitUntilReady(key, endpoint: endpoint, state: state, generation: 1)
                        return await self.finishReattach(key, endpoint: endpoint)
                    } catch {
                        await self.failStart(key, reason: "after a hub restart the server did not answer: \(error)")
                        return false
                    }
                }
                waits.append((key, task))
            case .suspended:
                server.lifecycle = ServerLifecycle(state: .suspended)
                servers[key] = server
                try? await persist(key, phase: .suspended)
                report.suspended += 1
            case .failed, .stopped:
                servers[key] = server
                if let state = stored.backend { try? await backend.stop(state) }
                await revokeToken(key)
                servers[key]?.backendState = nil
                servers[key]?.secret = nil
                try? await persist(key, phase: .stopped)
                report.cleaned += 1
                logger.info(
                    "server gone after restart, cleaned up",
                    metadata: ["atrium.user": "\(key.user)", "atrium.server": "\(key.server)", "atrium.status": "\(status)"])
            }
        }
        for (_, task) in waits {
            if await task.value { report.reattached += 1 } else { report.cleaned += 1 }
        }
        // Whatever runs that no server now accounts for goes (a start the hub was killed in).
        let known = servers.values.filter { [.running, .starting, .suspended].contains($0.lifecycle.state) }.compactMap(\.backendState)
        report.orphans = await backend.stopOrphans(known)
        if report.orphans > 0 {
            logger.notice("stopped leftovers of starts interrupted by the last hub's end", metadata: ["atrium.count": "\(report.orphans)"])
        }
        return report
    }

    func finishReattach(_ key: Key, endpoint: WorkspaceEndpoint) async -> Bool {
        guard var server = servers[key], server.lifecycle.state == .starting, server.generation == 1 else { return false }
        _ = server.lifecycle.event(.ready)
        if server.started == nil { server.started = Date() }
        servers[key] = server
        publishRoute(LiveRoute(user: key.user, userID: server.userID, server: key.server, endpoint: endpoint))
        try? await persist(key, phase: .running)
        return true
    }

    /// What `POST /hub/api/shutdown` asked for (`servers`): overrides
    /// `spawn.stop_servers_on_shutdown` for this shutdown.
    public func setStopServersOnShutdown(_ stop: Bool) {
        stopServersOnShutdownOverride = stop
    }

    /// Called when the hub stops: stops every server if so configured, else leaves them running
    /// for the next hub to reattach (their state is in the store already).
    public func shutdown() async {
        for (_, server) in servers { server.spawnTask?.cancel() }
        guard stopServersOnShutdownOverride ?? settings.stopServersOnShutdown else { return }
        for key in servers.keys where [.running, .starting, .suspended].contains(servers[key]?.lifecycle.state) {
            _ = try? await stop(user: key.user, serverName: key.server)
            if let task = servers[key]?.stopTask { await task.value }
        }
    }

    /// `nil` when the backend can serve, else what is wrong (for the health check).
    public nonisolated func backendHealthProblem() async -> String? {
        await backend.healthProblem()
    }

    /// The proxy could not reach a server it had a route for: check whether it died.
    public func checkHealth(user: String, serverName: String) async {
        let key = Key(user: user, server: serverName)
        guard let server = servers[key], server.lifecycle.state == .running, let state = server.backendState else { return }
        switch await poll(state) {
        case .failed(let reason):
            var s = server
            _ = s.lifecycle.event(.crashed(reason: reason))
            s.lastFailure = reason
            servers[key] = s
            removeRoute(key)
            logger.warning("server died", metadata: ["atrium.user": "\(user)", "atrium.server": "\(serverName)", "atrium.reason": "\(reason)"])
            try? await backend.stop(state)
            await revokeToken(key)
            try? await persist(key, phase: .failed)
        case .stopped:
            var s = server
            _ = s.lifecycle.event(.crashed(reason: "the server stopped"))
            servers[key] = s
            removeRoute(key)
            await revokeToken(key)
            try? await persist(key, phase: .failed)
        default:
            break
        }
    }

    /// Asks the backend whether a server still runs, timed for `jupyterhub_server_poll_duration_seconds`.
    func poll(_ state: JSONValue) async -> BackendStatus {
        let began = ContinuousClock.now
        let status = await backend.status(state)
        let running = switch status {
        case .running, .starting, .pending: true
        case .failed, .suspended, .stopped: false
        }
        metrics.recordServerPoll(running: running, seconds: (ContinuousClock.now - began).seconds)
        return status
    }

    /// Puts a ready server's route into the proxy's table.
    func publishRoute(_ route: LiveRoute) {
        let began = ContinuousClock.now
        routes.publish(route)
        metrics.recordProxyAdd(seconds: (ContinuousClock.now - began).seconds)
    }

    /// Takes a server's route out of the proxy's table, if it has one.
    func removeRoute(_ key: Key) {
        guard routes.route(user: key.user, server: key.server) != nil else { return }
        let began = ContinuousClock.now
        routes.remove(user: key.user, server: key.server)
        metrics.recordProxyDelete(seconds: (ContinuousClock.now - began).seconds)
    }

    /// Checks the proxy's routes against the servers, as JupyterHub's `check_routes` does: every
    /// running server has its route to its endpoint, and no route outlives its server. Repairs
    /// what differs (which means a bug, so it is logged) and returns how many routes it changed.
    /// Run after every activity flush and by `POST /hub/api/proxy`.
    @discardableResult
    public func checkRoutes() -> Int {
        let began = ContinuousClock.now
        defer { metrics.recordCheckRoutes(seconds: (ContinuousClock.now - began).seconds) }
        var expected: [Key: LiveRoute] = [:]
        for (key, server) in servers where server.lifecycle.state == .running {
            guard let endpoint = server.endpoint else { continue }
            expected[key] = LiveRoute(user: key.user, userID: server.userID, server: key.server, endpoint: endpoint)
        }
        var changed = 0
        for route in routes.all where expected[Key(user: route.user, server: route.server)] == nil {
            logger.warning("removing a route without a running server", metadata: ["atrium.user": "\(route.user)", "atrium.server": "\(route.server)"])
            removeRoute(Key(user: route.user, server: route.server))
            changed += 1
        }
        for (key, route) in expected where routes.route(user: key.user, server: key.server) != route {
            logger.warning("adding the missing route of a running server", metadata: ["atrium.user": "\(key.user)", "atrium.server": "\(key.server)"])
            publishRoute(route)
            changed += 1
        }
        return changed
    }

    /// Drops what the manager remembers of a stopped server (before it is renamed).
    public func forget(user: String, serverName: String) throws {
        let key = Key(user: user, server: serverName)
        if let server = servers[key] {
            switch server.lifecycle.state {
            case .stopped, .failed: servers[key] = nil
            default: throw SpawnError(.rejected, "\(describe(key)) must be stopped first")
            }
        }
    }

    /// The reason of the last failure of a server, if it failed.
    public func failure(user: String, serverName: String) -> String? {
        servers[Key(user: user, server: serverName)]?.lastFailure
    }
}
