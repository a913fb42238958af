import AtriumModel
import Foundation
import SQLKit

extension Store {
    /// Most rows one multi-row INSERT carries (keeps well under both engines' bind limits).
    static let insertChunk = 200

    /// Creates `users` in one transaction: names that already exist are skipped and reported,
    /// the rest are created together or not at all.
    public func createUsers(_ users: [NewUser], now: Date = Date()) async throws -> (created: [UserRecord], existing: [String]) {
        var seen = Set<String>()
        let unique = users.filter { seen.insert($0.name).inserted }
        do {
            return try await insertUsers(unique, now: now)
        } catch where Self.isUniqueViolation(error) {
            // A concurrent insert took a name between our check and our insert: retry once,
            // and the existing names are then reported as such.
            do { return try await insertUsers(unique, now: now) } catch where Self.isUniqueViolation(error) {
                throw StoreError(.alreadyExists, "some of these users were created concurrently; try again")
            }
        }
    }

    private func insertUsers(_ unique: [NewUser], now: Date) async throws -> (created: [UserRecord], existing: [String]) {
        try await transaction { db in
            let existing = try await Self.existingNames(unique.map(\.name), in: db)
            let fresh = unique.filter { !existing.contains($0.name) }
            for chunk in fresh.chunks(of: Self.insertChunk) {
                var query = SQLQueryString(
                    "INSERT INTO users (name, admin, created, approval, password_hash, cookie_id) VALUES ")
                query += chunk.map { user -> SQLQueryString in
                    "(\(bind: user.name), \(bind: user.admin), \(bind: now.storedValue), \(bind: user.approval.rawValue), \(bind: user.passwordHash), \(bind: UUID().uuidString))"
                }.joined(separator: ", ")
                try await db.raw(query).run()
            }
            var created: [UserRecord] = []
            for chunk in fresh.map(\.name).chunks(of: 500) {
                let rows = try await db.raw("SELECT * FROM users WHERE name IN (\(binds: chunk)) ORDER BY id").all()
                created += try rows.map(Self.userRecord)
            }
            created.sort { $0.id < $1.id }
            return (created, unique.map(\.name).filter { existing.contains($0) })
        }
    }

    /// Creates one user; throws ``StoreError/Code/alreadyExists`` if the name is taken.
    public func createUser(_ user: NewUser, now: Date = Date()) async throws -> UserRecord {
        let result = try await createUsers([user], now: now)
        guard let created = result.created.first else {
            throw StoreError(.alreadyExists, "user \(user.name) already exists")
        }
        return created
    }

    private static func existingNames(_ names: [String], in db: any SQLDatabase) async throws -> Set<String> {
        var existing = Set<String>()
        for chunk in names.chunks(of: 500) {
            let rows = try await db.raw("SELECT name FROM users WHERE name IN (\(binds: chunk))").all()
            for row in rows { existing.insert(try row.decode(column: "name", as: String.self)) }
        }
        return existing
    }

    /// The user called `name`, with groups, or `nil`.
    public func user(named name: String) async throws -> UserRecord? {
        guard let row = try await reader.raw("SELECT * FROM users WHERE name = \(bind: name)").first() else { return nil }
        var user = try Self.userRecord(row)
        user.groups = try await groupNames(forUserIDs: [user.id])[user.id] ?? []
        return user
    }

