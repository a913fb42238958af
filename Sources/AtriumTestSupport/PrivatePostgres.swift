import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A PostgreSQL server of a test's own (Debian's binaries, `initdb` in a temporary folder, run as
/// the `postgres` account when the test runs as root) on a free loopback port, so the test may
/// crash it with SIGKILL and start it again on the same data.
public final class PrivatePostgres: @unchecked Sendable {
    /// The newest `/usr/lib/postgresql/*/bin`, or nil when PostgreSQL is not installed.
    public static var binaries: String? {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap { Int($0) }.sorted()
        guard let newest = versions.last else { return nil }
        let bin = "\(root)/\(newest)/bin"
        return FileManager.default.isExecutableFile(atPath: "\(bin)/pg_ctl") ? bin : nil
    }

    public let directory: URL
    public let port: Int
    private let bin: String
    private var data: String { directory.appendingPathComponent("data").path }

    /// The URL for the hub's `db` key.
    public var url: String { "postgres://atrium@127.0.0.1:\(port)/postgres" }

    /// Makes the cluster (`initdb`, trust authentication on loopback) and starts it.
    public init() throws {
        guard let bin = Self.binaries else { throw HubError("PostgreSQL is not installed (apt-get install postgresql)") }
        self.bin = bin
        directory = URL(fileURLWithPath: "/tmp/atrium-pg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        chmod(directory.path, 0o755)
        if geteuid() == 0, let account = getpwnam("postgres") { chown(directory.path, account.pointee.pw_uid, account.pointee.pw_gid) }
        port = try Self.freePort()
        let made = try run("\(bin)/initdb", ["-D", data, "-U", "atrium", "--auth=trust"])
        guard made.status == 0 else { throw HubError("initdb failed: \(made.output)") }
        try start()
    }

    /// Starts the server and waits (pg_ctl -w, bounded by its own 60 s) until it accepts connections.
    public func start() throws {
        let started = try run(
            "\(bin)/pg_ctl",
            ["-D", data, "-l", directory.appendingPathComponent("log").path, "-w", "-t", "60", "-o",
             "-p \(port) -k \(directory.path) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100", "start"])
        guard started.status == 0 else { throw HubError("pg_ctl start failed: \(started.output)") }
    }

    /// The postmaster's process id (from `postmaster.pid`), or nil when the server is down.
    public var postmaster: Int32? {
        guard let text = try? String(contentsOfFile: "\(data)/postmaster.pid", encoding: .utf8),
            let pid = text.split(separator: "\n").first.flatMap({ Int32($0) }), kill(pid, 0) == 0
        else { return nil }
        return pid
    }

    /// Kills the postmaster and every one of its processes with SIGKILL at once, as a crash of
    /// the machine's database would, and waits (bounded) until none is left. Its processes are
    /// found by their working directory, the data folder, which every PostgreSQL process keeps:
    /// a backend forked in the instant of the kill is found too (by parent it would be missed,
    /// and it would keep the shared memory the restart needs).
    public func crash() {
        let dataPath = URL(fileURLWithPath: data).resolvingSymlinksInPath().path
        for _ in 0..<500 {
            let remaining = Self.processes(inDirectory: dataPath)
            if remaining.isEmpty { return }
            for pid in remaining { kill(pid, SIGKILL) }
            usleep(10_000)
        }
    }

    /// Stops the server at once (no checkpoint) and deletes its folder.
    public func remove() {
        if postmaster != nil { _ = try? run("\(bin)/pg_ctl", ["-D", data, "-m", "immediate", "stop"]) }
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { remove() }

    /// Live (not zombie) processes whose working directory is `directory`.
    private static func processes(inDirectory directory: String) -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry -> Int32? in
            guard let pid = Int32(entry),
                let cwd = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/cwd"), cwd == directory
            else { return nil }
            if let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")"),
                stat[stat.index(close, offsetBy: 2)] == "Z"
            {
                return nil
            }
            return pid
        }
    }

    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw HubError("no free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Runs a PostgreSQL program as the `postgres` account when root (PostgreSQL refuses root),
    /// its output to a file. posix_spawn and waitpid, not Foundation's `Process`, whose wait
    /// never returned for `pg_ctl start` (its server keeps running after pg_ctl exits).
    private func run(_ program: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let command = (geteuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--", program] : [program]) + arguments
        let outputPath = directory.appendingPathComponent("command-output").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = command.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, command[0], &actions, nil, argv, environ)
        guard spawned == 0 else { throw HubError("cannot run \(command[0]): errno \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let exited = status & 0x7f == 0
        return (exited ? (status >> 8) & 0xff : -1, output)
    }
}
