import AsyncHTTPClient
import AtriumTestSupport
import Foundation
import NIOCore
import Synchronization
import Testing

/// Whether the unmodified `jupyterhub-idle-culler` is installed (CI installs it with pip).
let idleCullerInstalled: Bool = {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", "import jupyterhub_idle_culler"]
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    guard (try? p.run()) != nil else { return false }
    p.waitUntilExit()
    return p.terminationStatus == 0
}()

/// A hub on the simulated backend with two running servers: `idle` (nobody touches it) and
/// `busy` (a client requests it through the proxy twice a second).
struct CullerHub {
    let hub: HubProcess
    let admin: API

    static func start(extraConfig: String = "") async throws -> CullerHub {
        let hub = try HubProcess()
        let config = """
            backend: simulated
            simulated:
              start_delay_min: 0s
              start_delay_max: 50ms
              failure_rate: 0
            proxy:
              activity_flush_interval: 500ms
              auth_cache_lifetime: 1s
            auth:
              bcrypt_cost: 4
            \(extraConfig)
            """
        let token = try await hub.start(config: config)
        let admin = API(base: hub.baseURL + "/hub/api", token: token)
        let created = try await admin.call(.POST, "/users", json: ["usernames": ["idle", "busy"]])
        #expect(created.status == 201, "\(created.text)")
        for name in ["idle", "busy"] {
            let started = try await admin.call(.POST, "/users/\(name)/server")
            #expect([201, 202].contains(started.status), "\(started.text)")
        }
        let c = CullerHub(hub: hub, admin: admin)
        for name in ["idle", "busy"] { try await c.waitFor(name, ready: true, within: .seconds(20)) }
        return c
    }

    func ready(_ user: String) async throws -> Bool {
        let reply = try await admin.call(.GET, "/users/\(user)")
        let servers = (reply.json as? [String: Any])?["servers"] as? [String: Any]
        return (servers?[""] as? [String: Any])?["ready"] as? Bool == true
    }

    /// Polls (bounded) until the user's default server is ready or gone.
    func waitFor(_ user: String, ready wanted: Bool, within limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if try await ready(user) == wanted { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        Issue.record("\(user)'s server never became \(wanted ? "ready" : "stopped")")
    }

    /// Requests `busy`'s workspace through the proxy every half second until cancelled; `answered`
    /// counts the requests that got through.
    final class BusyClient: Sendable {
        final class Counter: Sendable {
            let value = Mutex(0)
        }
        let answered = Counter()
        let task: Task<Void, Never>

        init(_ proxy: API) {
            let answered = self.answered
            task = Task {
                while !Task.isCancelled {
                    if let reply = try? await proxy.call(.GET, "/user/busy/api/contents"), reply.status == 200 { answered.value.withLock { $0 += 1 } }
                    try? await Task.sleep(for: .milliseconds(500))
                }
            }
        }

        var count: Int { answered.value.withLock { $0 } }

        /// Waits until `more` further requests got through (the event, not a time window), then
        /// stops; records an issue when they do not within a generous bound.
        func stop(after more: Int) async {
            let target = count + more
            for _ in 0..<600 where count < target { try? await Task.sleep(for: .milliseconds(200)) }
            task.cancel()
            _ = await task.value
            #expect(count >= target, "the busy client's requests did not get through the proxy (\(count) answered)")
        }
    }

    func keepBusy() -> BusyClient {
        BusyClient(API(base: hub.baseURL, token: admin.token))
    }
}

@Suite("Idle culling, end to end", .serialized)
struct CullerEndToEndTests {
    @Test(
        "the unmodified jupyterhub-idle-culler, with only the scopes it documents, stops the idle server and keeps the active one",
        .enabled(if: idleCullerInstalled || ProcessInfo.processInfo.environment["CI"] == "true",
                 "jupyterhub-idle-culler is not installed (pip install jupyterhub-idle-culler)"))
    func externalCuller() async throws {
        #expect(idleCullerInstalled, "CI must install jupyterhub-idle-culler (pip)")
        guard idleCullerInstalled else { return }
        let c = try await CullerHub.start()
        defer { c.hub.stop() }
        // The scopes jupyterhub-idle-culler's README lists (admin:users only for --cull-users).
        let made = try await c.hub.run([
            "token", "create", "culler", "--admin", "--config", "atrium.yaml",
            "--scopes", "list:users,read:users:activity,read:servers,delete:servers",
        ])
        let token = made.output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(made.status == 0 && !token.isEmpty)
        let whoami = try await API(base: c.hub.baseURL + "/hub/api", token: token).call(.GET, "/user")
        // whoami lists the scopes expanded (read:servers implies read:users:name), as JupyterHub does.
        // …and, as every token, its owner's identify scope (JupyterHub's identify_scopes).
        #expect(Set((whoami.json as? [String: Any])?["scopes"] as? [String] ?? []) == [
            "list:users", "read:users:activity", "read:servers", "delete:servers", "read:users:name", "read:users:groups!user=culler",
        ])

        let busy = c.keepBusy()
        let log = c.hub.directory.appendingPathComponent("culler.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let culler = Process()
        culler.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        culler.arguments = ["python3", "-m", "jupyterhub_idle_culler", "--url=\(c.hub.baseURL)/hub/api", "--timeout=12", "--cull-every=2"]
        var environment = ProcessInfo.processInfo.environment
        environment["JUPYTERHUB_API_TOKEN"] = token
        culler.environment = environment
        let output = try FileHandle(forWritingTo: log)
        culler.standardOutput = output
        culler.standardError = output
        try culler.run()
        defer {
            // SIGKILL: the test process may block SIGTERM in the thread that spawned the
            // child, and a blocked signal stays blocked in Python.
            if culler.isRunning { kill(culler.processIdentifier, SIGKILL) }
            culler.waitUntilExit()
        }

        try await c.waitFor("idle", ready: false, within: .seconds(90))
        // Two more passes of the culler with `busy` still in use.
        try await Task.sleep(for: .seconds(5))
        #expect(try await c.ready("busy"), "the active server was culled")
        await busy.stop(after: 3)
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(text.contains("Culling server idle"), "\(text)")
        #expect(!text.contains("Culling server busy"), "\(text)")
        #expect(!text.contains("Traceback"), "\(text)")
    }

    @Test("the built-in culler, switched on in the configuration, stops the idle server and keeps the active one")
    func builtInCuller() async throws {
        let c = try await CullerHub.start(extraConfig: """
            culler:
              enabled: true
              timeout: 12s
              cull_every: 1s
            """)
        defer { c.hub.stop() }
        // The timeout is far above the busy client's half-second rhythm: on a loaded machine a
        // request can take seconds, and a busy server whose requests really stopped for the
        // timeout is rightly culled.
        let busy = c.keepBusy()
        try await c.waitFor("idle", ready: false, within: .seconds(90))
        try await Task.sleep(for: .seconds(3))
        #expect(try await c.ready("busy"), "the active server was culled")
        await busy.stop(after: 3)
        let metrics = try await API(base: c.hub.baseURL, token: c.admin.token).call(.GET, "/hub/metrics")
        #expect(metrics.text.contains(#"atrium_culls_total{reason="idle",action="stop"} 1"#), "\(metrics.text)")
    }
}
