import AtriumModel
import AtriumStore
import Foundation

/// Who is making a request, and what they may do.
public struct Identity: Sendable {
    /// How the request authenticated.
    public enum Credential: Sendable, Equatable {
        case token(id: Int64)
        case session
    }

    public let user: UserRecord
    public let scopes: ScopeSet
    public let credential: Credential

    public init(user: UserRecord, scopes: ScopeSet, credential: Credential) {
        self.user = user
        self.scopes = scopes
        self.credential = credential
    }

    /// The token id as the API shows it (`a12`), or `nil` for a session.
    public var tokenID: String? {
        if case .token(let id) = credential { return "a\(id)" }
        return nil
    }
}

/// Maps users and tokens to scopes with JupyterHub's default roles.
public enum Permissions {
    /// Role names a user holds: `user`, plus `admin` for admins.
    public static func roles(of user: UserRecord) -> [String] {
        user.admin ? ["admin", "user"] : ["user"]
    }

    /// Everything `user` may do.
    public static func scopes(of user: UserRecord) -> ScopeSet {
        let raw = roles(of: user).flatMap { Scopes.defaultRoles[$0] ?? [] }
        return (try? ScopeSet(expanding: raw, owner: user.name)) ?? ScopeSet()
    }

    /// What a token may do: its scopes, never more than its owner's.
    public static func scopes(of token: TokenRecord, owner: UserRecord) -> ScopeSet {
        let ownerScopes = scopes(of: owner)
        if token.scopes.isEmpty || token.scopes.contains("inherit") { return ownerScopes }
        let requested = (try? ScopeSet(expanding: token.scopes, owner: owner.name)) ?? ScopeSet()
        return requested.intersection(ownerScopes)
    }

    /// Resolves what a client asked for when creating a token (`scopes` and/or `roles`) into
    /// the scope strings to store. Throws a ``ScopeError`` for unknown scopes or roles, and an
    /// ``AccountError`` when the owner does not hold a requested scope (JupyterHub answers 403).
    public static func requestedTokenScopes(scopes: [String]?, roles: [String]?, owner: UserRecord) throws -> [String] {
        var raw: [String] = []
        for role in roles ?? [] {
            guard let roleScopes = Scopes.defaultRoles[role] else {
                throw ScopeError(scope: role, reason: "no such role")
            }
            raw += roleScopes
        }
        raw += scopes ?? []
        if raw.isEmpty { return ["inherit"] }
        if raw.contains("inherit") { return ["inherit"] }
        let requested = try ScopeSet(expanding: raw, owner: owner.name)
        let held = Self.scopes(of: owner)
        guard held.covers(requested) else {
            let missing = requested.strings.filter { scope in
                let single = (try? ScopeSet(expanding: [scope], owner: owner.name)) ?? ScopeSet()
                return !held.covers(single)
            }
            throw AccountError("Not assigning requested scopes \(missing.joined(separator: ", ")) not held by \(owner.name)")
        }
        return raw.sorted()
    }
}
