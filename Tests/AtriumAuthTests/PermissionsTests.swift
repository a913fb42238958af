@testable import AtriumAuth
import AtriumModel
import AtriumStore
import Foundation
import Testing

/// JupyterHub's default roles mapped to scopes for users and tokens, and the checks made when a
/// client asks for a token with particular scopes or roles.
@Suite("Permissions")
struct PermissionsTests {
    static func user(_ name: String, admin: Bool = false) -> UserRecord {
        UserRecord(
            id: 1, name: name, admin: admin, created: t0, lastActivity: nil, approval: .approved,
            passwordHash: nil, cookieID: "cookie")
    }

    static func token(_ scopes: [String], of owner: UserRecord) -> TokenRecord {
        TokenRecord(
            id: 7, userID: owner.id, userName: owner.name, prefix: "abcd", salt: "", hash: "", scopes: scopes,
            note: nil, created: t0, expiresAt: nil)
    }

    let alice = Self.user("alice")
    let root = Self.user("root", admin: true)

    @Test("users hold the user role; admins also the admin role")
    func roles() {
        #expect(Permissions.roles(of: alice) == ["user"])
        #expect(Permissions.roles(of: root) == ["admin", "user"])
    }

    @Test("a user's scopes reach only themselves; an admin's reach everyone")
    func userScopes() {
        let mine = Permissions.scopes(of: alice)
        #expect(mine.allows("read:users", user: "alice"))
        #expect(mine.allows("start:servers", user: "alice", server: "lab"))
        #expect(mine.allows("tokens", user: "alice"))
        #expect(!mine.allows("read:users", user: "bob"))
        #expect(!mine.hasAny("admin:users"))
        #expect(!mine.hasAny("list:users"))
        let admin = Permissions.scopes(of: root)
        for scope in ["admin:users", "delete:users", "read:users", "list:users", "admin:servers", "admin:groups", "proxy", "shutdown"] {
            #expect(admin.hasUnfiltered(scope), "\(scope)")
        }
    }

    @Test("an admin's token limited to read:users gets read:users but not admin:users")
    func restrictedAdminToken() {
        let scopes = Permissions.scopes(of: Self.token(["read:users"], of: root), owner: root)
        #expect(scopes.hasUnfiltered("read:users"))
        #expect(scopes.hasUnfiltered("read:users:name"))
        #expect(!scopes.hasAny("admin:users"))
        #expect(!scopes.hasAny("delete:users"))
        #expect(!scopes.hasAny("servers"))
    }

    @Test("inherit and empty token scopes mean the owner's scopes")
    func inheritingTokens() {
        #expect(Permissions.scopes(of: Self.token(["inherit"], of: alice), owner: alice) == Permissions.scopes(of: alice))
        #expect(Permissions.scopes(of: Self.token([], of: root), owner: root) == Permissions.scopes(of: root))
    }

    @Test("a token never exceeds its owner")
    func tokenWithinOwner() {
        let scopes = Permissions.scopes(of: Self.token(["read:users", "admin:users", "read:hub"], of: alice), owner: alice)
        #expect(scopes.allows("read:users", user: "alice"))
        #expect(!scopes.hasUnfiltered("read:users"))
        #expect(!scopes.allows("read:users", user: "bob"))
        #expect(!scopes.hasAny("admin:users"))
        #expect(!scopes.hasAny("read:hub"))
        let broken = Permissions.scopes(of: Self.token(["no-such-scope"], of: root), owner: root)
        #expect(broken.entries.isEmpty, "an unreadable stored scope grants nothing")
    }

    @Test("requesting roles: token and nothing mean inherit; user means self; an empty list means nothing")
    func requestedRoles() throws {
        #expect(try Permissions.requestedTokenScopes(scopes: nil, roles: ["token"], owner: alice) == ["inherit"])
        #expect(try Permissions.requestedTokenScopes(scopes: nil, roles: nil, owner: alice) == ["inherit"])
        // As JupyterHub: an empty list given is no permission; scopes and roles together are refused.
        #expect(try Permissions.requestedTokenScopes(scopes: [], roles: nil, owner: alice) == [Scopes.noScope])
        #expect(try Permissions.requestedTokenScopes(scopes: nil, roles: [], owner: alice) == [Scopes.noScope])
        #expect(throws: AccountError.self) { try Permissions.requestedTokenScopes(scopes: [], roles: [], owner: alice) }
        let none = Permissions.scopes(of: Self.token([Scopes.noScope], of: alice), owner: alice)
        #expect(none.strings == ["read:users:groups!user=alice", "read:users:name!user=alice"], "it only identifies its owner")
        #expect(try Permissions.requestedTokenScopes(scopes: ["read:users", "inherit"], roles: nil, owner: alice) == ["inherit"])
        #expect(try Permissions.requestedTokenScopes(scopes: nil, roles: ["user"], owner: alice) == ["self"])
        let adminRole = try Permissions.requestedTokenScopes(scopes: nil, roles: ["admin"], owner: root)
        #expect(adminRole == Scopes.adminRole.sorted())
    }

    @Test("requesting scopes the owner holds returns them sorted")
    func requestedHeldScopes() throws {
        let mine = try Permissions.requestedTokenScopes(
            scopes: ["servers!server=alice/lab", "read:users!user=alice"], roles: nil, owner: alice)
        #expect(mine == ["read:users!user=alice", "servers!server=alice/lab"])
        #expect(try Permissions.requestedTokenScopes(scopes: ["read:users", "delete:users"], roles: nil, owner: root)
            == ["delete:users", "read:users"])
        #expect(try Permissions.requestedTokenScopes(scopes: ["self"], roles: nil, owner: alice) == ["self"])
    }

    @Test("a non-admin asking for admin scopes is refused, naming them")
    func requestedUnheldScopes() throws {
        let error = try #require(throws: AccountError.self) {
            try Permissions.requestedTokenScopes(scopes: ["admin:users"], roles: nil, owner: alice)
        }
        #expect(error.message.contains("admin:users"))
        #expect(error.message.contains("alice"))
        #expect(throws: AccountError.self) { try Permissions.requestedTokenScopes(scopes: ["read:users"], roles: nil, owner: alice) }
        #expect(throws: AccountError.self) {
            try Permissions.requestedTokenScopes(scopes: ["read:users!user=bob"], roles: nil, owner: alice)
        }
        #expect(throws: AccountError.self) { try Permissions.requestedTokenScopes(scopes: nil, roles: ["admin"], owner: alice) }
    }

    @Test("unknown scopes and roles are a ScopeError")
    func unknownScopesAndRoles() {
        #expect(throws: ScopeError.self) { try Permissions.requestedTokenScopes(scopes: ["read:everything"], roles: nil, owner: root) }
        #expect(throws: ScopeError.self) { try Permissions.requestedTokenScopes(scopes: ["read:users!color=red"], roles: nil, owner: root) }
        let error = #expect(throws: ScopeError.self) { try Permissions.requestedTokenScopes(scopes: nil, roles: ["superuser"], owner: root) }
        #expect(error?.reason == "no such role")
    }

    @Test("an identity shows its token id as JupyterHub does")
    func identityTokenID() {
        #expect(Identity(user: alice, scopes: ScopeSet(), credential: .token(id: 12)).tokenID == "a12")
        #expect(Identity(user: alice, scopes: ScopeSet(), credential: .session).tokenID == nil)
    }
}
