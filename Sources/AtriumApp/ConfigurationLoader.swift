import Foundation
import Yams

/// Reads configuration from its three sources, in order: YAML file, environment, flags.
public enum ConfigurationLoader {
    /// Builds the configuration. `flags` maps key names (`port`, `auth.mode`) to flag values.
    public static func load(
        file: String?, environment: [String: String] = ProcessInfo.processInfo.environment, flags: [String: String] = [:]
    ) throws(ConfigurationError) -> HubConfiguration {
        var configuration = HubConfiguration()
        if let file {
            let text: String
            do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
                throw ConfigurationError(key: "--config", problem: "cannot read \(file): \(error.localizedDescription)")
            }
            let loaded: Any?
            do { loaded = try Yams.load(yaml: text) } catch {
                throw ConfigurationError(key: "--config", problem: "\(file) is not valid YAML: \(error)")
            }
            if let loaded, !(loaded is NSNull) {
                guard let tree = loaded as? [String: Any] else {
                    throw ConfigurationError(key: "--config", problem: "\(file) must hold a mapping of keys to values")
                }
                for (key, value) in flatten(tree) {
                    try apply(key, .yaml(value), to: &configuration, source: file)
                }
            }
        }
        for name in environment.keys.sorted() where name.hasPrefix("ATRIUM_") && !isKnownVariable(name) {
            let guess = name.dropFirst("ATRIUM_".count).lowercased().replacingOccurrences(of: "__", with: ".")
            let hint = ConfigurationKeys.all.first { $0.name.hasSuffix(guess) || guess.hasSuffix($0.name) }
                .map { " (did you mean \($0.environmentName)?)" } ?? ""
            throw ConfigurationError(
                key: name, problem: "is not a configuration variable\(hint); see `atrium config reference`, or unset it",
                source: "the environment")
        }
        for key in ConfigurationKeys.all {
            if let value = environment[key.environmentName] {
                try apply(key.name, .text(value), to: &configuration, source: "environment variable \(key.environmentName)")
            }
        }
        for (name, value) in flags.sorted(by: { $0.key < $1.key }) {
            try apply(name, .text(value), to: &configuration, source: "command line")
        }
        try configuration.validate()
        return configuration
    }

    /// Where the command line looks for the configuration when `--config` is not given:
    /// `ATRIUM_CONFIG`, else `/etc/atrium/atrium.yaml` when it exists (the service's file), so
    /// `atrium user …` run by hand finds the same database as the service.
    public static func defaultFile(
        environment: [String: String] = ProcessInfo.processInfo.environment, systemFile: String = "/etc/atrium/atrium.yaml"
    ) -> String? {
        if let named = environment["ATRIUM_CONFIG"], !named.isEmpty { return named }
        return FileManager.default.fileExists(atPath: systemFile) ? systemFile : nil
    }

    /// `ATRIUM_…` variables that are not configuration keys but that Atrium or its tools read
    /// or set: the configuration file, the cookie secret, what the hub gives workspaces, and the
    /// test and benchmark tools' own settings.
    static let otherVariables: Set<String> = ["ATRIUM_CONFIG", "ATRIUM_COOKIE_SECRET", "ATRIUM_BINARY", "ATRIUM_BUILD_DIR", "ATRIUM_RECORD_GOLDEN"]
    static let otherPrefixes = ["ATRIUM_WORKSPACE_", "ATRIUM_TEST_", "ATRIUM_BENCH_", "ATRIUM_STARTER_", "ATRIUM_ACTIVITY_"]

    static func isKnownVariable(_ name: String) -> Bool {
        ConfigurationKeys.byEnvironmentName[name] != nil || otherVariables.contains(name) || otherPrefixes.contains { name.hasPrefix($0) }
    }

    private static func apply(_ name: String, _ raw: ConfigInput.Raw, to configuration: inout HubConfiguration, source: String)
        throws(ConfigurationError)
    {
        guard let key = ConfigurationKeys.byName[name] else {
            let known = ConfigurationKeys.all.map(\.name)
            let hint = known.first { $0.hasSuffix(name) || name.hasSuffix($0) }.map { " (did you mean '\($0)'?)" } ?? ""
            throw ConfigurationError(key: name, problem: "is not a configuration key\(hint); see `atrium config print`", source: source)
        }
        do { try key.apply(&configuration, ConfigInput(key: name, raw: raw)) } catch {
            var error = error
            error.source = source
            throw error
        }
    }

    /// `{auth: {mode: x}}` → `["auth.mode": x]`. Lists and scalars are leaves.
    static func flatten(_ tree: [String: Any], prefix: String = "") -> [(String, Any)] {
        var out: [(String, Any)] = []
        for (key, value) in tree.sorted(by: { $0.key < $1.key }) {
            let name = prefix.isEmpty ? key : "\(prefix).\(key)"
            if let nested = value as? [String: Any] { out += flatten(nested, prefix: name) } else { out.append((name, value)) }
        }
        return out
    }

    /// The effective configuration as YAML, secrets masked.
    public static func printed(_ configuration: HubConfiguration) -> String {
        var lines: [String] = ["# effective Atrium configuration (secrets masked)"]
        var section = ""
        for key in ConfigurationKeys.all {
            let parts = key.name.split(separator: ".")
            let value = key.show(configuration)
            let rendered = value.hasPrefix("[") || value == "null" || Int(value) != nil || value == "true" || value == "false"
                ? value : "\"\(value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\""
            if parts.count == 2 {
                if section != String(parts[0]) {
                    section = String(parts[0])
                    lines.append("\(section):")
                }
                lines.append("  \(parts[1]): \(rendered)")
            } else {
                lines.append("\(key.name): \(rendered)")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The configuration reference as a Markdown table (for the README).
    public static func referenceTable() -> String {
        var lines = ["| key | type | default | environment | meaning |", "|---|---|---|---|---|"]
        let defaults = HubConfiguration()
        for key in ConfigurationKeys.all {
            // A `|` inside a cell would end it: escape it (types list choices as `a | b`).
            func cell(_ text: String) -> String { text.replacingOccurrences(of: "|", with: "\\|") }
            lines.append(
                "| `\(key.name)` | \(cell(key.type)) | `\(cell(key.show(defaults)))` | `\(key.environmentName)` | \(cell(key.summary)) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
