import Foundation

/// A one-line progress bar on standard error, drawn only when standard error is a terminal
/// (so logs, pipes and CI output stay clean). Safe to use from many tasks.
public final class ProgressBar: @unchecked Sendable {
    private let enabled: Bool
    private let lock = NSLock()
    private var phase = ""
    private var total = 0
    private var done = 0
    private var lastDrawn = -1

    /// A bar that draws when `enabled` (by default: when standard error is a terminal).
    public init(enabled: Bool = isatty(STDERR_FILENO) == 1) { self.enabled = enabled }

    /// Starts a new line for `phase` out of `total` steps.
    public func begin(_ phase: String, total: Int) {
        lock.withLock {
            self.phase = phase
            self.total = max(0, total)
            done = 0
            lastDrawn = -1
            draw()
        }
    }

    /// `count` more steps are done.
    public func advance(_ count: Int = 1) {
        lock.withLock {
            done = min(total, done + count)
            draw()
        }
    }

    /// Sets the steps done (for waits that count what is ready now).
    public func set(_ value: Int) {
        lock.withLock {
            done = min(total, max(0, value))
            draw()
        }
    }

    /// Ends the phase's line.
    public func end() {
        lock.withLock {
            guard enabled, total > 0 else { return }
            FileHandle.standardError.write(Data("\n".utf8))
        }
    }

    private func draw() {
        guard enabled, total > 0 else { return }
        let width = 30
        let filled = done * width / total
        // Redraw only when the bar or the count changes in a visible way.
        let key = done * 1000 / total
        guard key != lastDrawn else { return }
        lastDrawn = key
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let line = "\r\(phase.padding(toLength: 14, withPad: " ", startingAt: 0)) [\(bar)] \(done)/\(total)"
        FileHandle.standardError.write(Data(line.utf8))
    }
}
