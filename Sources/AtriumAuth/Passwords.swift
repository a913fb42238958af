import Foundation
import HummingbirdBcrypt
import NIOPosix
import Synchronization

/// Rules a new password must meet.
public struct PasswordPolicy: Sendable, Equatable {
    /// Fewest characters accepted.
    public var minimumLength: Int
    /// Refuse passwords from the shipped list of the most common ones.
    public var rejectCommon: Bool

    public init(minimumLength: Int = 8, rejectCommon: Bool = true) {
        self.minimumLength = minimumLength
        self.rejectCommon = rejectCommon
    }

    /// The shipped list, parsed once.
    static let commonPasswords: Set<Substring> = Set(commonPasswordText.split(separator: "\n"))

    /// Returns why `password` is refused for user `name`, or `nil` when it is acceptable.
    public func problem(with password: String, forUser name: String) -> String? {
        if password.count < minimumLength {
            return "Password too short: use at least \(minimumLength) characters."
        }
        if password.lowercased() == name.lowercased() {
            return "Password must not be the same as the user name."
        }
        if rejectCommon, Self.commonPasswords.contains(Substring(password.lowercased())) {
            return "This password is one of the most common passwords: choose another."
        }
        return nil
    }
}

/// bcrypt hashing, run on NIO's blocking thread pool so the cost never stalls request handling.
public struct PasswordHasher: Sendable {
    /// bcrypt cost (log2 rounds). 12 in production; tests lower it.
    public var cost: UInt8

    public init(cost: UInt8 = 12) { self.cost = cost }

    /// The bcrypt hash of `password`.
    public func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    /// Whether `password` matches `hash` (bcrypt's comparison is constant-time).
    public func verify(_ password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }

    /// Decoy hashes by cost, made once each.
    private static let decoys = Mutex<[UInt8: String]>([:])

    /// A hash of a random password at this hasher's cost, compared against when the user does
    /// not exist (or has no password), so a login for an unknown name takes as long as one for
    /// a known name: the time of a failed login does not tell whether the name exists.
    public func decoyHash() async throws -> String {
        if let made = Self.decoys.withLock({ $0[cost] }) { return made }
        let made = try await hash(UUID().uuidString)
        return Self.decoys.withLock { decoys in
            if let first = decoys[cost] { return first }
            decoys[cost] = made
            return made
        }
    }
}
