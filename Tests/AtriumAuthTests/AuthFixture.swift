@testable import AtriumAuth
import AtriumStore
import Foundation
import Logging
import Testing

/// A fixed instant (2027-01-15T08:00:00Z); tests pass `now:` instead of waiting.
let t0 = Date(timeIntervalSince1970: 1_800_000_000)

let testLogger: Logger = {
    var logger = Logger(label: "atrium.auth-tests")
    logger.logLevel = .critical
    return logger
}()

/// A native-mode configuration with a cheap bcrypt cost and a small lockout limit.
func testConfiguration(_ configure: (inout AuthConfiguration) -> Void = { _ in }) -> AuthConfiguration {
    var configuration = AuthConfiguration()
    configuration.bcryptCost = 4
    configuration.maxFailedLogins = 3
    configuration.lockoutDuration = .seconds(600)
    configuration.failureWindow = .seconds(600)
    configure(&configuration)
    return configuration
}

/// Runs `body` with an authenticator over a fresh, migrated store at `location` (default
/// `:memory:`), closing the store afterwards.
@discardableResult
func withAuthenticator<R: Sendable>(
    at location: String = ":memory:", _ configuration: AuthConfiguration = testConfiguration(),
    _ body: (Authenticator, Store) async throws -> R
) async throws -> R {
    let store = try await Store.open(location, logger: testLogger)
    let result: Result<R, any Error>
    do {
        try await store.migrate()
        result = .success(try await body(Authenticator(configuration: configuration, store: store, logger: testLogger), store))
    } catch {
        result = .failure(error)
    }
    try await store.close()
    return try result.get()
}

/// Expects a login to be refused with `refusal`.
func expectRefusal(
    _ refusal: LoginRefusal, sourceLocation: SourceLocation = #_sourceLocation, _ login: () async throws -> UserRecord
) async {
    let error = await #expect(throws: LoginRefusal.self, sourceLocation: sourceLocation) { try await login() }
    #expect(error == refusal, sourceLocation: sourceLocation)
}

/// Expects an account operation to be refused; returns the message.
@discardableResult
func expectAccountError(
    sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> some Any
) async -> String? {
    let error = await #expect(throws: AccountError.self, sourceLocation: sourceLocation) { _ = try await body() }
    return error?.message
}

/// A temporary folder, removed after `body`.
func withTemporaryFolder<R>(_ body: (URL) async throws -> R) async throws -> R {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("atrium-auth-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    return try await body(folder)
}
