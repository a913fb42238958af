#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import Logging
import Synchronization

/// The Unix account a workspace runs as.
public struct SystemAccount: Sendable, Equatable, Codable {
    public var name: String
    public var uid: UInt32
    public var gid: UInt32
    /// Supplementary groups (the primary one included).
    public var groups: [UInt32]
    public var home: String
}

/// Whether system accounts are made by the hub or must already exist.
public enum SystemAccountSource: String, Sendable, CaseIterable {
    /// The hub runs `useradd` for each hub user and remembers the name it chose.
    case create
    /// Each hub user's account already exists under the hub name (as JupyterHub's
    /// LocalAuthenticator without `create_system_users`).
    case existing
}

/// Binds hub users to Unix accounts, as the seed's course hub does: one account per hub user,
/// named `<prefix><readable part>[-<hash>]`, home `<workspaces root>/<account>` (mode 0700). The
/// binding is kept in a file (`accounts.json`, mode 0600) by the hub user's id, so a renamed
/// hub user keeps their account and files, and a new user with an old name never gets them.
/// Accounts the hub made carry `Atrium user <id>` in their comment field; an account with the
/// chosen name that does not is never taken over.
public final class SystemAccounts: Sendable {
    public struct Settings: Sendable, Equatable {
        public var source: SystemAccountSource = .create
        public var prefix = "atrium-"
        public var shell = "/bin/bash"
        public var homesRoot: String
        public var mappingFile: String
        /// `useradd` and `userdel` (tests point these elsewhere).
        public var useradd = "/usr/sbin/useradd"
        public var userdel = "/usr/sbin/userdel"

        public init(homesRoot: String, mappingFile: String) {
            self.homesRoot = homesRoot
            self.mappingFile = mappingFile
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    struct Binding: Codable, Equatable {
        var account: String
        /// The hub name when the binding was last used (for `deleteForever` by name).
        var user: String
    }

    public let settings: Settings
    let logger: Logger
    /// Hub user id -> binding, as in the mapping file.
    private let bindings: Mutex<[Int64: Binding]>
    /// One account change at a time: `useradd` locks /etc/passwd and fails when it is taken.
    private let changes = AccountChanges()

    public init(settings: Settings, logger: Logger) throws {
        self.settings = settings
        self.logger = logger
        var loaded: [Int64: Binding] = [:]
        if let data = FileManager.default.contents(atPath: settings.mappingFile) {
            do {
                let raw = try JSONDecoder().decode([String: Binding].self, from: data)
                for (key, value) in raw { if let id = Int64(key) { loaded[id] = value } }
            } catch {
                throw Failure(description: "\(settings.mappingFile) is not a valid account mapping (\(error)); restore it from a backup")
            }
        }
        bindings = Mutex(loaded)
    }

    /// Unix names: `[a-z_][a-z0-9_-]{0,31}`.
    static func isValidUnixName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...32).contains(bytes.count) else { return false }
        for (i, b) in bytes.enumerated() {
            let lower = b >= 0x61 && b <= 0x7A, digit = b >= 0x30 && b <= 0x39
            if !(lower || b == 0x5F || (i > 0 && (digit || b == 0x2D))) { return false }
        }
        return true
    }

    /// The account name for `user`: `prefix + name` when the name is already a valid lower-case
    /// Unix name that fits; otherwise `prefix + readable part + "-" + hash` (the hash of the
    /// exact name, with `attempt` mixed in when an earlier candidate was taken).
    static func candidateName(for user: String, prefix: String, attempt: Int = 0) -> String {
        let plain = prefix + user
        if attempt == 0, isValidUnixName(plain) { return plain }
        var digest = Array(SHA256.hash(data: Data((attempt == 0 ? user : "\(user)#\(attempt)").utf8)))
        // 40 bits in base 32: 8 characters.
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567".utf8)
        var hash = ""
        var bits: UInt64 = 0
        for i in 0..<5 { bits = (bits << 8) | UInt64(digest[i]) }
        for i in 0..<8 { hash.unicodeScalars.append(Unicode.Scalar(alphabet[Int((bits >> UInt64(35 - 5 * i)) & 31)])) }
        digest.removeAll()
        var readable = ""
        for scalar in user.lowercased().unicodeScalars {
            let v = scalar.value
            if (v >= 0x61 && v <= 0x7A) || (v >= 0x30 && v <= 0x39) || v == 0x5F || v == 0x2D { readable.unicodeScalars.append(scalar) }
        }
        let room = max(0, 32 - prefix.utf8.count - 9)
        readable = String(readable.prefix(room))
        let name = readable.isEmpty ? prefix + hash : prefix + readable + "-" + hash
        // A prefix of "" and a readable part starting with a digit or '-': lead with '_'.
        if let first = name.utf8.first, !(first >= 0x61 && first <= 0x7A) && first != 0x5F { return String(("_" + name).prefix(32)) }
        return name
    }

