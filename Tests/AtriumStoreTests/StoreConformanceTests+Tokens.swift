import AtriumModel
@testable import AtriumStore
import Foundation
import SQLKit
import Testing

/// API tokens: storage, lookup by prefix and owner, deletion, activity and expiry.
extension StoreConformanceTests {
    @Test("insertToken stores every field and lookups find it", arguments: StoreKind.engines)
    func insertAndFindTokens(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let users = try await store.makeUsers(["alice", "bob"])
            let alice = users[0]
            let token = TokenRecord(
                userID: alice.id, userName: "alice", prefix: "ab12", salt: "5a17", hash: "feedbeef",
                scopes: ["read:users!user=alice", "servers!server=alice/lab"], note: "for CI",
                created: t0, expiresAt: t0.addingTimeInterval(3600))
            let stored = try await store.insertToken(token)
            #expect(stored.id > 0)
            var expected = token
            expected.id = stored.id
            #expect(stored == expected)
            #expect(try await store.tokens(withPrefix: "ab12") == [expected])
            #expect(try await store.tokens(withPrefix: "ab13").isEmpty)
            #expect(try await store.token(id: stored.id, ofUser: "alice") == expected)

            let second = try await store.makeToken(for: alice, prefix: "ab12", scopes: [], note: nil)
            #expect(second.id != stored.id)
            #expect(try await store.tokens(ofUser: "alice").map(\.id) == [stored.id, second.id])
            #expect(try await store.tokens(withPrefix: "ab12").count == 2)
            let plain = try #require(try await store.token(id: second.id, ofUser: "alice"))
            #expect(plain.scopes == [] && plain.note == nil && plain.expiresAt == nil && plain.lastActivity == nil)
            #expect(try await store.tokens(ofUser: "bob").isEmpty)
        }
    }

    @Test("token(id:ofUser:) and deleteToken only reach the owner's tokens", arguments: StoreKind.engines)
    func tokensBelongToOwner(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let users = try await store.makeUsers(["alice", "bob"])
            let token = try await store.makeToken(for: users[0])
            #expect(try await store.token(id: token.id, ofUser: "bob") == nil)
            #expect(try await store.token(id: token.id + 1000, ofUser: "alice") == nil)
            #expect(try await !store.deleteToken(id: token.id, ofUser: "bob"))
            #expect(try await store.token(id: token.id, ofUser: "alice") != nil)
            #expect(try await store.deleteToken(id: token.id, ofUser: "alice"))
            #expect(try await store.token(id: token.id, ofUser: "alice") == nil)
            #expect(try await !store.deleteToken(id: token.id, ofUser: "alice"))
        }
    }

    @Test("recordTokenActivity keeps the latest time per token", arguments: StoreKind.engines)
    func tokenActivity(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let alice = try await store.makeUsers(["alice"])[0]
            let a = try await store.makeToken(for: alice)
            let b = try await store.makeToken(for: alice)
            try await store.recordTokenActivity([a.id: t0.addingTimeInterval(50), b.id: t0.addingTimeInterval(10)])
            try await store.recordTokenActivity([a.id: t0.addingTimeInterval(20), b.id: t0.addingTimeInterval(70)])
            try await store.recordTokenActivity([:])
            #expect(try await store.token(id: a.id, ofUser: "alice")?.lastActivity == t0.addingTimeInterval(50))
            #expect(try await store.token(id: b.id, ofUser: "alice")?.lastActivity == t0.addingTimeInterval(70))
        }
    }

    @Test("purgeExpiredTokens deletes only expired tokens", arguments: StoreKind.engines)
    func purgeExpired(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let alice = try await store.makeUsers(["alice"])[0]
            let expired = try await store.makeToken(for: alice, expiresAt: t0.addingTimeInterval(-1))
            let future = try await store.makeToken(for: alice, expiresAt: t0.addingTimeInterval(60))
            let forever = try await store.makeToken(for: alice, expiresAt: nil)
            #expect(try await store.purgeExpiredTokens(now: t0) == 1)
            #expect(try await store.tokens(ofUser: "alice").map(\.id) == [future.id, forever.id])
            #expect(try await store.token(id: expired.id, ofUser: "alice") == nil)
            #expect(try await store.purgeExpiredTokens(now: t0) == 0)
            #expect(try await store.purgeExpiredTokens(now: t0.addingTimeInterval(3600)) == 1)
            #expect(try await store.tokens(ofUser: "alice").map(\.id) == [forever.id])
        }
    }

    @Test("insertToken returns the id of the row it inserted", arguments: StoreKind.engines)
    func insertTokenReturnsOwnID(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let alice = try await store.makeUsers(["alice"])[0]
            // Another row of the same user with a higher id than the next one the engine assigns
            // (as a concurrent insert committed between INSERT and SELECT MAX(id) would have).
            try await store.sql.raw(
                """
                INSERT INTO api_tokens (id, user_id, prefix, salt, hash, scopes, created)
                VALUES (1000000, \(bind: alice.id), 'zzzz', 's', 'h', '[]', 0)
                """
            ).run()
            let token = try await store.makeToken(for: alice, prefix: "mine")
            let actual = try #require(try await store.tokens(withPrefix: "mine").first)
            // SQLite's AUTOINCREMENT goes past the highest id, so only PostgreSQL's sequence shows it.
            #expect(token.id == actual.id)
        }
    }
}
