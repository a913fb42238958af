import AtriumModel
import AtriumSpawn
import Foundation
import Synchronization

/// A backend whose behaviour a test scripts: starts can be held until released, can fail,
/// and every call is counted.
final class ScriptedBackend: Backend, Sendable {
    struct State: Codable, Sendable, Equatable {
        var id: Int
        var resumed: Bool
    }

    struct Script {
        var running: Set<Int> = []
        var suspended: Set<Int> = []
        var nextID = 1
        var starts = 0
        var resumes = 0
        var stops = 0
        var suspends = 0
        var removes = 0
        var deletes = 0
        var failNextStart: String?
        var failNextStop: String?
        var holdStarts = false
        var held: [CheckedContinuation<Void, Never>] = []
    }

    let script = Mutex(Script())
    var kind: String { "scripted" }

    func startState(_ request: SpawnRequest, previous: State?) async throws -> State {
        if let previous { return State(id: previous.id, resumed: true) }
        return script.withLock { s in
            defer { s.nextID += 1 }
            return State(id: s.nextID, resumed: false)
        }
    }

    func start(_ request: SpawnRequest, state: State, progress: ProgressSink) async throws -> State {
        await progress(ProgressEvent(progress: 30, message: "scripted start \(state.id)"))
        let hold = script.withLock { $0.holdStarts }
        if hold {
            await withCheckedContinuation { c in script.withLock { $0.held.append(c) } }
        }
        try Task.checkCancellation()
        let failure: String? = script.withLock { s in
            s.starts += 1
            if state.resumed { s.resumes += 1 }
            defer { s.failNextStart = nil }
            return s.failNextStart
        }
        if let failure { throw ScriptedFailure(description: failure) }
        script.withLock { s in
            s.running.insert(state.id)
            s.suspended.remove(state.id)
        }
        return state
    }

    /// Lets every held start go on.
    func releaseStarts() {
        let held = script.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.holdStarts = false
            defer { s.held = [] }
            return s.held
        }
        for c in held { c.resume() }
    }

    var heldCount: Int { script.withLock { $0.held.count } }

    func status(_ state: State) async -> BackendStatus {
        script.withLock { s in
            if s.running.contains(state.id) { return .running }
            if s.suspended.contains(state.id) { return .suspended }
            return .stopped
        }
    }

    func endpoint(_ state: State) -> WorkspaceEndpoint {
        WorkspaceEndpoint(address: .tcp(host: "127.0.0.1", port: 10_000 + state.id), secret: nil)
    }

    func suspend(_ state: State) async throws -> State {
        script.withLock { s in
            s.suspends += 1
            s.running.remove(state.id)
            s.suspended.insert(state.id)
        }
        return state
    }

    struct StopFailure: Error, CustomStringConvertible { let description: String }

    func stop(_ state: State) async throws {
        if let failure = script.withLock({ s -> String? in
            defer { s.failNextStop = nil }
            return s.failNextStop
        }) {
            throw StopFailure(description: failure)
        }
        script.withLock { s in
            s.stops += 1
            s.running.remove(state.id)
            s.suspended.remove(state.id)
        }
    }

    func remove(user: String, serverName: String, state: State?) async throws {
        script.withLock { $0.removes += 1 }
    }

    func deleteForever(user: String, userID: Int64, serverName: String, state: State?) async throws {
        script.withLock { $0.deletes += 1 }
    }

    func logs(user: String, serverName: String, state: State?, lines: Int) async throws -> [String] {
        Array(["line 1", "line 2", "line 3"].suffix(lines))
    }

    /// Kills a server behind the manager's back (a crash).
    func crash(id: Int) {
        _ = script.withLock { $0.running.remove(id) }
    }
}

struct ScriptedFailure: Error, CustomStringConvertible {
    var description: String
}

/// Says every endpoint of a running scripted server is ready.
struct ScriptedProbe: ReadinessProbe {
    let backend: ScriptedBackend

    func check(_ endpoint: WorkspaceEndpoint, path: String) async -> Bool {
        guard case .tcp(_, let port) = endpoint.address else { return false }
        return backend.script.withLock { $0.running.contains(port - 10_000) }
    }
}
