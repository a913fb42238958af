import AtriumStore
import Foundation
import Synchronization

/// Activity seen by the proxy, kept in memory and written to the store in batches: one
/// transaction per flush, not one write per request.
public final class ActivityRecorder: Sendable {
    private struct Key: Hashable {
        var user: String
        var server: String
    }

    private let pending = Mutex<[Key: (userID: Int64, at: Date)]>([:])

    public init() {}

    /// Notes activity on a server now. Cheap: one lock, one dictionary write.
    public func touch(user: String, userID: Int64, server: String, at date: Date = Date()) {
        pending.withLock { $0[Key(user: user, server: server)] = (userID, date) }
    }

    /// Writes what was seen since the last flush. Returns how many servers it updated.
    @discardableResult
    public func flush(to store: Store) async throws -> Int {
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
