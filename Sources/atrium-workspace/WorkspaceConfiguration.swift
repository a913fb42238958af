import Foundation
import NIOCore

/// Everything the workspace server needs, read once from the command line and the environment.
///
/// Command-line options win over their environment fallbacks. Durations are `TimeAmount`s.
struct WorkspaceConfiguration: Sendable {
    /// Where to listen.
    enum Listen: Sendable, Equatable {
        case tcp(host: String, port: Int)
        case unix(path: String)
    }

    /// Where and how to report activity to the hub (JupyterHub's single-user activity API).
    struct Activity: Sendable {
        /// The hub API host, port and path prefix (e.g. `/hub/api`), from `JUPYTERHUB_API_URL`.
        var host: String
        var port: Int
        var path: String
        /// `JUPYTERHUB_API_TOKEN`; sent as `Authorization: token …`, never logged.
        var token: String
        /// `JUPYTERHUB_USER`.
        var user: String
        /// `JUPYTERHUB_SERVER_NAME`, empty for the default server.
        var serverName: String
        /// How often to check for new activity.
        var interval: TimeAmount
    }

    var listen: Listen
    /// Always starts and ends with "/".
    var baseURL: String
    /// `ATRIUM_WORKSPACE_SECRET`; when set, requests need `Authorization: token <secret>`.
    var secret: String?
    /// Shown by `GET {base}`.
    var user: String
    var readyDelay: TimeAmount?
    var exitAfter: TimeAmount?
    var failStart: Bool
    var activity: Activity?

    static let usage = """
        usage: atrium-workspace (--port N [--ip HOST] | --socket PATH) [--base-url PREFIX]
                                [--ready-delay SECONDS] [--exit-after SECONDS] [--fail-start]
                                [--activity-interval SECONDS]
        environment: ATRIUM_WORKSPACE_PORT, ATRIUM_WORKSPACE_SOCKET, JUPYTERHUB_SERVICE_PREFIX,
                     ATRIUM_WORKSPACE_SECRET, ATRIUM_ACTIVITY_INTERVAL, JUPYTERHUB_API_URL,
                     JUPYTERHUB_API_TOKEN, JUPYTERHUB_USER, JUPYTERHUB_SERVER_NAME
        """

    /// A configuration problem, reported on stderr with exit status 2.
    struct Error: Swift.Error, CustomStringConvertible {
        var description: String
    }

    /// Parses `arguments` (without the program name) with `environment` as the fallback.
    /// Returns nil for `--help`. Activity reporting is off (with `warnings` saying why) when its
    /// settings are incomplete or unusable.
    static func parse(
        _ arguments: [String], environment: [String: String], warnings: inout [String]
    ) throws(Error) -> WorkspaceConfiguration? {
        var options: [String: String] = [:]
        var failStart = false
        var index = 0
        let valued: Set<String> = [
            "--port", "--ip", "--socket", "--base-url", "--ready-delay", "--exit-after", "--activity-interval",
        ]
        while index < arguments.count {
            var name = arguments[index]
            var value: String?
            if let eq = name.firstIndex(of: "="), name.hasPrefix("--") {
                value = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            switch name {
            case "--help", "-h":
                return nil
            case "--fail-start":
                failStart = true
            case _ where valued.contains(name):
                if value == nil {
                    index += 1
                    guard index < arguments.count else { throw Error(description: "\(name) needs a value") }
                    value = arguments[index]
                }
                options[name] = value
            default:
                throw Error(description: "unknown option \(name)")
            }
            index += 1
        }

        func seconds(_ option: String, env: String? = nil) throws(Error) -> TimeAmount? {
            guard let text = options[option] ?? env.flatMap({ environment[$0] }), !text.isEmpty else { return nil }
            guard let value = Double(text), value >= 0, value.isFinite else {
                throw Error(description: "\(option) must be a number of seconds, got \(text)")
            }
            return .nanoseconds(Int64(value * 1_000_000_000))
        }

        let listen: Listen
        let cliPort = options["--port"], cliSocket = options["--socket"]
        let portText = cliSocket == nil ? (cliPort ?? environment["ATRIUM_WORKSPACE_PORT"]) : nil
        let socketPath = cliPort == nil ? (cliSocket ?? environment["ATRIUM_WORKSPACE_SOCKET"]) : nil
        if cliPort != nil, cliSocket != nil { throw Error(description: "give --port or --socket, not both") }
        if let socketPath, !socketPath.isEmpty, portText == nil || portText!.isEmpty {
            listen = .unix(path: socketPath)
        } else if let portText, !portText.isEmpty {
            guard let port = Int(portText), (0...65535).contains(port) else {
                throw Error(description: "invalid port \(portText)")
            }
            listen = .tcp(host: options["--ip"] ?? "127.0.0.1", port: port)
        } else {
            throw Error(description: "need --port or --socket (or ATRIUM_WORKSPACE_PORT / ATRIUM_WORKSPACE_SOCKET)")
        }

        var base = options["--base-url"] ?? environment["JUPYTERHUB_SERVICE_PREFIX"] ?? "/"
        if !base.hasPrefix("/") { base = "/" + base }
        if !base.hasSuffix("/") { base += "/" }

        let secret = environment["ATRIUM_WORKSPACE_SECRET"].flatMap { $0.isEmpty ? nil : $0 }
        let user = environment["JUPYTERHUB_USER"].flatMap { $0.isEmpty ? nil : $0 }
        let interval = try seconds("--activity-interval", env: "ATRIUM_ACTIVITY_INTERVAL") ?? .seconds(60)

        var activity: Activity?
        if let url = environment["JUPYTERHUB_API_URL"], !url.isEmpty,
           let token = environment["JUPYTERHUB_API_TOKEN"], !token.isEmpty, let user
        {
            if interval.nanoseconds <= 0 {
                warnings.append("activity reporting off: --activity-interval must be positive")
            } else if let target = parseHTTPURL(url) {
                activity = Activity(
                    host: target.host, port: target.port, path: target.path, token: token, user: user,
                    serverName: environment["JUPYTERHUB_SERVER_NAME"] ?? "", interval: interval)
            } else {
                warnings.append("activity reporting off: JUPYTERHUB_API_URL must be an http:// URL, got \(url)")
            }
        }

        return WorkspaceConfiguration(
            listen: listen, baseURL: base, secret: secret, user: user ?? "unknown",
            readyDelay: try seconds("--ready-delay"), exitAfter: try seconds("--exit-after"),
            failStart: failStart, activity: activity)
    }

    /// Splits `http://host[:port][/path]` into its parts; the path has no trailing "/".
    /// Returns nil for anything else (https included: this minimal client speaks plain HTTP only).
    static func parseHTTPURL(_ url: String) -> (host: String, port: Int, path: String)? {
        guard url.lowercased().hasPrefix("http://") else { return nil }
        let rest = url.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        var path = String(rest[slash...])
        while path.hasSuffix("/") { path.removeLast() }
        var host = Substring(authority)
        var port = 80
        if host.hasPrefix("[") {  // [::1]:8000
            guard let close = host.firstIndex(of: "]") else { return nil }
            let after = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()) else { return nil }
                port = p
            } else if !after.isEmpty { return nil }
        } else if let colon = host.lastIndex(of: ":") {
            guard let p = Int(host[host.index(after: colon)...]) else { return nil }
            port = p
            host = host[..<colon]
        }
        guard !host.isEmpty, (1...65535).contains(port) else { return nil }
        return (String(host), port, path)
    }
}
