import AtriumAuth
import AtriumStore
import Foundation
import HTTPTypes

/// Checking credentials, shared by the API's authentication middleware and the proxy's
/// gatekeeper so both accept exactly the same tokens and sessions.
extension Hub {
    /// The token in an `Authorization: token …` or `Bearer …` header.
    static func tokenSecret(authorization: String?) -> String? {
        guard let header = authorization else { return nil }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, ["token", "bearer"].contains(parts[0].lowercased()) else { return nil }
        let value = parts[1].drop { $0 == " " }
        let trimmed = value.last == " " ? value.prefix { $0 != " " } : value
        return String(trimmed)  // an empty token is still a token (one that fails)
    }

    /// Whether `user` may use the hub now: approved and not blocked.
    func usable(_ user: UserRecord) -> Bool {
        user.approval == .approved && !authenticator.configuration.blockedUsers.contains(user.name)
    }

    /// The user of a valid session cookie value (signature, lifetime, current cookie id, usable).
    func sessionUser(cookie value: String, now: Date = Date()) async throws -> UserRecord? {
        guard let session = sessions.decode(value, now: now), let user = try await store.user(named: session.name),
            TokenHashing.constantTimeEqual(user.cookieID, session.cookieID), usable(user)
        else { return nil }
        return user
    }

    /// A valid, unexpired token and its usable owner.
    func tokenOwner(secret: String, now: Date = Date()) async throws -> (token: TokenRecord, owner: UserRecord)? {
        guard let token = try await TokenHashing.lookup(secret, in: store) else { return nil }
        if let expires = token.expiresAt, expires <= now { return nil }
        guard let owner = try await store.user(named: token.userName), usable(owner) else { return nil }
        return (token, owner)
    }
}
