import AtriumModel
@testable import AtriumStore
import Foundation
import Testing

/// Groups: creation (all or nothing), membership, properties, renaming, deletion and paging.
extension StoreConformanceTests {
    @Test("createGroups creates groups with their members", arguments: StoreKind.engines)
    func createGroups(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.makeUsers(["bob", "alice"])
            let groups = try await store.createGroups(["staff", "admins", "staff"], members: ["bob", "alice", "bob"])
            #expect(groups.map(\.name) == ["admins", "staff"])
            #expect(groups.allSatisfy { $0.users == ["alice", "bob"] })
            #expect(groups.allSatisfy { $0.properties == .object([:]) })
            let empty = try await store.createGroups(["empty"])
            #expect(empty.first?.users == [])
            #expect(try await store.group(named: "staff") == groups[1])
            #expect(try await store.group(named: "nope") == nil)
        }
    }

    @Test("createGroups with an existing name creates nothing", arguments: StoreKind.engines)
    func createGroupsExisting(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.makeUsers(["alice"])
            _ = try await store.createGroups(["old"])
            await expectStoreError(.alreadyExists) { try await store.createGroups(["new", "old"], members: ["alice"]) }
            #expect(try await store.group(named: "new") == nil)
            #expect(try await store.group(named: "old")?.users == [])
            #expect(try await store.groups().total == 1)
        }
    }

    @Test("createGroups with an unknown member creates nothing", arguments: StoreKind.engines)
    func createGroupsUnknownMember(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.makeUsers(["alice"])
            await expectStoreError(.notFound) { try await store.createGroups(["g1", "g2"], members: ["alice", "ghost"]) }
            #expect(try await store.groups().total == 0)
            #expect(try await store.requireUser("alice").groups == [])
        }
    }

    @Test("addMembers and removeMembers are idempotent and need known users and groups", arguments: StoreKind.engines)
    func membership(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.makeUsers(["alice", "bob", "carol"])
            _ = try await store.createGroups(["g"], members: ["alice"])
            try await store.addMembers(["alice", "bob", "bob"], toGroup: "g")
            #expect(try await store.group(named: "g")?.users == ["alice", "bob"])
            try await store.addMembers([], toGroup: "g")
            try await store.removeMembers(["alice", "carol"], fromGroup: "g")
            #expect(try await store.group(named: "g")?.users == ["bob"])
            try await store.removeMembers([], fromGroup: "g")

            await expectStoreError(.notFound) { try await store.addMembers(["carol", "ghost"], toGroup: "g") }
            #expect(try await store.group(named: "g")?.users == ["bob"], "a failed add adds nobody")
            await expectStoreError(.notFound) { try await store.removeMembers(["ghost"], fromGroup: "g") }
            await expectStoreError(.notFound) { try await store.addMembers(["alice"], toGroup: "nope") }
            await expectStoreError(.notFound) { try await store.removeMembers(["alice"], fromGroup: "nope") }
        }
    }

    @Test("setGroups replaces a user's memberships exactly", arguments: StoreKind.engines)
    func setGroups(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.makeUsers(["alice", "bob"])
            _ = try await store.createGroups(["a", "b", "c"], members: ["bob"])
            try await store.setGroups(ofUser: "alice", to: ["c", "a", "a"])
            #expect(try await store.requireUser("alice").groups == ["a", "c"])
            try await store.setGroups(ofUser: "alice", to: ["b"])
            #expect(try await store.requireUser("alice").groups == ["b"])
            await expectStoreError(.notFound) { try await store.setGroups(ofUser: "alice", to: ["a", "nope"]) }
            #expect(try await store.requireUser("alice").groups == ["b"], "a failed set changes nothing")
            await expectStoreError(.notFound) { try await store.setGroups(ofUser: "ghost", to: ["a"]) }
            try await store.setGroups(ofUser: "alice", to: [])
            #expect(try await store.requireUser("alice").groups == [])
            #expect(try await store.requireUser("bob").groups == ["a", "b", "c"])
        }
    }

    @Test("setGroupProperties round-trips JSON", arguments: StoreKind.engines)
    func groupProperties(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await store.createGroups(["g"])
            let properties = JSONValue.object([
                "course": .string("Physik 101 / Übung"),
                "limits": .object(["cpu": .number(2.5), "gpus": .number(1)]),
                "tags": .array([.string("a"), .bool(true), .null]),
            ])
            try await store.setGroupProperties("g", properties)
            #expect(try await store.group(named: "g")?.properties == properties)
            try await store.setGroupProperties("g", .object([:]))
            #expect(try await store.group(named: "g")?.properties == .object([:]))
            await expectStoreError(.notFound) { try await store.setGroupProperties("nope", .null) }
        }
    }

    @Test("renameGroup keeps members and properties; refuses conflicts and unknown groups", arguments: StoreKind.engines)
    func renameGroup(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.makeUsers(["alice"])
            _ = try await store.createGroups(["old", "other"], members: ["alice"])
            try await store.setGroupProperties("old", .object(["k": .string("v")]))
            let before = try #require(try await store.group(named: "old"))
            try await store.renameGroup("old", to: "new")
            let after = try #require(try await store.group(named: "new"))
            #expect(after.id == before.id)
            #expect(after.users == ["alice"])
            #expect(after.properties == .object(["k": .string("v")]))
            #expect(try await store.group(named: "old") == nil)
            #expect(try await store.requireUser("alice").groups == ["new", "other"])
            await expectStoreError(.alreadyExists) { try await store.renameGroup("new", to: "other") }
            await expectStoreError(.notFound) { try await store.renameGroup("old", to: "x") }
        }
    }

    @Test("deleteGroup removes the group and its memberships only", arguments: StoreKind.engines)
    func deleteGroup(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.makeUsers(["alice"])
            _ = try await store.createGroups(["g", "h"], members: ["alice"])
            #expect(try await store.deleteGroup("g"))
            #expect(try await store.group(named: "g") == nil)
            #expect(try await store.requireUser("alice").groups == ["h"])
            #expect(try await !store.deleteGroup("g"))
            #expect(try await store.userCount() == 1)
        }
    }

    @Test("groups pages by name with a total, optionally restricted to names", arguments: StoreKind.engines)
    func groupsPaging(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            try await store.makeUsers(["alice"])
            _ = try await store.createGroups(["d", "b", "a", "e", "c"])
            try await store.addMembers(["alice"], toGroup: "c")
            let all = try await store.groups()
            #expect(all.groups.map(\.name) == ["a", "b", "c", "d", "e"])
            #expect(all.total == 5)
            let page = try await store.groups(offset: 1, limit: 2)
            #expect(page.groups.map(\.name) == ["b", "c"])
            #expect(page.groups[1].users == ["alice"])
            #expect(page.total == 5)
            #expect(try await store.groups(offset: 4).groups.map(\.name) == ["e"])
            #expect(try await store.groups(offset: 9).groups.isEmpty)
            #expect(try await store.groups(limit: 0).groups.isEmpty)
            let some = try await store.groups(limit: 1, names: ["e", "c", "zz"])
            #expect(some.groups.map(\.name) == ["c"])
            #expect(some.total == 2)
            let none = try await store.groups(names: [])
            #expect(none.groups.isEmpty && none.total == 0)
        }
    }
}
