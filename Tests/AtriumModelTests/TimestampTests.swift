import Testing
import Foundation
@testable import AtriumModel

/// ISO-8601 timestamps as JupyterHub writes them (UTC, microseconds, `Z`) and as clients send
/// them (with or without a fraction, `Z`, an offset, or naive = UTC).
@Suite("Timestamps")
struct TimestampTests {
    /// 2026-11-25T22:00:00Z.
    static let reference = Date(timeIntervalSince1970: 1_795_644_000)

    @Test("format writes UTC with microseconds and a Z")
    func formatWritesUTCMicroseconds() {
        #expect(Timestamp.format(Self.reference) == "2026-11-25T22:00:00.000000Z")
        #expect(Timestamp.format(Self.reference.addingTimeInterval(0.123456)) == "2026-11-25T22:00:00.123456Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000000Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 1_800_000_000)) == "2027-01-15T08:00:00.000000Z")
    }

    @Test("format rounds to the nearest microsecond")
    func formatRounds() {
        // Near 1970 a Double resolves well below a microsecond.
        #expect(Timestamp.format(Date(timeIntervalSince1970: 0.9999996)) == "1970-01-01T00:00:01.000000Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 0.0000004)) == "1970-01-01T00:00:00.000000Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 0.0000006)) == "1970-01-01T00:00:00.000001Z")
    }

    @Test("format handles dates before 1970")
    func formatBeforeEpoch() {
        #expect(Timestamp.format(Date(timeIntervalSince1970: -0.5)) == "1969-12-31T23:59:59.500000Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: -86_400)) == "1969-12-31T00:00:00.000000Z")
    }

    @Test("format does not depend on the process time zone")
    func formatIgnoresLocalZone() {
        let text = Timestamp.format(Self.reference)
        #expect(text.hasSuffix("Z"))
        #expect(text.utf8.count == 27)
        #expect(text.contains("T22:00:00"))
    }

    /// Accepted spellings, each with the instant it names (seconds since 1970).
    static let parsable: [(String, Double)] = [
        ("2026-11-25T22:00:00Z", 1_795_644_000),
        ("2026-11-25T22:00:00z", 1_795_644_000),
        ("2026-11-25T22:00:00.000000Z", 1_795_644_000),
        ("2026-11-25T22:00:00.5Z", 1_795_644_000.5),
        ("2026-11-25T22:00:00.123456Z", 1_795_644_000.123456),
        ("2026-11-25T22:00:00", 1_795_644_000),
        ("2026-11-25T22:00:00.25", 1_795_644_000.25),
        ("2026-11-25 22:00:00", 1_795_644_000),
        ("2026-11-26T00:00:00+02:00", 1_795_644_000),
        ("2026-11-26T00:00:00.5+02:00", 1_795_644_000.5),
        ("2026-11-26T00:00:00+0200", 1_795_644_000),
        ("2026-11-26T00:00:00+02", 1_795_644_000),
        ("2026-11-25T17:00:00-05:00", 1_795_644_000),
        ("2026-11-25T22:00:00+00:00", 1_795_644_000),
        ("2026-11-25T22:00:00-00:00", 1_795_644_000),
        ("2026-11-25T23:30:00+01:30", 1_795_644_000),
        ("  2026-11-25T22:00:00Z  ", 1_795_644_000),
        ("1970-01-01T00:00:00Z", 0),
    ]

    @Test("parse accepts ISO-8601 with or without fraction, Z, offsets and naive UTC", arguments: parsable)
    func parses(_ text: String, _ expected: Double) throws {
        let date = try #require(Timestamp.parse(text))
        #expect(abs(date.timeIntervalSince1970 - expected) < 1e-6, "\(text) parsed to \(date.timeIntervalSince1970)")
    }

    static let garbage = [
        "", "not a date", "2026-11-25", "2026-11-25T22:00", "2026/11/25T22:00:00Z",
        "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-11-32T00:00:00Z", "2026-11-25T24:00:00Z",
        "2026-11-25T22:60:00Z", "2026-11-25T22:00:00.Z", "2026-11-25T22:00:00ZZ", "2026-11-25T22:00:00 UTC",
        "2026-11-25T22:00:00+2:00", "2026-11-25T22:00:00+", "2026-11-25X22:00:00Z", "２０２６-11-25T22:00:00Z",
        "2026-11-25T22:00:00.123abc",
    ]

    @Test("parse returns nil for garbage", arguments: garbage)
    func refusesGarbage(_ text: String) {
        #expect(Timestamp.parse(text) == nil)
    }

    @Test("parse refuses days that do not exist in the month")
    func refusesImpossibleDays() {
        #expect(Timestamp.parse("2026-02-31T00:00:00Z") == nil)
        #expect(Timestamp.parse("2026-04-31T00:00:00Z") == nil)
        #expect(Timestamp.parse("2024-02-29T00:00:00Z") != nil)
    }

    static let instants: [Double] = [0, 1_795_644_000, 1_795_644_000.123456, 1_800_000_000.5, 4_102_444_800.000001, -1.25]

    @Test("format then parse gives the same instant to the microsecond", arguments: instants)
    func roundTripsDates(_ seconds: Double) throws {
        let date = Date(timeIntervalSince1970: seconds)
        let parsed = try #require(Timestamp.parse(Timestamp.format(date)))
        #expect(abs(parsed.timeIntervalSince1970 - seconds) < 1e-6)
        #expect(Timestamp.format(parsed) == Timestamp.format(date))
    }

    @Test("parse then format normalises to UTC with microseconds")
    func roundTripsText() throws {
        let parsed = try #require(Timestamp.parse("2026-11-26T00:00:00.5+02:00"))
        #expect(Timestamp.format(parsed) == "2026-11-25T22:00:00.500000Z")
        let naive = try #require(Timestamp.parse("2026-11-25T22:00:00.123456"))
        #expect(Timestamp.format(naive) == "2026-11-25T22:00:00.123456Z")
    }

    static let relativeCases: [(Double, String)] = [
        (-30, "just now"), (10, "just now"), (60, "1 minute ago"), (180, "3 minutes ago"), (3600, "1 hour ago"),
        (18_000, "5 hours ago"), (86_400, "yesterday"), (1_036_800, "12 days ago"), (7_776_000, "3 months ago"),
        (94_672_800, "3 years ago"),
    ]

    @Test("relative times read as a person says them", arguments: relativeCases)
    func relative(secondsAgo: Double, expected: String) {
        let now = Date(timeIntervalSince1970: 2_000_000_000)
        #expect(Timestamp.relative(now.addingTimeInterval(-secondsAgo), now: now) == expected)
    }
}
