import AtriumModel
import Foundation
import SQLKit

extension Store {
    /// Creates or replaces the row for `server` (by user id and name) and returns it as stored.
    @discardableResult
    public func saveServer(_ server: ServerRecord) async throws -> ServerRecord {
        try await transaction { db in
            let existing = try await db.raw(
                "SELECT id FROM servers WHERE user_id = \(bind: server.userID) AND name = \(bind: server.name)").first()
            if let existing {
                let id = try existing.decode(column: "id", as: Int64.self)
                try await db.raw(
                    """
                    UPDATE servers SET phase = \(bind: server.phase.rawValue), state = \(bind: server.state.jsonText),
                        url = \(bind: server.url), started = \(bind: server.started?.storedValue),
                        last_activity = \(bind: server.lastActivity?.storedValue), user_options = \(bind: server.userOptions.jsonText)
                    WHERE id = \(bind: id)
                    """
                ).run()
            } else {
                try await db.raw(
                    """
                    INSERT INTO servers (user_id, name, phase, state, url, started, last_activity, user_options)
                    VALUES (\(bind: server.userID), \(bind: server.name), \(bind: server.phase.rawValue), \(bind: server.state.jsonText),
                            \(bind: server.url), \(bind: server.started?.storedValue), \(bind: server.lastActivity?.storedValue),
                            \(bind: server.userOptions.jsonText))
                    """
                ).run()
            }
            let row = try await db.raw(
                "SELECT s.*, u.name AS user_name FROM servers s JOIN users u ON u.id = s.user_id WHERE s.user_id = \(bind: server.userID) AND s.name = \(bind: server.name)"
            ).first()
            return try Self.serverRecord(row!)
        }
    }

    /// Servers of the given users (all users when `nil`), keyed by user id.
    public func servers(ofUserIDs ids: [Int64]? = nil) async throws -> [Int64: [ServerRecord]] {
        let base: SQLQueryString = "SELECT s.*, u.name AS user_name FROM servers s JOIN users u ON u.id = s.user_id"
        let queries: [SQLQueryString]
        if let ids {
            if ids.isEmpty { return [:] }
            queries = ids.count > 2000 ? [base] : ids.chunks(of: 500).map { base + " WHERE s.user_id IN (\(binds: $0))" }
        } else {
            queries = [base]
        }
        let wanted = ids.map(Set.init)
        var result: [Int64: [ServerRecord]] = [:]
        for query in queries {
            for row in try await reader.raw(query + " ORDER BY s.name").all() {
                let server = try Self.serverRecord(row)
                if let wanted, !wanted.contains(server.userID) { continue }
                result[server.userID, default: []].append(server)
            }
        }
        return result
    }

    /// One server of a user by name (`""` is the default server), or `nil`.
    public func server(userID: Int64, name: String) async throws -> ServerRecord? {
        try await reader.raw(
            "SELECT s.*, u.name AS user_name FROM servers s JOIN users u ON u.id = s.user_id WHERE s.user_id = \(bind: userID) AND s.name = \(bind: name)"
        ).first().map(Self.serverRecord)
    }

    /// Sets a server's display name (`nil` clears it); creates the default server's row when
    /// it has none (it always exists in JupyterHub's model). Returns false when there is no
    /// such named server.
    @discardableResult
    public func setServerDisplayName(userID: Int64, name: String, displayName: String?) async throws -> Bool {
        try await transaction { db in
            if name.isEmpty { try await Self.ensureDefaultServer(db, userID: userID) }
            guard try await db.raw("SELECT id FROM servers WHERE user_id = \(bind: userID) AND name = \(bind: name)").first() != nil else { return false }
            try await db.raw("UPDATE servers SET display_name = \(bind: displayName) WHERE user_id = \(bind: userID) AND name = \(bind: name)").run()
            return true
        }
    }

