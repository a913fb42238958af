import AtriumModel
import Foundation
import SQLKit

extension Store {
    /// Creates groups `names` with `members` in one transaction. Throws ``StoreError/Code/alreadyExists``
    /// (creating nothing) when any of them exists, and ``StoreError/Code/notFound`` when a member is unknown.
    public func createGroups(_ names: [String], members: [String] = [], now: Date = Date()) async throws -> [GroupRecord] {
        try await transaction { db in
            for name in names where try await db.raw("SELECT id FROM user_groups WHERE name = \(bind: name)").first() != nil {
                throw StoreError(.alreadyExists, "group \(name) already exists")
            }
            let memberIDs = try await Self.userIDs(members, in: db)
            for name in Set(names).sorted() {
                try await db.raw("INSERT INTO user_groups (name, properties, created) VALUES (\(bind: name), '{}', \(bind: now.storedValue))").run()
                let gid = try await Self.groupID(name, in: db)
                for uid in memberIDs {
                    try await db.raw("INSERT INTO group_members (group_id, user_id) VALUES (\(bind: gid), \(bind: uid))").run()
                }
            }
            return ()
        }
        var result: [GroupRecord] = []
        for name in Set(names).sorted() { if let g = try await group(named: name) { result.append(g) } }
        return result
    }

    /// The group called `name` with its members, or `nil`.
    public func group(named name: String) async throws -> GroupRecord? {
        guard let row = try await reader.raw("SELECT * FROM user_groups WHERE name = \(bind: name)").first() else { return nil }
        var group = try Self.groupRecord(row)
        group.users = try await members(ofGroupIDs: [group.id])[group.id] ?? []
        return group
    }

    /// Groups sorted by name, one page; and the total.
    public func groups(offset: Int = 0, limit: Int? = nil, names: Set<String>? = nil) async throws -> (groups: [GroupRecord], total: Int) {
        var whereClause: SQLQueryString = ""
        if let names {
            if names.isEmpty { return ([], 0) }
            whereClause = " WHERE name IN (\(binds: Array(names)))"
        }
        let total = try await reader.raw("SELECT COUNT(*) AS n FROM user_groups" + whereClause).first()?.decode(column: "n", as: Int.self) ?? 0
        var query: SQLQueryString = "SELECT * FROM user_groups" + whereClause + " ORDER BY name"
        query += " LIMIT \(literal: limit.map { Int64(max(0, $0)) } ?? Int64.max) OFFSET \(literal: max(0, offset))"
        var groups = try await reader.raw(query).all().map(Self.groupRecord)
        let members = try await members(ofGroupIDs: groups.map(\.id))
        for i in groups.indices { groups[i].users = members[groups[i].id] ?? [] }
        return (groups, total)
    }

    /// Deletes a group (memberships go with it). False when there was none.
    @discardableResult
    public func deleteGroup(_ name: String) async throws -> Bool {
        try await transaction { db in
            guard try await db.raw("SELECT id FROM user_groups WHERE name = \(bind: name)").first() != nil else { return false }
            try await db.raw("DELETE FROM user_groups WHERE name = \(bind: name)").run()
            return true
        }
    }

    /// Renames a group.
    public func renameGroup(_ name: String, to newName: String) async throws {
        try await transaction { db in
            _ = try await Self.groupID(name, in: db)
            if try await db.raw("SELECT id FROM user_groups WHERE name = \(bind: newName)").first() != nil {
                throw StoreError(.alreadyExists, "group \(newName) already exists")
            }
            try await db.raw("UPDATE user_groups SET name = \(bind: newName) WHERE name = \(bind: name)").run()
        }
    }

