import Foundation

/// What a run did: one JSON object with `--json`, a table otherwise.
public struct StressReport: Codable, Sendable {
    /// `stress-test`, `activity-stress-test` or `purge`.
    public var command: String
    /// The hub API URL.
    public var endpoint: String
    public var dryRun: Bool
    /// Whether every step succeeded (the exit status is 0 exactly when this is true).
    public var success: Bool
    /// Users the run worked on (created, or found by `purge`).
    public var users: Int
    /// Wall time of the whole run in seconds.
    public var seconds: Double
    /// The phases in the order they ran.
    public var phases: [PhaseReport]
    /// What went wrong, one line each.
    public var problems: [String]
    /// With `--dry-run`: what the run would have done.
    public var plan: [String]

    public init(command: String, endpoint: String, dryRun: Bool) {
        self.command = command
        self.endpoint = endpoint
        self.dryRun = dryRun
        success = true
        users = 0
        seconds = 0
        phases = []
        problems = []
        plan = []
    }

    /// The report as one line of JSON (snake_case keys, sorted).
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// The report as a table for people.
    public func table() -> String {
        var lines: [String] = []
        let verdict = dryRun ? "dry run, nothing changed" : (success ? "succeeded" : "FAILED")
        lines.append("\(command) against \(endpoint): \(verdict), \(users) users, \(Self.number(seconds)) s")
        for step in plan { lines.append("  would: \(step)") }
        if !phases.isEmpty {
            let header = ["phase", "wall s", "ops", "failed", "ops/s", "requests", "retries", "p50 ms", "p95 ms", "p99 ms", "errors"]
            var rows = [header]
            for p in phases {
                let errors = p.errors.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " ")
                rows.append([
                    p.name, Self.number(p.seconds), "\(p.operations)", "\(p.failed)", Self.number(p.operationsPerSecond),
                    "\(p.requests)", "\(p.retries)", p.latencyMs.map { Self.number($0.p50) } ?? "-",
                    p.latencyMs.map { Self.number($0.p95) } ?? "-", p.latencyMs.map { Self.number($0.p99) } ?? "-",
                    errors.isEmpty ? "-" : errors,
                ])
            }
            let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
            for (index, row) in rows.enumerated() {
                let cells = row.enumerated().map { column, cell in
                    let pad = String(repeating: " ", count: widths[column] - cell.count)
                    return column == 0 || column == row.count - 1 ? cell + pad : pad + cell
                }
                lines.append(cells.joined(separator: "  ").trimmingCharacters(in: .whitespaces))
                if index == 0 { lines.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
            }
        }
        for problem in problems { lines.append("problem: \(problem)") }
        return lines.joined(separator: "\n") + "\n"
    }

    static func number(_ value: Double) -> String {
        value >= 100 ? String(format: "%.0f", value) : String(format: "%.2f", value)
    }
}
