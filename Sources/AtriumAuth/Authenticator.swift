import AtriumModel
import AtriumStore
import Foundation
import Logging
import Synchronization

/// Why a login was refused. The message is safe to show on the login page; it never tells
/// whether a name exists.
public enum LoginRefusal: Error, Sendable, Equatable {
    case invalidCredentials
    case lockedOut(until: Date)
    case awaitingApproval
    case revoked
    case notAllowed

    /// What the login page says.
    public var message: String {
        switch self {
        case .invalidCredentials: "Invalid username or password."
        case .lockedOut(let until):
            "Too many failed logins: this account is locked until \(Timestamp.format(until).prefix(19).replacingOccurrences(of: "T", with: " ")) UTC."
        case .awaitingApproval: "Your account is waiting for an administrator's approval."
        case .revoked: "Your account's approval was revoked: ask an administrator."
        case .notAllowed: "This user is not allowed to log in here."
        }
    }
}

/// Why a signup or password change was refused.
public struct AccountError: Error, Sendable, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
}

/// Checks credentials, creates accounts, changes passwords. Stateless: every fact (accounts,
/// failure counts, lockouts) lives in the store, so restarts change nothing.
public struct Authenticator: Sendable {
    public let configuration: AuthConfiguration
    let store: Store
    let hasher: PasswordHasher
    let logger: Logger

    public init(configuration: AuthConfiguration, store: Store, logger: Logger) {
        self.configuration = configuration
        self.store = store
        self.hasher = PasswordHasher(cost: configuration.bcryptCost)
        self.logger = logger
    }

    /// Normalizes a typed user name as JupyterHub does: trimmed and lower-cased.
    public static func normalize(_ name: String) -> String {
        NameRules.canonical(name.trimmingCharacters(in: .whitespacesAndNewlines).lowercased())
    }

    /// Logs `name` in with `password`, returning the user or throwing a ``LoginRefusal``.
    /// Failures count towards a lockout, kept in the store.
    ///
    /// Two throttles: by name (``AuthConfiguration/maxFailedLogins``) and by the client's
    /// network `address` (``AuthConfiguration/maxFailedLoginsPerAddress``, failures under any
    /// names: guessing many names, or the one shared password). A locked login is refused
    /// without its password being checked, so a lock is no oracle. One exception keeps admins
    /// from being locked out by an attacker: an admin coming from an address they logged in
    /// from before (since the hub started) has the password checked, and the right one lifts
    /// the locks. `atrium user unlock` lifts them too.
    public func login(name rawName: String, password: String, address: String? = nil, now: Date = Date()) async throws -> UserRecord {
        let name = Self.normalize(rawName)
        guard (try? UserName(name)) != nil else { throw LoginRefusal.invalidCredentials }
        let addressKey = address.map(Self.addressKey)
        var lockedUntil: Date?
        for key in [name] + (addressKey.map { [$0] } ?? []) {
            if let failures = try await store.loginFailures(key), let until = failures.lockedUntil, until > now {
                lockedUntil = max(lockedUntil ?? until, until)
            }
        }
        if let lockedUntil, !(address.map { knownAdminAddress(name: name, address: $0) } ?? false) {
            throw LoginRefusal.lockedOut(until: lockedUntil)
        }
        let user = try await checkCredentials(name: name, password: password, addressKey: addressKey, now: now)
        if user.admin, let address { rememberAdminAddress(name: name, address: address) }
        if let addressKey, lockedUntil != nil { try await store.clearLoginFailures(addressKey) }
        return user
    }

    /// The `login_failures` key of a network address: never a user name (names have no `/`).
    public static func addressKey(_ address: String) -> String { "/address/" + address }

    /// Admins' addresses of successful logins since the hub started (a few per admin).
    final class KnownAddresses: Sendable {
        let byName = Mutex<[String: [String]]>([:])
    }

    private let adminAddresses = KnownAddresses()

    private func knownAdminAddress(name: String, address: String) -> Bool {
        adminAddresses.byName.withLock { $0[name]?.contains(address) ?? false }
    }

    private func rememberAdminAddress(name: String, address: String) {
        adminAddresses.byName.withLock { known in
            var list = known[name, default: []].filter { $0 != address }
            list.append(address)
            known[name] = Array(list.suffix(8))
        }
    }

