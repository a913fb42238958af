import Foundation
import Logging

/// Settings every stress command shares.
public struct StressSettings: Sendable {
    /// The hub API URL, e.g. `http://127.0.0.1:8000/hub/api`.
    public var endpoint: String
    /// An admin API token.
    public var token: String
    /// Send no state-changing request; report what would be done.
    public var dryRun = false
    /// The longest one request may take.
    public var requestTimeout: Duration = .seconds(30)
    /// How long to wait for all servers to be ready, and again for all to stop.
    public var serverTimeout: Duration = .seconds(300)
    /// The pause between two polls while waiting for servers.
    public var pollInterval: Duration = .milliseconds(500)
    /// Retries of 429, 503, 504 and broken connections.
    public var retry = RetryPolicy()
    /// Users per page when listing.
    public var pageSize = 200

    public init(endpoint: String, token: String) {
        self.endpoint = endpoint
        self.token = token
    }
}

/// Runs the stress commands against a hub and reports the figures of each phase.
///
/// Failures of single operations (a server that never gets ready, a user that cannot be
/// deleted) are counted and end in a report with `success == false`; only failures that make
/// going on pointless (no connection, a refused token, a listing that is not JSON) throw.
public struct StressRunner: Sendable {
    let settings: StressSettings
    let client: HubClient
    let logger: Logger
    let progress: ProgressBar

    /// A runner with its own HTTP client, sized for `concurrency` requests at once. Call
    /// ``shutdown()`` when done.
    public init(settings: StressSettings, concurrency: Int, logger: Logger, progress: ProgressBar = ProgressBar()) {
        self.settings = settings
        self.logger = logger
        self.progress = progress
        client = HubClient(
            endpoint: settings.endpoint, token: settings.token, connections: concurrency, timeout: settings.requestTimeout,
            policy: settings.retry, dryRun: settings.dryRun, logger: logger)
    }

    /// Closes the HTTP client.
    public func shutdown() async { await client.shutdown() }

    // MARK: stress-test

    /// `stress-test`: create `count` users in batches, start their servers in batches, wait
    /// until all are ready, then (unless `keep`) stop them, wait until stopped and delete the
    /// users whose servers stopped.
    public func stressTest(count: Int, batchSize: Int, keep: Bool, profile: String?) async throws -> StressReport {
        var report = StressReport(command: "stress-test", endpoint: client.endpoint, dryRun: settings.dryRun)
        let started = ContinuousClock.now
        defer { logger.info("stress-test took \(String(format: "%.3f", (ContinuousClock.now - started).inSeconds)) seconds") }
        let batchSize = min(batchSize, count)
        let existing = try await timed("find-users", total: 0, into: &report) { phase in try await findStressUsers(phase) }
        let batches = StressNames.batches(count: count, batchSize: batchSize, after: existing.map(\.name))
        let names = batches.flatMap { $0 }
        report.users = names.count
        logger.info("found \(existing.count) existing stress-test users; this run uses \(names.first ?? "-") … \(names.last ?? "-")")
        if settings.dryRun {
            report.plan = [
                "create \(names.count) users \(names.first ?? "") … \(names.last ?? "") in \(batches.count) batches of up to \(batchSize) (POST /users)",
                "start their servers \(batchSize) at a time (POST /users/{name}/server\(profile.map { ", profile \($0)" } ?? ""))",
                "wait up to \(Int(settings.serverTimeout.inSeconds)) s for every server to be ready",
            ] + (keep ? ["keep the users and servers (--keep)"] : [
                "stop the servers \(batchSize) at a time (DELETE /users/{name}/server) and wait until stopped",
                "delete the users whose servers stopped (DELETE /users/{name})",
            ])
            return finish(report, started: started)
        }

        // Users, one request per batch; a failed batch is deleted again and ends the run.
        var created: [String] = []
        let creation: String? = try await timed("create-users", total: names.count, into: &report) { phase in
            for batch in batches {
                if let problem = await createBatch(batch, phase: phase) {
                    let leftover = created.isEmpty ? "" : "; \(created.count) users of earlier batches remain (atrium stress purge removes them)"
                    return problem + leftover
                }
                created += batch
            }
            return nil
        }
        if let creation {
            report.problems.append(creation)
            return finish(report, started: started)
        }

        let starting = try await timed("start-servers", total: created.count, into: &report) { phase in
            await forEach(created, batchSize: batchSize, phase: phase) { name in
                try await startServer(name, profile: profile, phase: phase)
            }
        }
        report.problems += starting.problems
        let (ready, notReady) = try await timed("wait-ready", total: starting.ok.count, into: &report) { phase in
            try await waitForServers(Set(starting.ok), phase: phase, goal: .ready)
        }
        report.problems += notReady
        logger.info("\(ready.count) of \(created.count) servers are ready")
        if keep {
            logger.info("keeping \(created.count) users and their servers (--keep)")
            return finish(report, started: started)
        }
        report.problems += try await tearDown(created, batchSize: batchSize, into: &report)
        return finish(report, started: started)
    }