    /// The marker in the comment field of accounts the hub made.
    static func marker(userID: Int64) -> String { "Atrium user \(userID)" }

    /// The account of hub user `userID` (named `user` now), made now when needed.
    public func account(user: String, userID: Int64) async throws -> SystemAccount {
        switch settings.source {
        case .existing:
            guard let found = Self.lookup(user) else {
                throw Failure(description: "there is no system account named \(user) (local.system_users is existing): create it with `useradd -m \(user)`, or set local.system_users: create")
            }
            guard found.uid != 0 else { throw Failure(description: "\(user) is the system account of root; workspaces never run as root") }
            return found
        case .create:
            if let binding = bindings.withLock({ $0[userID] }), let found = Self.lookup(binding.account) {
                if binding.user != user { try remember(userID, Binding(account: binding.account, user: user)) }
                return found
            }
            return try await changes.run { try self.create(user: user, userID: userID) }
        }
    }

    /// The account bound to a hub user, if one exists (never creates).
    public func existingAccount(user: String, userID: Int64?) -> SystemAccount? {
        switch settings.source {
        case .existing: return Self.lookup(user)
        case .create:
            let binding = bindings.withLock { map in userID.flatMap { map[$0] } ?? map.values.first { $0.user == user } }
            return binding.flatMap { Self.lookup($0.account) }
        }
    }

    private func create(user: String, userID: Int64) throws -> SystemAccount {
        // Someone else may have made it while this call waited.
        if let binding = bindings.withLock({ $0[userID] }), let found = Self.lookup(binding.account) { return found }
        let taken = Set(bindings.withLock { $0.filter { $0.key != userID }.map(\.value.account) })
        for attempt in 0..<8 {
            let name = Self.candidateName(for: user, prefix: settings.prefix, attempt: attempt)
            guard Self.isValidUnixName(name) else {
                throw Failure(description: "local.system_user_prefix '\(settings.prefix)' does not make a valid Unix name (\(name))")
            }
            if taken.contains(name) { continue }
            if let existing = Self.lookup(name) {
                if Self.comment(of: name) == Self.marker(userID: userID) {
                    // Made by this hub for this user (the mapping file was lost): take it back.
                    try remember(userID, Binding(account: name, user: user))
                    return existing
                }
                if attempt == 0, Self.comment(of: name)?.hasPrefix("Atrium user ") != true {
                    throw Failure(description: "the system account \(name) exists and was not made by Atrium; it is not taken over. Rename the hub user, or remove or rename that account")
                }
                continue
            }
            let home = "\(settings.homesRoot)/\(name)"
            try FileManager.default.createDirectory(atPath: settings.homesRoot, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o711])
            let began = ContinuousClock.now
            let arguments = ["--create-home", "--home-dir", home, "--shell", settings.shell, "--comment", Self.marker(userID: userID), "--user-group", "--no-log-init", "--key", "HOME_MODE=0700", name]
            let (status, output) = Self.run(settings.useradd, arguments)
            guard status == 0 else {
                // Nothing half made: useradd either made the account or not; a home it left goes.
                if Self.lookup(name) == nil, FileManager.default.fileExists(atPath: home), Self.owner(of: home) != 0 { try? FileManager.default.removeItem(atPath: home) }
                throw Failure(description: "could not create the system account \(name) for \(user): useradd said: \(output.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
            guard let made = Self.lookup(name) else { throw Failure(description: "useradd made \(name), but it cannot be found") }
            chmod(home, 0o700)
            do {
                try remember(userID, Binding(account: name, user: user))
            } catch {
                _ = Self.run(settings.userdel, ["--remove", name])
                throw error
            }
            let took = ContinuousClock.now - began
            logger.notice("created a system account", metadata: [
                "atrium.user": "\(user)", "atrium.account": "\(name)", "atrium.uid": "\(made.uid)",
                "atrium.useradd_ms": "\(Double(took.components.seconds) * 1000 + Double(took.components.attoseconds) / 1e15)",
            ])
            return made
        }
        throw Failure(description: "no free system account name for \(user); set another local.system_user_prefix")
    }

    /// Deletes the account bound to the hub user, with its home. Nothing when there is none or
    /// the accounts are not the hub's to delete (`existing`).
    public func delete(user: String, userID: Int64?) async throws {
        guard settings.source == .create else { return }
        try await changes.run {
            let entry = self.bindings.withLock { map in
                userID.flatMap { id in map[id].map { (id, $0) } } ?? map.first { $0.value.user == user }.map { ($0.key, $0.value) }
            }
            guard let (id, binding) = entry else { return }
            if Self.lookup(binding.account) != nil {
                guard Self.comment(of: binding.account) == Self.marker(userID: id) else {
                    throw Failure(description: "the system account \(binding.account) is not marked as made by Atrium for \(user); not deleted")
                }
                Self.killAll(uid: Self.lookup(binding.account)!.uid)
                let (status, output) = Self.run(self.settings.userdel, ["--remove", binding.account])
                // 12: the home could not be removed (already gone is fine).
                if status != 0 && status != 12 {
                    throw Failure(description: "could not delete the system account \(binding.account): userdel said: \(output.trimmingCharacters(in: .whitespacesAndNewlines))")
                }
            }
            let home = "\(self.settings.homesRoot)/\(binding.account)"
            if FileManager.default.fileExists(atPath: home) { try FileManager.default.removeItem(atPath: home) }
            try self.forget(id)
            self.logger.notice("deleted a system account and its home", metadata: ["atrium.user": "\(user)", "atrium.account": "\(binding.account)"])
        }
    }

    private func remember(_ id: Int64, _ binding: Binding) throws {
        try bindings.withLock { map in
            var next = map
            next[id] = binding
            try Self.save(next, to: settings.mappingFile)
            map = next
        }
    }

    private func forget(_ id: Int64) throws {
        try bindings.withLock { map in
            var next = map
            next[id] = nil
            try Self.save(next, to: settings.mappingFile)
            map = next
        }
    }

    static func save(_ map: [Int64: Binding], to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let data = try encoder.encode(Dictionary(uniqueKeysWithValues: map.map { (String($0.key), $0.value) }))
        let temporary = path + ".new"
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o600]) else {
            throw Failure(description: "cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else { throw Failure(description: "cannot replace \(path): \(String(cString: strerror(errno)))") }
    }

    /// The account named `name` from the system's user database (NSS), with its groups.
    static func lookup(_ name: String) -> SystemAccount? {
        guard let (uid, gid, home, _) = passwdEntry(name) else { return nil }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(name, gid, &groups, &count)
        }
        return SystemAccount(name: name, uid: uid, gid: gid, groups: Array(groups.prefix(Int(max(0, count)))), home: home)
    }

