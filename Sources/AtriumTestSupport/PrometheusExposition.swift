/// A small parser of Prometheus' text exposition format (0.0.4): `# HELP` and `# TYPE` lines,
/// and samples `name{label="value",…} value`. Throws on anything else, so a malformed line fails
/// the test that scraped it.
public struct PrometheusExposition: Sendable {
    /// One sample line.
    public struct Sample: Sendable {
        /// The sample's name (`…_bucket`, `…_sum`, `…_count` for histograms).
        public var name: String
        /// Its labels, unescaped.
        public var labels: [String: String]
        /// Its value (`+Inf` is `.infinity`).
        public var value: Double
    }

    /// A line that is not Prometheus text.
    public struct Malformed: Error, CustomStringConvertible {
        /// The offending line.
        public let line: String
        public var description: String { "not Prometheus text: \(line)" }
    }

    /// `# HELP` text by metric family.
    public var help: [String: String] = [:]
    /// `# TYPE` by metric family.
    public var types: [String: String] = [:]
    /// Every sample, in order.
    public var samples: [Sample] = []

    /// Parses `text`; throws ``Malformed`` for a line it cannot read or a sample without a TYPE.
    public init(parsing text: String) throws {
        for line in text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) {
            if line.hasPrefix("# HELP ") {
                let rest = line.dropFirst(7)
                guard let space = rest.firstIndex(of: " ") else { throw Malformed(line: line) }
                help[String(rest[..<space])] = String(rest[rest.index(after: space)...])
            } else if line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ")
                guard parts.count == 2, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[1]) else {
                    throw Malformed(line: line)
                }
                guard types[String(parts[0])] == nil else { throw Malformed(line: line + " (second TYPE)") }
                types[String(parts[0])] = String(parts[1])
            } else if line.hasPrefix("#") {
                continue
            } else {
                samples.append(try Self.sample(line))
            }
        }
        for sample in samples {
            let family = ["_bucket", "_sum", "_count"].reduce(sample.name) { name, suffix in
                name.hasSuffix(suffix) && types[String(name.dropLast(suffix.count))] == "histogram" ? String(name.dropLast(suffix.count)) : name
            }
            guard types[family] != nil else { throw Malformed(line: "\(sample.name) has no TYPE line") }
        }
    }

    private static func sample(_ line: String) throws -> Sample {
        var chars = Substring(line)
        let nameEnd = chars.firstIndex { $0 == "{" || $0 == " " } ?? chars.endIndex
        let name = String(chars[..<nameEnd])
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }) else { throw Malformed(line: line) }
        chars = chars[nameEnd...]
        var labels: [String: String] = [:]
        if chars.first == "{" {
            chars = chars.dropFirst()
            while chars.first != "}" {
                guard let equals = chars.firstIndex(of: "=") else { throw Malformed(line: line) }
                let key = String(chars[..<equals])
                chars = chars[chars.index(after: equals)...]
                guard chars.first == "\"" else { throw Malformed(line: line) }
                chars = chars.dropFirst()
                var value = ""
                while let c = chars.first, c != "\"" {
                    chars = chars.dropFirst()
                    if c == "\\", let escaped = chars.first {
                        chars = chars.dropFirst()
                        value.append(escaped == "n" ? "\n" : escaped)
                    } else {
                        value.append(c)
                    }
                }
                guard chars.first == "\"" else { throw Malformed(line: line) }
                chars = chars.dropFirst()
                labels[key] = value
                if chars.first == "," { chars = chars.dropFirst() }
                guard !chars.isEmpty else { throw Malformed(line: line) }
            }
            chars = chars.dropFirst()
        }
        guard chars.first == " " else { throw Malformed(line: line) }
        let fields = chars.dropFirst().split(separator: " ")
        guard (1...2).contains(fields.count), let value = Double(fields[0]) ?? (fields[0] == "+Inf" ? .infinity : nil) else {
            throw Malformed(line: line)
        }
        return Sample(name: name, labels: labels, value: value)
    }

    /// The samples called `name` whose labels include `labels`.
    public func matching(_ name: String, _ labels: [String: String] = [:]) -> [Sample] {
        samples.filter { sample in sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value } }
    }

    /// The value of the one sample called `name` whose labels include `labels`; `nil` when
    /// there is none or more than one.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let found = matching(name, labels)
        return found.count == 1 ? found[0].value : nil
    }
}