    // MARK: purge

    /// `purge`: stop the servers of every `hub-stress-test-*` user, wait until they stopped,
    /// and delete the users.
    public func purge(batchSize: Int) async throws -> StressReport {
        var report = StressReport(command: "purge", endpoint: client.endpoint, dryRun: settings.dryRun)
        let started = ContinuousClock.now
        let existing = try await timed("find-users", total: 0, into: &report) { phase in try await findStressUsers(phase) }
        report.users = existing.count
        let running = existing.filter { $0.defaultServer != nil }.count
        logger.info("found \(existing.count) stress-test users, \(running) with an active server")
        if settings.dryRun {
            report.plan = existing.isEmpty ? ["nothing: there are no hub-stress-test users"] : [
                "stop \(running) servers \(batchSize) at a time and wait until stopped",
                "delete \(existing.count) users (\(existing.first?.name ?? "") …)",
            ]
            return finish(report, started: started)
        }
        guard !existing.isEmpty else { return finish(report, started: started) }
        report.problems += try await tearDown(existing.map(\.name), batchSize: batchSize, into: &report)
        return finish(report, started: started)
    }

    /// Stops the servers of `names`, waits until they stopped, deletes the users whose servers
    /// stopped; returns the problems.
    func tearDown(_ names: [String], batchSize: Int, into report: inout StressReport) async throws -> [String] {
        var problems: [String] = []
        let stopping = try await timed("stop-servers", total: names.count, into: &report) { phase in
            await forEach(names, batchSize: batchSize, phase: phase) { name in try await stopServer(name, phase: phase) }
        }
        problems += stopping.problems
        let (stopped, stillRunning) = try await timed("wait-stopped", total: stopping.ok.count, into: &report) { phase in
            try await waitForServers(Set(stopping.ok), phase: phase, goal: .stopped)
        }
        problems += stillRunning
        // Only users whose servers stopped are deleted, as the original tool does.
        let deletable = names.filter(stopped.contains)
        let deleting = try await timed("delete-users", total: deletable.count, into: &report) { phase in
            await forEach(deletable, batchSize: batchSize, phase: phase) { name in try await deleteUser(name, phase: phase) }
        }
        problems += deleting.problems
        if deletable.count < names.count {
            problems.append("\(names.count - deletable.count) users were not deleted because their servers did not stop")
        }
        return problems
    }

    // MARK: helpers

    /// Every user named `hub-stress-test-*`, with their active servers.
    func findStressUsers(_ phase: PhaseRecorder) async throws -> [HubUser] {
        let all = try await client.listUsers(query: [("name_filter", StressNames.prefix + "-")], pageSize: settings.pageSize, phase: phase)
        let users = all.filter { StressNames.isStressUser($0.name) }
            .sorted { (StressNames.index(of: $0.name) ?? Int.max, $0.name) < (StressNames.index(of: $1.name) ?? Int.max, $1.name) }
        phase.succeeded(users.count)
        logger.debug("the hub listed \(all.count) users, \(users.count) of them stress-test users")
        return users
    }

    /// Runs `body` as the phase `name`: timed, recorded in `report` even when it throws.
    func timed<T>(_ name: String, total: Int, into report: inout StressReport, _ body: (PhaseRecorder) async throws -> T) async throws -> T {
        let phase = PhaseRecorder(name)
        progress.begin(name, total: total)
        logger.info("phase \(name) started")
        do {
            let result = try await body(phase)
            progress.end()
            let figures = phase.report()
            report.phases.append(figures)
            logger.info("Took \(String(format: "%.3f", figures.seconds)) seconds to \(name): \(figures.operations) done, \(figures.failed) failed")
            return result
        } catch {
            progress.end()
            report.phases.append(phase.report())
            report.success = false
            throw error
        }
    }

    func finish(_ report: StressReport, started: ContinuousClock.Instant) -> StressReport {
        var report = report
        report.seconds = ((ContinuousClock.now - started).inSeconds * 1000).rounded() / 1000
        report.success = report.success && report.problems.isEmpty && report.phases.allSatisfy { $0.failed == 0 }
        return report
    }
}
