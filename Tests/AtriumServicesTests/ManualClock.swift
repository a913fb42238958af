import Foundation
import Synchronization

/// A clock that moves only when a test says so, with a wall date that moves with it: the
/// culler sleeps on the clock and compares activity with the date.
final class ManualClock: Clock, Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private struct Sleeper {
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct Inner {
        var origin: Date
        var now = Instant(offset: .zero)
        var sleepers: [UUID: Sleeper] = [:]
        var sleeperWaiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let inner: Mutex<Inner>

    init(origin: Date = Date()) {
        inner = Mutex(Inner(origin: origin))
    }

    /// Makes `date` the wall time at offset zero (before the clock has moved).
    func rebase(to date: Date = Date()) {
        inner.withLock { $0.origin = date }
    }

    var now: Instant { inner.withLock { $0.now } }
    var minimumResolution: Duration { .zero }

    /// The wall time now: `origin` plus how far the clock has moved.
    var date: Date {
        let (origin, offset) = inner.withLock { ($0.origin, $0.now.offset.components) }
        return origin.addingTimeInterval(Double(offset.seconds) + Double(offset.attoseconds) / 1e18)
    }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        let id = UUID()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let resumeNow = inner.withLock { state -> Bool in
                    if deadline <= state.now || Task.isCancelled { return true }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    let count = state.sleepers.count
                    let ready = state.sleeperWaiters.filter { $0.count <= count }
                    state.sleeperWaiters.removeAll { $0.count <= count }
                    for waiter in ready { waiter.continuation.resume() }
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let sleeper = inner.withLock { $0.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
        try Task.checkCancellation()
    }

    /// Moves the clock (and the date) forward and wakes every sleeper whose deadline passed.
    func advance(by duration: Duration) {
        let due = inner.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.now = state.now.advanced(by: duration)
            let now = state.now
            let ids = state.sleepers.filter { $0.value.deadline <= now }.map(\.key)
            return ids.compactMap { state.sleepers.removeValue(forKey: $0)?.continuation }
        }
        for continuation in due { continuation.resume() }
    }

    /// Returns once `count` tasks sleep on the clock (an event, not a polling loop).
    func waitForSleepers(_ count: Int = 1) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = inner.withLock { state -> Bool in
                if state.sleepers.count >= count { return true }
                state.sleeperWaiters.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }
}
