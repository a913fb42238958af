import AtriumModel
import Foundation

/// A backend with its state as JSON, so the manager (and the store) need not be generic. Built
/// from a typed ``Backend`` by the composition root; decoding failures surface as errors that
/// name the backend, never as a crash.
public struct AnyBackend: Sendable {
    public let kind: String
    let startState: @Sendable (SpawnRequest, JSONValue?) async throws -> JSONValue
    let start: @Sendable (SpawnRequest, JSONValue, @escaping ProgressSink) async throws -> JSONValue
    let status: @Sendable (JSONValue) async -> BackendStatus
    let endpoint: @Sendable (JSONValue) throws -> WorkspaceEndpoint
    let suspend: @Sendable (JSONValue) async throws -> JSONValue
    let stop: @Sendable (JSONValue) async throws -> Void
    let remove: @Sendable (String, String, JSONValue?) async throws -> Void
    let deleteForever: @Sendable (String, Int64, String, JSONValue?) async throws -> Void
    let usage: @Sendable (JSONValue) async -> ResourceUsage?
    let prepareUser: @Sendable (String, Int64) async throws -> Void
    let stopOrphans: @Sendable ([JSONValue]) async -> Int
    let logs: @Sendable (String, String, JSONValue?, Int) async throws -> [String]
    let healthProblem: @Sendable () async -> String?

    public init<B: Backend>(_ backend: B) {
        kind = backend.kind
        let kind = backend.kind
        @Sendable func decode(_ value: JSONValue) throws -> B.State {
            do {
                return try JSONDecoder().decode(B.State.self, from: Data(value.jsonText.utf8))
            } catch {
                throw BackendStateError(kind: kind, underlying: "\(error)")
            }
        }
        @Sendable func encode(_ state: B.State) throws -> JSONValue {
            let data = try JSONEncoder().encode(state)
            return try JSONDecoder().decode(JSONValue.self, from: data)
        }
        startState = { request, previous in
            try encode(try await backend.startState(request, previous: try previous.map(decode)))
        }
        start = { request, state, progress in try encode(try await backend.start(request, state: try decode(state), progress: progress)) }
        status = { state in
            guard let typed = try? decode(state) else { return .failed(reason: "the stored \(kind) state cannot be read") }
            return await backend.status(typed)
        }
        endpoint = { state in backend.endpoint(try decode(state)) }
        suspend = { state in try encode(try await backend.suspend(try decode(state))) }
        stop = { state in try await backend.stop(try decode(state)) }
        remove = { user, server, state in try await backend.remove(user: user, serverName: server, state: state.flatMap { try? decode($0) }) }
        deleteForever = { user, userID, server, state in
            try await backend.deleteForever(user: user, userID: userID, serverName: server, state: state.flatMap { try? decode($0) })
        }
        prepareUser = { user, id in try await backend.prepareUser(user: user, userID: id) }
        stopOrphans = { states in await backend.stopOrphans(known: states.compactMap { try? decode($0) }) }
        usage = { state in
            guard let typed = try? decode(state) else { return nil }
            return await backend.usage(typed)
        }
        healthProblem = { await backend.healthProblem() }
        logs = { user, server, state, lines in
            try await backend.logs(user: user, serverName: server, state: state.flatMap { try? decode($0) }, lines: lines)
        }
    }
}

/// A stored backend state that does not decode (written by another backend or version).
public struct BackendStateError: Error, CustomStringConvertible {
    public let kind: String
    public let underlying: String
    public var description: String { "The stored state of this server is not a valid \(kind) backend state: \(underlying)" }
}
