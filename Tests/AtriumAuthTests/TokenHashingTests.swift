@testable import AtriumAuth
import AtriumStore
import Foundation
import Logging
import Testing

/// API token secrets, salted hashes, constant-time comparison, and lookup through the store.
@Suite("Token hashing")
struct TokenHashingTests {
    static let hexDigits = Set("0123456789abcdef")

    @Test("a secret is 80 lower-case hex characters and never repeats")
    func newSecret() {
        let secrets = (0..<50).map { _ in TokenHashing.newSecret() }
        for secret in secrets {
            #expect(secret.count == 80)
            #expect(secret.allSatisfy(Self.hexDigits.contains))
        }
        #expect(Set(secrets).count == secrets.count)
        #expect(Set(secrets.map { $0.prefix(TokenHashing.prefixLength) }).count > 1)
    }

    @Test("a salt is 16 hex characters")
    func newSalt() {
        let salt = TokenHashing.newSalt()
        #expect(salt.count == 16)
        #expect(salt.allSatisfy(Self.hexDigits.contains))
        #expect(TokenHashing.newSalt() != salt)
    }

    @Test("the hash is SHA-256 of salt and secret, deterministic, and depends on both")
    func hashIsDeterministic() {
        let h = TokenHashing.hash("secret", salt: "salt")
        #expect(h == TokenHashing.hash("secret", salt: "salt"))
        #expect(h.count == 64 && h.allSatisfy(Self.hexDigits.contains))
        // SHA-256("saltsecret")
        #expect(h == "bede90386d450cea8b77b822f8887065e4e5abf132c2f9dccfcc7fbd4cba5e35")
        #expect(TokenHashing.hash("secret", salt: "other") != h)
        #expect(TokenHashing.hash("secreT", salt: "salt") != h)
        #expect(TokenHashing.hash("", salt: "") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test("constantTimeEqual compares whole strings", arguments: [
        ("abc", "abc", true), ("abc", "abd", false), ("abc", "ab", false), ("ab", "abc", false),
        ("", "", true), ("", "a", false), ("é", "e\u{301}", false), ("token", "token", true),
    ])
    func constantTimeEqual(_ a: String, _ b: String, _ equal: Bool) {
        #expect(TokenHashing.constantTimeEqual(a, b) == equal)
    }

    @Test("lookup finds the token for its secret, not one sharing the prefix")
    func lookupInStore() async throws {
        let store = try await Store.open(":memory:", logger: Logger(label: "atrium.auth-tests"))
        do {
            try await store.migrate()
            let alice = try await store.createUser(NewUser(name: "alice"))
            let secret = TokenHashing.newSecret()
            let prefix = String(secret.prefix(TokenHashing.prefixLength))
            var sibling = prefix + String(TokenHashing.newSecret().dropFirst(TokenHashing.prefixLength))
            if sibling == secret { sibling = prefix + String(repeating: "0", count: 76) }

            func save(_ secret: String, note: String) async throws -> TokenRecord {
                let salt = TokenHashing.newSalt()
                return try await store.insertToken(TokenRecord(
                    userID: alice.id, userName: "alice", prefix: String(secret.prefix(TokenHashing.prefixLength)),
                    salt: salt, hash: TokenHashing.hash(secret, salt: salt), scopes: ["inherit"], note: note,
                    created: Date(), expiresAt: nil))
            }
            let first = try await save(secret, note: "first")
            let second = try await save(sibling, note: "second")
            #expect(first.prefix == second.prefix)

            #expect(try await TokenHashing.lookup(secret, in: store)?.note == "first")
            #expect(try await TokenHashing.lookup(sibling, in: store)?.note == "second")
            let wrong = prefix + String(repeating: "f", count: 76)
            #expect(try await TokenHashing.lookup(wrong, in: store) == nil)
            #expect(try await TokenHashing.lookup(String(secret.dropLast()), in: store) == nil)
            #expect(try await TokenHashing.lookup("abc", in: store) == nil, "shorter than the prefix")
            #expect(try await TokenHashing.lookup(secret + String(repeating: "a", count: 200), in: store) == nil, "too long")
            #expect(try await TokenHashing.lookup("", in: store) == nil)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    @Test("issue stores a token whose secret looks itself up, with the expiry given")
    func issueToken() async throws {
        let store = try await Store.open(":memory:", logger: Logger(label: "atrium.auth-tests"))
        do {
            try await store.migrate()
            let alice = try await store.createUser(NewUser(name: "alice"))
            let now = Date(timeIntervalSince1970: 1_800_000_000)
            let (secret, record) = try await TokenHashing.issue(
                for: alice, scopes: ["read:users!user=alice"], note: "cli", expiresIn: 3600, store: store, now: now)
            #expect(secret.count == 80)
            #expect(record.prefix == String(secret.prefix(TokenHashing.prefixLength)))
            #expect(record.hash == TokenHashing.hash(secret, salt: record.salt))
            #expect(!record.hash.contains(secret) && record.salt != secret)
            #expect(record.expiresAt == now.addingTimeInterval(3600))
            #expect(try await TokenHashing.lookup(secret, in: store) == record)
            let (_, forever) = try await TokenHashing.issue(for: alice, scopes: [], note: nil, expiresIn: nil, store: store)
            #expect(forever.expiresAt == nil)
            #expect(forever.id != record.id)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }
}
