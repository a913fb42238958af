import Foundation
import Logging

/// The single operations the phases are made of, and the batch and wait loops around them.
extension StressRunner {
    /// What a batch loop found: the names that succeeded, and the problems (a few quoted, the
    /// rest counted, so a thousand failures do not print a thousand lines).
    struct Outcome: Sendable {
        var ok: [String] = []
        var failures: [(name: String, problem: String)] = []

        var problems: [String] {
            guard let first = failures.first else { return [] }
            let more = failures.count > 1 ? " (and \(failures.count - 1) more like it; -v shows each)" : ""
            return ["\(failures.count) failed: \(first.name): \(first.problem)\(more)"]
        }
    }

    /// One operation's result: `problem` is `nil` when it succeeded.
    struct Attempt: Sendable {
        var name: String
        var problem: String?
    }

    /// Runs `operation` for every name, `batchSize` at once; a batch finishes before the next
    /// starts, as the original tool's thread pools do. `operation` returns a problem or `nil`.
    func forEach(
        _ names: [String], batchSize: Int, phase: PhaseRecorder,
        _ operation: @escaping @Sendable (String) async throws -> String?
    ) async -> Outcome {
        var outcome = Outcome()
        for batch in chunks(names, size: batchSize) {
            // A struct, not a `(String, String?)` tuple: with a tuple as the child result, the
            // optimized build crashes inside the concurrency runtime (Swift 6.3.1, Linux) while
            // the group copies a result out.
            let results = await withTaskGroup(of: Attempt.self) { group in
                for name in batch {
                    group.addTask {
                        do { return Attempt(name: name, problem: try await operation(name)) } catch {
                            return Attempt(name: name, problem: "\(error)")
                        }
                    }
                }
                var results: [Attempt] = []
                for await result in group {
                    results.append(result)
                    progress.advance()
                }
                return results
            }
            for attempt in results {
                let name = attempt.name
                if let problem = attempt.problem {
                    phase.failed()
                    logger.debug("\(phase.name) \(name): \(problem)")
                    outcome.failures.append((name, problem))
                } else {
                    phase.succeeded()
                    outcome.ok.append(name)
                }
            }
        }
        if let first = outcome.failures.first {
            logger.warning("\(phase.name): \(outcome.failures.count) failed; first: \(first.name): \(first.problem)")
        }
        return outcome
    }

    /// Creates one batch with `POST /users`; on failure deletes the batch's users again and
    /// returns the problem.
    func createBatch(_ batch: [String], phase: PhaseRecorder) async -> String? {
        // Creating a batch is one synchronous request: give it at least a second per user.
        let timeout = max(settings.requestTimeout, .seconds(batch.count))
        var problem: String
        do {
            let reply = try await client.send(
                .POST, "/users", json: HubClient.body(["usernames": batch]), timeout: timeout, phase: phase)
            if reply.status == 201 || reply.status == 200 {
                phase.succeeded(batch.count)
                progress.advance(batch.count)
                logger.debug("created users \(batch.first ?? "") … \(batch.last ?? "")")
                return nil
            }
            problem = "creating users \(batch.first ?? "") … \(batch.last ?? ""): HTTP \(reply.status): \(reply.snippet)"
        } catch {
            problem = "creating users \(batch.first ?? "") … \(batch.last ?? ""): \(error)"
        }
        phase.failed(batch.count)
        logger.error("\(problem); deleting this batch's users again")
        let cleanup = await forEach(batch, batchSize: batch.count, phase: phase) { name in
            try await deleteUser(name, phase: phase)
        }
        // The clean-up's deletions are not operations of this phase.
        return problem + (cleanup.failures.isEmpty ? "" : "; \(cleanup.failures.count) of them could not be deleted")
    }

    /// `POST /users/{name}/server`; 201 (ready) and 202 (starting) are both fine.
    func startServer(_ name: String, profile: String?, phase: PhaseRecorder) async throws -> String? {
        let body = profile.map { HubClient.body(["profile": $0]) }
        let reply = try await client.send(.POST, "/users/\(name)/server", json: body, phase: phase)
        guard reply.status == 201 || reply.status == 202 else {
            try HubClient.check(reply, doing: "starting the server of \(name)")
            return "HTTP \(reply.status): \(reply.snippet)"
        }
        return nil
    }