    private func checkCredentials(name: String, password: String, addressKey: String?, now: Date) async throws -> UserRecord {
        let user: UserRecord
        switch configuration.mode {
        case .native:
            let existing = try await store.user(named: name)
            let hash: String
            if let stored = existing?.passwordHash { hash = stored } else { hash = try await hasher.decoyHash() }
            let ok = try await hasher.verify(password, hash: hash)
            guard ok, let existing, existing.passwordHash != nil else { try await fail(name, addressKey, now) }
            user = existing
        case .sharedPassword:
            let isAdmin = configuration.adminUsers.contains(name)
            let expected = isAdmin ? configuration.adminPassword : configuration.sharedPassword
            guard let expected, TokenHashing.constantTimeEqual(password, expected) else { try await fail(name, addressKey, now) }
            guard configuration.permits(name) else { throw LoginRefusal.notAllowed }
            if let existing = try await store.user(named: name) {
                user = existing
            } else {
                _ = try await store.createUsers([NewUser(name: name, admin: isAdmin)], now: now)
                guard let created = try await store.user(named: name) else { throw LoginRefusal.invalidCredentials }
                user = created
            }
        }
        guard configuration.permits(name) else { throw LoginRefusal.notAllowed }
        switch user.approval {
        case .approved: break
        case .pending: throw LoginRefusal.awaitingApproval
        case .revoked: throw LoginRefusal.revoked
        }
        try await store.clearLoginFailures(name)
        return user
    }

    private func fail(_ name: String, _ addressKey: String?, _ now: Date) async throws -> Never {
        let record = try await store.recordLoginFailure(
            name, now: now, limit: configuration.maxFailedLogins,
            window: configuration.failureWindow.seconds, lockout: configuration.lockoutDuration.seconds)
        var lockedUntil = record.lockedUntil
        var byAddress = 0
        if let addressKey, configuration.maxFailedLoginsPerAddress > 0 {
            let forAddress = try await store.recordLoginFailure(
                addressKey, now: now, limit: configuration.maxFailedLoginsPerAddress,
                window: configuration.failureWindow.seconds, lockout: configuration.lockoutDuration.seconds)
            byAddress = forAddress.count
            if let until = forAddress.lockedUntil { lockedUntil = max(lockedUntil ?? until, until) }
        }
        logger.notice(
            "login failed",
            metadata: ["atrium.user": "\(name)", "atrium.failures": "\(record.count)", "atrium.address_failures": "\(byAddress)"])
        if let until = lockedUntil, until > now { throw LoginRefusal.lockedOut(until: until) }
        throw LoginRefusal.invalidCredentials
    }

    /// Signs up a native account. New accounts wait for approval unless signup is open or the
    /// name is a configured admin. Returns the new user.
    public func signup(name rawName: String, password: String, now: Date = Date()) async throws -> UserRecord {
        guard configuration.mode == .native, configuration.enableSignup else {
            throw AccountError("Signup is not enabled on this hub.")
        }
        let name = Self.normalize(rawName)
        do { _ = try UserName(name) } catch { throw AccountError("Invalid user name: \(error.rule).") }
        guard configuration.permits(name) else { throw AccountError("This user name is not allowed to sign up here.") }
        if let problem = configuration.passwordPolicy.problem(with: password, forUser: name) { throw AccountError(problem) }
        if try await store.user(named: name) != nil { throw AccountError("The user name \(name) is taken.") }
        let isAdmin = configuration.adminUsers.contains(name)
        let hash = try await hasher.hash(password)
        let approval: Approval = (configuration.openSignup || isAdmin) ? .approved : .pending
        let result = try await store.createUsers(
            [NewUser(name: name, admin: isAdmin, approval: approval, passwordHash: hash)], now: now)
        guard let user = result.created.first else { throw AccountError("The user name \(name) is taken.") }
        logger.info("signup", metadata: ["atrium.user": "\(name)", "atrium.approval": "\(approval.rawValue)"])
        return user
    }

    /// Changes a user's own password after checking the current one.
    public func changePassword(name: String, current: String, new: String) async throws {
        guard configuration.mode == .native else { throw AccountError("Passwords are shared on this hub and cannot be changed here.") }
        guard let user = try await store.user(named: name), let hash = user.passwordHash,
              try await hasher.verify(current, hash: hash)
        else { throw AccountError("The current password is not correct.") }
        try await setPassword(name: name, new)
    }

    /// Sets a user's password (an admin's reset, or the CLI), checking the policy. Ends the
    /// user's other sessions and clears any lockout.
    public func setPassword(name: String, _ password: String) async throws {
        if let problem = configuration.passwordPolicy.problem(with: password, forUser: name) { throw AccountError(problem) }
        let hash = try await hasher.hash(password)
        try await store.setPasswordHash(name, hash)
        try await store.clearLoginFailures(name)
    }

    /// A new random password for an account an admin creates or resets: 12 characters in
    /// three groups (`k7mp-q2xw-9fhd`), from an alphabet without look-alikes (about 59 bits).
    public static func generatedPassword() -> String {
        let alphabet = Array("abcdefghjkmnpqrstuvwxyz23456789")
        var generator = SystemRandomNumberGenerator()
        let groups = (0..<3).map { _ in String((0..<4).map { _ in alphabet.randomElement(using: &generator)! }) }
        return groups.joined(separator: "-")
    }

    /// Hashes a password for a user created elsewhere (bulk creation, CLI).
    public func hash(_ password: String) async throws -> String { try await hasher.hash(password) }
}
