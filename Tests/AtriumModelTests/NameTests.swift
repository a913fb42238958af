import Testing
import Foundation
@testable import AtriumModel

/// Validation of the names people type (users, groups) and of server names, which follow
/// JupyterHub 6's stricter rule so they stay valid in URLs and Kubernetes object names.
@Suite("Names")
struct NameTests {
    static let validNames: [String] = [
        "alice", "Alice", "o'brien", "user@example.com", "first last", "x",
        "Ünïcødé", "日本語", "ユーザー", "élodie-42", "🦊fox", "a.b_c-d+e",
        String(repeating: "a", count: 255),
        String(repeating: "é", count: 127) + "a", // 255 bytes
    ]

    @Test("valid names are accepted unchanged", arguments: validNames)
    func acceptsValidNames(_ raw: String) throws {
        #expect(try UserName(raw).rawValue == raw)
        #expect(try GroupName(raw).rawValue == raw)
        #expect(try NameRules.validate(raw, kind: "user") == raw)
    }

    /// Each refused name, with a fragment of the rule it must report.
    static let invalidNames: [(String, String)] = [
        ("", "empty"),
        (String(repeating: "a", count: 256), "longer than 255 bytes"),
        (String(repeating: "é", count: 128), "longer than 255 bytes"), // 128 characters but 256 bytes
        ("a/b", "'/'"),
        ("/", "'/'"),
        ("a\u{0}b", "control"),
        ("tab\there", "control"),
        ("line\nbreak", "control"),
        ("bell\u{7}", "control"),
        ("del\u{7F}", "control"),
        ("nel\u{85}x", "control"),
        (" alice", "whitespace"),
        ("alice ", "whitespace"),
        ("\u{3000}alice", "whitespace"), // ideographic space
        ("alice\u{A0}", "whitespace"),
        ("bad\u{FFFD}", "UTF-8"),
    ]

    @Test("invalid names are refused with the broken rule", arguments: invalidNames)
    func refusesInvalidNames(_ raw: String, _ ruleFragment: String) {
        let userError = #expect(throws: NameError.self) { try UserName(raw) }
        #expect(userError?.kind == "user")
        #expect(userError?.rule.contains(ruleFragment) == true, "rule was \(userError?.rule ?? "nil")")
        let groupError = #expect(throws: NameError.self) { try GroupName(raw) }
        #expect(groupError?.kind == "group")
    }

    @Test("errors echo names with control characters escaped")
    func errorEscapesControlCharacters() throws {
        let error = try #require(throws: NameError.self) { try UserName("evil\u{1B}[31m") }
        #expect(error.shownName == #""evil\u{1b}[31m""#)
        #expect(error.description == #"invalid user name "evil\u{1b}[31m": must not contain control characters"#)
        #expect(!error.description.contains("\u{1B}"))
    }

    @Test("an overlong name is shown truncated")
    func overlongNameIsTruncated() throws {
        let error = try #require(throws: NameError.self) { try UserName(String(repeating: "b", count: 400)) }
        #expect(error.shownName.count < 50)
        #expect(error.shownName.hasSuffix("…"))
    }

    @Test("UserName decodes only valid names and encodes as a plain string")
    func userNameCodable() throws {
        let names = try JSONDecoder().decode([UserName].self, from: Data(#"["alice","Bob"]"#.utf8))
        #expect(names.map(\.rawValue) == ["alice", "Bob"])
        #expect(String(decoding: try JSONEncoder().encode(names), as: UTF8.self) == #"["alice","Bob"]"#)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([UserName].self, from: Data(#"["a/b"]"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(UserName.self, from: Data(#"" x""#.utf8)) }
    }

    @Test("names compare and print by their raw value")
    func comparableAndDescription() throws {
        #expect(try UserName("alice") < UserName("bob"))
        #expect(try GroupName("a") < GroupName("b"))
        #expect(try ServerName("a") < ServerName("b"))
        #expect(try UserName("alice").description == "alice")
        #expect(try UserName("alice") == UserName("alice"))
    }

    // MARK: Server names

    @Test("the empty server name is the default server")
    func defaultServer() throws {
        #expect(try ServerName("") == ServerName.default)
        #expect(ServerName.default.isDefault)
        #expect(ServerName.default.rawValue == "")
        #expect(try !ServerName("lab").isDefault)
    }

    static let validServerNames = ["a", "lab", "my-server", "gpu2", "a1-b2-c3", String(repeating: "x", count: 30)]

    @Test("server names follow the JupyterHub 6 rule", arguments: validServerNames)
    func acceptsServerNames(_ raw: String) throws {
        #expect(try ServerName(raw).rawValue == raw)
    }

    static let invalidServerNames = [
        "Lab", "1lab", "-lab", "lab-", "my--server", "my_server", "my.server", "my server", "my/server",
        "café", "LAB", String(repeating: "x", count: 31), " lab", "lab\n",
    ]

    @Test("other server names are refused", arguments: invalidServerNames)
    func refusesServerNames(_ raw: String) {
        let error = #expect(throws: NameError.self) { try ServerName(raw) }
        #expect(error?.kind == "server")
    }
}