    /// Users matching `query`, one page, with their groups; and how many match in all.
    public func users(_ query: UserQuery) async throws -> (users: [UserRecord], total: Int) {
        var conditions: [SQLQueryString] = []
        if let filter = query.nameFilter, !filter.isEmpty, !filter.allSatisfy(\.isASCII) {
            // SQLite's LOWER folds ASCII letters only (and PostgreSQL's depends on the database's
            // locale), so `élodie` would miss `Élodie`: match such a filter here, with Unicode
            // case folding and either spelling of an accent, the same on both engines.
            let needle = filter.precomposedStringWithCanonicalMapping.lowercased()
            let ids = try await reader.raw("SELECT id, name FROM users").all().compactMap { row -> Int64? in
                let name = try row.decode(column: "name", as: String.self)
                return name.precomposedStringWithCanonicalMapping.lowercased().contains(needle) ? try row.decode(column: "id", as: Int64.self) : nil
            }
            if ids.isEmpty { return ([], 0) }
            conditions.append("users.id IN (\(binds: ids))")
        } else if let filter = query.nameFilter, !filter.isEmpty {
            let escaped = filter.lowercased()
                .replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "%", with: "\\%")
                .replacingOccurrences(of: "_", with: "\\_")
            conditions.append("LOWER(users.name) LIKE \(bind: "%" + escaped + "%") ESCAPE '\\'")
        }
        if let approval = query.approval { conditions.append("users.approval = \(bind: approval.rawValue)") }
        if query.adminOnly { conditions.append("users.admin = \(bind: true)") }
        if let group = query.group {
            conditions.append(
                "users.id IN (SELECT gm.user_id FROM group_members gm JOIN user_groups g ON g.id = gm.group_id WHERE g.name = \(bind: group))")
        }
        switch query.state {
        case .active?: conditions.append("users.id IN (SELECT user_id FROM servers WHERE phase IN ('pending', 'running', 'stopping'))")
        case .ready?: conditions.append("users.id IN (SELECT user_id FROM servers WHERE phase = 'running')")
        case .inactive?: conditions.append("users.id NOT IN (SELECT user_id FROM servers WHERE phase IN ('pending', 'running', 'stopping'))")
        case nil: break
        }
        if let idleBefore = query.idleBefore {
            conditions.append(
                "users.id IN (SELECT user_id FROM servers WHERE phase = 'running' AND COALESCE(last_activity, started, 0) < \(bind: idleBefore.storedValue))")
        }
        if let names = query.names {
            if names.isEmpty { return ([], 0) }
            conditions.append("users.name IN (\(binds: Array(names)))")
        }
        let whereClause: SQLQueryString = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let countRow = try await reader.raw("SELECT COUNT(*) AS n FROM users" + whereClause).first()
        let total = try countRow?.decode(column: "n", as: Int.self) ?? 0

