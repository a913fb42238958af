import Foundation

/// Writes whole lines straight to stdout or stderr with `write(2)`, so nothing sits in a stdio
/// buffer when the hub reads the "listening" line or when the process exits.
///
/// The program logs only start, stop and errors: a line per request would dominate the cost of
/// the benchmark this server is the baseline of.
struct Console: Sendable {
    /// A line for the hub to read (start, stop).
    func info(_ line: String) { Self.write(line, to: 1) }

    /// A line about something that went wrong.
    func error(_ line: String) { Self.write(line, to: 2) }

    private static func write(_ line: String, to fd: Int32) {
        var text = line
        text.append("\n")
        text.withUTF8 { bytes in
            guard var base = bytes.baseAddress else { return }
            var left = bytes.count
            while left > 0 {
                let n = Foundation.write(fd, base, left)
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                base += n
                left -= n
            }
        }
    }
}
