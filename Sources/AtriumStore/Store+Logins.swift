import Foundation
import SQLKit

extension Store {
    /// The failure record for `name`, or `nil` when there were no recent failures.
    public func loginFailures(_ name: String) async throws -> LoginFailures? {
        try await sql.raw("SELECT * FROM login_failures WHERE name = \(bind: name)").first().map { row in
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
        try await transaction { db in
            var record = LoginFailures(name: name, count: 0, lastFailure: now, lockedUntil: nil)
            if let row = try await db.raw("SELECT * FROM login_failures WHERE name = \(bind: name)").first() {
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
            try await db.raw("DELETE FROM login_failures WHERE name = \(bind: name)").run()
            try await db.raw(
                "INSERT INTO login_failures (name, count, last_failure, locked_until) VALUES (\(bind: name), \(bind: record.count), \(bind: now.storedValue), \(bind: record.lockedUntil?.storedValue))"
            ).run()
            return record
        }
    }

    /// Forgets failures for `name` (after a successful login or an admin's reset).
    public func clearLoginFailures(_ name: String) async throws {
        try await sql.raw("DELETE FROM login_failures WHERE name = \(bind: name)").run()
    }
}
