import AtriumModel
@testable import AtriumStore
import Foundation
import Testing

/// Failed-login bookkeeping: counting within a window, locking at the limit, and resets.
extension StoreConformanceTests {
    /// Records a failure with limit 3, a 600 s window and a 300 s lockout.
    func fail(_ store: Store, _ name: String = "alice", at seconds: Double) async throws -> LoginFailures {
        try await store.recordLoginFailure(name, now: t0.addingTimeInterval(seconds), limit: 3, window: 600, lockout: 300)
    }

    @Test("failures count up and lock the name at the limit", arguments: StoreKind.engines)
    func failuresLockAtLimit(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            #expect(try await store.loginFailures("alice") == nil)
            let first = try await fail(store, at: 0)
            #expect(first == LoginFailures(name: "alice", count: 1, lastFailure: t0, lockedUntil: nil))
            #expect(try await fail(store, at: 10).count == 2)
            let third = try await fail(store, at: 20)
            #expect(third.count == 3)
            #expect(third.lockedUntil == t0.addingTimeInterval(320))
            #expect(try await store.loginFailures("alice") == third)
            // Another failure while locked counts but does not extend the lock.
            let fourth = try await fail(store, at: 30)
            #expect(fourth.count == 4)
            #expect(fourth.lockedUntil == t0.addingTimeInterval(320))
            #expect(try await store.loginFailures("bob") == nil, "counts are per name")
        }
    }

    @Test("failures further apart than the window start again", arguments: StoreKind.engines)
    func windowResets(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await fail(store, at: 0)
            _ = try await fail(store, at: 100)
            let late = try await fail(store, at: 701)
            #expect(late.count == 1)
            #expect(late.lockedUntil == nil)
            #expect(try await fail(store, at: 1301).count == 2, "exactly the window apart still counts")
        }
    }

    @Test("a failure after the lock expired starts a new count", arguments: StoreKind.engines)
    func expiredLockResets(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            for s in [0.0, 1, 2] { _ = try await fail(store, at: s) }
            #expect(try await store.loginFailures("alice")?.lockedUntil == t0.addingTimeInterval(302))
            let after = try await fail(store, at: 302)
            #expect(after.count == 1)
            #expect(after.lockedUntil == nil)
            _ = try await fail(store, at: 303)
            #expect(try await fail(store, at: 304).lockedUntil == t0.addingTimeInterval(604))
        }
    }

    @Test("clearLoginFailures forgets a name; limit 0 never locks", arguments: StoreKind.engines)
    func clearAndNoLimit(_ kind: StoreKind) async throws {
        try await withStore(kind) { store in
            _ = try await fail(store, at: 0)
            _ = try await fail(store, "bob", at: 0)
            try await store.clearLoginFailures("alice")
            #expect(try await store.loginFailures("alice") == nil)
            #expect(try await store.loginFailures("bob")?.count == 1)
            try await store.clearLoginFailures("nobody")
            for i in 0..<10 {
                let r = try await store.recordLoginFailure("carol", now: t0.addingTimeInterval(Double(i)), limit: 0, window: 600, lockout: 300)
                #expect(r.lockedUntil == nil)
            }
            #expect(try await store.loginFailures("carol")?.count == 10)
        }
    }
}
