import AtriumModel
import AtriumSpawn
import Foundation
import Logging
import Synchronization

/// Configuration of the simulated backend.
public struct SimulatedBackendConfiguration: Sendable, Equatable {
    /// Starts take a time drawn uniformly from this range. Default: 0.5–2 s.
    public var startDelay: ClosedRange<Double> = 0.5...2.0
    /// The share of starts that fail, 0…1. Default: 0.
    public var failureRate = 0.0
    /// Reasons a failed start gives, chosen at random (the failures a cluster shows).
    public var failureReasons = ["ImagePullBackOff", "CrashLoopBackOff", "Unschedulable", "OOMKilled"]
    /// How long a stop takes. Default: 0.1 s.
    public var stopDelay = 0.1

    public init() {}
}

/// A backend that runs no processes: the mock cluster of seed 001, for tests and load tests
/// with thousands of servers. Starts take a random time and fail at a configured rate; running
/// servers answer HTTP through one small shared server (`SimulatedEndpoint`), so the proxy path
/// can be exercised. Its memory lives in the hub's process: after a hub restart every simulated
/// server is gone, and the hub cleans them up as it would dead processes.
public struct SimulatedBackend: Backend {
    public struct State: Codable, Sendable, Equatable {
        public var id: String
        public var suspended: Bool
    }

    public let configuration: SimulatedBackendConfiguration
    let endpointServer: SimulatedEndpoint
    let logger: Logger

    public init(configuration: SimulatedBackendConfiguration, endpoint: SimulatedEndpoint, logger: Logger) {
        self.configuration = configuration
        self.endpointServer = endpoint
        self.logger = logger
    }

    public var kind: String { "simulated" }

    public func startState(_ request: SpawnRequest, previous: State?) async throws -> State {
        State(id: previous?.id ?? UUID().uuidString, suspended: false)
    }

    public func start(_ request: SpawnRequest, state: State, progress: ProgressSink) async throws -> State {
        _ = try await endpointServer.address()  // the shared HTTP server runs from the first start on
        await progress(ProgressEvent(progress: 20, message: "Scheduling simulated workspace \(state.id.prefix(8))"))
        let delay = Double.random(in: configuration.startDelay)
        try await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
        if configuration.failureRate > 0, Double.random(in: 0..<1) < configuration.failureRate {
            let reason = configuration.failureReasons.randomElement() ?? "simulated failure"
            endpointServer.fail(id: state.id, reason: reason)
            throw SimulatedFailure(reason: reason)
        }
        endpointServer.run(id: state.id, user: request.user, server: request.serverName, secret: request.secret)
        await progress(ProgressEvent(progress: 50, message: "Simulated workspace \(state.id.prefix(8)) is running"))
        return state
    }

    public func status(_ state: State) async -> BackendStatus {
        if state.suspended { return .suspended }
        return endpointServer.status(id: state.id)
    }

    public func endpoint(_ state: State) -> WorkspaceEndpoint {
        WorkspaceEndpoint(address: endpointServer.knownAddress ?? .tcp(host: "127.0.0.1", port: 0), secret: nil)
    }

    public func suspend(_ state: State) async throws -> State {
        try await stop(state)
        return State(id: state.id, suspended: true)
    }

    public func stop(_ state: State) async throws {
        try await Task.sleep(for: .milliseconds(Int64(configuration.stopDelay * 1000)))
        endpointServer.remove(id: state.id)
    }

    public func remove(user: String, serverName: String, state: State?) async throws {
        if let state { endpointServer.remove(id: state.id) }
    }

    public func deleteForever(user: String, userID: Int64, serverName: String, state: State?) async throws {
        try await remove(user: user, serverName: serverName, state: state)
    }

    public func logs(user: String, serverName: String, state: State?, lines: Int) async throws -> [String] {
        guard let state else { return [] }
        return Array(endpointServer.log(id: state.id).suffix(lines))
    }
}

/// A failed simulated start, with the reason a cluster would give.
public struct SimulatedFailure: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { "simulated failure: \(reason)" }
}
