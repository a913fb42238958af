import AsyncHTTPClient
import AtriumTestSupport
import Foundation
import NIOCore
import NIOWebSocket
import Testing

/// A hub with the local backend running real `atrium-workspace` processes, driven over HTTP.
struct WorkspaceHub {
    let hub: HubProcess
    let token: String
    var api: API { API(base: hub.baseURL + "/hub/api", token: token) }

    /// Writes the configuration, makes an admin token, and starts the hub.
    static func start(spawnConfig: [String] = [], stopOnShutdown: Bool = true) async throws -> WorkspaceHub {
        let hub = try HubProcess()
        let config = """
            backend: local
            local:
              preset: atrium-workspace
              socket_dir: \(hub.directory.path)/run
              stop_grace_period: 2s
            spawn:
              stop_servers_on_shutdown: \(stopOnShutdown)
              slow_spawn_timeout: 20s
            \(spawnConfig.map { "  " + $0 }.joined(separator: "\n"))
            proxy:
              activity_flush_interval: 200ms
              auth_cache_lifetime: 1s
            auth:
              bcrypt_cost: 4
            """
        let token = try await hub.start(config: config)
        return WorkspaceHub(hub: hub, token: token)
    }

    /// Creates users with a password each.
    func addUsers(_ names: [String], password: String = "Corr3ct-Horse") async throws {
        let created = try await api.call(.POST, "/users", json: ["usernames": names])
        #expect(created.status == 201, "\(created.text)")
        for name in names {
            #expect(try await hub.run(["user", "set-password", name, "--password-stdin", "--config", "atrium.yaml"], stdin: password + "\n").status == 0)
        }
    }

    /// The XSRF token in a Cookie header value that ``login(_:password:)`` returned.
    static func xsrf(of cookie: String) -> String {
        String(cookie.split(separator: ";")[0].dropFirst("_xsrf=".count))
    }

    /// Logs in through the form and returns the Cookie header value for the session.
    func login(_ name: String, password: String = "Corr3ct-Horse") async throws -> String {
        let pages = API(base: hub.baseURL)
        let xsrf = try await pages.xsrfToken()
        let reply = try await pages.call(
            .POST, "/hub/login", form: "_xsrf=\(xsrf)&username=\(name)&password=\(password)",
            extraHeaders: [("Cookie", "_xsrf=\(xsrf)")])
        let session = try #require(reply.headers["Set-Cookie"].first { $0.hasPrefix("atrium-session=") }, "login failed: \(reply.status)")
        return "_xsrf=\(xsrf); " + session.split(separator: ";")[0]
    }

    /// The stored server model (admin view, with the backend state).
    func server(_ user: String, _ name: String = "") async throws -> [String: Any]? {
        let reply = try await api.call(.GET, "/users/\(user)?include_stopped_servers")
        return ((reply.json as? [String: Any])?["servers"] as? [String: Any])?[name] as? [String: Any]
    }

    /// Kills anything the hub's workspaces left behind (their command lines name the hub's folder).
    func cleanUp() {
        hub.stop()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/pkill")
        p.arguments = ["-f", hub.directory.path]
        try? p.run()
        p.waitUntilExit()
        hub.removeSystemAccounts()
    }
}

