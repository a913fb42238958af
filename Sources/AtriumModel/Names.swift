import Foundation

/// Why a name was refused. Every case renders to a message a person can act on.
public struct NameError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What kind of name was checked (`"user"`, `"group"`, `"server"`).
    public let kind: String
    /// The offending name, with control characters escaped so it can be echoed safely.
    public let shownName: String
    /// A short explanation of the rule that was broken.
    public let rule: String

    public var description: String { "invalid \(kind) name \(shownName): \(rule)" }
}

/// Shared validation for the names people type: users, groups.
///
/// Rules (JupyterHub accepts almost any string; Atrium keeps names that are safe in URLs, file
/// paths, Kubernetes annotations and log lines): not empty, at most 255 bytes of UTF-8, no `/`,
/// no control characters, no invisible formatting or direction overrides, not `.` or `..`, no
/// leading or trailing whitespace. Every name is kept in Unicode's composed form (NFC), so two
/// spellings a person cannot tell apart (`é` as one code point, or `e` plus a combining accent)
/// are one name, byte for byte, in the store, the route table and every comparison.
public enum NameRules {
    /// The name in Unicode Normalization Form C: the one form names are stored and compared in.
    public static func canonical(_ raw: String) -> String {
        raw.precomposedStringWithCanonicalMapping
    }

    /// The longest name accepted, in UTF-8 bytes.
    public static let maxBytes = 255

    /// Checks `raw` and returns it unchanged, or throws a ``NameError`` naming the broken rule.
    public static func validate(_ given: String, kind: String) throws(NameError) -> String {
        let raw = canonical(given)
        let shown = escaped(raw)
        if raw.isEmpty { throw NameError(kind: kind, shownName: "\"\"", rule: "must not be empty") }
        if raw.utf8.count > maxBytes {
            throw NameError(kind: kind, shownName: String(shown.prefix(40)) + "…", rule: "longer than \(maxBytes) bytes")
        }
        if raw.contains("/") { throw NameError(kind: kind, shownName: shown, rule: "must not contain '/'") }
        if raw.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0.value == 0x7F }) {
            throw NameError(kind: kind, shownName: shown, rule: "must not contain control characters")
        }
        if raw.unicodeScalars.contains(where: { $0.value == 0xFFFD }) {
            throw NameError(kind: kind, shownName: shown, rule: "must be valid UTF-8")
        }
        if raw.first!.isWhitespace || raw.last!.isWhitespace {
            throw NameError(kind: kind, shownName: shown, rule: "must not start or end with whitespace")
        }
        // Invisible characters and direction overrides make a name look like another one.
        if raw.unicodeScalars.contains(where: { $0.properties.generalCategory == .format }) {
            throw NameError(kind: kind, shownName: shown, rule: "must not contain invisible formatting or direction-override characters")
        }
        if raw == "." || raw == ".." { throw NameError(kind: kind, shownName: shown, rule: "must not be '.' or '..'") }
        return raw
    }

    /// `raw` quoted, with control characters shown as `\u{..}` escapes.
    public static func escaped(_ raw: String) -> String {
        var out = "\""
        for scalar in raw.unicodeScalars {
            if scalar.properties.generalCategory == .control || scalar.properties.generalCategory == .format || scalar.value == 0x7F {
                out += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// A validated user name.
public struct UserName: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
    /// The name as stored and shown.
    public let rawValue: String

    /// Validates `rawValue` (see ``NameRules``).
    public init(_ rawValue: String) throws(NameError) {
        self.rawValue = try NameRules.validate(rawValue, kind: "user")
    }

    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        do { self.rawValue = try NameRules.validate(raw, kind: "user") } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A validated group name (same rules as user names).
public struct GroupName: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The name as stored and shown.
    public let rawValue: String

    /// Validates `rawValue` (see ``NameRules``).
    public init(_ rawValue: String) throws(NameError) {
        self.rawValue = try NameRules.validate(rawValue, kind: "group")
    }

    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A validated server name: `""` is the default server; named servers follow JupyterHub 6's
/// rule (lowercase letters, digits and single hyphens, starting with a letter, at most 30
/// characters), which keeps them valid in URLs and Kubernetes object names.
public struct ServerName: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The name; empty for the default server.
    public let rawValue: String

    /// The user's default server.
    public static let `default` = ServerName(unchecked: "")

    private init(unchecked: String) { self.rawValue = unchecked }

    /// Validates a named server's name.
    public init(_ rawValue: String) throws(NameError) {
        if rawValue.isEmpty { self.rawValue = ""; return }
        let shown = NameRules.escaped(rawValue)
        guard rawValue.utf8.count <= 30 else {
            throw NameError(kind: "server", shownName: shown, rule: "longer than 30 characters")
        }
        let bytes = Array(rawValue.utf8)
        let ok = bytes.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
        guard ok, let first = bytes.first, first >= 0x61, first <= 0x7A, bytes.last != 0x2D,
              !rawValue.contains("--")
        else {
            throw NameError(
                kind: "server", shownName: shown,
                rule: "use lowercase letters, digits and single hyphens, starting with a letter")
        }
        self.rawValue = rawValue
    }

    public var isDefault: Bool { rawValue.isEmpty }
    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}
