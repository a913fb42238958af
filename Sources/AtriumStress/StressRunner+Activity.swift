import Foundation
import Logging

extension StressRunner {
    /// `activity-stress-test`: make sure `count` stress-test users exist (creating the missing
    /// ones, without servers), then have `workers` concurrent workers each send
    /// `POST /users/{name}/activity` for their share of the users, as fast as the hub answers,
    /// while one more task keeps reading a user model (`GET /users/{name}`) to show how reads
    /// fare under the write load. Users this run created are deleted unless `keep`.
    public func activityTest(count: Int, workers: Int, keep: Bool) async throws -> StressReport {
        var report = StressReport(command: "activity-stress-test", endpoint: client.endpoint, dryRun: settings.dryRun)
        let started = ContinuousClock.now
        let workers = max(1, min(workers, count))
        let existing = try await timed("find-users", total: 0, into: &report) { phase in try await findStressUsers(phase) }
        let reused = Array(existing.map(\.name).prefix(count))
        let batches = StressNames.batches(count: count - reused.count, batchSize: 100, after: existing.map(\.name))
        let fresh = batches.flatMap { $0 }
        report.users = reused.count + fresh.count
        if settings.dryRun {
            report.plan = [
                "use \(reused.count) existing users and create \(fresh.count) more (POST /users)",
                "send one activity update per user from \(workers) concurrent workers (POST /users/{name}/activity)",
            ] + (keep || fresh.isEmpty ? [] : ["delete the \(fresh.count) users this run created"])
            return finish(report, started: started)
        }
        var created: [String] = []
        let creation: String? = try await timed("create-users", total: fresh.count, into: &report) { phase in
            for batch in batches {
                if let problem = await createBatch(batch, phase: phase) { return problem }
                created += batch
            }
            return nil
        }
        if let creation {
            report.problems.append(creation)
            if !keep, !created.isEmpty { report.problems += try await deleteAll(created, into: &report) }
            return finish(report, started: started)
        }
        let names = reused + created
        let shares = chunks(names, size: (names.count + workers - 1) / workers)
        let pingPhase = PhaseRecorder("ping-during-activity")
        let problems = try await timed("activity", total: names.count, into: &report) { phase in
            await withTaskGroup(of: [String].self) { group in
                // The reader: one request at a time until the writers are done.
                group.addTask {
                    while !Task.isCancelled {
                        guard let reply = try? await client.send(.GET, "/users/\(names[0])", phase: pingPhase) else { break }
                        if reply.isSuccess { pingPhase.succeeded() } else { pingPhase.failed() }
                    }
                    return []
                }
                let writers = await withTaskGroup(of: [String].self) { writers in
                    for share in shares {
                        writers.addTask { await sendActivity(share, phase: phase) }
                    }
                    var problems: [String] = []
                    for await found in writers { problems += found }
                    return problems
                }
                group.cancelAll()
                return writers
            }
        }
        report.phases.append(pingPhase.report())
        if let first = problems.first {
            report.problems.append("\(problems.count) activity updates failed: \(first)")
        }
        if !keep, !created.isEmpty {
            report.problems += try await deleteAll(created, into: &report)
        }
        return finish(report, started: started)
    }

    /// One worker: an activity update for each of `names`, one after the other.
    func sendActivity(_ names: [String], phase: PhaseRecorder) async -> [String] {
        var problems: [String] = []
        for name in names {
            let now = ISO8601DateFormatter().string(from: Date())
            // No "servers" part: these users have no server, and both hubs refuse activity for
            // a server that does not exist.
            let body = HubClient.body(["last_activity": now])
            do {
                let reply = try await client.send(.POST, "/users/\(name)/activity", json: body, phase: phase)
                if reply.isSuccess {
                    phase.succeeded()
                } else {
                    phase.failed()
                    problems.append("\(name): HTTP \(reply.status): \(reply.snippet)")
                }
            } catch {
                phase.failed()
                problems.append("\(name): \(error)")
            }
            progress.advance()
        }
        return problems
    }

    /// Deletes users that have no servers (the activity test's), as a phase.
    func deleteAll(_ names: [String], into report: inout StressReport) async throws -> [String] {
        let outcome = try await timed("delete-users", total: names.count, into: &report) { phase in
            await forEach(names, batchSize: 100, phase: phase) { name in try await deleteUser(name, phase: phase) }
        }
        return outcome.problems
    }
}
