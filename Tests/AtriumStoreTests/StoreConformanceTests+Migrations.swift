import AtriumStore
import Foundation
import Testing

@Suite("Migrations against a concurrent migrator")
struct MigrationRaceTests {
    /// PostgreSQL here; SQLite's case runs as separate `atrium migrate` processes (in one process
    /// several SQLite file connections starve each other, see `sqliteFileConcurrentWrites`) in
    /// the end-to-end tests.
    @Test("four stores migrating one new database at once: every one succeeds, each migration applied once",
          arguments: StoreKind.includesPostgres ? [StoreKind.postgres] : [])
    func concurrentMigrators(_ kind: StoreKind) async throws {
        let database = try await TestDatabase.create(kind)
        var stores: [Store] = []
        do {
            for _ in 0..<4 { stores.append(try await Store.open(database.location, logger: TestEnvironment.logger)) }
            let results = await withTaskGroup(of: Result<[Int], any Error>.self) { group in
                for store in stores {
                    group.addTask {
                        do { return .success(try await store.migrate()) } catch { return .failure(error) }
                    }
                }
                var all: [Result<[Int], any Error>] = []
                for await result in group { all.append(result) }
                return all
            }
            var applied: [Int] = []
            for result in results {
                switch result {
                case .success(let versions): applied += versions
                case .failure(let error): Issue.record("a concurrent migrator failed: \(String(reflecting: error))")
                }
            }
            #expect(applied.sorted() == Array(1...Store.latestSchemaVersion), "\(applied)")
            #expect(try await stores[0].currentSchemaVersion() == Store.latestSchemaVersion)
            _ = try await stores[1].createUsers([NewUser(name: "after-the-race")])
        } catch {
            Issue.record(error)
        }
        for store in stores { try? await store.close() }
        try await database.destroy()
    }
}
