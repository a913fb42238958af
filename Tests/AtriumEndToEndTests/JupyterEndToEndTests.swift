import AsyncHTTPClient
import AtriumTestSupport
import Foundation
import NIOCore
import NIOWebSocket
import Testing

@Suite("jupyter-server through Atrium", .serialized)
struct JupyterEndToEndTests {
    @Test(
        "log in, start jupyter-server, use its API and a kernel over WebSocket through the proxy, see activity, stop",
        .enabled(if: jupyterServerInstalled || ProcessInfo.processInfo.environment["CI"] == "true",
                 "jupyter-server is not installed (pip install jupyter-server ipykernel)"))
    func kernelThroughProxy() async throws {
        #expect(jupyterServerInstalled, "CI must install jupyter-server and ipykernel (pip)")
        guard jupyterServerInstalled else { return }
        let hub = try HubProcess()
        let config = """
            local:
              preset: jupyter-server
              socket_dir: \(hub.directory.path)/run
            spawn:
              stop_servers_on_shutdown: true
              slow_spawn_timeout: 1s
            proxy:
              activity_flush_interval: 200ms
            auth:
              bcrypt_cost: 4
            """
        let w = WorkspaceHub(hub: hub, token: try await hub.start(config: config))
        defer { w.cleanUp() }
        try await w.addUsers(["ann"])
        let cookie = try await w.login("ann")
        let ann = API(base: hub.baseURL, headers: [("Cookie", cookie), ("X-XSRFToken", WorkspaceHub.xsrf(of: cookie))])

        let start = try await ann.call(.POST, "/hub/api/users/ann/server")
        #expect([201, 202].contains(start.status), "\(start.text)")
        var ready = false
        for _ in 0..<600 where !ready {
            ready = try await w.server("ann")?["ready"] as? Bool == true
            if !ready { try await Task.sleep(for: .milliseconds(100)) }
        }
        let logs = ready ? "" : try await w.api.call(.GET, "/users/ann/server/logs?lines=20").text
        #expect(ready, "jupyter-server did not become ready: \(logs)")

        let status = try await ann.call(.GET, "/user/ann/api/status")
        #expect(status.status == 200, "\(status.text)")
        #expect((status.json as? [String: Any])?["started"] != nil)
        let before = try await w.server("ann")?["last_activity"] as? String

        let kernel = try await ann.call(.POST, "/user/ann/api/kernels", json: ["name": "python3"])
        #expect(kernel.status == 201, "\(kernel.text)")
        let kernelID = try #require((kernel.json as? [String: Any])?["id"] as? String)

        let run = try await runOnKernel(
            port: hub.port, path: "/user/ann/api/kernels/\(kernelID)/channels", headers: [("Cookie", cookie)], code: "print(6 * 7)")
        #expect(run == .output("42\n"))

        var after: String?
        for _ in 0..<100 {
            after = try await w.server("ann")?["last_activity"] as? String
            if let after, after != before { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(after != nil && after != before, "last_activity did not move: \(String(describing: before)) → \(String(describing: after))")

        let stop = try await ann.call(.DELETE, "/hub/api/users/ann/server")
        #expect([202, 204].contains(stop.status))
        #expect(try await ann.call(.GET, "/user/ann/api/status").status == 503)
    }
}
