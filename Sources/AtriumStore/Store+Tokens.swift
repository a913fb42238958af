import AtriumModel
import Foundation
import SQLKit

extension Store {
    /// Stores a token (its hash, never the secret) and returns it with its id.
    public func insertToken(_ token: TokenRecord) async throws -> TokenRecord {
        let scopes = JSONValue.array(token.scopes.map(JSONValue.string)).jsonText
        // RETURNING (SQLite ≥ 3.35, PostgreSQL) gives this row's id, whatever else is inserted concurrently.
        let row = try await sql.raw(
            """
            INSERT INTO api_tokens (user_id, prefix, salt, hash, scopes, note, created, expires_at)
            VALUES (\(bind: token.userID), \(bind: token.prefix), \(bind: token.salt), \(bind: token.hash), \(bind: scopes),
                    \(bind: token.note), \(bind: token.created.storedValue), \(bind: token.expiresAt?.storedValue))
            RETURNING id
            """
        ).first()
        guard let id = try row?.decode(column: "id", as: Int64.self) else { throw StoreError(.notFound, "token insert returned no id") }
        var stored = token
        stored.id = id
        return stored
    }

    /// Tokens whose secret starts with `prefix` (usually one).
    public func tokens(withPrefix prefix: String) async throws -> [TokenRecord] {
        try await reader.raw(
            "SELECT t.*, u.name AS user_name FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.prefix = \(bind: prefix)"
        ).all().map(Self.tokenRecord)
    }

    /// A user's tokens, oldest first.
    public func tokens(ofUser name: String) async throws -> [TokenRecord] {
        try await reader.raw(
            "SELECT t.*, u.name AS user_name FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE u.name = \(bind: name) ORDER BY t.id"
        ).all().map(Self.tokenRecord)
    }

    /// One of a user's tokens by id, or `nil`.
    public func token(id: Int64, ofUser name: String) async throws -> TokenRecord? {
        try await reader.raw(
            "SELECT t.*, u.name AS user_name FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = \(bind: id) AND u.name = \(bind: name)"
        ).first().map(Self.tokenRecord)
    }

    /// Deletes one of a user's tokens. False when there was none.
    @discardableResult
    public func deleteToken(id: Int64, ofUser name: String) async throws -> Bool {
        try await transaction { db in
            guard try await db.raw(
                "SELECT t.id FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = \(bind: id) AND u.name = \(bind: name)"
            ).first() != nil else { return false }
            try await db.raw("DELETE FROM api_tokens WHERE id = \(bind: id)").run()
            return true
        }
    }

    /// Records token use, at most once per call; callers batch (see the auth module).
    public func recordTokenActivity(_ activity: [Int64: Date]) async throws {
        guard !activity.isEmpty else { return }
        try await transaction { db in
            for (id, date) in activity {
                try await db.raw(
                    "UPDATE api_tokens SET last_activity = \(bind: date.storedValue) WHERE id = \(bind: id) AND (last_activity IS NULL OR last_activity < \(bind: date.storedValue))"
                ).run()
            }
        }
    }

    /// Deletes expired tokens; returns how many.
    @discardableResult
    public func purgeExpiredTokens(now: Date = Date()) async throws -> Int {
        try await transaction { db in
            let n = try await db.raw("SELECT COUNT(*) AS n FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at < \(bind: now.storedValue)")
                .first()?.decode(column: "n", as: Int.self) ?? 0
            try await db.raw("DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at < \(bind: now.storedValue)").run()
            return n
        }
    }

    static func tokenRecord(_ row: any SQLRow) throws -> TokenRecord {
        let scopes: [String]
        if case .array(let items)? = JSONValue(jsonText: try row.decode(column: "scopes", as: String.self)) {
            scopes = items.compactMap { if case .string(let s) = $0 { s } else { nil } }
        } else {
            scopes = []
        }
        return TokenRecord(
            id: try row.decode(column: "id", as: Int64.self),
            userID: try row.decode(column: "user_id", as: Int64.self),
            userName: try row.decode(column: "user_name", as: String.self),
            prefix: try row.decode(column: "prefix", as: String.self),
            salt: try row.decode(column: "salt", as: String.self),
            hash: try row.decode(column: "hash", as: String.self),
            scopes: scopes,
            note: try row.decode(column: "note", as: String?.self),
            created: try row.date("created"),
            expiresAt: try row.optionalDate("expires_at"),
            lastActivity: try row.optionalDate("last_activity"))
    }
}
