/// Percentiles and summaries of latencies.
public enum Statistics {
    /// The `p`-th percentile (0…100) of `values`, linearly interpolated between the two closest
    /// ranks (numpy's default, so figures compare with Python tools); `nil` for no values.
    public static func percentile(_ values: [Double], _ p: Double) -> Double? {
        percentile(sorted: values.sorted(), p)
    }

    /// ``percentile(_:_:)`` for values already sorted ascending (saves sorting per percentile).
    public static func percentile(sorted values: [Double], _ p: Double) -> Double? {
        guard !values.isEmpty else { return nil }
        let clamped = min(100, max(0, p))
        let rank = clamped / 100 * Double(values.count - 1)
        let lower = Int(rank.rounded(.down))
        let upper = min(lower + 1, values.count - 1)
        let fraction = rank - Double(lower)
        return values[lower] + (values[upper] - values[lower]) * fraction
    }
}

/// Latency figures of one phase, in milliseconds.
public struct LatencySummary: Codable, Sendable, Equatable {
    public var p50: Double
    public var p95: Double
    public var p99: Double
    public var max: Double
    public var mean: Double

    /// The summary of `seconds` (latencies in seconds), or `nil` when there are none.
    public init?(seconds: [Double]) {
        let sorted = seconds.sorted()
        guard let p50 = Statistics.percentile(sorted: sorted, 50), let last = sorted.last else { return nil }
        func ms(_ s: Double) -> Double { (s * 1_000_000).rounded() / 1000 }
        self.p50 = ms(p50)
        self.p95 = ms(Statistics.percentile(sorted: sorted, 95) ?? 0)
        self.p99 = ms(Statistics.percentile(sorted: sorted, 99) ?? 0)
        self.max = ms(last)
        self.mean = ms(sorted.reduce(0, +) / Double(sorted.count))
    }
}
