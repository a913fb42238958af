import AtriumModel
import Foundation
import Hummingbird
import NIOCore

/// A JSON object from a request body, with accessors that throw 400s naming the field.
struct JSONBody {
    let fields: [String: JSONValue]

    /// Reads and parses the body. An empty body is an empty object when `allowEmpty`.
    static func read(_ request: Request, context: some RequestContext, allowEmpty: Bool = false) async throws -> JSONBody {
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        if buffer.readableBytes == 0 {
            if allowEmpty { return JSONBody(fields: [:]) }
            throw APIError.badRequest("Request body is empty: expected a JSON object")
        }
        let data = Data(buffer.readableBytesView)
        guard String(data: data, encoding: .utf8) != nil else {
            throw APIError.badRequest("Request body is not valid UTF-8")
        }
        let value: JSONValue
        do { value = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw APIError.badRequest("Request body is not valid JSON")
        }
        if case .null = value, allowEmpty { return JSONBody(fields: [:]) }
        guard case .object(let fields) = value else { throw APIError.badRequest("Request body must be a JSON object") }
        return JSONBody(fields: fields)
    }

    /// Refuses keys outside `allowed`.
    func only(_ allowed: Set<String>) throws {
        let unknown = fields.keys.filter { !allowed.contains($0) }.sorted()
        guard unknown.isEmpty else {
            throw APIError.badRequest("Unknown field(s) \(unknown.joined(separator: ", ")); allowed: \(allowed.sorted().joined(separator: ", "))")
        }
    }

    func has(_ key: String) -> Bool { fields[key] != nil }

    func string(_ key: String) throws -> String? {
        switch fields[key] {
        case nil, .null?: return nil
        case .string(let s)?: return s
        default: throw APIError.badRequest("Field '\(key)' must be a string")
        }
    }

    func bool(_ key: String) throws -> Bool? {
        switch fields[key] {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        default: throw APIError.badRequest("Field '\(key)' must be true or false")
        }
    }

    func number(_ key: String) throws -> Double? {
        switch fields[key] {
        case nil, .null?: return nil
        case .number(let n)?: return n
        default: throw APIError.badRequest("Field '\(key)' must be a number")
        }
    }

    func strings(_ key: String) throws -> [String]? {
        switch fields[key] {
        case nil, .null?: return nil
        case .array(let items)?:
            return try items.map {
                guard case .string(let s) = $0 else { throw APIError.badRequest("Field '\(key)' must be a list of strings") }
                return s
            }
        default: throw APIError.badRequest("Field '\(key)' must be a list of strings")
        }
    }

    func object(_ key: String) throws -> [String: JSONValue]? {
        switch fields[key] {
        case nil, .null?: return nil
        case .object(let o)?: return o
        default: throw APIError.badRequest("Field '\(key)' must be a JSON object")
        }
    }
}
