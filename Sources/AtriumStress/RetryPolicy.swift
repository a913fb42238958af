import Foundation

/// When and how long to wait before sending a request again.
///
/// The hub answers 429 when its spawn queue is full (with `Retry-After`), a proxy in front of it
/// answers 503 while the hub restarts and 504 when the hub is slow; the request is sent again,
/// a bounded number of times, after `Retry-After` when the answer has one and otherwise after an
/// exponential backoff (base, 2×base, 4×base, … up to `maxDelay`).
public struct RetryPolicy: Sendable, Equatable {
    /// Retries after the first attempt (so at most `maxRetries + 1` requests).
    public var maxRetries: Int
    /// The wait before the first retry when the answer has no `Retry-After`.
    public var baseDelay: Duration
    /// No wait is longer than this, whatever `Retry-After` says.
    public var maxDelay: Duration

    /// HTTP statuses that are retried.
    public static let retriedStatuses: Set<Int> = [429, 503, 504]

    /// `maxDelay` defaults to 60 s: JupyterHub's `Retry-After` is a random 30–60 s, and
    /// honouring it as given is what spreads the retries of a throttled batch.
    public init(maxRetries: Int = 10, baseDelay: Duration = .milliseconds(500), maxDelay: Duration = .seconds(60)) {
        self.maxRetries = maxRetries
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// Whether an answer with `status` to attempt number `attempt` (0 for the first) is sent again.
    public func shouldRetry(status: Int, attempt: Int) -> Bool {
        Self.retriedStatuses.contains(status) && attempt < maxRetries
    }

    /// The wait before retrying attempt number `attempt` (0 for the first).
    ///
    /// - Parameters:
    ///   - retryAfter: what the answer's `Retry-After` asked for, if anything.
    ///   - jitter: a number in 0..<1 that spreads a batch of refused requests so they do not come
    ///     back all at the same moment (tests pass 0): it lengthens the wait by up to 20%, and a
    ///     wait at the cap is spread over its last 20% instead (every capped wait being equal
    ///     brought a throttled batch back in lock-step waves).
    public func delay(attempt: Int, retryAfter: Duration? = nil, jitter: Double = 0) -> Duration {
        let base: Duration
        if let retryAfter {
            base = retryAfter
        } else {
            let factor = pow(2.0, Double(min(max(0, attempt), 30)))
            base = baseDelay * factor
        }
        let spread = min(max(jitter, 0), 1)
        if base >= maxDelay { return maxDelay * (1 - 0.2 * spread) }
        return min(base * (1 + 0.2 * spread), maxDelay)
    }

    /// The wait a `Retry-After` header value asks for: delta-seconds (`120`) or an HTTP date
    /// (`Wed, 21 Oct 2015 07:28:00 GMT`, measured from `now`); `nil` when it is neither.
    public static func parseRetryAfter(_ value: String?, now: Date = Date()) -> Duration? {
        guard let raw = value?.trimmingCharacters(in: .whitespaces), !raw.isEmpty else { return nil }
        if let seconds = Int(raw) { return seconds >= 0 ? .seconds(seconds) : nil }
        if let seconds = Double(raw), seconds.isFinite, seconds >= 0 { return .milliseconds(Int64(seconds * 1000)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: raw) else { return nil }
        let seconds = max(0, date.timeIntervalSince(now))
        return .milliseconds(Int64(seconds * 1000))
    }
}

extension Duration {
    /// The duration in seconds as a `Double`.
    var inSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
