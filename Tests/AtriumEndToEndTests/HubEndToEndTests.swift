import AsyncHTTPClient
import AtriumTestSupport
import Foundation
import Testing

/// Starts the real `atrium` binary and drives it over HTTP, as JupyterHub's clients would.
@Suite("atrium serve, end to end", .serialized)
struct HubEndToEndTests {
    @Test("1,000 users: batch create, list with and without pagination, rename, admin, tokens, 403, delete")
    func usersAndTokens() async throws {
        let hub = try HubProcess()
        // 1,000 users created approved would each get a Unix account at once (as root); this
        // test is about the API, so accounts wait for a first start that never comes.
        hub.extraEnvironment["ATRIUM_LOCAL__CREATE_SYSTEM_USERS"] = "on_start"
        // A command other than serve and migrate finds no database and says so, creating none.
        let early = try await hub.run(["token", "create", "ops", "--admin"], withErrors: true)
        #expect(early.status == 1)
        #expect(early.output.contains("there is no Atrium database at") && early.output.contains("atrium migrate"))
        #expect(!FileManager.default.fileExists(atPath: hub.directory.appendingPathComponent("atrium.sqlite").path))
        #expect(try await hub.run(["migrate"]).status == 0)
        let attributes = try FileManager.default.attributesOfItem(atPath: hub.directory.appendingPathComponent("atrium.sqlite").path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600, "the database holds password and token hashes")
        let token = try await hub.run(["token", "create", "ops", "--admin"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.count == 80)
        try await hub.start()
        defer { hub.stop() }
        let api = API(base: hub.baseURL + "/hub/api", token: token)

        let root = try await API(base: hub.baseURL + "/hub/api").call(.GET, "/")
        #expect(root.status == 200)
        #expect((root.json as? [String: Any])?["version"] as? String == "5.4.0")

        for batch in 0..<10 {
            let names = (0..<100).map { "e2e-user-\(batch * 100 + $0)" }
            let reply = try await api.call(.POST, "/users", json: ["usernames": names])
            #expect(reply.status == 201, "\(reply.text)")
            #expect((reply.json as? [Any])?.count == 100)
        }
        let again = try await api.call(.POST, "/users", json: ["usernames": ["e2e-user-1", "e2e-user-2"]])
        #expect(again.status == 409)
        let invalid = try await api.call(.POST, "/users", json: ["usernames": ["fine-name", "bad/name"]])
        #expect(invalid.status == 400)
        #expect(try await api.call(.GET, "/users/fine-name").status == 404)

        let whole = try await api.call(.GET, "/users")
        #expect((whole.json as? [Any])?.count == 1001)  // 1,000 plus the ops admin

        var seen = Set<String>()
        var path = "/users?limit=200&sort=name"
        for _ in 0..<20 {
            let page = try await api.call(.GET, path, extraHeaders: [("Accept", "application/jupyterhub-pagination+json")])
            let object = try #require(page.json as? [String: Any])
            for item in object["items"] as? [[String: Any]] ?? [] { seen.insert(item["name"] as! String) }
            let pagination = try #require(object["_pagination"] as? [String: Any])
            #expect(pagination["total"] as? Int == 1001)
            guard let next = pagination["next"] as? [String: Any] else { break }
            path = "/users?sort=name&offset=\(next["offset"] as! Int)&limit=\(next["limit"] as! Int)"
        }
        #expect(seen.count == 1001)

        let renamed = try await api.call(.PATCH, "/users/e2e-user-7", json: ["name": "e2e-renamed"])
        #expect(renamed.status == 200)
        #expect(try await api.call(.GET, "/users/e2e-user-7").status == 404)
        let promoted = try await api.call(.PATCH, "/users/e2e-renamed", json: ["admin": true])
        #expect((promoted.json as? [String: Any])?["admin"] as? Bool == true)
        #expect(try await api.call(.PATCH, "/users/e2e-renamed", json: ["admin": "yes"]).status == 400)
        #expect(try await api.call(.PATCH, "/users/e2e-renamed", json: ["name": "e2e-user-8"]).status == 400)

        let created = try await api.call(.POST, "/users/e2e-user-9/tokens", json: ["scopes": ["read:users!user=e2e-user-9"], "note": "limited"])
        #expect(created.status == 201, "\(created.text)")
        let limited = try #require(created.json as? [String: Any])
        let limitedAPI = API(base: hub.baseURL + "/hub/api", token: limited["token"] as? String)
        #expect(try await limitedAPI.call(.GET, "/users/e2e-user-9").status == 200)
        let forbidden = try await limitedAPI.call(.POST, "/users", json: ["usernames": ["intruder"]])
        #expect(forbidden.status == 403)
        #expect((forbidden.json as? [String: Any])?["status"] as? Int == 403)
        let id = try #require(limited["id"] as? String)
        #expect(try await api.call(.DELETE, "/users/e2e-user-9/tokens/\(id)").status == 204)
        #expect(try await limitedAPI.call(.GET, "/users/e2e-user-9").status == 403)

        #expect(try await api.call(.POST, "/users", json: ["usernames": 5]).status == 400)
        #expect(try await api.call(.POST, "/users", extraHeaders: [("Content-Type", "application/json")]).status == 400)
        let tooBig = String(repeating: "x", count: 2 << 20)
        let tooLarge = try await api.call(.POST, "/users", json: ["usernames": [tooBig]])
        #expect(tooLarge.status == 413, "\(tooLarge.status) \(tooLarge.text.prefix(200))")

        for name in ["e2e-renamed", "e2e-user-1", "e2e-user-2"] {
            #expect(try await api.call(.DELETE, "/users/\(name)").status == 204)
        }
        #expect(try await api.call(.DELETE, "/users/e2e-user-1").status == 404)
        #expect((try await api.call(.GET, "/users").json as? [Any])?.count == 998)
    }

    @Test("six `atrium migrate` processes and a `token create` on one new SQLite file: all succeed, each migration once")
    func concurrentMigrators() async throws {
        let hub = try HubProcess()
        let outcomes = try await withThrowingTaskGroup(of: (Int32, String).self) { group in
            for _ in 0..<6 { group.addTask { try await hub.run(["migrate"], withErrors: true) } }
            var all: [(Int32, String)] = []
            for try await outcome in group { all.append(outcome) }
            return all
        }
        for (status, output) in outcomes { #expect(status == 0, "\(output)") }
        #expect(try await hub.run(["token", "create", "ops", "--admin"], withErrors: true).status == 0)
        let sqlite = Process()
        sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        sqlite.arguments = [hub.directory.appendingPathComponent("atrium.sqlite").path, "SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations"]
        let out = Pipe()
        sqlite.standardOutput = out
        try sqlite.run()
        sqlite.waitUntilExit()
        let counts = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = counts.split(separator: "|")
        #expect(parts.count == 2 && parts[0] == parts[1], "schema_migrations rows: \(counts)")
    }

    @Test("POST /hub/api/shutdown: refused without the scope or with a bad body; else 202, the servers stop and the hub exits cleanly")
    func shutdownThroughTheAPI() async throws {
        let hub = try HubProcess()
        let token = try await hub.start(config: "backend: simulated\nsimulated:\n  start_delay_min: 100ms\n  start_delay_max: 200ms\nauth:\n  bcrypt_cost: 4\n")
        defer { hub.stop() }
        let api = API(base: hub.baseURL + "/hub/api", token: token)
        #expect(try await api.call(.POST, "/users", json: ["usernames": ["ann"]]).status == 201)
        let userToken = try await hub.run(["token", "create", "ann", "--config", "atrium.yaml"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await API(base: hub.baseURL + "/hub/api", token: userToken).call(.POST, "/shutdown").status == 403)
        #expect(try await api.call(.POST, "/shutdown", json: ["servers": "yes"]).status == 400)
        #expect(try await api.call(.POST, "/shutdown", json: ["everything": true]).status == 400)
        #expect([201, 202].contains(try await api.call(.POST, "/users/ann/server").status))
        let reply = try await api.call(.POST, "/shutdown", json: ["servers": true, "proxy": true])
        #expect(reply.status == 202, "\(reply.text)")
        #expect((reply.json as? [String: Any])?["message"] as? String == "Shutting down Hub")
        #expect(try await hub.waitForExit() == 0)
    }

    @Test("a database that refuses writes: atrium serve will not start on it, and says what to fix (issue 19 item 12)")
    func readOnlyDatabase() async throws {
        let hub = try HubProcess()
        defer { hub.stop() }
        let dir = hub.directory.path
        try "db: atrium.sqlite\ncookie_secret_file: cookie_secret\nbackend: simulated\n".write(
            toFile: dir + "/atrium.yaml", atomically: true, encoding: .utf8)
        let migrated = try await hub.run(["migrate", "--config", "atrium.yaml"], withErrors: true)
        #expect(migrated.status == 0, "\(migrated.output)")
        // The file read-only to the hub's user: root ignores file modes, so as root the hub runs
        // as `nobody`, owner of the folder and of a file it may only read.
        let root = getuid() == 0
        if root { #expect(chownTree(dir, to: "nobody")) }
        #expect(chmod(dir + "/atrium.sqlite", 0o400) == 0)
        let serve = [HubProcess.binary, "serve", "--port", "0", "--config", "atrium.yaml"]
        // Bounded: a hub that starts anyway is ended after 60 s, and the test fails on its output.
        let command = ["/usr/bin/timeout", "60"] + (root ? ["runuser", "-u", "nobody", "--"] : []) + serve
        let (status, output) = try await HubProcess.offload { () throws -> (Int32, String) in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: command[0])
            p.arguments = Array(command.dropFirst())
            p.currentDirectoryURL = hub.directory
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        #expect(status != 0 && status != 124, "the hub started on a read-only database: \(output)")
        #expect(output.contains("refuses writes (read-only)"), "\(output)")
        #expect(output.contains("writable"), "\(output)")
    }

    func chownTree(_ path: String, to user: String) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/chown")
        p.arguments = ["-R", user, path]
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    @Test("signup, approval, login, password change, lockout that survives a restart")
    func signupApprovalLockout() async throws {
        let hub = try HubProcess()
        let token = try await hub.start(config: "auth:\n  max_failed_logins: 3\n  lockout_duration: 10m\n  bcrypt_cost: 4\n")
        let pages = API(base: hub.baseURL)
        let xsrf = try await pages.xsrfToken()
        let cookie = ("Cookie", "_xsrf=\(xsrf)")

        let signup = try await pages.call(.POST, "/hub/signup", form: "_xsrf=\(xsrf)&username=student&password=Tr1cky-Horse&password_confirm=Tr1cky-Horse", extraHeaders: [cookie])
        #expect(signup.status == 201, "\(signup.text.prefix(300))")
        let pending = try await pages.call(.POST, "/hub/login", form: "_xsrf=\(xsrf)&username=student&password=Tr1cky-Horse", extraHeaders: [cookie])
        #expect(pending.status == 403)
        #expect(pending.text.contains("approval"))

        let noXSRF = try await pages.call(.POST, "/hub/signup", form: "username=other&password=Tr1cky-Horse&password_confirm=Tr1cky-Horse")
        #expect(noXSRF.status == 403)

        let api = API(base: hub.baseURL + "/hub/api", token: token)
        let listed = try await api.call(.GET, "/users?approval=pending")
        #expect((listed.json as? [[String: Any]])?.map { $0["name"] as? String } == ["student"])
        #expect(try await hub.run(["user", "approve", "student", "--config", "atrium.yaml"]).status == 0)

        let login = try await pages.call(.POST, "/hub/login", form: "_xsrf=\(xsrf)&username=student&password=Tr1cky-Horse", extraHeaders: [cookie])
        #expect([302, 303].contains(login.status))
        let session = try #require(login.headers["Set-Cookie"].first { $0.hasPrefix("atrium-session=") })
        let sessionCookie = ("Cookie", "_xsrf=\(xsrf); " + session.split(separator: ";")[0])
        let home = try await pages.call(.GET, "/hub/home", extraHeaders: [sessionCookie])
        #expect(home.status == 200)
        #expect(home.text.contains("student"))

        let change = try await pages.call(
            .POST, "/hub/change-password",
            form: "_xsrf=\(xsrf)&current_password=Tr1cky-Horse&new_password=Even-Tr1ckier&new_password_confirm=Even-Tr1ckier",
            extraHeaders: [sessionCookie])
        #expect(change.status == 200, "\(change.text.prefix(300))")
        #expect([302, 303].contains(try await pages.call(.GET, "/hub/home", extraHeaders: [sessionCookie]).status))  // old session ended

        for _ in 0..<3 {
            _ = try await pages.call(.POST, "/hub/login", form: "_xsrf=\(xsrf)&username=student&password=wrong-guess", extraHeaders: [cookie])
        }
        let locked = try await pages.call(.POST, "/hub/login", form: "_xsrf=\(xsrf)&username=student&password=Even-Tr1ckier", extraHeaders: [cookie])
        #expect(locked.status == 429)

        hub.stop()
        try await hub.start(extra: ["--config", "atrium.yaml"])
        defer { hub.stop() }
        let restarted = API(base: hub.baseURL)
        let stillLocked = try await restarted.call(.POST, "/hub/login", form: "_xsrf=\(xsrf)&username=student&password=Even-Tr1ckier", extraHeaders: [cookie])
        #expect(stillLocked.status == 429)
        #expect(stillLocked.text.contains("locked"))
    }

    /// One raw HTTP/1.1 request from `source` (a loopback address of the test's choosing, so a
    /// test can be two clients); returns the status code.
    static func rawRequest(from source: String, port: Int, _ request: String) throws -> Int {
        guard let fd = LoopbackSocket.connect(to: port, from: source) else { throw HubError("cannot connect from \(source)") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        LoopbackSocket.send(fd, request)
        var buffer = [UInt8](repeating: 0, count: 64)
        let got = recv(fd, &buffer, buffer.count, 0)
        guard got > 12 else { throw HubError("no answer from the hub") }
        return Int(String(decoding: buffer[9..<12], as: UTF8.self)) ?? 0
    }

    @Test("shared password: guesses under invented names lock the guessing address, the real binary telling addresses apart; another address still logs in")
    func addressThrottle() async throws {
        let hub = try HubProcess()
        defer { hub.stop() }
        _ = try await hub.start(config: """
            auth:
              mode: shared_password
              shared_password: workshop-Pa55
              max_failed_logins_per_address: 10
              bcrypt_cost: 4
            """)
        let pages = API(base: hub.baseURL)
        let xsrf = try await pages.xsrfToken()
        let cookie = ("Cookie", "_xsrf=\(xsrf)")
        // 127.0.0.1 guesses under twelve invented names.
        for n in 0..<12 {
            let guess = try await pages.call(.POST, "/hub/login", form: "_xsrf=\(xsrf)&username=guess\(n)&password=wrong-\(n)", extraHeaders: [cookie])
            #expect(guess.status != 302 && guess.status != 303)
        }
        // Now even the right password is refused from that address, unchecked.
        let locked = try await pages.call(.POST, "/hub/login", form: "_xsrf=\(xsrf)&username=newcomer&password=workshop-Pa55", extraHeaders: [cookie])
        #expect(locked.status == 429, "\(locked.status) \(locked.text.prefix(200))")
        // 127.0.0.2, another participant, logs in with the shared password.
        let body = "_xsrf=\(xsrf)&username=participant&password=workshop-Pa55"
        let port = hub.port
        let status = try await HubProcess.offload {
            try Self.rawRequest(
                from: "127.0.0.2", port: port,
                "POST /hub/login HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nCookie: _xsrf=\(xsrf)\r\n"
                    + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)")
        }
        #expect([302, 303].contains(status), "login from another address: \(status)")
    }
}
