import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// The real `atrium` binary, started in a temporary folder on a free port.
public final class HubProcess: @unchecked Sendable {
    public static var binary: String {
        if let path = ProcessInfo.processInfo.environment["ATRIUM_BINARY"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/atrium").path
    }

    public let directory: URL
    private var process: Process?
    public private(set) var port = 0
    public var baseURL: String { "http://127.0.0.1:\(port)" }
    public var firstStartOutput = ""

    /// The start of the Unix account names this hub makes (with `local.isolation:
    /// system_users`, the default as root): unique, so hubs of concurrent tests never share an
    /// account, and ``removeSystemAccounts()`` removes exactly this hub's.
    public let accountPrefix: String

    public init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("atrium-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        accountPrefix = "t" + String((0..<6).map { _ in "abcdefghijklmnopqrstuvwxyz".randomElement()! }) + "-"
    }

    /// What runs `atrium serve` (a program that then execs it, so the process is the hub), for
    /// example `["/usr/bin/prlimit", "--nofile=1024:1024", "--"]`.
    public var launcher: [String] = []

    /// Extra environment for every `atrium` this hub runs (configuration variables).
    public var extraEnvironment: [String: String] = [:]

    /// The environment of every `atrium` this hub runs.
    var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["ATRIUM_LOCAL__SYSTEM_USER_PREFIX"] = accountPrefix
        return environment.merging(extraEnvironment) { $1 }
    }

    /// The Unix accounts this hub made (name, home), from the system's user database.
    public func systemAccounts() -> [(name: String, home: String)] {
        guard let text = try? String(contentsOfFile: "/etc/passwd", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 7, fields[0].hasPrefix(accountPrefix), fields[4].hasPrefix("Atrium user ") else { return nil }
            return (String(fields[0]), String(fields[5]))
        }
    }

    /// Deletes the Unix accounts this hub made, their processes and homes (`userdel --remove`).
    public func removeSystemAccounts() {
        // A useradd the hub started just before it stopped may finish after a first pass.
        for pass in 0..<2 {
            let accounts = systemAccounts()
            if accounts.isEmpty { return }
            if pass > 0 { usleep(300_000) }
            removeAccounts(accounts)
        }
    }

    private func removeAccounts(_ accounts: [(name: String, home: String)]) {
        for account in accounts {
            let pkill = Process()
            pkill.executableURL = URL(fileURLWithPath: "/usr/bin/pkill")
            pkill.arguments = ["-KILL", "-u", account.name]
            try? pkill.run()
            pkill.waitUntilExit()
            // Another test's useradd may hold the lock on /etc/passwd: try again, a bounded number of times.
            for _ in 0..<50 where getpwnam(account.name) != nil {
                let userdel = Process()
                userdel.executableURL = URL(fileURLWithPath: "/usr/sbin/userdel")
                userdel.arguments = ["--remove", account.name]
                userdel.standardError = FileHandle.nullDevice
                try? userdel.run()
                userdel.waitUntilExit()
                if userdel.terminationStatus == 0 || userdel.terminationStatus == 12 { break }
                usleep(100_000)
            }
        }
    }

    /// Runs an `atrium` subcommand in the hub's folder and returns its standard output (with
    /// its standard error after it when `withErrors`).
    ///
    /// The child is waited for on a thread of its own: a test waiting for it never holds one of
    /// the few threads every other concurrently running test needs.
    @discardableResult
    public func run(_ arguments: [String], stdin: String? = nil, withErrors: Bool = false) async throws -> (status: Int32, output: String) {
        try await Self.offload { try self.runWaiting(arguments, stdin: stdin, withErrors: withErrors) }
    }

