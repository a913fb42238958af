import AtriumModel
import AtriumStore
import Crypto
import Foundation

/// Makes and checks API tokens. A token is 40 random bytes in URL-safe hex (80 characters); the
/// store keeps its first ``prefixLength`` characters (indexed, for lookup), a random salt, and
/// SHA-256(salt ‖ token). Token secrets carry 320 bits of entropy, so one salted SHA-256 is as
/// strong as a slow hash would be, and lookup stays fast on every API call.
public enum TokenHashing {
    /// Characters of the token kept in clear for lookup.
    public static let prefixLength = 4

    /// A new random token secret.
    public static func newSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<40).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// A new random salt, hex.
    public static func newSalt() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<8).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined()
    }

    /// Hex SHA-256 of salt and secret.
    public static func hash(_ secret: String, salt: String) -> String {
        SHA256.hash(data: Data((salt + secret).utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Constant-time comparison of two strings' bytes.
    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<min(x.count, y.count) { difference |= x[i] ^ y[i] }
        return difference == 0
    }

    /// Finds the stored token matching `secret`, comparing every candidate in constant time.
    public static func lookup(_ secret: String, in store: Store) async throws -> TokenRecord? {
        guard secret.utf8.count >= prefixLength, secret.utf8.count <= 256 else { return nil }
        let prefix = String(secret.prefix(prefixLength))
        var found: TokenRecord?
        for candidate in try await store.tokens(withPrefix: prefix) {
            if constantTimeEqual(hash(secret, salt: candidate.salt), candidate.hash) { found = candidate }
        }
        return found
    }

    /// Creates a token for `owner` and returns its secret (shown once, never stored) and its record.
    public static func issue(
        for owner: UserRecord, scopes: [String], note: String?, expiresIn: Double?, store: Store, now: Date = Date()
    ) async throws -> (secret: String, record: TokenRecord) {
        let secret = newSecret()
        let salt = newSalt()
        let record = try await store.insertToken(TokenRecord(
            userID: owner.id, userName: owner.name, prefix: String(secret.prefix(prefixLength)), salt: salt,
            hash: hash(secret, salt: salt), scopes: scopes, note: note, created: now,
            expiresAt: expiresIn.map { now.addingTimeInterval($0) }))
        return (secret, record)
    }
}
