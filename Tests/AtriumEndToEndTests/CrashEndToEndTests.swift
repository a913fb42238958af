import AtriumTestSupport
import Foundation
import NIOHTTP1
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The hub killed with SIGKILL at random moments while 50 servers start at once (issue: orphan
/// workspaces after kill -9). After every restart each server has at most one process, and one
/// only when the hub says it runs; stopping everything through the API leaves none.
@Suite("Hub killed during starts, end to end (as root)", .serialized, .enabled(if: geteuid() == 0, "needs root: CI runs as root"))
struct CrashEndToEndTests {
    /// The probe workspaces of this hub, by user: found by their command line, which names the
    /// hub's folder and the user's base URL.
    static func workspaces(of hub: HubProcess) -> [String: [Int32]] {
        var found: [String: [Int32]] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline") else { continue }
            let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard arguments.contains(where: { $0.hasSuffix("probe_workspace.py") }), arguments.contains(where: { $0.hasPrefix(hub.directory.path) }),
                let index = arguments.firstIndex(of: "--base-url"), index + 1 < arguments.count
            else { continue }
            // A zombie (exited, not yet reaped by a hub that is gone) runs nothing.
            if let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")"), stat[stat.index(close, offsetBy: 2)] == "Z"
            {
                continue
            }
            let user = arguments[index + 1].split(separator: "/").dropFirst().first.map(String.init) ?? "?"
            found[user, default: []].append(pid)
        }
        return found
    }

    @Test("kill -9 at random points during 50 concurrent starts, 10 rounds: no orphan, no duplicate")
    func killDuringStarts() async throws {
        let hub = try HubProcess()
        chmod(hub.directory.path, 0o711)
        let config = """
            backend: local
            local:
              command: ["/usr/bin/python3", "\(IsolationEndToEndTests.probeProgram)", "--socket", "{socket}", "--base-url", "{base_url}"]
              socket_dir: \(hub.directory.path)/run
              stop_grace_period: 2s
            spawn:
              concurrent_spawn_limit: 100
              stop_servers_on_shutdown: false
              slow_spawn_timeout: 1s
            auth:
              bcrypt_cost: 4
            """
        let token = try await hub.start(config: config)
        let w = WorkspaceHub(hub: hub, token: token)
        defer { w.cleanUp() }
        let names = (1...50).map { String(format: "crash%02d", $0) }
        #expect(try await w.api.call(.POST, "/users", json: ["usernames": names]).status == 201)
        var generator = SystemRandomNumberGenerator()
        var killedWhileStarting = 0

        for round in 1...10 {
            // Every start at once, then SIGKILL somewhere in the middle of them.
            let starting = w.api
            let starts = Task {
                await withTaskGroup(of: Void.self) { group in
                    for name in names { group.addTask { _ = try? await starting.call(.POST, "/users/\(name)/server") } }
                }
            }
            try await Task.sleep(for: .milliseconds(Int.random(in: 20...900, using: &generator)))
            let before = Self.workspaces(of: hub).count
            hub.kill9()
            starts.cancel()
            _ = await starts.value
            if before < names.count { killedWhileStarting += 1 }

            try await hub.start(extra: ["--config", "atrium.yaml"])
            // The restarted hub has reattached or cleaned up every server before it serves.
            let listed = try #require(try await w.api.call(.GET, "/users?limit=200").json as? [[String: Any]])
            var running = Set<String>()
            for user in listed {
                let server = (user["servers"] as? [String: Any])?[""] as? [String: Any]
                if server?["ready"] as? Bool == true { running.insert(user["name"] as? String ?? "") }
            }
            let processes = Self.workspaces(of: hub)
            for name in names {
                let pids = processes[name] ?? []
                #expect(pids.count <= 1, "round \(round): \(name) has \(pids.count) workspace processes: \(pids)")
                #expect(pids.isEmpty || running.contains(name), "round \(round): \(name) has an orphan process \(pids) while the hub says it is not running")
                #expect(!running.contains(name) || pids.count == 1, "round \(round): the hub says \(name) runs, but \(pids.count) processes do")
            }

            // Stopping every server through the API (the restarted hub's port) leaves nothing behind.
            let api = w.api
            await withTaskGroup(of: Void.self) { group in
                for name in running {
                    group.addTask {
                        let reply = try? await api.call(.DELETE, "/users/\(name)/server")
                        #expect([202, 204].contains(reply?.status ?? 0), "round \(round): stopping \(name): \(reply?.status ?? 0) \(reply?.text ?? "")")
                    }
                }
            }
            var left = Self.workspaces(of: hub)
            for _ in 0..<300 where !left.isEmpty {
                try await Task.sleep(for: .milliseconds(50))
                left = Self.workspaces(of: hub)
            }
            #expect(left.isEmpty, "round \(round): processes left after stopping every server: \(left)")
        }
        // The kills must have landed during starts, or the test proved nothing.
        #expect(killedWhileStarting >= 5, "only \(killedWhileStarting) of 10 kills came while servers were starting")
    }
}