    /// The default server's row, stopped, unless it exists.
    static func ensureDefaultServer(_ db: any SQLDatabase, userID: Int64) async throws {
        try await db.raw("INSERT INTO servers (user_id, name) VALUES (\(bind: userID), '') ON CONFLICT (user_id, name) DO NOTHING").run()
    }

    /// Renames a stopped server. Throws ``StoreError`` `.alreadyExists` when the new name is taken.
    public func renameServer(userID: Int64, from name: String, to newName: String) async throws {
        try await transaction { db in
            if try await db.raw("SELECT id FROM servers WHERE user_id = \(bind: userID) AND name = \(bind: newName)").first() != nil {
                throw StoreError(.alreadyExists, "a server called \(newName) exists already")
            }
            try await db.raw("UPDATE servers SET name = \(bind: newName) WHERE user_id = \(bind: userID) AND name = \(bind: name)").run()
        }
    }

    /// Every server not stopped: what a restarted hub reattaches to.
    public func activeServers() async throws -> [ServerRecord] {
        try await reader.raw(
            "SELECT s.*, u.name AS user_name FROM servers s JOIN users u ON u.id = s.user_id WHERE s.phase <> 'stopped' ORDER BY s.id"
        ).all().map(Self.serverRecord)
    }

    /// How many server rows are in each phase (every phase present, zero when none): one grouped
    /// count, cheap enough for every metrics scrape.
    public func serverCountsByPhase() async throws -> [ServerPhase: Int] {
        var counts = Dictionary(uniqueKeysWithValues: ServerPhase.allCases.map { ($0, 0) })
        for row in try await reader.raw("SELECT phase, COUNT(*) AS n FROM servers GROUP BY phase").all() {
            guard let phase = ServerPhase(rawValue: try row.decode(column: "phase", as: String.self)) else { continue }
            counts[phase] = try row.decode(column: "n", as: Int.self)
        }
        return counts
    }

    /// Deletes a server row. False when there was none.
    @discardableResult
    public func deleteServer(userID: Int64, name: String) async throws -> Bool {
        try await transaction { db in
            guard try await db.raw("SELECT id FROM servers WHERE user_id = \(bind: userID) AND name = \(bind: name)").first() != nil
            else { return false }
            try await db.raw("DELETE FROM servers WHERE user_id = \(bind: userID) AND name = \(bind: name)").run()
            return true
        }
    }

    /// Records activity on servers in one transaction, keeping the latest time (also on the user).
    public func recordServerActivity(_ activity: [(userID: Int64, server: String, at: Date)]) async throws {
        guard !activity.isEmpty else { return }
        try await transaction { db in
            for item in activity {
                let at = item.at.storedValue
                // The default server always exists in JupyterHub's model: activity for one never
                // started is kept (a stopped row), not dropped.
                if item.server.isEmpty { try await Self.ensureDefaultServer(db, userID: item.userID) }
                try await db.raw(
                    "UPDATE servers SET last_activity = \(bind: at) WHERE user_id = \(bind: item.userID) AND name = \(bind: item.server) AND (last_activity IS NULL OR last_activity < \(bind: at))"
                ).run()
                try await db.raw(
                    "UPDATE users SET last_activity = \(bind: at) WHERE id = \(bind: item.userID) AND (last_activity IS NULL OR last_activity < \(bind: at))"
                ).run()
            }
        }
    }

    static func serverRecord(_ row: any SQLRow) throws -> ServerRecord {
        ServerRecord(
            id: try row.decode(column: "id", as: Int64.self),
            userID: try row.decode(column: "user_id", as: Int64.self),
            userName: try row.decode(column: "user_name", as: String.self),
            name: try row.decode(column: "name", as: String.self),
            phase: ServerPhase(rawValue: try row.decode(column: "phase", as: String.self)) ?? .stopped,
            state: try row.json("state"),
            url: try row.decode(column: "url", as: String?.self),
            started: try row.optionalDate("started"),
            lastActivity: try row.optionalDate("last_activity"),
            userOptions: try row.json("user_options"),
            displayName: try row.decode(column: "display_name", as: String?.self))
    }
}
