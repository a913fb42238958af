import AtriumTestSupport
import NIOHTTP1
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The hub as root with `local.isolation: system_users` (and `hub_user`, to show the test can
/// fail), running a real program — `tests/workspaces/probe_workspace.py` — in each student's
/// workspace, and asking it, through the proxy, what a student's code could do.
@Suite("Isolation on one machine, end to end (as root)", .serialized, .enabled(if: geteuid() == 0, "needs root: CI runs as root"))
struct IsolationEndToEndTests {
    static var probeProgram: String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent("tests/workspaces/probe_workspace.py").path
    }

    /// A hub running the probe workspace, with `isolation` and extra `spawn:` and `local:` keys.
    static func start(isolation: String, spawn: [String] = [], local: [String] = []) async throws -> WorkspaceHub {
        let hub = try HubProcess()
        // Students' accounts pass through the hub's folder to their homes; nothing in it is theirs.
        chmod(hub.directory.path, 0o711)
        let config = """
            backend: local
            local:
              isolation: \(isolation)
              command: ["/usr/bin/python3", "\(probeProgram)", "--socket", "{socket}", "--base-url", "{base_url}"]
              socket_dir: \(hub.directory.path)/run
              stop_grace_period: 2s
            \(local.map { "  " + $0 }.joined(separator: "\n"))
            spawn:
              stop_servers_on_shutdown: true
              slow_spawn_timeout: 30s
            \(spawn.map { "  " + $0 }.joined(separator: "\n"))
            auth:
              bcrypt_cost: 4
              enable_signup: true
            """
        let token = try await hub.start(config: config)
        return WorkspaceHub(hub: hub, token: token)
    }

    /// Starts `user`'s default server and waits for the API to call it ready.
    static func startServer(_ w: WorkspaceHub, _ user: String) async throws {
        let start = try await w.api.call(.POST, "/users/\(user)/server")
        #expect([201, 202].contains(start.status), "\(start.text)")
        var ready = false
        for _ in 0..<600 where !ready {
            ready = try await w.server(user)?["ready"] as? Bool == true
            if !ready { try await Task.sleep(for: .milliseconds(50)) }
        }
        let logs = ready ? "" : try await w.api.call(.GET, "/users/\(user)/server/logs?lines=20").text
        try #require(ready, "\(user)'s workspace did not become ready: \(logs)")
    }

    /// Calls the probe workspace of `user` through the proxy (as the admin).
    static func probe(_ w: WorkspaceHub, _ user: String, _ method: HTTPMethod, _ path: String, json: Any? = nil) async throws -> [String: Any] {
        let reply = try await API(base: w.hub.baseURL, token: w.token).call(method, "/user/\(user)/\(path)", json: json)
        try #require(reply.status == 200, "\(path): \(reply.status) \(reply.text)")
        return try #require(reply.json as? [String: Any])
    }

    /// The uid of a Unix account.
    static func uid(of name: String) -> UInt32? {
        getpwnam(name).map { $0.pointee.pw_uid }
    }

    /// What ann's workspace may do to bob's and to the hub's files.
    static func attack(_ w: WorkspaceHub) async throws -> (whoami: [String: Any], result: [String: [String: String]], bob: [String: Any]) {
        try await w.addUsers(["ann", "bob"])
        try await startServer(w, "ann")
        try await startServer(w, "bob")
        let bobState = try #require(try await w.server("bob")?["state"] as? [String: Any])
        let bobWorkspace = try #require(bobState["workspace"] as? String)
        let bobLog = try #require(bobState["logFile"] as? String)
        let bobAddress = try #require(bobState["address"] as? [String: Any])
        let bobSocket = try #require(((bobAddress["unix"] as? [String: Any])?["path"]) as? String, "\(bobAddress)")
        let bobPids = try #require(try await probe(w, "bob", .GET, "pids")["pids"] as? [Int])
        let directory = w.hub.directory.path
        let result = try await probe(
            w, "ann", .POST, "probe",
            json: [
                "read": ["\(directory)/atrium.sqlite", "\(directory)/atrium_cookie_secret", bobLog, "\(bobWorkspace)/.atrium-initialized"],
                "list": ["\(bobWorkspace)/code"],
                "connect": [bobSocket],
                "signal": bobPids,
            ])
        let whoami = try await probe(w, "ann", .GET, "whoami")
        return (whoami, result.compactMapValues { $0 as? [String: String] }, ["workspace": bobWorkspace, "pids": bobPids])
    }

    @Test("system_users: from inside ann's workspace, bob's files, log, socket and processes and the hub's secrets are out of reach")
    func systemUsersIsolate() async throws {
        let w = try await Self.start(isolation: "system_users")
        defer { w.cleanUp() }
        let (whoami, result, bob) = try await Self.attack(w)

        let annAccount = try #require(w.hub.systemAccounts().first { $0.name.hasSuffix("ann") })
        #expect(whoami["uid"] as? Int == Self.uid(of: annAccount.name).map(Int.init))
        #expect(whoami["uid"] as? Int != 0)
        #expect(whoami["euid"] as? Int == whoami["uid"] as? Int)
        #expect(whoami["umask"] as? Int == 0o077)
        #expect(whoami["home"] as? String == annAccount.home)
        #expect(whoami["user"] as? String == annAccount.name)
        for (path, outcome) in result["read"] ?? [:] { #expect(outcome == "EACCES", "reading \(path): \(outcome)") }
        for (path, outcome) in result["list"] ?? [:] { #expect(outcome == "EACCES", "listing \(path): \(outcome)") }
        for (path, outcome) in result["connect"] ?? [:] { #expect(outcome == "EACCES", "connecting to \(path): \(outcome)") }
        #expect(result["signal"]?.isEmpty == false)
        for (pid, outcome) in result["signal"] ?? [:] { #expect(outcome == "EPERM", "signalling \(pid): \(outcome)") }

        // Homes are the accounts' own, mode 0700, and bob's workspace still runs.
        var info = stat()
        #expect(stat(annAccount.home, &info) == 0)
        #expect(info.st_uid == Self.uid(of: annAccount.name))
        #expect(info.st_mode & 0o777 == 0o700)
        let pids = try #require(bob["pids"] as? [Int])
        #expect(pids.allSatisfy { kill(pid_t($0), 0) == 0 })
    }

    @Test("hub_user: the same probes succeed, so the isolation test can fail")
    func hubUserDoesNot() async throws {
        let w = try await Self.start(isolation: "hub_user")
        defer { w.cleanUp() }
        let (whoami, result, _) = try await Self.attack(w)
        #expect(whoami["uid"] as? Int == 0)
        let directory = w.hub.directory.path
        #expect(result["read"]?["\(directory)/atrium_cookie_secret"] == "ok")
        #expect(result["read"]?["\(directory)/atrium.sqlite"] == "ok")
        #expect(result["connect"]?.values.allSatisfy { $0 == "ok" } == true)
        #expect(w.hub.systemAccounts().isEmpty)
    }

    @Test("limits: memory past the limit is OOM-killed and reported; a fork bomb stops at pids.max; cpu_limit 0.5 holds")
    func limits() async throws {
        let w = try await Self.start(isolation: "system_users", spawn: ["memory_limit: 128M", "cpu_limit: 0.5"], local: ["pids_limit: 48"])
        defer { w.cleanUp() }
        try await w.addUsers(["ann", "bob", "cy"])

        // Memory: the allocation never completes; the hub reports the server failed, out of memory.
        try await Self.startServer(w, "ann")
        let allocation = try await API(base: w.hub.baseURL, token: w.token).call(.POST, "/user/ann/allocate?mb=512")
        #expect(allocation.status != 200, "allocating 512 MiB under a 128 MiB limit succeeded")
        var failure: String?
        for _ in 0..<400 where failure == nil {
            failure = try await w.server("ann")?["atrium_failure"] as? String
            if failure == nil {
                // The proxy notices the dead server at the next request, as a student's browser would.
                _ = try await API(base: w.hub.baseURL, token: w.token).call(.GET, "/user/ann/whoami")
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        #expect(failure?.contains("out of memory") == true, "\(String(describing: failure))")
        #expect(try await w.server("ann")?["atrium_phase"] as? String == "failed")

        // Processes: forking stops at pids.max, and the hub answers meanwhile.
        try await Self.startServer(w, "bob")
        let bomb = try await Self.probe(w, "bob", .POST, "forkbomb")
        let forked = try #require(bomb["forked"] as? Int)
        #expect(forked < 48, "\(bomb)")
        #expect(bomb["failure"] as? String == "EAGAIN")
        #expect(try await w.api.call(.GET, "/").status == 200)
        let usage = try #require(try await w.api.call(.GET, "/users/bob/server/logs?lines=1").json as? [String: Any])
        let tasks = ((usage["atrium_usage"] as? [String: Any])?["tasks"] as? Int) ?? 0
        #expect(tasks > forked && tasks <= 48, "\(usage)")

        // CPU: two busy processes get about half a core together, read from the cgroup's CPU time.
        try await Self.startServer(w, "cy")
        _ = try await Self.probe(w, "cy", .POST, "spin?threads=2")
        func cpuSeconds() async throws -> Double {
            let reply = try await w.api.call(.GET, "/users/cy/server/logs?lines=1")
            return try #require(((reply.json as? [String: Any])?["atrium_usage"] as? [String: Any])?["cpu_seconds"] as? Double, "\(reply.text)")
        }
        let before = try await cpuSeconds(), started = ContinuousClock.now
        try await Task.sleep(for: .seconds(3))
        let after = try await cpuSeconds(), elapsed = ContinuousClock.now - started
        let cores = (after - before) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        // Unlimited, two busy loops would take two cores (less on a loaded machine, never more
        // than the quota): the upper bound is the limit's test.
        #expect(cores <= 0.6, "two busy loops used \(cores) cores under cpu_limit 0.5")
        #expect(cores > 0.05, "the busy loops did not run: \(cores) cores")
        // The same figures in the user model, for admins.
        let model = try #require(try await w.server("cy")?["atrium_usage"] as? [String: Any])
        #expect((model["memory_bytes"] as? Int ?? 0) > 0 && (model["cpu_seconds"] as? Double ?? 0) >= after)
    }

    @Test("deleting a user keeps their account and files unless the admin asks to delete the stored files too")
    func deleteUser() async throws {
        let w = try await Self.start(isolation: "system_users")
        defer { w.cleanUp() }
        try await w.addUsers(["ann", "bob"])
        try await Self.startServer(w, "ann")
        try await Self.startServer(w, "bob")
        let accounts = w.hub.systemAccounts()
        let ann = try #require(accounts.first { $0.name.hasSuffix("ann") })
        let bob = try #require(accounts.first { $0.name.hasSuffix("bob") })

        #expect(try await w.api.call(.DELETE, "/users/ann").status == 204)
        #expect(Self.uid(of: ann.name) != nil)
        #expect(FileManager.default.fileExists(atPath: "\(ann.home)/code"))

        let forever = try await w.api.call(.POST, "/users/bob/delete-forever", extraHeaders: [])
        #expect([200, 204].contains(forever.status), "\(forever.text)")
        #expect(Self.uid(of: bob.name) == nil)
        #expect(!FileManager.default.fileExists(atPath: bob.home))
    }

    /// Runs `atrium serve` once in `folder` (as `uid` when given, through setpriv) and returns
    /// its exit status and output; it is expected to refuse to start.
    static func refusedServe(in folder: String, uid: UInt32? = nil, environment: [String: String] = [:]) async throws -> (Int32, String) {
        try await HubProcess.offload {
            let p = Process()
            var arguments = [HubProcess.binary, "serve", "--port", "0", "--config", "atrium.yaml"]
            if let uid { arguments = ["/usr/bin/setpriv", "--reuid", "\(uid)", "--regid", "\(uid)", "--clear-groups", "--"] + arguments }
            p.executableURL = URL(fileURLWithPath: arguments[0])
            p.arguments = Array(arguments.dropFirst())
            p.currentDirectoryURL = URL(fileURLWithPath: folder)
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            // A refusal ends the process; a hub that started anyway is stopped by the bounded wait.
            let deadline = Date().addingTimeInterval(60)
            while p.isRunning, Date() < deadline { usleep(20_000) }
            if p.isRunning { p.terminate() }
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        }
    }

    @Test("system_users without root is refused at start-up with a message that says what to do")
    func systemUsersNeedRoot() async throws {
        let folder = "/tmp/atrium-nonroot-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "backend: local\nlocal:\n  isolation: system_users\n  preset: atrium-workspace\n  socket_dir: \(folder)/run\n"
            .write(toFile: "\(folder)/atrium.yaml", atomically: true, encoding: .utf8)
        _ = chown(folder, 65534, 65534)
        let (status, output) = try await Self.refusedServe(in: folder, uid: 65534)
        #expect(status != 0)
        #expect(output.contains("local.isolation") && output.contains("needs the hub to run as root") && output.contains("hub_user"), "\(output)")
    }

    @Test("the hub's secrets readable by others: serve refuses, naming the file and the chmod that fixes it")
    func privateFiles() async throws {
        let w = try await Self.start(isolation: "system_users")
        w.hub.stop()
        defer { w.cleanUp() }
        let database = w.hub.directory.appendingPathComponent("atrium.sqlite").path
        chmod(database, 0o644)
        let (status, output) = try await Self.refusedServe(in: w.hub.directory.path)
        #expect(status != 0)
        #expect(output.contains(database) && output.contains("chmod 600 \(database)"), "\(output)")
        chmod(database, 0o600)
        let logs = w.hub.directory.appendingPathComponent("logs").path
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        chmod(logs, 0o755)
        let (again, text) = try await Self.refusedServe(in: w.hub.directory.path)
        #expect(again != 0)
        #expect(text.contains("chmod 700 \(logs)"), "\(text)")
    }

    @Test("create_system_users: on_approval makes the account when the admin approves, before any start")
    func accountOnApproval() async throws {
        let w = try await Self.start(isolation: "system_users", local: ["create_system_users: on_approval"])
        defer { w.cleanUp() }
        let pages = API(base: w.hub.baseURL)
        let xsrf = try await API(base: w.hub.baseURL).xsrfToken()
        let signup = try await pages.call(
            .POST, "/hub/signup", form: "_xsrf=\(xsrf)&username=eve&password=Tr1cky-Horse&password_confirm=Tr1cky-Horse",
            extraHeaders: [("Cookie", "_xsrf=\(xsrf)")])
        #expect([200, 201].contains(signup.status), "\(signup.text.prefix(300))")
        #expect(w.hub.systemAccounts().isEmpty)  // awaiting approval: no account yet
        #expect(try await w.api.call(.PATCH, "/users/eve", json: ["approval": "approved"]).status == 200)
        var made: (name: String, home: String)?
        for _ in 0..<200 where made == nil {
            // useradd writes /etc/passwd first and makes the home after; the hub records the
            // account once useradd is done: wait for that.
            let mapping = (try? String(contentsOf: w.hub.directory.appendingPathComponent("accounts.json"), encoding: .utf8)) ?? ""
            made = mapping.contains("\"eve\"") ? w.hub.systemAccounts().first { $0.name.hasSuffix("eve") } : nil
            if made == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let account = try #require(made, "no account after the approval")
        #expect(FileManager.default.fileExists(atPath: account.home))
        // The first start uses it; it makes no second one.
        try await Self.startServer(w, "eve")
        #expect(w.hub.systemAccounts().count == 1)
        #expect(try await Self.probe(w, "eve", .GET, "whoami")["user"] as? String == account.name)
    }

    @Test("an existing account the hub did not make is never taken over; the start fails saying so")
    func clash() async throws {
        let w = try await Self.start(isolation: "system_users")
        defer { w.cleanUp() }
        let name = w.hub.accountPrefix + "dan"
        let made = Process()
        made.executableURL = URL(fileURLWithPath: "/usr/sbin/useradd")
        made.arguments = ["--no-create-home", "--comment", "not atrium", name]
        try made.run()
        made.waitUntilExit()
        defer {
            let gone = Process()
            gone.executableURL = URL(fileURLWithPath: "/usr/sbin/userdel")
            gone.arguments = [name]
            try? gone.run()
            gone.waitUntilExit()
        }
        try await w.addUsers(["dan"])
        let start = try await w.api.call(.POST, "/users/dan/server")
        var failure = start.status >= 400 ? start.text : nil
        for _ in 0..<200 where failure == nil {
            failure = try await w.server("dan")?["atrium_failure"] as? String
            if failure == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(failure?.contains(name) == true && failure?.contains("not made by Atrium") == true, "\(String(describing: failure))")
        #expect(getpwnam(name).map { String(cString: $0.pointee.pw_gecos) } == "not atrium")
    }
}
