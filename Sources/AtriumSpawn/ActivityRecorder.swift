import AtriumStore
import Foundation
import Synchronization

/// Activity kept in memory and written to the store in batches: one transaction per flush, not
/// one write per request. Two kinds: servers' activity seen by the proxy, and users' use of the
/// hub (a token or a session) newer than what the store has — the store is written at most once
/// a minute per user, and this keeps the uses between, so that whoever reads `last_activity`
/// after ``flushUsers(to:)`` (the users API, the culler) sees the latest use.
public final class ActivityRecorder: Sendable {
    private struct Key: Hashable {
        var user: String
        var server: String
    }

    private let pending = Mutex<[Key: (userID: Int64, at: Date)]>([:])
    private let users = Mutex<[String: Date]>([:])

    /// Notes that `user` used the hub at `date`. Cheap: one lock, one dictionary write.
    public func touchUser(_ user: String, at date: Date = Date()) {
        users.withLock { pending in
            if let known = pending[user], known >= date { return }
            pending[user] = date
        }
    }

    /// Writes the users' uses noted since the last flush (never moving a user's
    /// `last_activity` back). Returns how many users it updated.
    @discardableResult
    public func flushUsers(to store: Store) async throws -> Int {
        let batch = users.withLock { current -> [String: Date] in
            let taken = current
            current = [:]
            return taken
        }
        guard !batch.isEmpty else { return 0 }
        do {
            try await store.recordUserActivity(batch)
        } catch {
            users.withLock { current in
                for (user, date) in batch where (current[user] ?? .distantPast) < date { current[user] = date }
            }
            throw error
        }
        return batch.count
    }

    public init() {}

    /// Notes activity on a server now. Cheap: one lock, one dictionary write.
    public func touch(user: String, userID: Int64, server: String, at date: Date = Date()) {
        pending.withLock { $0[Key(user: user, server: server)] = (userID, date) }
    }

    /// Writes what was seen since the last flush, servers' activity and users' uses. Returns
    /// how many servers it updated.
    @discardableResult
    public func flush(to store: Store) async throws -> Int {
        try await flushUsers(to: store)
        let batch = pending.withLock { current -> [Key: (userID: Int64, at: Date)] in
            let taken = current
            current = [:]
            return taken
        }
        guard !batch.isEmpty else { return 0 }
        do {
            try await store.recordServerActivity(batch.map { (userID: $0.value.userID, server: $0.key.server, at: $0.value.at) })
        } catch {
            // Keep what failed for the next flush, unless newer activity replaced it.
            pending.withLock { current in
                for (key, value) in batch where current[key] == nil { current[key] = value }
            }
            throw error
        }
        return batch.count
    }
}