    /// `DELETE /users/{name}/server`; 202 (stopping) and 204 (stopped) are fine, and so are
    /// 400 and 404 (JupyterHub's and Atrium's answers for a server that is not running): the
    /// wait that follows looks at the server's real state.
    func stopServer(_ name: String, phase: PhaseRecorder) async throws -> String? {
        let reply = try await client.send(.DELETE, "/users/\(name)/server", phase: phase)
        guard [202, 204, 400, 404].contains(reply.status) else {
            try HubClient.check(reply, doing: "stopping the server of \(name)")
            return "HTTP \(reply.status): \(reply.snippet)"
        }
        return nil
    }

    /// `DELETE /users/{name}`; 404 means someone deleted the user already, which is fine.
    func deleteUser(_ name: String, phase: PhaseRecorder) async throws -> String? {
        let reply = try await client.send(.DELETE, "/users/\(name)", phase: phase)
        if reply.status == 404 { logger.debug("user already deleted: \(name)") }
        guard reply.isSuccess || reply.status == 404 else {
            try HubClient.check(reply, doing: "deleting \(name)")
            return "HTTP \(reply.status): \(reply.snippet)"
        }
        return nil
    }

    enum WaitGoal { case ready, stopped }

    /// Polls the hub's list of active users (paginated, `state=active`) until every server in
    /// `names` reached `goal`, a server that should get ready is no longer active (its start
    /// failed), or the server timeout passes. One listing per round instead of one request per
    /// user keeps the polling cheap with thousands of users.
    ///
    /// - Returns: the names that reached the goal, and the problems.
    func waitForServers(_ names: Set<String>, phase: PhaseRecorder, goal: WaitGoal) async throws -> (Set<String>, [String]) {
        var waiting = names
        var reached = Set<String>()
        var failed: [(String, String)] = []
        let deadline = ContinuousClock.now + settings.serverTimeout
        while !waiting.isEmpty {
            let active: [String: HubUser]
            do {
                let users = try await client.listUsers(
                    query: [("state", "active"), ("name_filter", StressNames.prefix + "-")], pageSize: settings.pageSize, phase: phase)
                active = Dictionary(users.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
            } catch let error as StressError where error.code == .unauthorized || error.code == .unreachable {
                throw error
            } catch {
                // A hub under load may fail a listing now and then; the next round tries again.
                logger.warning("listing active users failed, polling again: \(error)")
                if ContinuousClock.now < deadline {
                    try await Task.sleep(for: settings.pollInterval)
                    continue
                }
                for name in waiting { failed.append((name, "still unknown after \(Int(settings.serverTimeout.inSeconds)) s: \(error)")) }
                break
            }
            for name in waiting {
                let server = active[name]?.defaultServer
                switch goal {
                case .ready:
                    if server?.ready == true {
                        reached.insert(name)
                    } else if server == nil {
                        failed.append((name, "the server is no longer active: its start failed (see the hub's log)"))
                    }
                case .stopped:
                    if server == nil { reached.insert(name) }
                }
            }
            waiting.subtract(reached)
            waiting.subtract(failed.map(\.0))
            progress.set(reached.count)
            if waiting.isEmpty { break }
            if ContinuousClock.now >= deadline {
                let what = goal == .ready ? "ready" : "stopped"
                for name in waiting { failed.append((name, "not \(what) after \(Int(settings.serverTimeout.inSeconds)) s")) }
                break
            }
            try await Task.sleep(for: settings.pollInterval)
        }
        phase.succeeded(reached.count)
        phase.failed(failed.count)
        guard let first = failed.first else { return (reached, []) }
        let more = failed.count > 1 ? " (and \(failed.count - 1) more)" : ""
        logger.warning("\(phase.name): \(failed.count) servers failed; first: \(first.0): \(first.1)")
        return (reached, ["\(failed.count) servers failed: \(first.0): \(first.1)\(more)"])
    }
}
