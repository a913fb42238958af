import AtriumAuth
import AtriumModel
import Foundation

/// A class roster for bulk creation: CSV with the columns `username,group,profile,admin`, or
/// just one name a line. A first line starting with `username` is a header and may order the
/// columns differently. `group` may list several groups separated by `;`. Empty lines and
/// lines starting with `#` are skipped.
struct Roster: Equatable {
    struct Entry: Equatable {
        var line: Int
        var name: String
        var groups: [String]
        var profile: String?
        var admin: Bool
    }

    /// A problem on one line of the roster (1-based, as an editor numbers them).
    struct Problem: Error, Equatable, CustomStringConvertible {
        var line: Int
        var message: String
        var description: String { "line \(line): \(message)" }
    }

    var entries: [Entry]

    static let columns = ["username", "group", "profile", "admin"]

    /// Parses `text`, reporting every bad line (up to `maxProblems`) rather than the first.
    static func parse(_ text: String, maxProblems: Int = 20) throws(RosterError) -> Roster {
        var problems: [Problem] = []
        var entries: [Entry] = []
        var order = columns
        var firstLine: [String: Int] = [:]
        var sawContent = false
        // "\r\n" is one Character in Swift: normalize line ends before splitting on "\n".
        let normalized = text.replacingOccurrences(of: "\r\n", with: "\n")
        for (index, rawLine) in normalized.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = rawLine.hasSuffix("\r") ? String(rawLine.dropLast()) : String(rawLine)
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let fields: [String]
            do { fields = try splitCSV(line) } catch {
                problems.append(Problem(line: number, message: "an unterminated quote"))
                continue
            }
            let cleaned = fields.map { $0.trimmingCharacters(in: .whitespaces) }
            if !sawContent {
                sawContent = true
                if cleaned.first?.lowercased() == "username" {
                    let header = cleaned.map { $0.lowercased() }
                    if let unknown = header.first(where: { !columns.contains($0) }) {
                        problems.append(Problem(line: number, message: "unknown column '\(unknown)' (use \(columns.joined(separator: ",")))"))
                    } else if Set(header).count != header.count {
                        problems.append(Problem(line: number, message: "a column is named twice"))
                    }
                    order = header
                    continue
                }
            }
            if cleaned.count > order.count {
                problems.append(Problem(line: number, message: "\(cleaned.count) fields, but the roster has \(order.count) columns (\(order.joined(separator: ",")))"))
                continue
            }
            var value: [String: String] = [:]
            for (column, field) in zip(order, cleaned) { value[column] = field }
            let rawName = value["username"] ?? ""
            let name = Authenticator.normalize(rawName)
            do { _ = try UserName(name) } catch {
                problems.append(Problem(line: number, message: rawName.isEmpty ? "the user name is empty" : error.description))
                continue
            }
            if let first = firstLine[name] {
                problems.append(Problem(line: number, message: "\(name) is listed twice (first on line \(first))"))
                continue
            }
            firstLine[name] = number
            var groups: [String] = []
            var bad = false
            for group in (value["group"] ?? "").split(separator: ";").map({ $0.trimmingCharacters(in: .whitespaces) }) where !group.isEmpty {
                do { groups.append(try GroupName(group).rawValue) } catch {
                    problems.append(Problem(line: number, message: error.description))
                    bad = true
                }
            }
            let adminText = (value["admin"] ?? "").lowercased()
            let admin: Bool
            switch adminText {
            case "", "false", "no", "0", "n": admin = false
            case "true", "yes", "1", "y", "admin": admin = true
            default:
                problems.append(Problem(line: number, message: "admin must be true or false (or empty), not \(NameRules.escaped(String(adminText.prefix(32))))"))
                continue
            }
            if bad { continue }
            let profile = value["profile"].flatMap { $0.isEmpty ? nil : $0 }
            entries.append(Entry(line: number, name: name, groups: groups, profile: profile, admin: admin))
        }
        if !problems.isEmpty { throw RosterError(problems: Array(problems.prefix(maxProblems)), total: problems.count) }
        if entries.isEmpty { throw RosterError(problems: [], total: 0) }
        return Roster(entries: entries)
    }

    /// One CSV record's fields: commas separate, double quotes quote, `""` is a quote.
    static func splitCSV(_ line: String) throws -> [String] {
        var fields: [String] = []
        var current = ""
        var quoted = false
        var iterator = Array(line).makeIterator()
        var pending: Character? = nil
        while let c = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    if let next = iterator.next() {
                        if next == "\"" { current.append("\"") } else { quoted = false; pending = next }
                    } else { quoted = false }
                } else {
                    current.append(c)
                }
            } else if c == "\"" && current.trimmingCharacters(in: .whitespaces).isEmpty {
                current = ""
                quoted = true
            } else if c == "," {
                fields.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        if quoted { throw RosterError(problems: [], total: 0) }
        fields.append(current)
        return fields
    }
}

/// Why a roster was refused: each bad line, or that it listed nobody.
struct RosterError: Error, Equatable, CustomStringConvertible {
    var problems: [Roster.Problem]
    /// How many problems there were in all (only the first ones are kept).
    var total: Int

    var description: String {
        if problems.isEmpty { return "The roster lists nobody: give one user name a line, or CSV rows username,group,profile,admin" }
        let more = total > problems.count ? " (and \(total - problems.count) more)" : ""
        return "The roster has \(total) bad line\(total == 1 ? "" : "s"): " + problems.map(\.description).joined(separator: "; ") + more
    }
}