    private func runWaiting(_ arguments: [String], stdin: String?, withErrors: Bool) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.binary)
        p.arguments = arguments
        p.currentDirectoryURL = directory
        p.environment = environment
        let out = Pipe()
        p.standardOutput = out
        p.standardError = withErrors ? out : FileHandle.nullDevice
        if let stdin {
            let input = Pipe()
            p.standardInput = input
            try p.run()
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try input.fileHandleForWriting.close()
        } else {
            try p.run()
        }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Writes `config` to `atrium.yaml`, makes an admin token (`atrium token create ops --admin`),
    /// starts the hub with that file and returns the token.
    public func start(config: String) async throws -> String {
        try config.write(to: directory.appendingPathComponent("atrium.yaml"), atomically: true, encoding: .utf8)
        // Commands other than serve and migrate never create a database: make it first.
        let migrated = try await run(["migrate", "--config", "atrium.yaml"], withErrors: true)
        guard migrated.status == 0 else { throw HubError("atrium migrate: \(migrated.output)") }
        let token = try await run(["token", "create", "ops", "--admin", "--config", "atrium.yaml"]).output
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try await start(extra: ["--config", "atrium.yaml"])
        return token
    }

    /// Starts `atrium serve --port 0` and waits (bounded, on a thread of its own) for its
    /// "listening" line.
    public func start(extra: [String] = []) async throws {
        try await Self.offload { try self.startWaiting(extra: extra) }
    }

    /// Runs blocking work (waiting for a child process) on a new thread, not on the cooperative
    /// pool, which has as many threads as cores.
    public static func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try work() }) }.start()
        }
    }

    private func startWaiting(extra: [String]) throws {
        let p = Process()
        let command = launcher + [Self.binary, "serve", "--port", "0", "--log-level", "warning"] + extra
        p.executableURL = URL(fileURLWithPath: command[0])
        p.arguments = Array(command.dropFirst())
        p.currentDirectoryURL = directory
        p.environment = environment
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        var text = ""
        let handle = out.fileHandleForReading
        for _ in 0..<2000 {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            text += String(decoding: chunk, as: UTF8.self)
            if let range = text.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                port = Int(text[range].split(separator: ":").last!)!
                firstStartOutput = text
                return
            }
        }
        throw HubError("atrium serve did not report its port: \(text)")
    }

    /// Whether `atrium serve` runs.
    public var isRunning: Bool { process?.isRunning ?? false }

    /// How the last `atrium serve` ended: its exit status, or the signal that killed it.
    public private(set) var exit: (status: Int32, signalled: Bool)?

    /// Waits (bounded, 60 s, on a thread of its own) for the hub to exit by itself; returns its
    /// exit status, or nil when it still runs.
    public func waitForExit() async throws -> Int32? {
        guard let p = process else { return exit?.status }
        return try await Self.offload {
            for _ in 0..<3000 where p.isRunning { usleep(20_000) }
            guard !p.isRunning else { return nil }
            p.waitUntilExit()
            return p.terminationStatus
        }
    }

    /// Kills the hub with SIGKILL (no chance to clean up) and waits for it.
    public func kill9() {
        guard let p = process, p.isRunning else { return }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        exit = (p.terminationStatus, true)
        process = nil
    }

    /// Sends the hub SIGTERM without waiting (``waitForExit()`` waits, bounded).
    public func terminate() {
        guard let p = process, p.isRunning else { return }
        p.terminate()
    }

    /// Stops the hub with SIGTERM and waits for it.
    public func stop() {
        guard let p = process, p.isRunning else { return }
        p.terminate()
        p.waitUntilExit()
        exit = (p.terminationStatus, p.terminationReason == .uncaughtSignal)
        process = nil
    }

    deinit {
        stop()
        removeSystemAccounts()
        try? FileManager.default.removeItem(at: directory)
    }
}

public struct HubError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A small HTTP helper over AsyncHTTPClient (redirects are not followed: tests look at them).
public struct API: Sendable {
    /// Tests send 20 or 50 requests at once (a class pressing Start), each of which may wait up
    /// to the hub's slow spawn timeout: with AsyncHTTPClient's default of 8 connections per host
    /// the rest waited for a pooled connection and timed out on a loaded machine.
    public static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 128)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    public let base: String
    public var token: String?
    public var headers: [(String, String)] = []

    public init(base: String, token: String? = nil, headers: [(String, String)] = []) {
        self.base = base
        self.token = token
        self.headers = headers
    }

    public struct Reply: Sendable {
        public let status: Int
        public let body: Data
        public let headers: HTTPHeaders
        public var json: Any? { try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) }
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// An XSRF token the hub signed: the `_xsrf` cookie its login page sets, as a browser gets it.
    public func xsrfToken() async throws -> String {
        let page = try await API(base: base).call(.GET, "/hub/login")
        for cookie in page.headers["Set-Cookie"] where cookie.hasPrefix("_xsrf=") {
            return String(cookie.dropFirst("_xsrf=".count).prefix { $0 != ";" })
        }
        throw HubError("the login page set no _xsrf cookie (status \(page.status))")
    }

    public func call(_ method: HTTPMethod, _ path: String, json: Any? = nil, form: String? = nil, extraHeaders: [(String, String)] = []) async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "token \(token)") }
        for (k, v) in headers + extraHeaders { request.headers.add(name: k, value: v) }
        if let json {
            request.body = .bytes(ByteBuffer(bytes: Array(try JSONSerialization.data(withJSONObject: json))))
            request.headers.add(name: "Content-Type", value: "application/json")
        } else if let form {
            request.body = .bytes(ByteBuffer(string: form))
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        }
        let response = try await Self.client.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 64 << 20)
        return Reply(status: Int(response.status.code), body: Data(body.readableBytesView), headers: response.headers)
    }
}
