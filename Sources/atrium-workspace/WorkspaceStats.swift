import Foundation
import NIOCore

/// Request counters, kept per event loop so the hot path neither locks nor uses atomics.
///
/// Each connection updates only the counters of its own event loop; readers (`/api/status`, the
/// activity reporter) hop to every loop and add the snapshots up, which is rare and cheap.
final class WorkspaceStats: Sendable {
    /// One loop's counters. Only touched on that loop (enforced by `NIOLoopBoundBox` in debug).
    struct Counters: Sendable {
        /// Open connections on this loop.
        var connections = 0
        /// Requests received on this loop (all of them, including ones that got 403 or 404).
        var requests = 0
        /// Wall-clock time of the last request that counts as activity, seconds since 1970; 0 = none.
        var lastActivity: Double = 0
    }

    /// The sum over all loops.
    struct Snapshot: Sendable {
        var connections: Int
        var requests: Int
        /// nil when nothing has counted as activity yet.
        var lastActivity: Date?
    }

    /// When the server started, reported as `started` (and as `last_activity` before any request).
    let started: Date
    private let boxes: [NIOLoopBoundBox<Counters>]

    init(group: any EventLoopGroup, started: Date) {
        self.started = started
        self.boxes = group.makeIterator().map { NIOLoopBoundBox.makeBoxSendingValue(Counters(), eventLoop: $0) }
    }

    /// The counters of `loop`. Called once per connection, not per request.
    func counters(for loop: any EventLoop) -> NIOLoopBoundBox<Counters> {
        for box in boxes where box.eventLoop === loop { return box }
        preconditionFailure("event loop \(loop) is not part of the server's group")
    }

    /// Adds up every loop's counters; the future completes on `loop`.
    func snapshot(on loop: any EventLoop) -> EventLoopFuture<Snapshot> {
        let parts = boxes.map { box in box.eventLoop.submit { box.value } }
        return EventLoopFuture.whenAllSucceed(parts, on: loop).map { all in
            var total = Snapshot(connections: 0, requests: 0, lastActivity: nil)
            var last = 0.0
            for c in all {
                total.connections += c.connections
                total.requests += c.requests
                last = max(last, c.lastActivity)
            }
            total.lastActivity = last > 0 ? Date(timeIntervalSince1970: last) : nil
            return total
        }
    }
}

/// Wall-clock seconds since 1970, via `clock_gettime` (no allocation, vDSO on Linux).
@inline(__always)
func wallClockSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1_000_000_000
}
