import AtriumModel
@testable import AtriumStore
import Foundation
import Testing

/// The admin panel's user filters that JupyterHub's API has no name for (idle).
extension StoreConformanceTests {
    @Test("adminIdleFilter: idle means a running server quiet since the cut-off, combined with other filters", arguments: StoreKind.engines)
    func adminIdleFilter(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            let users = try await store.makeUsers(["busy", "quiet", "never", "stopped", "pending"])
            func server(_ user: UserRecord, _ phase: ServerPhase, started: Date?, activity: Date?) async throws {
                var record = ServerRecord(userID: user.id, userName: user.name, name: "")
                record.phase = phase
                record.started = started
                record.lastActivity = activity
                _ = try await store.saveServer(record)
            }
            try await server(users[0], .running, started: t0, activity: t0.addingTimeInterval(3000))
            try await server(users[1], .running, started: t0, activity: t0.addingTimeInterval(100))
            try await server(users[2], .running, started: t0, activity: nil)
            try await server(users[3], .stopped, started: nil, activity: t0)
            try await server(users[4], .pending, started: t0, activity: nil)
            var query = UserQuery()
            query.sort = .name
            query.idleBefore = t0.addingTimeInterval(1000)
            let idle = try await store.users(query)
            #expect(idle.users.map(\.name) == ["never", "quiet"])
            #expect(idle.total == 2)
            query.nameFilter = "QUI"
            #expect(try await store.users(query).users.map(\.name) == ["quiet"])
            query.nameFilter = nil
            query.limit = 1
            query.offset = 1
            let page = try await store.users(query)
            #expect(page.users.map(\.name) == ["quiet"])
            #expect(page.total == 2)
        }
    }
}
