import AtriumTestSupport
import Foundation
import Testing

/// A hub with the simulated backend, loaded by `atrium stress` as a child process.
struct StressHub {
    let hub: HubProcess
    let token: String
    var endpoint: String { hub.baseURL + "/hub/api" }
    var api: API { API(base: endpoint, token: token) }

    static func start(spawn: [String] = [], startDelay: (String, String) = ("20ms", "150ms")) async throws -> StressHub {
        let hub = try HubProcess()
        let config = """
            backend: simulated
            simulated:
              start_delay_min: \(startDelay.0)
              start_delay_max: \(startDelay.1)
              failure_rate: 0
            spawn:
              stop_servers_on_shutdown: true
            \(spawn.map { "  " + $0 }.joined(separator: "\n"))
            auth:
              bcrypt_cost: 4
            """
        let token = try await hub.start(config: config)
        return StressHub(hub: hub, token: token)
    }

    struct Run {
        let status: Int32
        let stdout: String
        let stderr: String
        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any] }
        var phases: [String: [String: Any]] {
            Dictionary(((json?["phases"] as? [[String: Any]]) ?? []).map { ($0["name"] as? String ?? "", $0) }, uniquingKeysWith: { $1 })
        }
    }

    /// Runs `atrium stress ARGUMENTS` with no JUPYTERHUB_* variables unless given, bounded in
    /// time, waiting for it on a thread of its own.
    static func stress(_ arguments: [String], environment: [String: String] = [:], in directory: URL) async throws -> Run {
        try await HubProcess.offload { try stressWaiting(arguments, environment: environment, in: directory) }
    }

    private static func stressWaiting(_ arguments: [String], environment: [String: String], in directory: URL) throws -> Run {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: HubProcess.binary)
        p.arguments = ["stress"] + arguments
        p.currentDirectoryURL = directory
        var env = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("JUPYTERHUB_") }
        env.merge(environment) { $1 }
        p.environment = env
        let out = Pipe()
        let errFile = directory.appendingPathComponent("stress-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: errFile.path, contents: nil)
        let err = try FileHandle(forWritingTo: errFile)
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let watchdog = DispatchWorkItem { if p.isRunning { p.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + 240, execute: watchdog)
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        watchdog.cancel()
        try err.close()
        let stderr = (try? String(contentsOf: errFile, encoding: .utf8)) ?? ""
        return Run(status: p.terminationStatus, stdout: String(decoding: data, as: UTF8.self), stderr: stderr)
    }

    func stress(_ arguments: [String], environment: [String: String] = [:]) async throws -> Run {
        try await Self.stress(arguments, environment: environment, in: hub.directory)
    }

    /// The names of the stress-test users on the hub.
    func stressUsers() async throws -> [String] {
        let reply = try await api.call(.GET, "/users?name_filter=hub-stress-test")
        return ((reply.json as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }.filter { $0.hasPrefix("hub-stress-test-") }
    }

    /// Users, servers and tokens as the database file has them (through the sqlite3 CLI), or
    /// as the API shows them when sqlite3 is not installed.
    func snapshot() async throws -> String {
        let database = hub.directory.appendingPathComponent("atrium.sqlite").path
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/sqlite3") {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
            p.arguments = [
                "-readonly", database,
                "SELECT id, name, admin, approval FROM users ORDER BY id; SELECT user_id, name, phase, started FROM servers ORDER BY id; SELECT COUNT(*) FROM api_tokens;",
            ]
            let out = Pipe()
            p.standardOutput = out
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            #expect(p.terminationStatus == 0)
            return String(decoding: data, as: UTF8.self)
        }
        #expect(ProcessInfo.processInfo.environment["CI"] != "true", "CI installs sqlite3 (.ci/run)")
        let reply = try await api.call(.GET, "/users?include_stopped_servers&sort=id")
        let users = (reply.json as? [[String: Any]]) ?? []
        return users.map { user in
            let servers = (user["servers"] as? [String: [String: Any]]) ?? [:]
            let described = servers.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value["atrium_phase"] ?? "")" }
            return "\(user["name"] ?? "") \(user["admin"] ?? "") \(described)"
        }.joined(separator: "\n")
    }
}