        let direction = query.descending ? "DESC" : "ASC"
        let order: String
        switch query.sort {
        case .id: order = "users.id \(direction)"
        case .name: order = "users.name \(direction), users.id"
        // NULLs (never active) sort as the oldest activity in both engines.
        case .lastActivity: order = "COALESCE(users.last_activity, 0) \(direction), users.id"
        case .created: order = "users.created \(direction), users.id"
        }
        var select: SQLQueryString = "SELECT * FROM users" + whereClause + " ORDER BY \(unsafeRaw: order)"
        if let limit = query.limit { select += " LIMIT \(literal: max(0, limit))" }
        if query.offset > 0 {
            if query.limit == nil { select += " LIMIT \(literal: Int64.max)" }
            select += " OFFSET \(literal: query.offset)"
        }
        var users = try await reader.raw(select).all().map(Self.userRecord)
        let groups = try await groupNames(forUserIDs: users.map(\.id), all: query.limit == nil && query.offset == 0 && conditions.isEmpty)
        for i in users.indices { users[i].groups = groups[users[i].id] ?? [] }
        return (users, total)
    }

    /// How many users exist.
    public func userCount() async throws -> Int {
        try await reader.raw("SELECT COUNT(*) AS n FROM users").first()?.decode(column: "n", as: Int.self) ?? 0
    }

    /// How many users were active at or after `since` (an indexed count, cheap enough for every
    /// metrics scrape). Users never active are not counted.
    public func activeUserCount(since: Date) async throws -> Int {
        try await reader.raw("SELECT COUNT(*) AS n FROM users WHERE last_activity >= \(bind: since.storedValue)").first()?
            .decode(column: "n", as: Int.self) ?? 0
    }

    /// Renames a user; their groups, tokens and servers follow (they refer to the id).
    public func renameUser(_ name: String, to newName: String) async throws -> UserRecord {
        do {
            try await transaction { db in
                guard try await db.raw("SELECT id FROM users WHERE name = \(bind: name)").first() != nil else {
                    throw StoreError(.notFound, "no such user: \(name)")
                }
                if try await db.raw("SELECT id FROM users WHERE name = \(bind: newName)").first() != nil {
                    throw StoreError(.alreadyExists, "user \(newName) already exists, username must be unique")
                }
                try await db.raw("UPDATE users SET name = \(bind: newName) WHERE name = \(bind: name)").run()
            }
        } catch where Self.isUniqueViolation(error) {
            throw StoreError(.alreadyExists, "user \(newName) already exists, username must be unique")
        }
        guard let user = try await user(named: newName) else { throw StoreError(.notFound, "no such user: \(newName)") }
        return user
    }

    /// Sets or clears a user's admin flag.
    public func setAdmin(_ name: String, _ admin: Bool) async throws {
        try await updateUser(name, "admin = \(bind: admin)")
    }

    /// Stores a new password hash and rotates the cookie id, ending the user's browser sessions
    /// elsewhere.
    public func setPasswordHash(_ name: String, _ hash: String?) async throws {
        try await updateUser(name, "password_hash = \(bind: hash), cookie_id = \(bind: UUID().uuidString)")
    }

    /// Sets a user's approval; taking it away also ends their sessions.
    public func setApproval(_ name: String, _ approval: Approval) async throws {
        if approval == .approved {
            try await updateUser(name, "approval = \(bind: approval.rawValue)")
        } else {
            try await updateUser(name, "approval = \(bind: approval.rawValue), cookie_id = \(bind: UUID().uuidString)")
        }
    }

    /// Ends every browser session of the user.
    public func rotateCookieID(_ name: String) async throws {
        try await updateUser(name, "cookie_id = \(bind: UUID().uuidString)")
    }

    /// Records user activity at `date` unless a later one is already stored.
    public func recordUserActivity(_ name: String, at date: Date) async throws {
        try await sql.raw(
            "UPDATE users SET last_activity = \(bind: date.storedValue) WHERE name = \(bind: name) AND (last_activity IS NULL OR last_activity < \(bind: date.storedValue))"
        ).run()
    }

    /// ``recordUserActivity(_:at:)`` for many users, in one transaction.
    public func recordUserActivity(_ batch: [String: Date]) async throws {
        try await transaction { db in
            for (name, date) in batch {
                try await db.raw(
                    "UPDATE users SET last_activity = \(bind: date.storedValue) WHERE name = \(bind: name) AND (last_activity IS NULL OR last_activity < \(bind: date.storedValue))"
                ).run()
            }
        }
    }

    /// Deletes a user and, through foreign keys, their tokens, memberships and server rows.
    /// Returns false when there was no such user.
    @discardableResult
    public func deleteUser(_ name: String) async throws -> Bool {
        try await transaction { db in
            guard try await db.raw("SELECT id FROM users WHERE name = \(bind: name)").first() != nil else { return false }
            try await db.raw("DELETE FROM users WHERE name = \(bind: name)").run()
            try await db.raw("DELETE FROM login_failures WHERE name = \(bind: name)").run()
            return true
        }
    }

    private func updateUser(_ name: String, _ assignments: SQLQueryString) async throws {
        let updated = try await transaction { db in
            guard try await db.raw("SELECT id FROM users WHERE name = \(bind: name)").first() != nil else { return false }
            try await db.raw("UPDATE users SET " + assignments + " WHERE name = \(bind: name)").run()
            return true
        }
        guard updated else { throw StoreError(.notFound, "no such user: \(name)") }
    }

    /// Group names per user id. With `all`, reads every membership in one pass (cheaper than a
    /// long IN list when the page is the whole table).
    func groupNames(forUserIDs ids: [Int64], all: Bool = false) async throws -> [Int64: [String]] {
        guard !ids.isEmpty else { return [:] }
        var result: [Int64: [String]] = [:]
        let base: SQLQueryString = "SELECT gm.user_id AS uid, g.name AS gname FROM group_members gm JOIN user_groups g ON g.id = gm.group_id"
        let batches: [SQLQueryString] = all || ids.count > 2000
            ? [base]
            : ids.chunks(of: 500).map { base + " WHERE gm.user_id IN (\(binds: $0))" }
        let wanted = Set(ids)
        for query in batches {
            for row in try await reader.raw(query).all() {
                let uid = try row.decode(column: "uid", as: Int64.self)
                guard wanted.contains(uid) else { continue }
                result[uid, default: []].append(try row.decode(column: "gname", as: String.self))
            }
        }
        for key in result.keys { result[key]?.sort() }
        return result
    }

    static func userRecord(_ row: any SQLRow) throws -> UserRecord {
        UserRecord(
            id: try row.decode(column: "id", as: Int64.self),
            name: try row.decode(column: "name", as: String.self),
            admin: try row.decode(column: "admin", as: Bool.self),
            created: try row.date("created"),
            lastActivity: try row.optionalDate("last_activity"),
            approval: Approval(rawValue: try row.decode(column: "approval", as: String.self)) ?? .pending,
            passwordHash: try row.decode(column: "password_hash", as: String?.self),
            cookieID: try row.decode(column: "cookie_id", as: String.self))
    }
}

extension Array {
    /// Consecutive slices of at most `size` elements.
    func chunks(of size: Int) -> [[Element]] {
        stride(from: 0, to: count, by: size).map { Array(self[$0..<Swift.min($0 + size, count)]) }
    }
}
