import Foundation
import SQLKit

extension Store {
    /// The failure record for `name`, or `nil` when there were no recent failures.
    public func loginFailures(_ name: String) async throws -> LoginFailures? {
        try await reader.raw("SELECT * FROM login_failures WHERE name = \(bind: name)").first().map { row in
            LoginFailures(
                name: try row.decode(column: "name", as: String.self),
                count: try row.decode(column: "count", as: Int.self),
                lastFailure: try row.date("last_failure"),
                lockedUntil: try row.optionalDate("locked_until"))
        }
    }

    /// Counts one failed login for `name` at `now`. Failures older than `window` start the
    /// count again; reaching `limit` locks the name until `now + lockout`. Returns the new record.
    public func recordLoginFailure(_ name: String, now: Date, limit: Int, window: TimeInterval, lockout: TimeInterval) async throws -> LoginFailures {
        // Concurrent failures for one name collide on its row under PostgreSQL: retry, so each counts.
        var attempt = 0
        while true {
            do {
                let record = try await recordLoginFailureOnce(name, now: now, limit: limit, window: window, lockout: lockout)
                try await pruneLoginFailures(before: now.addingTimeInterval(-window), now: now)
                return record
            } catch where Self.isUniqueViolation(error) && attempt < 20 {
                attempt += 1
            }
        }
    }

    /// Deletes failure counts that can no longer lock anything: last failure before `cutoff`
    /// (outside the window) and no lock still running. Keeps the table the size of the
    /// current attacks, not of every name ever tried.
    public func pruneLoginFailures(before cutoff: Date, now: Date) async throws {
        try await sql.raw(
            "DELETE FROM login_failures WHERE last_failure < \(bind: cutoff.storedValue) AND (locked_until IS NULL OR locked_until <= \(bind: now.storedValue))"
        ).run()
    }

    private func recordLoginFailureOnce(_ name: String, now: Date, limit: Int, window: TimeInterval, lockout: TimeInterval) async throws -> LoginFailures {
        let lock = kind == .postgres ? " FOR UPDATE" : ""
        return try await transaction { db in
            var record = LoginFailures(name: name, count: 0, lastFailure: now, lockedUntil: nil)
            var exists = false
            if let row = try await db.raw("SELECT * FROM login_failures WHERE name = \(bind: name)" + SQLQueryString(lock)).first() {
                exists = true
                let last = try row.date("last_failure")
                let locked = try row.optionalDate("locked_until")
                let expiredLock = locked.map { $0 <= now } ?? false
                if now.timeIntervalSince(last) <= window && !expiredLock {
                    record.count = try row.decode(column: "count", as: Int.self)
                    record.lockedUntil = locked
                }
            }
            record.count += 1
            if record.count >= limit && limit > 0 && record.lockedUntil == nil {
                record.lockedUntil = now.addingTimeInterval(lockout)
            }
            // Update in place, so a concurrent failure waiting on the row lock re-reads the new count.
            if exists {
                try await db.raw(
                    "UPDATE login_failures SET count = \(bind: record.count), last_failure = \(bind: max(now, record.lastFailure).storedValue), locked_until = \(bind: record.lockedUntil?.storedValue) WHERE name = \(bind: name)"
                ).run()
            } else {
                try await db.raw(
                    "INSERT INTO login_failures (name, count, last_failure, locked_until) VALUES (\(bind: name), \(bind: record.count), \(bind: now.storedValue), \(bind: record.lockedUntil?.storedValue))"
                ).run()
            }
            return record
        }
    }

    /// Forgets failures for `name` (after a successful login or an admin's reset).
    public func clearLoginFailures(_ name: String) async throws {
        try await sql.raw("DELETE FROM login_failures WHERE name = \(bind: name)").run()
    }
}