@Suite("Stress tool, end to end", .serialized)
struct StressEndToEndTests {
    @Test("stress-test -c 30 -b 10 --json: every phase done, figures in the JSON, no user left")
    func stressTest() async throws {
        let s = try await StressHub.start()
        defer { s.hub.stop() }
        let run = try await s.stress(["-e", s.endpoint, "-t", s.token, "stress-test", "-c", "30", "-b", "10", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let json = try #require(run.json, "stdout: \(run.stdout)")
        #expect(json["success"] as? Bool == true)
        #expect(json["users"] as? Int == 30)
        #expect(json["dry_run"] as? Bool == false)
        let names = ((json["phases"] as? [[String: Any]]) ?? []).compactMap { $0["name"] as? String }
        #expect(names == ["find-users", "create-users", "start-servers", "wait-ready", "stop-servers", "wait-stopped", "delete-users"])
        for phase in ["create-users", "start-servers", "wait-ready", "stop-servers", "wait-stopped", "delete-users"] {
            #expect(run.phases[phase]?["operations"] as? Int == 30, "\(phase)")
            #expect(run.phases[phase]?["failed"] as? Int == 0, "\(phase)")
        }
        #expect(run.phases["create-users"]?["requests"] as? Int == 3)
        let latency = try #require(run.phases["start-servers"]?["latency_ms"] as? [String: Double])
        #expect(latency["p50"]! > 0 && latency["p50"]! <= latency["p95"]! && latency["p95"]! <= latency["p99"]!)
        #expect((run.phases["start-servers"]?["operations_per_second"] as? Double ?? 0) > 0)
        #expect(try await s.stressUsers().isEmpty)
    }

    @Test("--keep keeps users (names continue), --dry-run changes nothing in the database, purge removes all")
    func keepDryRunPurge() async throws {
        let s = try await StressHub.start()
        defer { s.hub.stop() }
        // Options after the subcommand work as well as before it.
        let first = try await s.stress(["stress-test", "-c", "12", "-b", "5", "-k", "-e", s.endpoint, "-t", s.token, "--json"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.phases["delete-users"] == nil)
        let second = try await s.stress(["-e", s.endpoint, "stress-test", "--count", "3", "--keep"], environment: ["JUPYTERHUB_API_TOKEN": s.token])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout.contains("wait-ready"))  // the table
        #expect(Set(try await s.stressUsers()) == Set((1...15).map { "hub-stress-test-\($0)" }))

        let before = try await s.snapshot()
        #expect(before.contains("hub-stress-test-15"))
        for arguments in [
            ["stress-test", "-c", "20", "-b", "7"], ["purge"], ["activity-stress-test", "-c", "20", "--workers", "4"],
        ] {
            let dry = try await s.stress(["-e", s.endpoint, "-t", s.token, "--dry-run", "--json"] + arguments)
            #expect(dry.status == 0, "\(arguments): \(dry.stderr)")
            #expect(dry.json?["dry_run"] as? Bool == true)
            #expect((dry.json?["plan"] as? [String])?.isEmpty == false)
        }
        let plan = try await s.stress(["-e", s.endpoint, "-t", s.token, "--dry-run", "--json", "stress-test", "-c", "20", "-b", "7"])
        #expect((plan.json?["plan"] as? [String])?.first?.contains("hub-stress-test-16 … hub-stress-test-35") == true)
        #expect(try await s.snapshot() == before)

        let purge = try await s.stress(["-e", s.endpoint, "-t", s.token, "purge", "--json"])
        #expect(purge.status == 0, "\(purge.stderr)")
        #expect(purge.json?["users"] as? Int == 15)
        #expect(purge.phases["delete-users"]?["operations"] as? Int == 15)
        #expect(try await s.stressUsers().isEmpty)
    }

    @Test("a hub that answers 429 to starts (concurrent_spawn_limit 1, no queue) still gets every server started")
    func tooManyRequests() async throws {
        let s = try await StressHub.start(spawn: ["concurrent_spawn_limit: 1", "spawn_queue_limit: 0"], startDelay: ("100ms", "200ms"))
        defer { s.hub.stop() }
        let run = try await s.stress(["-e", s.endpoint, "-t", s.token, "stress-test", "-c", "8", "-b", "8", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let start = try #require(run.phases["start-servers"])
        #expect(start["operations"] as? Int == 8)
        #expect(((start["errors"] as? [String: Int])?["429"] ?? 0) > 0, "\(start)")
        #expect((start["retries"] as? Int ?? 0) > 0)
        #expect(try await s.stressUsers().isEmpty)
    }

    @Test("activity-stress-test: concurrent workers send activity updates, the created users are deleted")
    func activity() async throws {
        let s = try await StressHub.start()
        defer { s.hub.stop() }
        let run = try await s.stress(
            ["activity-stress-test", "-c", "20", "--workers", "5", "--json"],
            environment: ["JUPYTERHUB_ENDPOINT": s.endpoint, "JUPYTERHUB_API_TOKEN": s.token])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.phases["activity"]?["operations"] as? Int == 20)
        #expect(run.phases["activity"]?["failed"] as? Int == 0)
        #expect(run.phases["ping-during-activity"] != nil)
        #expect(run.phases["delete-users"]?["operations"] as? Int == 20)
        #expect(try await s.stressUsers().isEmpty)
    }

    @Test("wrong token → 128, missing endpoint or bad options → 1, unreachable hub → 128, each with a clear message")
    func failures() async throws {
        let s = try await StressHub.start()
        defer { s.hub.stop() }
        let wrongToken = try await s.stress(["-e", s.endpoint, "-t", "not-a-token", "stress-test", "-c", "2"])
        #expect(wrongToken.status == 128)
        #expect(wrongToken.stderr.contains("refused the token"), "\(wrongToken.stderr)")

        let noEndpoint = try await s.stress(["-t", s.token, "stress-test"])
        #expect(noEndpoint.status == 1)
        #expect(noEndpoint.stderr.contains("JUPYTERHUB_ENDPOINT"), "\(noEndpoint.stderr)")
        let noToken = try await s.stress(["purge"], environment: ["JUPYTERHUB_ENDPOINT": s.endpoint])
        #expect(noToken.status == 1)
        #expect(noToken.stderr.contains("JUPYTERHUB_API_TOKEN"), "\(noToken.stderr)")
        #expect(try await s.stress(["-e", s.endpoint, "-t", s.token, "stress-test", "-c", "0"]).status == 1)
        #expect(try await s.stress(["-e", s.endpoint, "-t", s.token, "stress-test", "--no-such-option"]).status == 1)
        #expect(try await s.stress(["-e", s.endpoint, "-t", s.token, "stress-test", "-c", "many"]).status == 1)
        #expect(try await s.stress(["--help"]).status == 0)

        // Nobody listens on the hub's port once it stopped.
        let endpoint = s.endpoint
        s.hub.stop()
        let unreachable = try await s.stress(["-e", endpoint, "-t", s.token, "stress-test", "-c", "2"])
        #expect(unreachable.status == 128)
        #expect(unreachable.stderr.contains("cannot reach the hub at"), "\(unreachable.stderr)")
    }
}
