import AtriumModel
@testable import AtriumStore
import Foundation
import Testing

/// Server rows: save (insert or update), listing by user, active servers, activity, deletion.
extension StoreConformanceTests {
    @Test("saveServer inserts, then updates the same (user, name) row", arguments: StoreKind.engines)
    func saveServer(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let alice = try await store.makeUsers(["alice"])[0]
            let inserted = try await store.saveServer(ServerRecord(userID: alice.id, userName: "ignored", name: ""))
            #expect(inserted.id > 0)
            #expect(inserted.userName == "alice", "the user name comes from the users table")
            #expect(inserted.phase == .stopped)
            #expect(inserted.state == .object([:]))
            #expect(inserted.userOptions == .object([:]))
            #expect(inserted.url == nil && inserted.started == nil && inserted.lastActivity == nil)

            var running = inserted
            running.phase = .running
            running.state = .object(["pid": .number(4242), "env": .object(["A": .string("b")]), "args": .array([.string("--x")])])
            running.url = "http://127.0.0.1:50123/user/alice/"
            running.started = t0
            running.lastActivity = t0.addingTimeInterval(5)
            running.userOptions = .object(["profile": .string("gpu")])
            let updated = try await store.saveServer(running)
            #expect(updated == running)
            #expect(updated.id == inserted.id)

            var stopped = updated
            stopped.phase = .stopped
            stopped.url = nil
            stopped.started = nil
            #expect(try await store.saveServer(stopped) == stopped)
            #expect(try await store.servers(ofUserIDs: [alice.id])[alice.id] == [stopped])
        }
    }

    @Test("servers(ofUserIDs:) returns each user's servers sorted by name", arguments: StoreKind.engines)
    func serversOfUsers(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let users = try await store.makeUsers(["alice", "bob", "carol"])
            let (alice, bob) = (users[0], users[1])
            for name in ["lab", "", "gpu"] {
                try await store.saveServer(ServerRecord(userID: alice.id, userName: "alice", name: name))
            }
            try await store.saveServer(ServerRecord(userID: bob.id, userName: "bob", name: "lab", phase: .running))
            let aliceOnly = try await store.servers(ofUserIDs: [alice.id])
            #expect(Array(aliceOnly.keys) == [alice.id])
            #expect(aliceOnly[alice.id]?.map(\.name) == ["", "gpu", "lab"])
            let all = try await store.servers()
            #expect(Set(all.keys) == [alice.id, bob.id])
            #expect(all[bob.id]?.map(\.name) == ["lab"])
            #expect(try await store.servers(ofUserIDs: []).isEmpty)
            #expect(try await store.servers(ofUserIDs: [users[2].id]).isEmpty)
        }
    }

    @Test("activeServers lists every server that is not stopped", arguments: StoreKind.engines)
    func activeServers(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let alice = try await store.makeUsers(["alice"])[0]
            for phase in ServerPhase.allCases {
                try await store.saveServer(ServerRecord(userID: alice.id, userName: "alice", name: "s-\(phase.rawValue)", phase: phase))
            }
            let active = try await store.activeServers()
            #expect(active.map(\.phase) == ServerPhase.allCases.filter { $0 != .stopped })
            #expect(active.allSatisfy { $0.userName == "alice" })
        }
    }

    @Test("recordServerActivity keeps the latest time and bumps the user's activity", arguments: StoreKind.engines)
    func serverActivity(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let users = try await store.makeUsers(["alice", "bob"])
            let (alice, bob) = (users[0], users[1])
            try await store.saveServer(ServerRecord(userID: alice.id, userName: "alice", name: "", phase: .running))
            try await store.saveServer(ServerRecord(userID: alice.id, userName: "alice", name: "lab", phase: .running))
            try await store.recordUserActivity("alice", at: t0.addingTimeInterval(100))

            try await store.recordServerActivity([
                (userID: alice.id, server: "", at: t0.addingTimeInterval(50)),
                (userID: alice.id, server: "lab", at: t0.addingTimeInterval(200)),
                (userID: alice.id, server: "", at: t0.addingTimeInterval(40)),
            ])
            var servers = try await store.servers(ofUserIDs: [alice.id])[alice.id] ?? []
            #expect(servers.map(\.lastActivity) == [t0.addingTimeInterval(50), t0.addingTimeInterval(200)])
            #expect(try await store.requireUser("alice").lastActivity == t0.addingTimeInterval(200))

            try await store.recordServerActivity([(userID: alice.id, server: "lab", at: t0.addingTimeInterval(150))])
            servers = try await store.servers(ofUserIDs: [alice.id])[alice.id] ?? []
            #expect(servers.last?.lastActivity == t0.addingTimeInterval(200), "an older report does not go back")
            #expect(try await store.requireUser("alice").lastActivity == t0.addingTimeInterval(200))
            #expect(try await store.requireUser("bob").lastActivity == nil)
            try await store.recordServerActivity([])
            _ = bob
        }
    }

    @Test("deleteServer deletes one row", arguments: StoreKind.engines)
    func deleteServer(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let users = try await store.makeUsers(["alice", "bob"])
            try await store.saveServer(ServerRecord(userID: users[0].id, userName: "alice", name: "lab"))
            try await store.saveServer(ServerRecord(userID: users[1].id, userName: "bob", name: "lab"))
            #expect(try await !store.deleteServer(userID: users[0].id, name: ""))
            #expect(try await store.deleteServer(userID: users[0].id, name: "lab"))
            #expect(try await !store.deleteServer(userID: users[0].id, name: "lab"))
            #expect(try await store.servers(ofUserIDs: [users[0].id]).isEmpty)
            #expect(try await store.servers(ofUserIDs: [users[1].id])[users[1].id]?.count == 1)
        }
    }

    @Test("serverCountsByPhase counts rows per phase, zero for absent phases (metrics)", arguments: StoreKind.engines)
    func serverCountsByPhase(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let empty = try await store.serverCountsByPhase()
            #expect(empty == Dictionary(uniqueKeysWithValues: ServerPhase.allCases.map { ($0, 0) }))
            let users = try await store.makeUsers(["alice", "bob"])
            let (alice, bob) = (users[0], users[1])
            try await store.saveServer(ServerRecord(userID: alice.id, userName: "alice", name: "", phase: .running))
            try await store.saveServer(ServerRecord(userID: alice.id, userName: "alice", name: "lab", phase: .pending))
            try await store.saveServer(ServerRecord(userID: bob.id, userName: "bob", name: "", phase: .running))
            try await store.saveServer(ServerRecord(userID: bob.id, userName: "bob", name: "old", phase: .stopped))
            let counts = try await store.serverCountsByPhase()
            #expect(counts[.running] == 2)
            #expect(counts[.pending] == 1)
            #expect(counts[.stopped] == 1)
            #expect(counts[.failed] == 0 && counts[.suspended] == 0 && counts[.stopping] == 0)
        }
    }
}
