#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CAtriumProcess
import Foundation
import Synchronization

/// Child processes the way the local backend needs them: detached into their own session (so
/// they outlive the hub and a terminal's Ctrl-C), output appended to a log file, identified by
/// pid *and* start time (so a recycled pid is never mistaken for a workspace).
final class Processes: Sendable {
    /// Exit statuses of children this hub reaped, by pid.
    private let exits = Mutex<[Int32: Int32]>([:])

    /// A failure to start a process, with a message for users.
    struct SpawnFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts `arguments[0]` (looked up in `environment["PATH"]`) with `arguments`,
    /// `environment`, working directory `directory`, stdin from /dev/null and stdout+stderr
    /// appended to `logFile`. Returns the pid (also the process group and session id). With
    /// `account`, the program runs as that account (umask 077); it joins the cgroups whose
    /// `cgroup.procs` are open as `cgroupFiles` before it runs.
    func spawn(
        arguments: [String], environment: [String: String], directory: String, logFile: String,
        account: SystemAccount? = nil, cgroupFiles: [Int32] = []
    ) throws -> Int32 {
        guard let program = arguments.first, !program.isEmpty else { throw SpawnFailure(description: "the command is empty") }
        let executable = try resolve(program, path: environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin")

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.sorted { $0.key < $1.key }.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        // A new session: the workspace is not in the hub's process group, so signals for the
        // hub (Ctrl-C, systemd's stop with KillMode=process) do not reach it.
        if account == nil, cgroupFiles.isEmpty {
            let rc = atrium_spawn(&pid, executable, argv, envp, directory, logFile)
            guard rc == 0 else {
                throw SpawnFailure(description: "could not start \(program): \(String(cString: strerror(rc)))")
            }
            return pid
        }
        let uid = account?.uid ?? UInt32.max, gid = account?.gid ?? UInt32.max
        let groups = account?.groups ?? []
        var stage: Int32 = 0
        let rc = groups.withUnsafeBufferPointer { groupsBuffer in
            cgroupFiles.withUnsafeBufferPointer { files in
                atrium_spawn_as(
                    &pid, executable, argv, envp, directory, logFile, uid, gid, groupsBuffer.baseAddress, Int32(groups.count),
                    files.baseAddress, Int32(files.count), &stage)
            }
        }
        guard rc == 0 else {
            let step =
                switch stage {
                case 2: "joining its cgroup"
                case 3, 4: "opening its log \(logFile)"
                case 5, 6, 7: "becoming \(account?.name ?? "its user")"
                case 8: "entering \(directory)"
                case 9: "running \(executable)"
                default: "preparing the process"
                }
            throw SpawnFailure(description: "could not start \(program): \(step) failed: \(String(cString: strerror(rc)))")
        }
        return pid
    }

    /// Finds `program` in `path` (or takes it as given when it contains a slash).
    func resolve(_ program: String, path: String) throws -> String {
        if program.contains("/") {
            guard access(program, X_OK) == 0 else { throw SpawnFailure(description: "\(program) is not an executable file") }
            return program
        }
        if let found = LocalBackend.locate(program, in: path.split(separator: ":").map(String.init)) { return found }
        throw SpawnFailure(description: "\(program) was not found in PATH (\(path)); install it or give its full path in the command")
    }

    /// The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or nil
    /// when there is no such process. Zombies count as gone.
    func startTime(of pid: Int32) -> UInt64? {
        Self.startTime(of: pid)
    }

    static func startTime(of pid: Int32) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3), so field 22 is fields[19].
        guard fields.count > 19, fields[0] != "Z", fields[0] != "X" else { return nil }
        return UInt64(fields[19])
    }

    /// Reaps `pid` if it is an exited child of this hub, remembering its exit status.
    func reap(_ pid: Int32) {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        if r == pid { exits.withLock { $0[pid] = status } }
    }

    /// Whether the process `pid` started at `started` still runs.
    func isRunning(pid: Int32, started: UInt64) -> Bool {
        reap(pid)
        let current = startTime(of: pid)
        // It may have become a zombie between the two calls: reap it now, or it stays one.
        if current == nil { reap(pid) }
        return current == started
    }

    /// A description of how a reaped child ended, if this hub saw it end.
    func exitDescription(of pid: Int32) -> String? {
        guard let status = exits.withLock({ $0[pid] }) else { return nil }
        if status & 0x7f == 0 { return "exited with status \((status >> 8) & 0xff)" }
        return "was killed by signal \(status & 0x7f)"
    }

    /// SIGTERM to the process group, then SIGKILL after `grace`. Returns when it is gone.
    func terminate(pid: Int32, started: UInt64, grace: Duration) async {
        if isRunning(pid: pid, started: started) {
            kill(-pid, SIGTERM)
            kill(pid, SIGTERM)
            let deadline = ContinuousClock.now + grace
            while ContinuousClock.now < deadline, isRunning(pid: pid, started: started) {
                try? await Task.sleep(for: .milliseconds(50))
            }
            if isRunning(pid: pid, started: started) {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
                for _ in 0..<100 where isRunning(pid: pid, started: started) {
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
        }
        // A multi-threaded process shows its leader as a zombie before its last thread is gone,
        // and waitpid cannot collect it until then: keep reaping a child of ours until it can.
        for _ in 0..<200 {
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { exits.withLock { $0[pid] = status } }
            if r == pid || (r == -1 && errno == ECHILD) { return }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Caps the data segment (heap and private writable mappings) of a running process.
    func limitMemory(pid: Int32, bytes: Int64) -> Bool {
        atrium_limit_data(pid, bytes) == 0
    }

    /// A free TCP port on `host` (bound and released; the program binds it right after).
    func freePort(host: String) throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SpawnFailure(description: "no socket for a port check") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        inet_pton(AF_INET, host, &address.sin_addr)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw SpawnFailure(description: "could not find a free port on \(host)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts connections at the address (a cheap liveness hint).
    func accepts(unixSocket path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        } == 0
    }

    func accepts(host: String, port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
