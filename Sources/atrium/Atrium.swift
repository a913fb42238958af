import ArgumentParser
import AtriumApp
import AtriumSpawn
import Foundation
import Logging
import Metrics
import Prometheus

/// `atrium`: the hub and its administration commands.
@main
struct Atrium: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "atrium",
        abstract: "A multi-user workspace hub with a JupyterHub-compatible REST API.",
        subcommands: [Serve.self, Migrate.self, ConfigCommand.self, UserCommand.self, TokenCommand.self, Stress.self, Version.self],
        defaultSubcommand: nil)

    /// ArgumentParser's entry, except that bad arguments under `atrium stress` exit with 1
    /// (hub-stress-test's status) instead of 64.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            guard CommandLine.arguments.dropFirst().first == "stress" else { exit(withError: error) }
            let status = Stress.exitStatus(for: error)
            let message = fullMessage(for: error)
            if status == 0 {
                print(message)
            } else if !message.isEmpty {
                FileHandle.standardError.write(Data((message.hasSuffix("\n") ? message : message + "\n").utf8))
            }
            Foundation.exit(status)
        }
    }
}

/// Options every command that touches the hub's state shares.
struct HubOptions: ParsableArguments {
    @Option(name: .long, help: "YAML configuration file (default: $ATRIUM_CONFIG, else /etc/atrium/atrium.yaml when it exists).")
    var config: String?

    @Option(name: .long, help: "SQLite file, :memory:, or postgres:// URL (overrides the configuration).")
    var db: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?

    var flags: [String: String] {
        var flags: [String: String] = [:]
        if let db { flags["db"] = db }
        if let logLevel { flags["log_level"] = logLevel }
        return flags
    }

    /// `--config`, else `ATRIUM_CONFIG`, else `/etc/atrium/atrium.yaml` when it exists.
    var configFile: String? { config ?? ConfigurationLoader.defaultFile() }

    /// Loads the configuration, or exits with a message naming the bad key.
    func load(extra: [String: String] = [:]) throws -> HubConfiguration {
        do {
            let configuration = try ConfigurationLoader.load(file: configFile, flags: flags.merging(extra) { $1 })
            Logging.bootstrapOnce(level: configuration.logLevel)
            return configuration
        } catch {
            CLI.fail("\(error)")
        }
    }
}

enum Logging {
    nonisolated(unsafe) private static var done = false
    static func bootstrapOnce(level: Logger.Level) {
        guard !done else { return }
        done = true
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

enum CLI {
    /// Prints `message` to standard error and exits with status 1.
    static func fail(_ message: String, code: Int32 = 1) -> Never {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        exit(code)
    }

    static func logger() -> Logger { Logger(label: "atrium") }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the hub.")

    @OptionGroup var options: HubOptions

    @Option(name: .long, help: "Address to listen on (default 127.0.0.1).")
    var ip: String?

    @Option(name: .long, help: "Port to listen on (default 8000; 0 picks a free port).")
    var port: String?

    func run() async throws {
        var extra: [String: String] = [:]
        if let ip { extra["ip"] = ip }
        if let port { extra["port"] = port }
        let configuration = try options.load(extra: extra)
        if let problem = PortCheck.problem(ip: configuration.ip, port: configuration.port) { CLI.fail(problem) }
        let logger = CLI.logger()
        // One hub per process here, so swift-metrics' global system (what libraries report to)
        // may write into the hub's registry: their metrics then appear on /hub/metrics too.
        // `bootstrap` may run once per process; this is the only place that calls it.
        let metrics = HubMetrics()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics.registry))
        do {
            try await HubApplication.run(configuration, metrics: metrics, logger: logger) { port in
                print("Atrium listening on http://\(configuration.ip):\(port)")
                fflush(nil)
            }
        } catch {
            CLI.fail("\(error)")
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply database migrations and exit.")

    @OptionGroup var options: HubOptions

    func run() async throws {
        let configuration = try options.load()
        do {
            let store = try await HubApplication.openStore(configuration, logger: CLI.logger())
            let version = try await store.currentSchemaVersion()
            try await store.close()
            print("database schema at version \(version)")
        } catch {
            CLI.fail("\(error)")
        }
    }
}

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Show the configuration.", subcommands: [Print.self, Reference.self])

    struct Print: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the effective configuration, secrets masked.")
        @OptionGroup var options: HubOptions

        func run() throws {
            let configuration = try options.load()
            Swift.print(ConfigurationLoader.printed(configuration), terminator: "")
        }
    }

    struct Reference: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print every configuration key as a Markdown table.")
        func run() throws { Swift.print(ConfigurationLoader.referenceTable(), terminator: "") }
    }
}

struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print Atrium's version and the JupyterHub API level it implements.")
    func run() throws {
        print("atrium \(AtriumVersion.atrium) (JupyterHub API \(AtriumVersion.jupyterHubAPI))")
    }
}
