import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// A JupyterHub REST API client for the stress tool: one shared `HTTPClient` whose connection
/// pool is as large as the concurrency asked for, a timeout on every request, and bounded
/// retries (see ``RetryPolicy``). Works against Atrium and JupyterHub alike.
public final class HubClient: Sendable {
    /// An answer from the hub.
    public struct Reply: Sendable {
        public let status: Int
        public let body: Data
        public let headers: HTTPHeaders
        public var isSuccess: Bool { (200..<300).contains(status) }
        /// The start of the body, for messages.
        public var snippet: String { String(decoding: body.prefix(300), as: UTF8.self) }
    }

    /// The hub API URL without a trailing slash, e.g. `http://127.0.0.1:8000/hub/api`.
    public let endpoint: String
    private let token: String
    private let http: HTTPClient
    private let policy: RetryPolicy
    private let timeout: Duration
    private let dryRun: Bool
    private let logger: Logger

    /// - Parameters:
    ///   - connections: the most connections to the hub at once (the batch size or the workers).
    ///   - timeout: the longest one request may take, answer included.
    ///   - dryRun: when set, only GET requests go out; anything else throws (the runners never
    ///     try: they report what they would do instead).
    public init(endpoint: String, token: String, connections: Int, timeout: Duration, policy: RetryPolicy, dryRun: Bool, logger: Logger) {
        var trimmed = endpoint
        while trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.endpoint = trimmed
        self.token = token
        self.policy = policy
        self.timeout = timeout
        self.dryRun = dryRun
        self.logger = logger
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(8, connections + 2))
        configuration.timeout = .init(connect: .seconds(5), read: .nanoseconds(Int64(timeout.inSeconds * 1e9)))
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes the connections. Call once, when the run is over.
    public func shutdown() async {
        try? await http.shutdown()
    }

    /// Sends one request (again, after 429, 503, 504 or a broken connection, as the policy
    /// allows), records every attempt in `phase`, and returns the last answer.
    ///
    /// - Parameter path: the part after the endpoint, starting with `/`, query included.
    /// - Throws: ``StressError`` when no answer came: `.unreachable` when the hub refuses
    ///   connections (not retried: the hub is not there), `.network` when retries ran out.
    public func send(
        _ method: HTTPMethod, _ path: String, json: Data? = nil, accept: String? = nil,
        timeout override: Duration? = nil, phase: PhaseRecorder?
    ) async throws -> Reply {
        guard !dryRun || method == .GET else {
            throw StressError(.dryRun, "dry run: refused to send \(method) \(path)")
        }
        var request = HTTPClientRequest(url: endpoint + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "token \(token)")
        request.headers.add(name: "Accept", value: accept ?? "application/json")
        request.headers.add(name: "User-Agent", value: "atrium-stress")
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: json))
        }
        let limit = override ?? timeout
        var attempt = 0
        while true {
            let started = ContinuousClock.now
            do {
                let response = try await http.execute(request, deadline: .now() + .nanoseconds(Int64(limit.inSeconds * 1e9)))
                let body = try await response.body.collect(upTo: 256 << 20)
                let seconds = (ContinuousClock.now - started).inSeconds
                let status = Int(response.status.code)
                let retry = policy.shouldRetry(status: status, attempt: attempt)
                phase?.request(seconds: seconds, status: status, willRetry: retry)
                logger.debug(
                    "\(method) \(path) status:\(status) time:\(String(format: "%.3f", seconds))s",
                    metadata: ["atrium.stress.attempt": "\(attempt)"])
                guard retry else { return Reply(status: status, body: Data(body.readableBytesView), headers: response.headers) }
                let wait = policy.delay(
                    attempt: attempt, retryAfter: RetryPolicy.parseRetryAfter(response.headers.first(name: "Retry-After")),
                    jitter: Double.random(in: 0..<1))
                logger.debug("\(method) \(path) answered \(status); retrying in \(String(format: "%.1f", wait.inSeconds))s")
                try await Task.sleep(for: wait)
            } catch let error as StressError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                let seconds = (ContinuousClock.now - started).inSeconds
                if Self.isRefused(error) {
                    phase?.request(seconds: seconds, status: nil, failure: "refused", willRetry: false)
                    throw StressError(.unreachable, "cannot reach the hub at \(endpoint): \(Self.refusal(error)) (is it running, and is -e/--endpoint right?)")
                }
                let label = Self.isTimeout(error) ? "timeout" : "network"
                let retry = attempt < policy.maxRetries
                phase?.request(seconds: seconds, status: nil, failure: label, willRetry: retry)
                logger.debug("\(method) \(path) failed: \(Self.describe(error))")
                guard retry else {
                    throw StressError(.network, "\(method) \(path) failed after \(attempt + 1) attempts: \(Self.describe(error))")
                }
                try await Task.sleep(for: policy.delay(attempt: attempt, jitter: Double.random(in: 0..<1)))
            }
            attempt += 1
        }
    }

    /// Encodes `value` as a JSON request body.
    public static func body(_ value: Any) -> Data {
        (try? JSONSerialization.data(withJSONObject: value)) ?? Data("{}".utf8)
    }

    static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        return text.count > 200 ? String(text.prefix(200)) + "…" : text
    }

    /// Whether `error` says nobody listens there (or the name does not resolve): retrying is pointless.
    static func isRefused(_ error: any Error) -> Bool {
        if let io = error as? IOError, io.errnoCode == ECONNREFUSED { return true }
        let text = String(describing: error).lowercased()
        return text.contains("connection refused") || text.contains("econnrefused") || text.contains("connectionrefused")
            || text.contains("nioconnectionerror") || text.contains("name or service not known") || text.contains("unknown host")
    }

    /// The short form of a refusal for the message.
    static func refusal(_ error: any Error) -> String {
        let text = String(describing: error).lowercased()
        if text.contains("refused") { return "connection refused" }
        if text.contains("name or service not known") || text.contains("unknown host") { return "unknown host" }
        return describe(error)
    }

    static func isTimeout(_ error: any Error) -> Bool {
        if let client = error as? HTTPClientError, client == .deadlineExceeded || client == .readTimeout || client == .connectTimeout {
            return true
        }
        return String(describing: error).lowercased().contains("timeout")
    }
}
