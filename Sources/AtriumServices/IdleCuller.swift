import AtriumModel
import AtriumSpawn
import AtriumStore
import Foundation
import Logging
import ServiceLifecycle

/// The built-in idle culler: a `Service` that looks at every server each `interval` and stops
/// (or suspends, or removes) the idle ones, cancels starts stuck pending, and with `cull_users`
/// deletes idle users — jupyterhub-idle-culler's semantics without its REST round trips.
///
/// Generic over the clock it sleeps on; `now` gives the wall time that activity is compared
/// with. Tests pass a manual clock and a matching `now`, and drive passes step by step.
public struct IdleCuller<C: Clock>: Service where C.Duration == Duration {
    /// One thing a pass culled (or tried to).
    public struct Record: Sendable, Equatable {
        public enum Outcome: Sendable, Equatable {
            /// Done (stopped, suspended, removed, deleted).
            case done
            /// Still stopping in the background.
            case pending
            /// The hub refused or the backend failed; the message says why.
            case failed(String)
        }

        public var user: String
        /// `nil` when the user was deleted.
        public var server: String?
        public var decision: CullDecision
        public var outcome: Outcome
    }

    let policy: CullPolicy
    let manager: ServerManager
    let store: Store
    let activity: ActivityRecorder?
    let clock: C
    let now: @Sendable () -> Date
    let logger: Logger
    let onCull: @Sendable (Record) -> Void

    /// - Parameters:
    ///   - activity: the proxy's unflushed activity, written before each pass so no recent
    ///     request is missed.
    ///   - onCull: called for every cull, after it is carried out (metrics).
    public init(
        settings: CullerSettings, manager: ServerManager, store: Store, activity: ActivityRecorder?, clock: C,
        now: @escaping @Sendable () -> Date = { Date() }, logger: Logger, onCull: @escaping @Sendable (Record) -> Void = { _ in }
    ) {
        self.policy = CullPolicy(settings: settings)
        self.manager = manager
        self.store = store
        self.activity = activity
        self.clock = clock
        self.now = now
        self.logger = logger
        self.onCull = onCull
    }

    var settings: CullerSettings { policy.settings }

