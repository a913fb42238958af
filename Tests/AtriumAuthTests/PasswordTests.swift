@testable import AtriumAuth
import Foundation
import Testing

/// The password policy (length, not the user name, not a common password) and bcrypt hashing.
@Suite("Passwords")
struct PasswordTests {
    let policy = PasswordPolicy()

    @Test("the shipped common-password list is loaded")
    func commonListLoaded() {
        #expect(PasswordPolicy.commonPasswords.count > 19_000)
        for word in ["password123", "qwerty123", "iloveyou1", "letmein1"] {
            #expect(PasswordPolicy.commonPasswords.contains(Substring(word)), "\(word)")
        }
    }

    /// Refused passwords, for user "alice", with a fragment of the reason.
    static let refused: [(String, String)] = [
        ("", "too short"),
        ("short", "too short"),
        ("1234567", "too short"),
        ("alice12", "too short"),
        ("password123", "most common"),
        ("qwerty123", "most common"),
        ("PassWord123", "most common"),
        ("iloveyou1", "most common"),
        ("12345678", "most common"),
    ]

    @Test("weak passwords are refused with a reason", arguments: refused)
    func refusesWeakPasswords(_ password: String, _ reason: String) throws {
        let problem = try #require(policy.problem(with: password, forUser: "alice"))
        #expect(problem.contains(reason), "got \(problem)")
    }

    @Test("a password equal to the user name is refused, ignoring case")
    func refusesUserName() throws {
        let problem = try #require(policy.problem(with: "Alexandra1", forUser: "alexandra1"))
        #expect(problem.contains("user name"))
        #expect(policy.problem(with: "alexandra1", forUser: "ALEXANDRA1") != nil)
    }

    @Test("good passwords are accepted", arguments: ["correct horse battery staple", "Tr0ub4dor&3x", "zq8-Lm2!vp", "日本語のパスワード"])
    func acceptsGoodPasswords(_ password: String) {
        #expect(policy.problem(with: password, forUser: "alice") == nil)
    }

    @Test("the policy's knobs change what is refused")
    func configurablePolicy() {
        let lenient = PasswordPolicy(minimumLength: 4, rejectCommon: false)
        #expect(lenient.problem(with: "password123", forUser: "alice") == nil)
        #expect(lenient.problem(with: "abcd", forUser: "alice") == nil)
        #expect(lenient.problem(with: "abc", forUser: "alice") != nil)
        let strict = PasswordPolicy(minimumLength: 20)
        #expect(strict.problem(with: "correct horse battery", forUser: "alice") == nil)
        #expect(strict.problem(with: "correct horse", forUser: "alice")?.contains("20") == true)
    }

    @Test("length counts characters, not bytes")
    func lengthCountsCharacters() {
        #expect(policy.problem(with: "ééééééé", forUser: "alice")?.contains("too short") == true) // 7 characters, 14 bytes
    }

    // MARK: Hashing

    let hasher = PasswordHasher(cost: 4)

    @Test("hash and verify with bcrypt")
    func hashAndVerify() async throws {
        let hash = try await hasher.hash("s3cret-Passphrase")
        #expect(hash.hasPrefix("$2"))
        #expect(hash.contains("$04$"), "cost 4 is used: \(hash)")
        #expect(try await hasher.verify("s3cret-Passphrase", hash: hash))
        #expect(try await !hasher.verify("s3cret-passphrase", hash: hash))
        #expect(try await !hasher.verify("", hash: hash))
    }

    @Test("the same password hashes differently each time (salted)")
    func hashesAreSalted() async throws {
        let a = try await hasher.hash("same password")
        let b = try await hasher.hash("same password")
        #expect(a != b)
        #expect(try await hasher.verify("same password", hash: a))
        #expect(try await hasher.verify("same password", hash: b))
    }

    @Test("the decoy hash has the hasher's own cost (an unknown name costs a login as much as a known one) and matches nothing")
    func decoyHash() async throws {
        let decoy = try await hasher.decoyHash()
        #expect(decoy.hasPrefix("$2"))
        #expect(try await hasher.decoyHash() == decoy, "made once per cost")
        #expect(decoy.split(separator: "$").dropFirst().first == String(format: "%02d", hasher.cost)[...], "\(decoy)")
        let costly = try await PasswordHasher(cost: 6).decoyHash()
        #expect(costly.split(separator: "$").dropFirst().first == "06")
        #expect(try await !hasher.verify("password", hash: decoy))
        #expect(try await !hasher.verify("", hash: decoy))
    }

    @Test("unicode passwords round-trip")
    func unicodePasswords() async throws {
        let hash = try await hasher.hash("pässwörd-🔑")
        #expect(try await hasher.verify("pässwörd-🔑", hash: hash))
        #expect(try await !hasher.verify("passwort-🔑", hash: hash))
    }
}
