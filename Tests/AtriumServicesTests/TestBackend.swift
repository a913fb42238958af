import AtriumModel
import AtriumSpawn
import Foundation
import Synchronization

/// A backend for culler tests: starts finish at once (or never, when `hangStarts`), stops take
/// a moment and count how many run at the same time.
final class TestBackend: Backend, Sendable {
    struct State: Codable, Sendable, Equatable {
        var id: String
        var suspended = false
    }

    struct Counts {
        var running: Set<String> = []
        var stops = 0
        var suspends = 0
        var stopsInFlight = 0
        var mostStopsAtOnce = 0
        var hangStarts = false
    }

    let counts = Mutex(Counts())
    var kind: String { "test" }

    func startState(_ request: SpawnRequest, previous: State?) async throws -> State {
        State(id: previous?.id ?? "\(request.user)/\(request.serverName)")
    }

    func start(_ request: SpawnRequest, state: State, progress: ProgressSink) async throws -> State {
        if counts.withLock({ $0.hangStarts }) {
            // A start that never finishes, until cancelled (a pod that is never scheduled).
            try await Task.sleep(for: .seconds(3600))
        }
        counts.withLock { _ = $0.running.insert(state.id) }
        return State(id: state.id)
    }

    func status(_ state: State) async -> BackendStatus {
        counts.withLock { $0.running.contains(state.id) } ? .running : (state.suspended ? .suspended : .stopped)
    }

    func endpoint(_ state: State) -> WorkspaceEndpoint {
        WorkspaceEndpoint(address: .tcp(host: "127.0.0.1", port: 9), secret: nil)
    }

    func suspend(_ state: State) async throws -> State {
        counts.withLock {
            $0.running.remove(state.id)
            $0.suspends += 1
        }
        return State(id: state.id, suspended: true)
    }

    func stop(_ state: State) async throws {
        counts.withLock {
            $0.stopsInFlight += 1
            $0.mostStopsAtOnce = max($0.mostStopsAtOnce, $0.stopsInFlight)
        }
        try? await Task.sleep(for: .milliseconds(30))
        counts.withLock {
            $0.stopsInFlight -= 1
            $0.stops += 1
            $0.running.remove(state.id)
        }
    }

    func remove(user: String, serverName: String, state: State?) async throws {}
    func deleteForever(user: String, userID: Int64, serverName: String, state: State?) async throws {}
    func logs(user: String, serverName: String, state: State?, lines: Int) async throws -> [String] { [] }
}

/// Every endpoint answers: the test backend's servers are "ready" as soon as they start.
struct AlwaysReady: ReadinessProbe {
    func check(_ endpoint: WorkspaceEndpoint, path: String) async -> Bool { true }
}