    /// A pass now, then one every `interval` until graceful shutdown.
    public func run() async throws {
        logger.info(
            "idle culler on",
            metadata: [
                "atrium.timeout": "\(settings.timeout.readable)", "atrium.every": "\(settings.interval.readable)",
                "atrium.action": "\(settings.action.rawValue)",
            ])
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await cullOnce()
            do {
                try await cancelWhenGracefulShutdown { try await clock.sleep(for: settings.interval) }
            } catch {
                break
            }
        }
    }

    /// One pass: decide on every server, carry out at most `concurrency` culls at once, then
    /// (with `cull_users`) the users. Returns what it culled.
    @discardableResult
    public func cullOnce() async -> [Record] {
        do {
            if let activity { try await activity.flush(to: store) }
            let servers = try await candidates()
            let serverDecisions = servers.compactMap { server in policy.decide(server, now: now()).map { (server, $0) } }
            var records = await carryOut(serverDecisions.map { server, decision in
                Job(user: server.user, server: server.server, decision: decision)
            })
            if settings.cullUsers {
                let users = try await userCandidates()
                let userDecisions = users.compactMap { user in policy.decide(user, now: now()).map { (user, $0) } }
                records += await carryOut(userDecisions.map { user, decision in Job(user: user.user, server: nil, decision: decision) })
            }
            logger.debug("idle culler pass done", metadata: ["atrium.servers": "\(servers.count)", "atrium.culled": "\(records.count)"])
            return records
        } catch {
            logger.error("idle culler pass failed", metadata: ["atrium.error": "\(error)"])
            return []
        }
    }

    // MARK: - Snapshot

    /// Servers from the manager (their live state) joined with users and stored activity.
    func candidates() async throws -> [CullCandidate] {
        let live = await manager.overview().filter { [.running, .starting].contains($0.state) }
        guard !live.isEmpty else { return [] }
        let users = try await usersByName(Set(live.map(\.user)))
        var activity: [String: [String: Date]] = [:]
        for record in try await store.activeServers() {
            if let at = record.lastActivity { activity[record.userName, default: [:]][record.name] = at }
        }
        return live.compactMap { server in
            guard let user = users[server.user] else { return nil }
            return CullCandidate(
                user: server.user, admin: user.admin, groups: user.groups, server: server.server, state: server.state,
                started: server.started, requested: server.requested, lastActivity: activity[server.user]?[server.server],
                profile: server.profile)
        }
    }

    func userCandidates() async throws -> [UserCullCandidate] {
        var active: [String: Int] = [:]
        for server in await manager.overview() { active[server.user, default: 0] += 1 }
        for record in try await store.activeServers() where active[record.userName] == nil { active[record.userName] = 1 }
        return try await store.users(UserQuery()).users.map { user in
            UserCullCandidate(
                user: user.name, admin: user.admin, groups: user.groups, created: user.created, lastActivity: user.lastActivity,
                activeServers: active[user.name] ?? 0)
        }
    }

    func usersByName(_ names: Set<String>) async throws -> [String: UserRecord] {
        var out: [String: UserRecord] = [:]
        let all = Array(names)
        // Chunks keep the number of bound parameters far below both databases' limits.
        for start in stride(from: 0, to: all.count, by: 2000) {
            var query = UserQuery()
            query.names = Set(all[start..<min(all.count, start + 2000)])
            for user in try await store.users(query).users { out[user.name] = user }
        }
        return out
    }

    // MARK: - Carrying out

    struct Job: Sendable {
        var user: String
        var server: String?
        var decision: CullDecision
    }

    func carryOut(_ jobs: [Job]) async -> [Record] {
        guard !jobs.isEmpty else { return [] }
        let limit = max(1, settings.concurrency)
        return await withTaskGroup(of: Record.self) { group in
            var records: [Record] = []
            var next = jobs.makeIterator()
            var running = 0
            while running < limit, let job = next.next() {
                group.addTask { await self.perform(job) }
                running += 1
            }
            for await record in group {
                records.append(record)
                if let job = next.next() { group.addTask { await self.perform(job) } }
            }
            return records
        }
    }

    func perform(_ job: Job) async -> Record {
        let what = job.server.map { $0.isEmpty ? "server \(job.user)/" : "server \(job.user)/\($0)" } ?? "user \(job.user)"
        logger.notice(
            "culling \(what): \(job.decision.reason); \(job.decision.action.rawValue)",
            metadata: [
                "atrium.user": "\(job.user)", "atrium.server": "\(job.server ?? "-")", "atrium.reason": "\(job.decision.reason.label)",
                "atrium.action": "\(job.decision.action.rawValue)",
            ])
        var outcome: Record.Outcome
        do {
            switch job.decision.action {
            case .stop:
                outcome = try await Self.outcome(manager.stop(user: job.user, serverName: job.server ?? ""))
            case .remove:
                outcome = try await Self.outcome(manager.stop(user: job.user, serverName: job.server ?? "", remove: true))
            case .suspend:
                outcome = try await Self.outcome(manager.suspend(user: job.user, serverName: job.server ?? ""))
            case .deleteUser:
                try await manager.removeAll(user: job.user)
                _ = try await store.deleteUser(job.user)
                outcome = .done
            }
        } catch {
            outcome = .failed("\(error)")
            logger.warning("could not cull \(what)", metadata: ["atrium.user": "\(job.user)", "atrium.error": "\(error)"])
        }
        let record = Record(user: job.user, server: job.server, decision: job.decision, outcome: outcome)
        onCull(record)
        return record
    }

    static func outcome(_ stop: StopOutcome) -> Record.Outcome {
        switch stop {
        case .stopped: .done
        case .pending: .pending
        }
    }
}
