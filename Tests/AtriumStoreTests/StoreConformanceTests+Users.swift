import AtriumModel
@testable import AtriumStore
import Foundation
import SQLKit
import Testing

/// Users: batch creation, lookups, queries (paging, sorting, filters), updates and deletion.
extension StoreConformanceTests {
    @Test("createUsers skips and reports existing names and stores every field", arguments: StoreKind.engines)
    func createUsersBatch(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.makeUsers(["alice"])
            let result = try await store.createUsers([
                NewUser(name: "bob", admin: true, approval: .pending, passwordHash: "$2b$hash"),
                NewUser(name: "alice"),
                NewUser(name: "carol"),
            ], now: t0)
            #expect(result.created.map(\.name) == ["bob", "carol"])
            #expect(result.existing == ["alice"])
            let bob = try #require(result.created.first)
            #expect(bob.admin)
            #expect(bob.approval == .pending)
            #expect(bob.passwordHash == "$2b$hash")
            #expect(bob.created == t0)
            #expect(bob.lastActivity == nil)
            #expect(!bob.cookieID.isEmpty)
            #expect(bob.groups.isEmpty)
            #expect(result.created[1].cookieID != bob.cookieID)
            #expect(result.created[1].id > bob.id)
            #expect(try await store.user(named: "bob") == bob)
            #expect(try await store.userCount() == 3)
        }
    }

    @Test("a batch naming a user twice creates it once", arguments: StoreKind.engines)
    func createUsersDeduplicates(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let result = try await store.createUsers([NewUser(name: "dup", admin: true), NewUser(name: "x"), NewUser(name: "dup")])
            #expect(result.created.map(\.name) == ["dup", "x"])
            #expect(result.created.first?.admin == true, "the first occurrence wins")
            #expect(result.existing.isEmpty)
            #expect(try await store.userCount() == 2)
            let again = try await store.createUsers([NewUser(name: "dup"), NewUser(name: "dup")])
            #expect(again.created.isEmpty)
            #expect(again.existing == ["dup"])
        }
    }

    @Test("createUser refuses a taken name; an empty batch is fine", arguments: StoreKind.engines)
    func createUserTaken(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let alice = try await store.createUser(NewUser(name: "alice"), now: t0)
            #expect(alice.name == "alice")
            await expectStoreError(.alreadyExists) { try await store.createUser(NewUser(name: "alice")) }
            let empty = try await store.createUsers([])
            #expect(empty.created.isEmpty && empty.existing.isEmpty)
        }
    }

    @Test("user(named:) returns groups sorted, and nil for unknown names", arguments: StoreKind.engines)
    func userWithGroups(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.makeUsers(["alice", "bob"])
            _ = try await store.createGroups(["zeta", "alpha"], members: ["alice"])
            _ = try await store.createGroups(["mid"], members: ["alice", "bob"])
            #expect(try await store.requireUser("alice").groups == ["alpha", "mid", "zeta"])
            #expect(try await store.requireUser("bob").groups == ["mid"])
            #expect(try await store.user(named: "nobody") == nil)
            #expect(try await store.user(named: "ALICE") == nil, "names are case-sensitive")
        }
    }

    @Test("users(query) pages with offset and limit and reports the total", arguments: StoreKind.engines)
    func usersPaging(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.makeUsers(["carol", "alice", "erin", "bob", "dave"])
            var query = UserQuery()
            query.limit = 2
            query.offset = 1
            let page = try await store.users(query)
            #expect(page.users.map(\.name) == ["alice", "erin"])
            #expect(page.total == 5)
            #expect(try await store.userNames { $0.offset = 3 } == ["bob", "dave"])
            #expect(try await store.userNames { $0.offset = 10 } == [])
            #expect(try await store.userNames { $0.limit = 0 } == [])
            #expect(try await store.userNames { $0.limit = 10 } == ["carol", "alice", "erin", "bob", "dave"])
            var late = UserQuery()
            late.offset = 99
            #expect(try await store.users(late).total == 5)
        }
    }

    @Test("users(query) sorts by name, id, last activity and created, both ways", arguments: StoreKind.engines)
    func usersSorting(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            // Created in this order (ids ascending), at different times, with different activity.
            try await store.makeUsers(["carol"], now: t0.addingTimeInterval(30))
            try await store.makeUsers(["alice"], now: t0.addingTimeInterval(10))
            try await store.makeUsers(["bob"], now: t0.addingTimeInterval(20))
            try await store.makeUsers(["dave"], now: t0.addingTimeInterval(20))
            try await store.recordUserActivity("alice", at: t0.addingTimeInterval(300))
            try await store.recordUserActivity("carol", at: t0.addingTimeInterval(100))
            try await store.recordUserActivity("dave", at: t0.addingTimeInterval(200))
            // bob never active: sorts as the oldest.
            let expected: [(UserSort, Bool, [String])] = [
                (.id, false, ["carol", "alice", "bob", "dave"]),
                (.id, true, ["dave", "bob", "alice", "carol"]),
                (.name, false, ["alice", "bob", "carol", "dave"]),
                (.name, true, ["dave", "carol", "bob", "alice"]),
                (.lastActivity, false, ["bob", "carol", "dave", "alice"]),
                (.lastActivity, true, ["alice", "dave", "carol", "bob"]),
                (.created, false, ["alice", "bob", "dave", "carol"]), // bob and dave tie: by id
                (.created, true, ["carol", "bob", "dave", "alice"]),
            ]
            for (sort, descending, names) in expected {
                let got = try await store.userNames { $0.sort = sort; $0.descending = descending }
                #expect(got == names, "sort \(sort) descending \(descending)")
            }
            #expect(try await store.userNames { $0.sort = .name; $0.limit = 2; $0.offset = 1 } == ["bob", "carol"])
        }
    }

    @Test("UserSort.parse reads JupyterHub's sort parameter")
    func userSortParse() {
        func parsed(_ text: String) -> String? {
            UserSort.parse(text).map { "\($0.0)\($0.descending ? " desc" : "")" }
        }
        #expect(parsed("name") == "name")
        #expect(parsed("-last_activity") == "lastActivity desc")
        #expect(parsed("id") == "id")
        #expect(parsed("-created") == "created desc")
        #expect(parsed("bogus") == nil)
        #expect(parsed("-") == nil)
    }

    @Test("nameFilter folds case beyond ASCII on every engine: élodie finds Élodie", arguments: StoreKind.engines)
    func usersNameFilterUnicode(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.makeUsers(["\u{C9}lodie", "\u{E9}mile", "elodie", "\u{D6}zil", "zo\u{EB}"])
            #expect(try await store.userNames { $0.nameFilter = "\u{E9}lodie" } == ["\u{C9}lodie"])
            #expect(try await store.userNames { $0.nameFilter = "\u{C9}" }.sorted() == ["\u{C9}lodie", "\u{E9}mile"])
            #expect(try await store.userNames { $0.nameFilter = "e\u{301}" }.sorted() == ["\u{C9}lodie", "\u{E9}mile"], "a decomposed filter")
            #expect(try await store.userNames { $0.nameFilter = "\u{F6}z" } == ["\u{D6}zil"])
            #expect(try await store.userNames { $0.nameFilter = "\u{FC}" } == [])
            #expect(try await store.userNames { $0.nameFilter = "ZO\u{C9}" } == [], "é is not ë")
            #expect(try await store.userNames { $0.nameFilter = "ZO\u{CB}" } == ["zo\u{EB}"])
            var query = UserQuery()
            query.nameFilter = "\u{E9}"
            query.limit = 1
            #expect(try await store.users(query).total == 2, "the total counts every match, not the page")
        }
    }

    @Test("nameFilter is a case-insensitive substring where % and _ are literal", arguments: StoreKind.engines)
    func usersNameFilter(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.makeUsers(["Alice", "malice", "bob", "a%b", "a_b", "axb", "a\\b", "abb"])
            #expect(try await store.userNames { $0.nameFilter = "ALI" } == ["Alice", "malice"])
            #expect(try await store.userNames { $0.nameFilter = "%" } == ["a%b"])
            #expect(try await store.userNames { $0.nameFilter = "_" } == ["a_b"])
            #expect(try await store.userNames { $0.nameFilter = "a_b" } == ["a_b"])
            #expect(try await store.userNames { $0.nameFilter = "a%" } == ["a%b"])
            #expect(try await store.userNames { $0.nameFilter = "\\" } == ["a\\b"])
            #expect(try await store.userNames { $0.nameFilter = "zzz" } == [])
            #expect(try await store.userNames { $0.nameFilter = "" }.count == 8, "an empty filter matches everyone")
            var query = UserQuery()
            query.nameFilter = "b"
            query.limit = 1
            let page = try await store.users(query)
            #expect(page.total == 6)
            #expect(page.users.map(\.name) == ["bob"])
        }
    }

    @Test("users(query) filters by approval, admin, group, server state and names", arguments: StoreKind.engines)
    func usersFilters(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let users = try await store.createUsers([
                NewUser(name: "run"), NewUser(name: "pend", approval: .pending), NewUser(name: "stop", admin: true),
                NewUser(name: "none", approval: .revoked), NewUser(name: "both"),
            ]).created
            let id = Dictionary(uniqueKeysWithValues: users.map { ($0.name, $0.id) })
            try await store.saveServer(ServerRecord(userID: id["run"]!, userName: "run", name: "", phase: .running))
            try await store.saveServer(ServerRecord(userID: id["pend"]!, userName: "pend", name: "", phase: .pending))
            try await store.saveServer(ServerRecord(userID: id["stop"]!, userName: "stop", name: "", phase: .stopped))
            try await store.saveServer(ServerRecord(userID: id["both"]!, userName: "both", name: "", phase: .stopped))
            try await store.saveServer(ServerRecord(userID: id["both"]!, userName: "both", name: "lab", phase: .running))
            _ = try await store.createGroups(["g"], members: ["run", "stop"])

            #expect(try await store.userNames { $0.approval = .pending } == ["pend"])
            #expect(try await store.userNames { $0.approval = .revoked } == ["none"])
            #expect(try await store.userNames { $0.approval = .approved } == ["run", "stop", "both"])
            #expect(try await store.userNames { $0.adminOnly = true } == ["stop"])
            #expect(try await store.userNames { $0.group = "g" } == ["run", "stop"])
            #expect(try await store.userNames { $0.group = "missing" } == [])
            #expect(try await store.userNames { $0.state = .active } == ["run", "pend", "both"])
            #expect(try await store.userNames { $0.state = .ready } == ["run", "both"])
            #expect(try await store.userNames { $0.state = .inactive } == ["stop", "none"])
            #expect(try await store.userNames { $0.names = ["none", "run", "ghost"] } == ["run", "none"])
            #expect(try await store.userNames { $0.names = [] } == [])
            var combined = UserQuery()
            combined.state = .active
            combined.group = "g"
            combined.approval = .approved
            let result = try await store.users(combined)
            #expect(result.users.map(\.name) == ["run"])
            #expect(result.users.first?.groups == ["g"])
            #expect(result.total == 1)
        }
    }

    @Test("renameUser keeps groups, tokens and servers; refuses conflicts and unknown users", arguments: StoreKind.engines)
    func renameUser(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let alice = try await store.makeUsers(["alice", "bob"])[0]
            _ = try await store.createGroups(["g"], members: ["alice"])
            _ = try await store.makeToken(for: alice)
            try await store.saveServer(ServerRecord(userID: alice.id, userName: "alice", name: "lab", phase: .running))

            let renamed = try await store.renameUser("alice", to: "alicia")
            #expect(renamed.id == alice.id)
            #expect(renamed.name == "alicia")
            #expect(renamed.groups == ["g"])
            #expect(renamed.cookieID == alice.cookieID)
            #expect(try await store.user(named: "alice") == nil)
            #expect(try await store.tokens(ofUser: "alicia").count == 1)
            #expect(try await store.tokens(ofUser: "alice").isEmpty)
            #expect(try await store.servers(ofUserIDs: [alice.id])[alice.id]?.first?.userName == "alicia")
            #expect(try await store.group(named: "g")?.users == ["alicia"])

            await expectStoreError(.alreadyExists) { try await store.renameUser("alicia", to: "bob") }
            await expectStoreError(.notFound) { try await store.renameUser("ghost", to: "casper") }
            #expect(try await store.requireUser("alicia").id == alice.id)
        }
    }

    @Test("setAdmin, setPasswordHash, setApproval and rotateCookieID update one user", arguments: StoreKind.engines)
    func userUpdates(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.makeUsers(["alice", "bob"])
            let before = try await store.requireUser("alice")
            let bob = try await store.requireUser("bob")

            try await store.setAdmin("alice", true)
            #expect(try await store.requireUser("alice").admin)
            try await store.setAdmin("alice", false)
            #expect(try await !store.requireUser("alice").admin)

            try await store.setPasswordHash("alice", "$2b$new")
            let hashed = try await store.requireUser("alice")
            #expect(hashed.passwordHash == "$2b$new")
            #expect(hashed.cookieID != before.cookieID, "a new password ends other sessions")
            try await store.setPasswordHash("alice", nil)
            #expect(try await store.requireUser("alice").passwordHash == nil)

            let c1 = try await store.requireUser("alice").cookieID
            try await store.setApproval("alice", .pending)
            let pending = try await store.requireUser("alice")
            #expect(pending.approval == .pending)
            #expect(pending.cookieID != c1)
            try await store.setApproval("alice", .approved)
            let approved = try await store.requireUser("alice")
            #expect(approved.approval == .approved)
            #expect(approved.cookieID == pending.cookieID, "approving keeps sessions")
            try await store.setApproval("alice", .revoked)
            #expect(try await store.requireUser("alice").cookieID != approved.cookieID)

            let c2 = try await store.requireUser("alice").cookieID
            try await store.rotateCookieID("alice")
            #expect(try await store.requireUser("alice").cookieID != c2)

            #expect(try await store.requireUser("bob") == bob, "other users are untouched")
            await expectStoreError(.notFound) { try await store.setAdmin("ghost", true) }
            await expectStoreError(.notFound) { try await store.setPasswordHash("ghost", "x") }
            await expectStoreError(.notFound) { try await store.setApproval("ghost", .approved) }
            await expectStoreError(.notFound) { try await store.rotateCookieID("ghost") }
        }
    }

    @Test("recordUserActivity keeps the latest time", arguments: StoreKind.engines)
    func userActivity(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.makeUsers(["alice"])
            try await store.recordUserActivity("alice", at: t0.addingTimeInterval(60))
            try await store.recordUserActivity("alice", at: t0.addingTimeInterval(30))
            #expect(try await store.requireUser("alice").lastActivity == t0.addingTimeInterval(60))
            try await store.recordUserActivity("alice", at: t0.addingTimeInterval(90))
            #expect(try await store.requireUser("alice").lastActivity == t0.addingTimeInterval(90))
            try await store.recordUserActivity("ghost", at: t0) // no such user: nothing happens
        }
    }

    @Test("deleteUser removes the user's tokens, memberships, servers and login failures", arguments: StoreKind.engines)
    func deleteUserCascades(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let users = try await store.makeUsers(["alice", "bob"])
            let (alice, bob) = (users[0], users[1])
            _ = try await store.createGroups(["g"], members: ["alice", "bob"])
            _ = try await store.makeToken(for: alice, prefix: "aaaa")
            _ = try await store.makeToken(for: bob, prefix: "bbbb")
            try await store.saveServer(ServerRecord(userID: alice.id, userName: "alice", name: "", phase: .running))
            try await store.saveServer(ServerRecord(userID: bob.id, userName: "bob", name: "", phase: .running))
            _ = try await store.recordLoginFailure("alice", now: t0, limit: 5, window: 600, lockout: 600)

            #expect(try await store.deleteUser("alice"))
            #expect(try await store.user(named: "alice") == nil)
            #expect(try await store.tokens(withPrefix: "aaaa").isEmpty)
            #expect(try await store.group(named: "g")?.users == ["bob"])
            #expect(try await store.servers(ofUserIDs: [alice.id]).isEmpty)
            #expect(try await store.activeServers().map(\.userName) == ["bob"])
            #expect(try await store.loginFailures("alice") == nil)
            let leftovers = try await store.sql.raw("SELECT COUNT(*) AS n FROM group_members WHERE user_id = \(bind: alice.id)")
                .first()?.decode(column: "n", as: Int.self)
            #expect(leftovers == 0)

            #expect(try await store.tokens(withPrefix: "bbbb").count == 1)
            #expect(try await !store.deleteUser("alice"))
            #expect(try await store.userCount() == 1)
        }
    }

    @Test("activeUserCount counts users active at or after the cutoff (metrics)", arguments: StoreKind.engines)
    func activeUserCount(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.makeUsers(["alice", "bob", "carol", "dave"])
            try await store.recordUserActivity("alice", at: t0)
            try await store.recordUserActivity("bob", at: t0.addingTimeInterval(-2 * 86400))
            try await store.recordUserActivity("carol", at: t0.addingTimeInterval(-20 * 86400))
            // dave was never active.
            #expect(try await store.activeUserCount(since: t0.addingTimeInterval(-86400)) == 1)
            #expect(try await store.activeUserCount(since: t0.addingTimeInterval(-7 * 86400)) == 2)
            #expect(try await store.activeUserCount(since: t0.addingTimeInterval(-30 * 86400)) == 3)
            #expect(try await store.activeUserCount(since: t0) == 1, "the cutoff itself counts")
            #expect(try await store.activeUserCount(since: t0.addingTimeInterval(1)) == 0)
        }
    }
}
