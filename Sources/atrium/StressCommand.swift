import ArgumentParser
import AtriumStress
import Foundation
import Logging

/// `atrium stress`: JupyterHub's hub-stress-test as part of the atrium binary. Its options go
/// before or after the subcommand (`atrium stress -e URL -t TOKEN stress-test -c 10`).
struct Stress: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stress",
        abstract: "Load a hub through its REST API (hub-stress-test's commands; works against Atrium and JupyterHub).",
        discussion: """
            stress-test creates --count users (hub-stress-test-N, numbered after the highest existing N) in \
            batches of --batch-size, starts their servers in batches, waits until every server is ready, then \
            stops the servers and deletes the users (unless --keep). purge deletes every hub-stress-test user. \
            activity-stress-test sends activity updates from --workers concurrent workers.

            Every phase is timed: wall time, operations, operations/s, latency p50/p95/p99, errors by HTTP \
            status. A table goes to standard output at the end (--json: one JSON object instead).

            Exit status: 0 success, 1 bad arguments, 128 the run failed.
            """,
        subcommands: [StressTest.self, ActivityStressTest.self, Purge.self])

    @Option(name: [.short, .long], help: "The hub API URL, e.g. http://127.0.0.1:8000/hub/api (default: $JUPYTERHUB_ENDPOINT).")
    var endpoint: String?

    @Option(name: [.short, .long], help: "An admin API token (default: $JUPYTERHUB_API_TOKEN).")
    var token: String?

    @Flag(name: .long, help: "Show what would be done; send no state-changing request (users are still listed).")
    var dryRun = false

    @Flag(name: .long, help: "Write the log to /tmp/hub-stress-test-<UTC time>.log, as hub-stress-test does, instead of standard error.")
    var logToFile = false

    @Option(name: .long, help: "Write the log to this file instead (overwritten).")
    var logFile: String?

    @Flag(name: [.short, .long], help: "Debug logging: every request with its status and time.")
    var verbose = false

    @Flag(name: .long, help: "Print the figures as one JSON object on standard output instead of a table.")
    var json = false

    @Option(name: .long, help: "Longest one request may take, in seconds.")
    var requestTimeout: Double = 30

    @Option(name: .long, help: "How long to wait for all servers to be ready, and again to stop, in seconds.")
    var serverTimeout: Double = 300

    @Option(name: .long, help: "Retries of a request answered 429, 503 or 504 (after Retry-After or an exponential backoff).")
    var retries: Int = 10

    /// A subcommand's checks: each named option is at least 1, and the hub's address and token are given.
    func validate(atLeastOne options: [(name: String, value: Int)]) throws {
        for option in options where option.value < 1 { throw ValidationError("\(option.name) must be at least 1.") }
        _ = try credentials()
    }

    /// The endpoint and token from the options or the environment, and the other options, checked.
    func credentials() throws -> HubTarget {
        guard requestTimeout > 0, serverTimeout > 0 else {
            throw ValidationError("--request-timeout and --server-timeout must be more than 0 seconds.")
        }
        guard (0...100).contains(retries) else { throw ValidationError("--retries must be from 0 to 100.") }
        do {
            return try HubTarget.resolve(endpoint: endpoint, token: token, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError(error.userMessage)
        }
    }

    /// Runs one stress command: sets up the log, runs `body`, prints the report, and exits
    /// with 0 (success), 1 (bad arguments) or 128 (the run failed).
    func execute(arguments: [String: String], concurrency: Int, _ body: (StressRunner) async throws -> StressReport) async {
        let target: HubTarget
        do { target = try credentials() } catch { Self.badArguments("\(error)") }
        let endpoint = target.endpoint
        let sink: StressLogHandler.Sink
        if logToFile || logFile != nil {
            let path = logFile ?? StressLogHandler.defaultLogFile()
            do { sink = try StressLogHandler.Sink.file(path) } catch { Self.badArguments("\(error)") }
            FileHandle.standardError.write(Data("Redirecting logs to: \(path)\n".utf8))
        } else {
            sink = StressLogHandler.Sink(FileHandle.standardError)
        }
        let level: Logger.Level = verbose ? .debug : .info
        let logger = Logger(label: "hub-stress-test") { _ in StressLogHandler(sink: sink, level: level) }
        // Record how the run was called, token left out.
        let called = arguments.merging(["endpoint": endpoint, "dry_run": "\(dryRun)"]) { $1 }
        logger.info("Args: \(called.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")) token=***")

        var settings = StressSettings(endpoint: endpoint, token: target.token)
        settings.dryRun = dryRun
        settings.requestTimeout = .milliseconds(Int64(requestTimeout * 1000))
        settings.serverTimeout = .milliseconds(Int64(serverTimeout * 1000))
        settings.retry.maxRetries = retries
        let runner = StressRunner(settings: settings, concurrency: concurrency, logger: logger)
        let report: StressReport
        do {
            report = try await body(runner)
        } catch {
            await runner.shutdown()
            logger.error("\(error)")
            Self.fail("\(error)", code: ExitStatus.of(error).rawValue)
        }
        await runner.shutdown()
        print(json ? report.json() : report.table(), terminator: json ? "\n" : "")
        fflush(nil)
        if ExitStatus.of(report) != .success {
            FileHandle.standardError.write(Data("error: the run failed; see the problems above\(logFile != nil || logToFile ? " and the log" : "")\n".utf8))
            Foundation.exit(ExitStatus.runFailed.rawValue)
        }
    }

    static func fail(_ message: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("error: \(message)\n".utf8))
        Foundation.exit(code)
    }

    static func badArguments(_ message: String) -> Never {
        fail("\(message)\nSee 'atrium stress --help'.", code: ExitStatus.badArguments.rawValue)
    }

    /// Exit status for a command-line error under `atrium stress`: ArgumentParser uses 64
    /// (EX_USAGE) for bad arguments; hub-stress-test used 1, and so does this command.
    static func exitStatus(for error: any Error) -> Int32 {
        ExitStatus.forParser(Atrium.exitCode(for: error).rawValue)
    }
}

