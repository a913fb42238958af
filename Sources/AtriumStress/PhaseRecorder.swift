import Foundation

/// The figures of one phase (creating users, starting servers, …) as the report shows them.
public struct PhaseReport: Codable, Sendable, Equatable {
    /// The phase, e.g. `create-users`.
    public var name: String
    /// Wall time of the phase.
    public var seconds: Double
    /// Operations that succeeded (users created, servers started, activity updates sent, …).
    public var operations: Int
    /// Operations that failed for good (after retries).
    public var failed: Int
    /// Successful operations per second of wall time.
    public var operationsPerSecond: Double
    /// HTTP requests sent, retries included.
    public var requests: Int
    /// Requests that were sent again (429, 503, 504, broken connections).
    public var retries: Int
    /// Latency of the requests, `nil` when the phase sent none.
    public var latencyMs: LatencySummary?
    /// Answers that were not 2xx, by HTTP status (`"429"`), and failures without an answer
    /// (`"timeout"`, `"network"`).
    public var errors: [String: Int]
}

/// Collects one phase's requests and operations while it runs; safe to use from many tasks.
public final class PhaseRecorder: @unchecked Sendable {
    public let name: String
    private let started = ContinuousClock.now
    private let lock = NSLock()
    private var latencies: [Double] = []
    private var errors: [String: Int] = [:]
    private var requests = 0
    private var retries = 0
    private var operations = 0
    private var failures = 0

    public init(_ name: String) { self.name = name }

    /// One HTTP request: its latency in seconds and its status, or the failure without an answer.
    public func request(seconds: Double, status: Int?, failure: String? = nil, willRetry: Bool) {
        lock.withLock {
            requests += 1
            if willRetry { retries += 1 }
            if let status {
                latencies.append(seconds)
                if !(200..<300).contains(status) { errors[String(status), default: 0] += 1 }
            } else {
                errors[failure ?? "network", default: 0] += 1
            }
        }
    }

    /// `count` operations succeeded.
    public func succeeded(_ count: Int = 1) { lock.withLock { operations += count } }

    /// `count` operations failed for good.
    public func failed(_ count: Int = 1) { lock.withLock { failures += count } }

    /// Operations that failed so far.
    public var failedCount: Int { lock.withLock { failures } }

    /// The figures as they stand now (call when the phase is over).
    public func report() -> PhaseReport {
        let elapsed = (ContinuousClock.now - started).inSeconds
        return lock.withLock {
            PhaseReport(
                name: name, seconds: (elapsed * 1000).rounded() / 1000, operations: operations, failed: failures,
                operationsPerSecond: elapsed > 0 ? (Double(operations) / elapsed * 100).rounded() / 100 : 0,
                requests: requests, retries: retries, latencyMs: LatencySummary(seconds: latencies), errors: errors)
        }
    }
}
