import Foundation

/// How many starts run at once when the limit adapts to the machine (`concurrent_spawn_limit:
/// auto`). Pure, so it is tested without a clock.
///
/// A start that competes with others for the machine's cores takes longer to become ready than
/// the same start alone; starting more at once then only makes every one of them later (and
/// with a readiness deadline, makes all of them fail). So the limit begins at the number of
/// cores and grows by one for each start that became ready about as fast as the fastest one
/// seen (the baseline), while others wait; it shrinks by one for each start that took more than
/// twice the baseline. The hub uses it for the local backend, whose starts run on its own
/// cores; a cluster's starts cost the hub's machine nothing, and run up to the ceiling at once.
public struct SpawnAdmission: Sendable, Equatable {
    /// Starts allowed to run now.
    public private(set) var limit: Int
    /// Never fewer than this (the cores, or the ceiling when that is lower).
    public let floor: Int
    /// Never more than this (`concurrent_spawn_limit` when a number, else 100).
    public let ceiling: Int
    /// The fastest readiness seen.
    public private(set) var baseline: Double?
    /// Recent readiness, a moving average.
    public private(set) var recent: Double?

    /// Recent readiness above this multiple of the baseline means the starts compete: back off.
    public static let contended = 2.0
    /// Below this multiple there is room for one more.
    public static let uncontended = 1.5

    public init(cores: Int, ceiling: Int) {
        self.ceiling = max(1, ceiling)
        floor = max(1, min(cores, self.ceiling))
        limit = floor
    }

    /// A fixed limit, never adapted.
    public static func fixed(_ limit: Int) -> SpawnAdmission {
        SpawnAdmission(cores: limit, ceiling: limit)
    }

    /// A start failed (its server did not answer in time, or ended): half as many at once,
    /// down to the floor. A readiness deadline missed under load is contention at its worst.
    public mutating func failed() {
        limit = max(floor, limit / 2)
    }

    /// A start became ready `seconds` after its process started, with `waiting` starts queued.
    public mutating func ready(after seconds: Double, waiting: Int) {
        guard seconds.isFinite, seconds >= 0, floor < ceiling else { return }
        let s = max(seconds, 0.001)
        // The fastest start seen, never raised by slow ones: under contention every start is
        // slow, and a baseline that followed them would let the limit grow without end.
        baseline = min(baseline ?? s, s)
        recent = recent.map { $0 * 0.7 + s * 0.3 } ?? s
        guard let baseline else { return }
        if s > baseline * Self.contended {
            limit = max(floor, limit - 1)
        } else if s < baseline * Self.uncontended, waiting > 0 {
            limit = min(ceiling, limit + 1)
        }
    }
}
