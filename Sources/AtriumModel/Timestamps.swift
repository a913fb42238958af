import Foundation

/// ISO-8601 UTC timestamps as JupyterHub writes them: `2026-11-25T22:00:00.123456Z`.
public enum Timestamp {
    /// Formats `date` in UTC with microseconds and a `Z` suffix.
    public static func format(_ date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var seconds = micros / 1_000_000
        var fraction = micros % 1_000_000
        if fraction < 0 { fraction += 1_000_000; seconds -= 1 }
        var t = time_t(seconds)
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
            Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(fraction))
    }

    /// Parses an ISO-8601 timestamp with or without fractional seconds. A timestamp without a
    /// zone is taken as UTC (JupyterHub does the same); `Z` and `±hh:mm` offsets are honoured.
    public static func parse(_ text: String) -> Date? {
        let s = text.trimmingCharacters(in: .whitespaces)
        let scanner = Array(s.utf8)
        func number(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= scanner.count else { return nil }
            var v = 0
            for i in from..<(from + count) {
                let c = scanner[i]
                guard c >= 0x30, c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
        guard scanner.count >= 19,
              let year = number(0, 4), scanner[4] == 0x2D, let month = number(5, 2), scanner[7] == 0x2D,
              let day = number(8, 2), scanner[10] == 0x54 || scanner[10] == 0x20 || scanner[10] == 0x74,
              let hour = number(11, 2), scanner[13] == 0x3A, let minute = number(14, 2), scanner[16] == 0x3A,
              let second = number(17, 2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var index = 19
        var fraction = 0.0
        if index < scanner.count, scanner[index] == 0x2E {
            index += 1
            var scale = 0.1
            let start = index
            while index < scanner.count, scanner[index] >= 0x30, scanner[index] <= 0x39 {
                fraction += Double(scanner[index] - 0x30) * scale
                scale /= 10
                index += 1
            }
            if index == start { return nil }
        }
        var offsetSeconds = 0
        if index < scanner.count {
            let c = scanner[index]
            if c == 0x5A || c == 0x7A {
                index += 1
            } else if c == 0x2B || c == 0x2D {
                guard let oh = number(index + 1, 2) else { return nil }
                var om = 0
                if index + 3 < scanner.count, scanner[index + 3] == 0x3A {
                    guard let m = number(index + 4, 2) else { return nil }
                    om = m
                    index += 6
                } else if let m = number(index + 3, 2) {
                    om = m
                    index += 5
                } else {
                    index += 3
                }
                offsetSeconds = (oh * 3600 + om * 60) * (c == 0x2B ? 1 : -1)
            } else {
                return nil
            }
        }
        guard index == scanner.count else { return nil }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard day <= monthDays[month - 1] else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let epoch = timegm(&parts)
        return Date(timeIntervalSince1970: Double(epoch - offsetSeconds) + fraction)
    }
}

/// Durations as people write them: `500ms`, `90s`, `10m`, `2h`, `14d`.
public enum DurationText {
    /// The seconds `text` stands for, or nil when it is not a non-negative number with a unit.
    public static func seconds(_ text: String) -> Double? {
        let text = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            if let value = Double(number), value >= 0, value.isFinite { return value * scale }
        }
        return nil
    }
}

extension Timestamp {
    /// `date` as a person says it, relative to `now`: "just now", "3 minutes ago", "yesterday",
    /// "12 days ago"; dates in the future (clock skew) are "just now".
    public static func relative(_ date: Date, now: Date = Date()) -> String {
        let seconds = now.timeIntervalSince(date)
        if seconds < 45 { return "just now" }
        func ago(_ n: Int, _ unit: String) -> String { "\(n) \(unit)\(n == 1 ? "" : "s") ago" }
        let minutes = Int((seconds / 60).rounded())
        if minutes < 60 { return ago(max(1, minutes), "minute") }
        let hours = Int((seconds / 3600).rounded())
        if hours < 24 { return ago(hours, "hour") }
        let days = Int((seconds / 86_400).rounded())
        if days == 1 { return "yesterday" }
        if days < 60 { return ago(days, "day") }
        let months = Int((seconds / (30.44 * 86_400)).rounded())
        if months < 24 { return ago(months, "month") }
        return ago(Int((seconds / (365.25 * 86_400)).rounded()), "year")
    }
}
