import AsyncHTTPClient
@testable import AtriumLocal
import AtriumModel
import AtriumSpawn
import Foundation
import Logging
import Testing

/// The local backend with real child processes: the bundled `atrium-workspace` program.
@Suite("Local backend", .serialized)
struct LocalBackendTests {
    static var buildDirectory: String {
        if let path = ProcessInfo.processInfo.environment["ATRIUM_BUILD_DIR"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug").path
    }

    struct Fixture {
        let root: String
        let backend: LocalBackend

        init(command: [String]? = nil, starter: Bool = false) throws {
            root = "/tmp/atrium-lb-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            let preset = LocalBackendConfiguration.presets["atrium-workspace"]!
            var configuration = LocalBackendConfiguration(
                command: command ?? preset.command, workspacesRoot: "\(root)/workspaces", socketDirectory: "\(root)/run",
                logDirectory: "\(root)/logs")
            configuration.extraPath = [LocalBackendTests.buildDirectory]
            configuration.stopGracePeriod = .seconds(2)
            if starter {
                try FileManager.default.createDirectory(atPath: "\(root)/starter/lesson1", withIntermediateDirectories: true)
                try "print('hello')\n".write(toFile: "\(root)/starter/lesson1/hello.py", atomically: true, encoding: .utf8)
                try "starter readme\n".write(toFile: "\(root)/starter/README.md", atomically: true, encoding: .utf8)
                configuration.starterFiles = "\(root)/starter"
            }
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            backend = LocalBackend(configuration: configuration, logger: logger)
        }

        func request(_ user: String = "alice", server: String = "", memory: Int64? = nil) -> SpawnRequest {
            SpawnRequest(
                user: user, userID: 1, serverName: server, baseURL: ServerManager.baseURL(user: user, server: server),
                limits: ResourceLimits(memory: memory), secret: "s3cret-\(user)")
        }

        func cleanUp() { try? FileManager.default.removeItem(atPath: root) }
    }

    static func get(_ endpoint: WorkspaceEndpoint, _ path: String, secret: String?) async throws -> (Int, String) {
        guard case .unix(let socket) = endpoint.address else { throw ScriptedFailure(description: "expected a socket") }
        var request = HTTPClientRequest(url: "http+unix://\(socket.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)\(path)")
        if let secret { request.headers.add(name: "Authorization", value: "token \(secret)") }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: body))
    }

    static func waitRunning(_ backend: LocalBackend, _ state: LocalBackend.State) async throws {
        for _ in 0..<500 {
            if await backend.status(state) == .running { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("the workspace never answered")
    }

    @Test("start, serve only with the secret over a 0600 socket, log, stop")
    func lifecycle() async throws {
        let f = try Fixture(starter: true)
        defer { f.cleanUp() }
        let request = f.request(memory: 512 << 20)
        var state = try await f.backend.startState(request, previous: nil)
        state = try await f.backend.start(request, state: state, progress: { _ in })
        try await Self.waitRunning(f.backend, state)
        var endpoint = f.backend.endpoint(state)
        endpoint.secret = request.secret
        guard case .unix(let socket) = endpoint.address else { Issue.record("no socket"); return }
        let attributes = try FileManager.default.attributesOfItem(atPath: socket)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let dirAttributes = try FileManager.default.attributesOfItem(atPath: (socket as NSString).deletingLastPathComponent)
        #expect((dirAttributes[.posixPermissions] as? Int) == 0o700)

        let (ok, body) = try await Self.get(endpoint, "/user/alice/", secret: request.secret)
        #expect(ok == 200)
        #expect(body.contains("alice"))
        #expect(try await Self.get(endpoint, "/user/alice/", secret: nil).0 == 403)
        #expect(try await Self.get(endpoint, "/user/alice/", secret: "wrong").0 == 403)

        // The layout of seed 001, with the starter files in code/.
        for dir in ["code", "io", "data"] { #expect(FileManager.default.fileExists(atPath: "\(state.workspace)/\(dir)")) }
        #expect(FileManager.default.fileExists(atPath: "\(state.workspace)/code/lesson1/hello.py"))
        // The memory limit is the process's data limit.
        let limits = try String(contentsOfFile: "/proc/\(state.pid!)/limits", encoding: .utf8)
        #expect(limits.split(separator: "\n").contains { $0.hasPrefix("Max data size") && $0.contains("\(512 << 20)") })
        // A new session: the workspace is its own process group leader.
        #expect(getpgid(state.pid!) == state.pid!)

        let logs = try await f.backend.logs(user: "alice", serverName: "", state: state, lines: 5)
        #expect(logs.contains { $0.contains("atrium-workspace listening on unix:") })

        try await f.backend.stop(state)
        #expect(await f.backend.status(state) != .running)
        #expect(!FileManager.default.fileExists(atPath: socket))
        #expect(kill(state.pid!, 0) != 0)
    }

    @Test("starter files are copied on the first start only and never overwrite")
    func starterFilesOnce() async throws {
        let f = try Fixture(starter: true)
        defer { f.cleanUp() }
        let request = f.request()
        var state = try await f.backend.startState(request, previous: nil)
        state = try await f.backend.start(request, state: state, progress: { _ in })
        try await f.backend.stop(state)
        let hello = "\(state.workspace)/code/lesson1/hello.py"
        try "print('my own work')\n".write(toFile: hello, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: "\(state.workspace)/code/README.md")
        state = try await f.backend.start(request, state: try await f.backend.startState(request, previous: nil), progress: { _ in })
        try await f.backend.stop(state)
        #expect(try String(contentsOfFile: hello, encoding: .utf8) == "print('my own work')\n")
        #expect(!FileManager.default.fileExists(atPath: "\(state.workspace)/code/README.md"))
    }

    @Test("suspend keeps the socket; resume reuses it; delete forever removes the files")
    func suspendResumeDelete() async throws {
        let f = try Fixture()
        defer { f.cleanUp() }
        let request = f.request()
        var state = try await f.backend.startState(request, previous: nil)
        state = try await f.backend.start(request, state: state, progress: { _ in })
        try await Self.waitRunning(f.backend, state)
        let suspended = try await f.backend.suspend(state)
        #expect(await f.backend.status(suspended) == .suspended)
        var resumed = try await f.backend.startState(request, previous: suspended)
        #expect(resumed.address == state.address)
        resumed = try await f.backend.start(request, state: resumed, progress: { _ in })
        try await Self.waitRunning(f.backend, resumed)
        try await f.backend.stop(resumed)
        try await f.backend.deleteForever(user: "alice", userID: 1, serverName: "", state: resumed)
        #expect(!FileManager.default.fileExists(atPath: resumed.workspace))
    }

    @Test("a program that exits is reported failed with its output; a missing one fails the start clearly")
    func failures() async throws {
        let f = try Fixture(command: ["atrium-workspace", "--socket", "{socket}", "--exit-after", "0.2"])
        defer { f.cleanUp() }
        let request = f.request()
        var state = try await f.backend.startState(request, previous: nil)
        state = try await f.backend.start(request, state: state, progress: { _ in })
        var status = await f.backend.status(state)
        for _ in 0..<300 {
            if case .failed = status { break }
            try await Task.sleep(for: .milliseconds(10))
            status = await f.backend.status(state)
        }
        guard case .failed(let reason) = status else { Issue.record("expected failed, got \(status)"); return }
        // "exited with status 3" when this process reaped it; the log tail says so in any case.
        #expect(reason.contains("status 3"))

        let missing = try Fixture(command: ["no-such-program-atrium", "{socket}"])
        defer { missing.cleanUp() }
        await #expect { _ = try await missing.backend.start(request, state: try await missing.backend.startState(request, previous: nil), progress: { _ in }) } throws: {
            "\($0)".contains("no-such-program-atrium was not found in PATH")
        }
    }

    @Test("the workspace inherits none of the hub's descriptors (its listening socket would keep the port)")
    func noInheritedDescriptors() async throws {
        let f = try Fixture(command: ["/bin/sh", "-c", "ls /proc/self/fd > {io}/fds; exec atrium-workspace --socket {socket}"])
        defer { f.cleanUp() }
        let leaked = open("/dev/null", O_RDONLY)  // no O_CLOEXEC, as a careless library might
        defer { close(leaked) }
        let request = f.request()
        var state = try await f.backend.startState(request, previous: nil)
        state = try await f.backend.start(request, state: state, progress: { _ in })
        try await Self.waitRunning(f.backend, state)
        let fds = try String(contentsOfFile: "\(state.workspace)/io/fds", encoding: .utf8).split(separator: "\n").compactMap { Int($0) }
        try await f.backend.stop(state)
        #expect(!fds.contains(Int(leaked)))
        #expect(fds.allSatisfy { $0 <= 3 })  // stdin, stdout, stderr, and ls's own directory handle
    }

    @Test("file names are one-to-one: no name can be aimed at another's folder or log", arguments: [
        ("zoe@example.org", "zoe_example.org-1r1x9buyhvdv"), ("amy--lab", "amy"), (".hidden", "%2Ehidden"), ("a%40b", "a@b"),
        ("\u{E9}", "%C3%A9"),
    ])
    func injectiveNames(_ one: String, _ other: String) {
        #expect(LocalBackend.fileName(one) != LocalBackend.fileName(other))
        #expect(LocalBackend.fileName("normal-name_1.x") == "normal-name_1.x", "plain names are their own folder")
        #expect(LocalBackend.fileName("zoe@example.org") == "zoe%40example.org")
        #expect(LocalBackend.fileName(".hidden") == "%2Ehidden")
        #expect(LocalBackend.fileName("..") == "%2E.")
    }

    @Test("a user's default server and another user's named server never share a log file")
    func logFilesDoNotCollide() throws {
        let f = try Fixture()
        defer { f.cleanUp() }
        #expect(f.backend.logFile(user: "amy--lab", server: "") != f.backend.logFile(user: "amy", server: "lab"))
        #expect(f.backend.logFile(user: "amy@lab", server: "") != f.backend.logFile(user: "amy", server: "lab"))
    }

    @Test("a workspace in the folder an earlier Atrium gave it moves to its new folder at the next start")
    func legacyFolderMoves() async throws {
        let f = try Fixture()
        defer { f.cleanUp() }
        let legacy = try #require(LocalBackend.legacyFileName("zoe@example.org"))
        #expect(legacy == "zoe_example.org-1r1x9buyhvdv")
        let old = "\(f.root)/workspaces/\(legacy)/code"
        try FileManager.default.createDirectory(atPath: old, withIntermediateDirectories: true)
        try Data("mine".utf8).write(to: URL(fileURLWithPath: old + "/notes.txt"))
        f.backend.migrateLegacyWorkspace(user: "zoe@example.org")
        let moved = "\(f.root)/workspaces/zoe%40example.org/code/notes.txt"
        #expect((try? String(contentsOfFile: moved, encoding: .utf8)) == "mine")
        #expect(!FileManager.default.fileExists(atPath: old))
        #expect(LocalBackend.legacyFileName("plain") == nil)
    }

    @Test("file names for any user name stay inside the root and never collide")
    func fileNames() async throws {
        let f = try Fixture()
        defer { f.cleanUp() }
        let a = f.request("../etc")
        let b = f.request("..-etc")
        #expect(a.user != b.user)
        let root = "\(f.root)/workspaces/"
        for user in ["../etc", "a/b", "é", ".hidden", "normal-name"] {
            let state = try await f.backend.startState(f.request(user), previous: nil)
            #expect(state.workspace.hasPrefix(root))
            #expect(!state.workspace.dropFirst(root.count).contains("/"))
        }
    }
}

