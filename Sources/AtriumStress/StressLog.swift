import Foundation
import Logging

/// Log lines in the original tool's shape (`time LEVEL [hub-stress-test] message`), written to
/// standard error or to a log file.
public struct StressLogHandler: LogHandler {
    /// Where the lines go; shared by every copy of the handler.
    public final class Sink: @unchecked Sendable {
        private let handle: FileHandle
        private let lock = NSLock()

        public init(_ handle: FileHandle) { self.handle = handle }

        /// A sink writing to `path`, which is created or overwritten (as the original tool does).
        public static func file(_ path: String) throws -> Sink {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw StressError(.badArguments, "cannot write the log file \(path): check that its folder exists and is writable")
            }
            return Sink(try FileHandle(forWritingTo: URL(fileURLWithPath: path)))
        }

        func write(_ line: String) {
            lock.withLock { handle.write(Data(line.utf8)) }
        }
    }

    /// The file name `--log-to-file` uses: `/tmp/hub-stress-test-<UTC time>.log`, as the original.
    public static func defaultLogFile(now: Date = Date()) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        let stamp = formatter.string(from: now).replacingOccurrences(of: "Z", with: "")
        return "/tmp/hub-stress-test-\(stamp).log"
    }

    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let sink: Sink

    public init(sink: Sink, level: Logger.Level) {
        self.sink = sink
        logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var extra = metadata
        if let more = event.metadata { extra.merge(more) { $1 } }
        let suffix = extra.isEmpty ? "" : " " + extra.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        sink.write("\(formatter.string(from: Date())) \(event.level.rawValue.uppercased()) [hub-stress-test] \(event.message)\(suffix)\n")
    }
}