@Suite("Workspaces, end to end", .serialized)
struct WorkspaceEndToEndTests {
    @Test("start through the API, reach the workspace through the proxy, WebSocket echo, activity, stop")
    func startProxyStop() async throws {
        let w = try await WorkspaceHub.start()
        defer { w.cleanUp() }
        try await w.addUsers(["alice", "bob"])
        let alice = try await w.login("alice")
        let aliceAPI = API(base: w.hub.baseURL + "/hub/api", headers: [("Cookie", alice), ("X-XSRFToken", WorkspaceHub.xsrf(of: alice))])

        let start = try await aliceAPI.call(.POST, "/users/alice/server")
        #expect(start.status == 201, "\(start.text)")
        #expect(try await aliceAPI.call(.POST, "/users/alice/server").status == 400)  // already running
        let model = try #require(try await w.server("alice"))
        #expect(model["ready"] as? Bool == true)
        #expect(model["url"] as? String == "/user/alice/")

        let pages = API(base: w.hub.baseURL)
        let root = try await pages.call(.GET, "/user/alice/", extraHeaders: [("Cookie", alice)])
        #expect(root.status == 200)
        #expect(root.text == "atrium workspace for alice\n")
        // What the workspace saw: the secret instead of the hub's credentials, forwarding headers.
        let seen = try #require((try await pages.call(.GET, "/user/alice/headers", extraHeaders: [("Cookie", alice + "; theme=dark")])).json as? [String: Any])
        let headers = try #require(seen["headers"] as? [String: [String]])
        #expect(headers["cookie"] == ["\(alice.split(separator: ";")[0]); theme=dark"])
        #expect(headers["authorization"]?.first?.hasPrefix("token ") == true)
        #expect(headers["x-forwarded-for"] == ["127.0.0.1"])

        // A 10 MB upload is echoed through the proxy.
        let upload = Data((0..<10_000_000).map { UInt8($0 % 253) })
        var echo = HTTPClientRequest(url: w.hub.baseURL + "/user/alice/echo")
        echo.method = .POST
        echo.headers.add(name: "Cookie", value: alice)
        echo.body = .bytes(ByteBuffer(bytes: upload))
        let echoed = try await API.client.execute(echo, timeout: .seconds(60))
        #expect(echoed.status.code == 200)
        #expect(Data(try await echoed.body.collect(upTo: 20 << 20).readableBytesView) == upload)

        // WebSocket echo through the proxy, authenticated by the session cookie.
        let (channel, events) = try await connectWebSocket(port: w.hub.port, path: "/user/alice/ws", headers: [("Cookie", alice)])
        var iterator = events.makeAsyncIterator()
        guard case .upgraded? = await iterator.next() else { Issue.record("no upgrade"); return }
        var frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: "hello through the hub"))
        try await channel.writeAndFlush(frame)
        guard case .frame(let reply)? = await iterator.next() else { Issue.record("no echo"); return }
        #expect(String(buffer: reply.unmaskedData) == "hello through the hub")
        frame = WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: ByteBuffer(bytes: [0x03, 0xE8]))
        try await channel.writeAndFlush(frame)
        try? await channel.close().get()

        // Activity from the proxy reaches the store within the flush interval.
        var lastActivity: String?
        for _ in 0..<100 {
            lastActivity = try await w.server("alice")?["last_activity"] as? String
            if lastActivity != nil { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(lastActivity != nil)

        let logs = try await aliceAPI.call(.GET, "/users/alice/server/logs?lines=5")
        #expect((logs.json as? [String: Any]).flatMap { $0["lines"] as? [String] }?.contains { $0.contains("listening on unix:") } == true)
        #expect(try await aliceAPI.call(.GET, "/users/alice/server/logs?lines=zero").status == 400)

        let stop = try await aliceAPI.call(.DELETE, "/users/alice/server")
        #expect([202, 204].contains(stop.status))
        let after = try await pages.call(.GET, "/user/alice/", extraHeaders: [("Cookie", alice)])
        #expect(after.status == 503)
        #expect((after.json as? [String: Any])?["status"] as? Int == 503)
        let browser = try await pages.call(.GET, "/user/alice/", extraHeaders: [("Cookie", alice), ("Accept", "text/html")])
        #expect(browser.status == 503)
        #expect(browser.text.contains("Start it"))
    }

    @Test("another user's cookie, a token without the scope and anonymous browsers are kept out; the socket needs the secret")
    func isolation() async throws {
        let w = try await WorkspaceHub.start()
        defer { w.cleanUp() }
        try await w.addUsers(["alice", "bob"])
        #expect(try await w.api.call(.POST, "/users/alice/server").status == 201)
        let pages = API(base: w.hub.baseURL)
        #expect(try await pages.call(.GET, "/user/alice/", extraHeaders: [("Cookie", try await w.login("alice"))]).status == 200)

        let bob = try await w.login("bob")
        #expect(try await pages.call(.GET, "/user/alice/", extraHeaders: [("Cookie", bob)]).status == 403)
        #expect(try await pages.call(.GET, "/user/alice/api/status", extraHeaders: [("Cookie", bob)]).status == 403)

        let anonymous = try await pages.call(.GET, "/user/alice/tree", extraHeaders: [("Accept", "text/html")])
        #expect(anonymous.status == 302)
        #expect(anonymous.headers["Location"].first == "/hub/login?next=%2Fuser%2Falice%2Ftree")
        #expect(try await pages.call(.GET, "/user/alice/").status == 403)

        // A token of alice's without access:servers, and one with it.
        let readOnly = try await w.api.call(.POST, "/users/alice/tokens", json: ["scopes": ["read:users!user=alice"]])
        let readToken = try #require((readOnly.json as? [String: Any])?["token"] as? String)
        #expect(try await API(base: w.hub.baseURL, token: readToken).call(.GET, "/user/alice/").status == 403)
        let access = try await w.api.call(.POST, "/users/alice/tokens", json: ["scopes": ["access:servers!server=alice/"]])
        let accessToken = try #require((access.json as? [String: Any])?["token"] as? String)
        #expect(try await API(base: w.hub.baseURL, token: accessToken).call(.GET, "/user/alice/").status == 200)
        #expect(try await API(base: w.hub.baseURL, token: accessToken).call(.GET, "/user/bob/").status == 403)

        // Around the proxy: the socket is 0600 and refuses requests without the secret.
        let state = try #require(try await w.server("alice")?["state"] as? [String: Any])
        let socket = try #require((state["address"] as? [String: Any]).flatMap { ($0["unix"] as? [String: Any])?["path"] as? String })
        let attributes = try FileManager.default.attributesOfItem(atPath: socket)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        var direct = HTTPClientRequest(url: "http+unix://\(socket.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)/user/alice/")
        direct.method = .GET
        #expect(try await API.client.execute(direct, timeout: .seconds(5)).status.code == 403)
        direct.headers.add(name: "Authorization", value: "token \(w.token)")
        #expect(try await API.client.execute(direct, timeout: .seconds(5)).status.code == 403)
    }

    @Test("20 running servers survive a hub restart: all reachable again, no new start")
    func restartKeepsServers() async throws {
        let w = try await WorkspaceHub.start(stopOnShutdown: false)
        defer { w.cleanUp() }
        let names = (1...20).map { "student\($0)" }
        #expect(try await w.api.call(.POST, "/users", json: ["usernames": names]).status == 201)
        try await withThrowingTaskGroup(of: Int.self) { group in
            for name in names { group.addTask { try await w.api.call(.POST, "/users/\(name)/server").status } }
            for try await status in group { #expect(status == 201) }
        }
        var pids: [String: Int] = [:]
        for name in names {
            let state = try #require(try await w.server(name)?["state"] as? [String: Any])
            pids[name] = state["pid"] as? Int
        }
        #expect(pids.values.count == 20)

        w.hub.stop()
        for (_, pid) in pids { #expect(kill(pid_t(pid), 0) == 0) }  // the workspaces outlive the hub
        try await w.hub.start(extra: ["--config", "atrium.yaml"])

        for name in names {
            let reply = try await API(base: w.hub.baseURL, token: w.token).call(.GET, "/user/\(name)/")
            #expect(reply.status == 200, "\(name): \(reply.status) \(reply.text)")
            let state = try #require(try await w.server(name)?["state"] as? [String: Any])
            #expect(state["pid"] as? Int == pids[name])
            let log = try String(contentsOf: w.hub.directory.appendingPathComponent("logs/\(name).log"), encoding: .utf8)
            #expect(log.components(separatedBy: "=== ").count == 2)  // started once
        }
        for name in names { _ = try await w.api.call(.DELETE, "/users/\(name)/server") }
        for (_, pid) in pids {
            var gone = false
            for _ in 0..<200 {
                if kill(pid_t(pid), 0) != 0 { gone = true; break }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(gone)
        }
    }

    @Test("named servers, suspend and resume, and deleting a user stops their servers")
    func namedSuspendDelete() async throws {
        let w = try await WorkspaceHub.start(spawnConfig: ["named_server_limit_per_user: 1"])
        defer { w.cleanUp() }
        try await w.addUsers(["carol"])
        #expect(try await w.api.call(.PUT, "/users/carol/servers/lab", json: [:]).status == 201)
        #expect(try await w.api.call(.PUT, "/users/carol/servers/lab", json: [:]).status == 409)
        #expect(try await w.api.call(.POST, "/users/carol/servers/other").status == 400)  // over the limit
        #expect(try await w.api.call(.POST, "/users/carol/servers/Bad_Name").status == 400)
        #expect(try await w.api.call(.POST, "/users/carol/servers/lab").status == 201)
        let carol = try await w.login("carol")
        let pages = API(base: w.hub.baseURL)
        let named = try await pages.call(.GET, "/user/carol/lab/api/status", extraHeaders: [("Cookie", carol)])
        #expect(named.status == 200, "\(named.text)")

        #expect(try await w.api.call(.POST, "/users/carol/servers/lab/suspend").status == 204)
        #expect(try await w.server("carol", "lab")?["atrium_phase"] as? String == "suspended")
        #expect(try await pages.call(.GET, "/user/carol/lab/", extraHeaders: [("Cookie", carol)]).status == 503)
        #expect(try await w.api.call(.POST, "/users/carol/servers/lab/resume").status == 201)
        #expect(try await pages.call(.GET, "/user/carol/lab/", extraHeaders: [("Cookie", carol)]).status == 200)

        // Renaming a user whose server runs would leave it answering at the old name, for whoever
        // takes that name next: refused, and nothing changes.
        let rename = try await w.api.call(.PATCH, "/users/carol", json: ["name": "carol2"])
        #expect(rename.status == 400, "\(rename.text)")
        #expect(rename.text.contains("Stop carol's servers before renaming"))
        #expect(try await w.api.call(.GET, "/users/carol2").status == 404)
        #expect(try await pages.call(.GET, "/user/carol/lab/api/status", extraHeaders: [("Cookie", carol)]).status == 200)

        let pid = try #require((try await w.server("carol", "lab")?["state"] as? [String: Any])?["pid"] as? Int)
        #expect(try await w.api.call(.DELETE, "/users/carol").status == 204)
        #expect(kill(pid_t(pid), 0) != 0)
        #expect(try await pages.call(.GET, "/user/carol/lab/", extraHeaders: [("Cookie", carol)]).status != 200)
    }
}
