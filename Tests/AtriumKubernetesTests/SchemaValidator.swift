import Foundation

/// A JSON value that keeps integers, numbers and booleans apart (what schema types need).
indirect enum JSON: Decodable, Equatable, Sendable {
    case null, bool(Bool), int(Int64), number(Double), string(String), array([JSON]), object([String: JSON])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSON].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSON].self)) }
    }

    static func parse(_ data: Data) throws -> JSON { try JSONDecoder().decode(JSON.self, from: data) }

    subscript(key: String) -> JSON? {
        if case .object(let o) = self { return o[key] }
        return nil
    }
    var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }
}

/// Validates objects against the official Kubernetes schemas (trimmed into
/// `Schemas/k8s-schemas.json` by `scripts/trim-k8s-schemas.py`): types, required fields,
/// unknown fields (an object schema with `properties` and no `additionalProperties` admits no
/// other key, as the API server's strict field validation does), `$ref`, `allOf`, `oneOf`,
/// `enum`, int-or-string, and the kind/apiVersion a schema belongs to.
struct SchemaValidator: Sendable {
    let definitions: [String: JSON]

    static let shared: SchemaValidator = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Schemas/k8s-schemas.json")
        let data = try! Data(contentsOf: url)
        guard case .object(let defs)? = try! JSON.parse(data)["definitions"] else { fatalError("no definitions") }
        return SchemaValidator(definitions: defs)
    }()

    /// The schema name of an object by its apiVersion and kind.
    func definitionName(apiVersion: String, kind: String) -> String? {
        let parts = apiVersion.split(separator: "/")
        let (group, version) = parts.count == 2 ? (String(parts[0]), String(parts[1])) : ("", apiVersion)
        for (name, schema) in definitions {
            guard case .array(let gvks)? = schema["x-kubernetes-group-version-kind"] else { continue }
            for gvk in gvks where gvk["group"]?.string == group && gvk["version"]?.string == version && gvk["kind"]?.string == kind {
                return name
            }
        }
        return nil
    }

    /// Every problem of an object that names its own apiVersion and kind; empty when valid.
    func validate(object: JSON) -> [String] {
        guard let apiVersion = object["apiVersion"]?.string, let kind = object["kind"]?.string else { return ["$: no apiVersion or kind"] }
        guard let name = definitionName(apiVersion: apiVersion, kind: kind) else { return ["$: no schema for \(apiVersion) \(kind)"] }
        return validate(object, against: name)
    }

    func validate(object data: Data) -> [String] {
        guard let json = try? JSON.parse(data) else { return ["$: not JSON"] }
        return validate(object: json)
    }

    func validate(_ value: JSON, against definition: String) -> [String] {
        var errors: [String] = []
        check(value, .object(["$ref": .string("#/definitions/\(definition)")]), path: "$", errors: &errors)
        return errors
    }

    private func check(_ value: JSON, _ schema: JSON, path: String, errors: inout [String]) {
        if let ref = schema["$ref"]?.string {
            let name = String(ref.split(separator: "/").last ?? "")
            guard let target = definitions[name] else { errors.append("\(path): unresolved $ref \(ref)"); return }
            check(value, target, path: path, errors: &errors)
            return
        }
        if case .array(let all)? = schema["allOf"] { for s in all { check(value, s, path: path, errors: &errors) } }
        if case .array(let options)? = schema["oneOf"] {
            let fits = options.contains { option in
                var e: [String] = []
                check(value, option, path: path, errors: &e)
                return e.isEmpty
            }
            if !fits { errors.append("\(path): matches none of oneOf") }
        }
        if case .array(let allowed)? = schema["enum"], !allowed.contains(value) { errors.append("\(path): \(value) is not one of the enum") }
        if schema["format"]?.string == "int-or-string" {
            switch value {
            case .int, .string: return
            default: errors.append("\(path): must be an integer or a string"); return
            }
        }
        let type = schema["type"]?.string ?? (schema["properties"] != nil ? "object" : nil)
        switch type {
        case "object":
            guard case .object(let fields) = value else { errors.append("\(path): must be an object"); return }
            let properties: [String: JSON]
            if case .object(let p)? = schema["properties"] { properties = p } else { properties = [:] }
            if case .array(let required)? = schema["required"] {
                for case .string(let key) in required where fields[key] == nil { errors.append("\(path): missing required field \(key)") }
            }
            for (key, field) in fields.sorted(by: { $0.key < $1.key }) {
                if let property = properties[key] {
                    if field == .null { continue }
                    check(field, property, path: "\(path).\(key)", errors: &errors)
                } else if let additional = schema["additionalProperties"] {
                    if case .bool(false) = additional { errors.append("\(path): unknown field \(key)") }
                    else if case .object = additional { check(field, additional, path: "\(path).\(key)", errors: &errors) }
                } else if !properties.isEmpty {
                    errors.append("\(path): unknown field \(key)")
                }
            }
        case "array":
            guard case .array(let items) = value else { errors.append("\(path): must be an array"); return }
            if let itemSchema = schema["items"] {
                for (i, item) in items.enumerated() { check(item, itemSchema, path: "\(path)[\(i)]", errors: &errors) }
            }
        case "string":
            guard case .string = value else { errors.append("\(path): must be a string"); return }
        case "integer":
            guard case .int = value else { errors.append("\(path): must be an integer"); return }
        case "number":
            switch value {
            case .int, .number: break
            default: errors.append("\(path): must be a number")
            }
        case "boolean":
            guard case .bool = value else { errors.append("\(path): must be a boolean"); return }
        default:
            break
        }
    }
}