extension Stress {
    struct StressTest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stress-test",
            abstract: "Create users, start their servers in batches, wait until ready, then stop and delete them.")

        @ParentCommand var stress: Stress

        @Option(name: .shortAndLong, help: "Users (and servers) to create.")
        var count = 100

        @Option(name: .shortAndLong, help: "Users created per request, and servers started or stopped at once.")
        var batchSize = 10

        @Flag(name: .shortAndLong, help: "Keep the users and servers (run purge later); runs with --keep add up.")
        var keep = false

        @Option(name: .shortAndLong, help: "Start servers with this profile ({\"profile\": NAME} in the start request).")
        var profile: String?

        func validate() throws {
            try stress.validate(atLeastOne: [("--count", count), ("--batch-size", batchSize)])
        }

        func run() async throws {
            let arguments = ["command": "stress-test", "count": "\(count)", "batch_size": "\(batchSize)", "keep": "\(keep)", "profile": profile ?? "none"]
            await stress.execute(arguments: arguments, concurrency: min(batchSize, count)) { runner in
                try await runner.stressTest(count: count, batchSize: batchSize, keep: keep, profile: profile)
            }
        }
    }

    struct ActivityStressTest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "activity-stress-test",
            abstract: "Create users without servers and send activity updates from concurrent workers, timing them.")

        @ParentCommand var stress: Stress

        @Option(name: .shortAndLong, help: "Users to send activity for (existing hub-stress-test users are reused).")
        var count = 100

        @Option(name: .long, help: "Concurrent workers; each sends updates for its share of the users.")
        var workers = 100

        @Flag(name: .shortAndLong, help: "Keep the users this run created.")
        var keep = false

        func validate() throws {
            try stress.validate(atLeastOne: [("--count", count), ("--workers", workers)])
        }

        func run() async throws {
            let arguments = ["command": "activity-stress-test", "count": "\(count)", "workers": "\(workers)", "keep": "\(keep)"]
            await stress.execute(arguments: arguments, concurrency: max(min(workers, count), 100) + 1) { runner in
                try await runner.activityTest(count: count, workers: workers, keep: keep)
            }
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop the servers of every hub-stress-test user and delete the users.")

        @ParentCommand var stress: Stress

        @Option(name: .shortAndLong, help: "Servers stopped and users deleted at once.")
        var batchSize = 10

        func validate() throws {
            try stress.validate(atLeastOne: [("--batch-size", batchSize)])
        }

        func run() async throws {
            await stress.execute(arguments: ["command": "purge", "batch_size": "\(batchSize)"], concurrency: batchSize) { runner in
                try await runner.purge(batchSize: batchSize)
            }
        }
    }
}
