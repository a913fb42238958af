import Testing
@testable import AtriumModel

/// JupyterHub's scope vocabulary: expansion through the hierarchy, filters (`!user=`, `!group=`,
/// `!server=`), `self`, and the set algebra that keeps a token within its owner's scopes.
@Suite("Scopes")
struct ScopeTests {
    func set(_ scopes: [String], owner: String? = nil, server: String = "") throws -> ScopeSet {
        try ScopeSet(expanding: scopes, owner: owner, ownerServer: server)
    }

    @Test("every implied scope, self scope and admin scope is a known scope")
    func hierarchyIsClosed() {
        for (scope, implied) in Scopes.hierarchy {
            for child in implied { #expect(Scopes.hierarchy[child] != nil, "\(scope) implies unknown \(child)") }
        }
        for scope in Scopes.selfScopes + Scopes.adminRole {
            #expect(Scopes.hierarchy[scope] != nil, "\(scope) is unknown")
        }
        for (role, scopes) in Scopes.defaultRoles {
            for scope in scopes {
                #expect(throws: Never.self, "role \(role)") { try ScopeSet.parse(scope, owner: "alice") }
            }
        }
    }

    /// A scope and some of the scopes it must imply (transitively).
    static let implications: [(String, [String])] = [
        ("users", ["users", "read:users", "list:users", "read:users:name", "read:users:groups", "read:users:activity", "users:activity"]),
        ("admin:users", ["admin:users", "delete:users", "admin:auth_state", "users", "read:users", "list:users", "read:roles:users"]),
        ("admin:servers", ["admin:server_state", "servers", "read:servers", "start:servers", "delete:servers", "read:users:name"]),
        ("admin:groups", ["groups", "delete:groups", "read:groups", "list:groups", "read:groups:name"]),
        ("shares", ["read:shares", "users:shares", "read:users:shares", "groups:shares", "read:groups:shares"]),
        ("read:hub", ["read:hub"]),
    ]

    @Test("a scope implies its subscopes, transitively", arguments: implications)
    func expandsSubscopes(_ scope: String, _ implied: [String]) throws {
        let expanded = try set([scope])
        for s in implied { #expect(expanded.hasUnfiltered(s), "\(scope) should imply \(s)") }
    }

    @Test("expansion does not reach upwards or sideways")
    func expansionStaysBelow() throws {
        let users = try set(["users"])
        #expect(!users.hasAny("admin:users"))
        #expect(!users.hasAny("delete:users"))
        #expect(!users.hasAny("servers"))
        #expect(try set(["read:users"]).strings == ["read:users", "read:users:activity", "read:users:groups", "read:users:name"])
        #expect(try set(["list:users"]).strings == ["list:users", "read:users:name"])
    }

    @Test("a user filter reaches that user only, and its subscopes inherit the filter")
    func userFilter() throws {
        let scopes = try set(["read:users!user=alice"])
        #expect(scopes.allows("read:users", user: "alice"))
        #expect(!scopes.allows("read:users", user: "bob"))
        #expect(scopes.allows("read:users:name", user: "alice"))
        #expect(!scopes.allows("read:users:name", user: "bob"))
        #expect(!scopes.hasUnfiltered("read:users"))
        #expect(scopes.hasAny("read:users"))
        #expect(!scopes.allows("list:users", user: "alice"))
        #expect(scopes.strings.contains("read:users!user=alice"))
        #expect(scopes.strings.contains("read:users:groups!user=alice"))
    }

    @Test("a group filter reaches members of that group")
    func groupFilter() throws {
        let scopes = try set(["read:users!group=staff"])
        #expect(scopes.allows("read:users", user: "bob", groups: ["staff"]))
        #expect(scopes.allows("read:users", user: "bob", groups: ["x", "staff"]))
        #expect(!scopes.allows("read:users", user: "bob", groups: ["students"]))
        #expect(!scopes.allows("read:users", user: "bob"))
        #expect(scopes.allowsGroup("read:users", group: "staff"))
        #expect(!scopes.allowsGroup("read:users", group: "students"))
        #expect(try set(["groups"]).allowsGroup("read:groups", group: "anything"))
        #expect(!ScopeSet().allowsGroup("read:groups", group: "staff"))
    }

    @Test("a server filter reaches exactly that server")
    func serverFilter() throws {
        let scopes = try set(["servers!server=alice/lab"])
        #expect(scopes.allows("start:servers", user: "alice", server: "lab"))
        #expect(!scopes.allows("start:servers", user: "alice", server: "other"))
        #expect(!scopes.allows("start:servers", user: "alice", server: ""))
        #expect(!scopes.allows("start:servers", user: "alice"))
        #expect(!scopes.allows("start:servers", user: "bob", server: "lab"))
        let defaultServer = try set(["access:servers!server=alice/"])
        #expect(defaultServer.allows("access:servers", user: "alice", server: ""))
        #expect(!defaultServer.allows("access:servers", user: "alice", server: "lab"))
        #expect(defaultServer.strings == ["access:servers!server=alice/"])
    }

    @Test("!user and !server placeholders resolve to the owner")
    func placeholders() throws {
        let scopes = try set(Scopes.defaultRoles["server"]!, owner: "alice", server: "lab")
        #expect(scopes.allows("users:activity", user: "alice"))
        #expect(!scopes.allows("users:activity", user: "bob"))
        #expect(scopes.allows("access:servers", user: "alice", server: "lab"))
        #expect(!scopes.allows("access:servers", user: "alice", server: ""))
        #expect(try ScopeSet.parse("read:users!user", owner: "carol") == ("read:users", .user("carol")))
    }

    @Test("self expands to the user role's scopes, each limited to the owner")
    func selfScope() throws {
        let scopes = try set(["self"], owner: "alice")
        for base in Scopes.selfScopes {
            #expect(scopes.entries[base] == .only([.user("alice")]), "\(base)")
        }
        #expect(scopes.allows("read:users:name", user: "alice"))
        #expect(scopes.allows("start:servers", user: "alice", server: "lab"))
        #expect(!scopes.allows("read:users", user: "bob"))
        #expect(!scopes.hasAny("admin:users"))
        #expect(!scopes.hasAny("list:users"))
        #expect(try set(["self"]).entries.isEmpty, "self without an owner grants nothing")
    }

    @Test("inherit is left for the caller to resolve")
    func inheritIsKeptOut() throws {
        #expect(try set(["inherit"], owner: "alice").entries.isEmpty)
        #expect(try set(["inherit", "read:hub"]).strings == ["read:hub"])
    }

    @Test("an unfiltered scope absorbs filtered ones")
    func unfilteredAbsorbs() throws {
        #expect(try set(["read:users!user=alice", "read:users"]).hasUnfiltered("read:users"))
        #expect(try set(["read:users", "read:users!user=alice"]).hasUnfiltered("read:users"))
        let two = try set(["read:users!user=alice", "read:users!group=staff"])
        #expect(two.entries["read:users"] == .only([.user("alice"), .group("staff")]))
    }

    @Test("union combines reaches")
    func union() throws {
        let u = try set(["read:users!user=alice"]).union(set(["read:users!user=bob", "read:hub"]))
        #expect(u.entries["read:users"] == .only([.user("alice"), .user("bob")]))
        #expect(u.hasUnfiltered("read:hub"))
        #expect(try set(["read:users!user=alice"]).union(set(["read:users"])).hasUnfiltered("read:users"))
    }

    // MARK: Intersection and coverage

    @Test("unfiltered ∩ filtered is the filtered reach, in either order")
    func intersectionWithUnfiltered() throws {
        let all = try set(["read:users"])
        let alice = try set(["read:users!user=alice"])
        #expect(all.intersection(alice) == alice)
        #expect(alice.intersection(all) == alice)
        #expect(all.intersection(all) == all)
    }

    @Test("scopes held by only one side are dropped")
    func intersectionDropsOneSided() throws {
        let result = try set(["read:users", "read:hub"]).intersection(set(["read:users"]))
        #expect(result.strings == ["read:users", "read:users:activity", "read:users:groups", "read:users:name"])
        #expect(try set(["read:hub"]).intersection(set(["proxy"])).entries.isEmpty)
    }

    @Test("different user filters meet nowhere; a user filter and a group filter are dropped")
    func intersectionOfDisjointFilters() throws {
        #expect(try set(["read:users!user=alice"]).intersection(set(["read:users!user=bob"])).entries.isEmpty)
        #expect(try set(["read:users!user=alice"]).intersection(set(["read:users!group=staff"])).entries.isEmpty)
        let same = try set(["read:users!user=alice", "read:users!user=bob"]).intersection(set(["read:users!user=bob"]))
        #expect(same.entries["read:users"] == .only([.user("bob")]))
    }

    @Test("a server filter survives under the same user's filter, in either order")
    func serverUnderUser() throws {
        let server = try set(["servers!server=alice/lab"])
        let user = try set(["servers!user=alice"])
        #expect(server.intersection(user) == server)
        #expect(user.intersection(server) == server)
        #expect(try set(["servers!server=alice/lab"]).intersection(set(["servers!user=bob"])).entries.isEmpty)
    }

    @Test("a server filter is not kept by a user filter from its own side")
    func serverFilterNeedsTheOtherSide() throws {
        // Requested: alice's servers (user filter) and alice/lab; held: only bob's servers.
        let requested = try set(["servers!user=alice", "servers!server=alice/lab"])
        let held = try set(["servers!user=bob"])
        #expect(requested.intersection(held).entries.isEmpty)
        #expect(held.intersection(requested).entries.isEmpty)
        #expect(!requested.intersection(held).allows("start:servers", user: "alice", server: "lab"))
    }

    @Test("covers: whether every scope of the other set is within this one")
    func covers() throws {
        let admin = try set(Scopes.adminRole, owner: "root")
        #expect(admin.covers(try set(["read:users", "delete:users", "read:users!user=bob"])))
        let alice = try set(["self"], owner: "alice")
        #expect(alice.covers(try set(["read:users!user=alice"])))
        #expect(alice.covers(try set(["servers!server=alice/lab"])))
        #expect(alice.covers(try set(["self"], owner: "alice")))
        #expect(alice.covers(ScopeSet()))
        #expect(!alice.covers(try set(["read:users"])))
        #expect(!alice.covers(try set(["read:users!user=bob"])))
        #expect(!alice.covers(try set(["admin:users"])))
        #expect(!alice.covers(try set(["read:users!group=staff"])))
    }

    // MARK: Errors

    static let badScopes: [(String, String)] = [
        ("nope", "no such scope"),
        ("read:user", "no such scope"),
        ("READ:USERS", "no such scope"),
        ("", "no such scope"),
        ("nope!user=alice", "no such scope"),
        ("read:users!", "a filter looks like"),
        ("read:users!user=", "a filter looks like"),
        ("read:users!user", "a filter looks like"), // placeholder without an owner
        ("read:users!alice", "a filter looks like"),
        ("read:users!color=red", "unknown filter color"),
        ("servers!server=alice", "USER/SERVERNAME"),
    ]

    @Test("unknown scopes and malformed filters throw ScopeError", arguments: badScopes)
    func refusesBadScopes(_ raw: String, _ reason: String) throws {
        let error = try #require(throws: ScopeError.self) { try ScopeSet(expanding: [raw]) }
        #expect(error.scope == raw)
        #expect(error.reason.contains(reason), "reason was \(error.reason)")
        #expect(error.description.hasPrefix("invalid scope "))
    }

    @Test("one bad scope spoils the whole list")
    func oneBadScopeFails() {
        #expect(throws: ScopeError.self) { try ScopeSet(expanding: ["read:users", "read:userz"]) }
    }

    @Test("filters print as JupyterHub writes them")
    func filterDescriptions() {
        #expect(ScopeFilter.user("alice").description == "user=alice")
        #expect(ScopeFilter.group("staff").description == "group=staff")
        #expect(ScopeFilter.server(user: "alice", name: "lab").description == "server=alice/lab")
        #expect(ScopeFilter.server(user: "alice", name: "").description == "server=alice/")
    }
}