    /// Adds users to a group (already-members are fine). All users must exist.
    public func addMembers(_ users: [String], toGroup name: String) async throws {
        try await transaction { db in
            let gid = try await Self.groupID(name, in: db)
            let ids = try await Self.userIDs(users, in: db)
            let current = Set(try await db.raw("SELECT user_id FROM group_members WHERE group_id = \(bind: gid)").all()
                .map { try $0.decode(column: "user_id", as: Int64.self) })
            for uid in ids where !current.contains(uid) {
                try await db.raw("INSERT INTO group_members (group_id, user_id) VALUES (\(bind: gid), \(bind: uid))").run()
            }
        }
    }

    /// Removes users from a group (non-members are ignored). All users must exist.
    public func removeMembers(_ users: [String], fromGroup name: String) async throws {
        try await transaction { db in
            let gid = try await Self.groupID(name, in: db)
            let ids = try await Self.userIDs(users, in: db)
            for chunk in ids.chunks(of: 500) {
                try await db.raw("DELETE FROM group_members WHERE group_id = \(bind: gid) AND user_id IN (\(binds: chunk))").run()
            }
        }
    }

    /// Replaces a user's group memberships with exactly `groups` (which must exist).
    public func setGroups(ofUser user: String, to groups: [String]) async throws {
        try await transaction { db in
            guard let uid = try await Self.userIDs([user], in: db).first else { throw StoreError(.notFound, "no such user: \(user)") }
            var gids: [Int64] = []
            for g in Set(groups) { gids.append(try await Self.groupID(g, in: db)) }
            try await db.raw("DELETE FROM group_members WHERE user_id = \(bind: uid)").run()
            for gid in gids {
                try await db.raw("INSERT INTO group_members (group_id, user_id) VALUES (\(bind: gid), \(bind: uid))").run()
            }
        }
    }

    /// Replaces a group's properties.
    public func setGroupProperties(_ name: String, _ properties: JSONValue) async throws {
        try await transaction { db in
            _ = try await Self.groupID(name, in: db)
            try await db.raw("UPDATE user_groups SET properties = \(bind: properties.jsonText) WHERE name = \(bind: name)").run()
        }
    }

    static func groupID(_ name: String, in db: any SQLDatabase) async throws -> Int64 {
        guard let row = try await db.raw("SELECT id FROM user_groups WHERE name = \(bind: name)").first() else {
            throw StoreError(.notFound, "no such group: \(name)")
        }
        return try row.decode(column: "id", as: Int64.self)
    }

    /// Ids of `names`, throwing ``StoreError/Code/notFound`` naming the first unknown user.
    static func userIDs(_ names: [String], in db: any SQLDatabase) async throws -> [Int64] {
        var byName: [String: Int64] = [:]
        for chunk in Array(Set(names)).chunks(of: 500) {
            for row in try await db.raw("SELECT id, name FROM users WHERE name IN (\(binds: chunk))").all() {
                byName[try row.decode(column: "name", as: String.self)] = try row.decode(column: "id", as: Int64.self)
            }
        }
        if let missing = names.first(where: { byName[$0] == nil }) { throw StoreError(.notFound, "no such user: \(missing)") }
        return Array(Set(names.compactMap { byName[$0] })).sorted()
    }

    private func members(ofGroupIDs ids: [Int64]) async throws -> [Int64: [String]] {
        guard !ids.isEmpty else { return [:] }
        var result: [Int64: [String]] = [:]
        for chunk in ids.chunks(of: 500) {
            let rows = try await reader.raw(
                "SELECT gm.group_id AS gid, u.name AS uname FROM group_members gm JOIN users u ON u.id = gm.user_id WHERE gm.group_id IN (\(binds: chunk))"
            ).all()
            for row in rows {
                result[try row.decode(column: "gid", as: Int64.self), default: []].append(try row.decode(column: "uname", as: String.self))
            }
        }
        for key in result.keys { result[key]?.sort() }
        return result
    }

    static func groupRecord(_ row: any SQLRow) throws -> GroupRecord {
        GroupRecord(
            id: try row.decode(column: "id", as: Int64.self),
            name: try row.decode(column: "name", as: String.self),
            properties: try row.json("properties"),
            users: [])
    }
}