    /// The comment (GECOS) field of an account.
    static func comment(of name: String) -> String? {
        passwdEntry(name)?.comment
    }

    /// The user database's (NSS) entry for `name`.
    static func passwdEntry(_ name: String) -> (uid: UInt32, gid: UInt32, home: String, comment: String)? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return (entry.pw_uid, entry.pw_gid, String(cString: entry.pw_dir), entry.pw_gecos.map { String(cString: $0) } ?? "")
    }

    static func owner(of path: String) -> UInt32? {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_uid : nil
    }

    /// SIGKILL to every process of `uid`, and a bounded wait (2 s) until they are gone: userdel
    /// refuses to delete an account that still has processes.
    static func killAll(uid: UInt32) {
        guard uid != 0 else { return }
        for round in 0..<100 {
            var left = 0
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
                guard let pid = Int32(entry), let owner = owner(of: "/proc/\(entry)"), owner == uid else { continue }
                // A zombie (no start time here) holds no resources; its parent (the hub, or init) reaps it.
                if Processes.startTime(of: pid) == nil { continue }
                left += 1
                if round == 0 || round % 10 == 0 { kill(pid, SIGKILL) }
            }
            if left == 0 { return }
            usleep(20_000)
        }
    }

    /// Runs a system tool and returns its status and output. `useradd` and `userdel` give up at
    /// once when another program holds the lock on /etc/passwd (an admin's `adduser`, another
    /// hub): such a failure is retried for up to about 5 s.
    static func run(_ program: String, _ arguments: [String]) -> (Int32, String) {
        var outcome = runOnce(program, arguments)
        for attempt in 0..<25 where outcome.0 != 0 && outcome.1.lowercased().contains("lock") {
            usleep(UInt32(50_000 + 10_000 * attempt))
            outcome = runOnce(program, arguments)
        }
        return outcome
    }

    static func runOnce(_ program: String, _ arguments: [String]) -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do {
            try process.run()
        } catch {
            return (-1, "\(program) could not run: \(error.localizedDescription)")
        }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}

/// Runs account changes one at a time on a serial queue of their own: `useradd` blocks for
/// tens of milliseconds, and a bulk approval must not hold one of the few cooperative threads
/// the hub serves requests with.
final class AccountChanges: Sendable {
    private let queue = DispatchQueue(label: "atrium.system-accounts")

    func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }
}
