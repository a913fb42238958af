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
        // Every token identifies its owner (JupyterHub's identify scopes), whatever else it holds.
        let raw = token.scopes.filter { $0 != Scopes.noScope } + ["read:users:name!user", "read:users:groups!user"]
        let requested = (try? ScopeSet(expanding: raw, owner: owner.name)) ?? ScopeSet()
        return requested.intersection(ownerScopes)
    }

    /// Resolves what a client asked for when creating a token (`scopes` or `roles`, not both)
    /// into the scope strings to store, as JupyterHub does: neither given is the `token` role
    /// (`inherit`); an empty list given is no permission at all beyond identifying the owner
    /// (`(no_scope)`). Throws a ``ScopeError`` for unknown scopes or roles, and an
    /// ``AccountError`` when both are given or the owner does not hold a requested scope
    /// (JupyterHub answers 400 to both).
    public static func requestedTokenScopes(scopes: [String]?, roles: [String]?, owner: UserRecord) throws -> [String] {
        if scopes != nil, roles != nil {
            throw AccountError("Can only assign one of scopes or roles when creating tokens.")
        }
        var raw: [String] = []
        for role in roles ?? [] {
            guard let roleScopes = Scopes.defaultRoles[role] else {
                throw ScopeError(scope: role, reason: "no such role")
            }
            raw += roleScopes
        }
        raw += scopes ?? []
        if scopes == nil && roles == nil { return ["inherit"] }
        if raw.isEmpty { return [Scopes.noScope] }
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
