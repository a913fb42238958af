import AtriumModel
import AtriumSpawn
import Foundation
import Logging

/// Configuration of the local-process backend.
public struct LocalBackendConfiguration: Sendable, Equatable {
    /// The command and its arguments. Templates: `{username}`, `{server_name}`, `{base_url}`,
    /// `{port}`, `{socket}`, `{workspace}`, `{code}`, `{io}`, `{data}`. A command with `{socket}`
    /// listens on a Unix socket (mode 0600); one with `{port}` on a loopback TCP port.
    public var command: [String]
    /// Extra environment; values take the same templates plus `{secret}`.
    public var environment: [String: String] = [:]
    /// Per-user workspaces live in `{workspacesRoot}/{username}` with `code`, `io` and `data`.
    public var workspacesRoot: String
    /// Copied into `code` on a workspace's first start only; never overwrites a file.
    public var starterFiles: String?
    /// Where Unix sockets go (short: a socket path may not exceed 107 bytes). Mode 0700.
    public var socketDirectory: String
    /// Where each server's output is written (`{user}.log`, `{user}@{server}.log`, names escaped).
    public var logDirectory: String
    /// The host TCP workspaces listen on.
    public var host = "127.0.0.1"
    /// Between SIGTERM and SIGKILL. Default: 10 s.
    public var stopGracePeriod: Duration = .seconds(10)
    /// Whether the proxy strips `/user/{name}/` before forwarding (programs that serve at `/`).
    public var stripPrefix = false
    /// Directories searched for the command besides `PATH` (the hub's own directory, so the
    /// bundled `atrium-workspace` is found).
    public var extraPath: [String] = []
    /// At most this many processes (and threads) per server, when cgroups are used. Default: 512.
    public var pidsLimit: Int? = 512
    /// Whether system accounts are made when a user is approved (else at their first start).
    public var createAccountsOnApproval = false
    /// Set in every server's environment as `ATRIUM_SERVER_TAG=<hubTag>/<server>`, so a
    /// restarted hub finds processes of a start it was killed in (without cgroups). "" sets none.
    public var hubTag = ""

    public init(command: [String], workspacesRoot: String, socketDirectory: String, logDirectory: String) {
        self.command = command
        self.workspacesRoot = workspacesRoot
        self.socketDirectory = socketDirectory
        self.logDirectory = logDirectory
    }

    /// Ready-made commands by name: `jupyter-server`, `jupyterlab`, `code-server`, `atrium-workspace`.
    public static let presets: [String: (command: [String], environment: [String: String], stripPrefix: Bool)] = [
        "jupyter-server": (jupyter("jupyter-server"), ["JUPYTER_TOKEN": "{secret}"], false),
        "jupyterlab": (jupyter("jupyter-lab"), ["JUPYTER_TOKEN": "{secret}"], false),
        "code-server": (
            [
                "code-server", "--socket", "{socket}", "--socket-mode", "600", "--auth", "none", "--disable-telemetry",
                "--disable-update-check", "--user-data-dir", "{data}/.code-server", "{code}",
            ], [:], true
        ),
        "atrium-workspace": (["atrium-workspace", "--socket", "{socket}", "--base-url", "{base_url}"], [:], false),
    ]

    private static func jupyter(_ program: String) -> [String] {
        [
            program, "--ServerApp.sock={socket}", "--ServerApp.sock_mode=0600", "--ServerApp.base_url={base_url}",
            "--ServerApp.root_dir={code}", "--ServerApp.allow_remote_access=True", "--ServerApp.open_browser=False",
            // Workspaces run as the hub's own user, which is root in containers and CI.
            "--ServerApp.allow_root=True",
        ]
    }
}

/// How local workspaces are kept apart from the hub and from each other.
public enum LocalIsolation: String, Sendable, CaseIterable {
    /// Every workspace runs as the hub's own user (one person's machine, or tests).
    case hubUser = "hub_user"
    /// Every hub user gets a Unix account, and their workspaces run as it (the hub runs as root).
    case systemUsers = "system_users"
}

/// Runs each server as a child process on this machine.
///
/// With ``SystemAccounts``, each server runs as its user's Unix account (uid, primary and
/// supplementary groups, umask 077, a clean environment, its own session), in a home only that
/// account can enter. With ``Cgroups``, each server has a cgroup with its memory, CPU and
/// process limits, joined before the program runs; without, memory is capped as the process's
/// data-segment limit (`RLIMIT_DATA`) and CPU not at all. Workspaces are reached only through
/// the proxy: Unix sockets are mode 0600 in a 0700 directory, and every program gets the
/// per-server secret (`ATRIUM_WORKSPACE_SECRET`, `JUPYTER_TOKEN` for Jupyter) that only the
/// proxy sends.
public struct LocalBackend: Backend {
    /// What the hub keeps about one local server.
    public struct State: Codable, Sendable, Equatable {
        public var pid: Int32?
        public var processStart: UInt64?
        public var address: WorkspaceAddress
        public var workspace: String
        public var logFile: String
        public var stripPrefix: String?
        public var suspended: Bool
        /// The Unix account the server runs as (nil: the hub's own user).
        public var account: SystemAccount?
        /// The server's cgroup (a folder name under the hub's), when cgroups are used.
        public var cgroup: String?
    }

    public let configuration: LocalBackendConfiguration
    let processes = Processes()
    let logger: Logger
    /// Set when workspaces run as their users' accounts.
    public let accounts: SystemAccounts?
    /// Set when each server gets a cgroup.
    public let cgroups: Cgroups?

    public init(configuration: LocalBackendConfiguration, accounts: SystemAccounts? = nil, cgroups: Cgroups? = nil, logger: Logger) {
        self.configuration = configuration
        self.accounts = accounts
        self.cgroups = cgroups
        self.logger = logger
    }

    public var kind: String { "local" }

    /// The executable `program` in the first of `directories` that has it (or `program` itself
    /// when it is a path), or nil. The one lookup for the start of a server and the hub's
    /// start-up check.
    public static func locate(_ program: String, in directories: [String]) -> String? {
        if program.contains("/") { return access(program, X_OK) == 0 ? program : nil }
        for dir in directories where !dir.isEmpty {
            let candidate = "\(dir)/\(program)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    func workspace(for user: String) -> String {
        "\(configuration.workspacesRoot)/\(Self.fileName(user))"
    }

    /// A file-name-safe rendering of a user or server name, one-to-one: letters, digits, `-`,
    /// `_` and `.` stay as they are (so most names are their own folder), every other byte is
    /// `%XX`, and so is a leading `.`. `%` itself is escaped, so two names never share a file name
    /// (a readable part plus a hash, as before, could be aimed at: user `zoe_example.org-1r1x…`
    /// got the folder of `zoe@example.org`).
    static func fileName(_ name: String) -> String {
        var out = ""
        for (index, byte) in name.utf8.enumerated() {
            let isSafe = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2D || byte == 0x5F || (byte == 0x2E && index > 0)
            if isSafe {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return out
    }

    /// The folder an earlier Atrium gave a name outside `[A-Za-z0-9._-]` (readable part plus an
    /// FNV-1a hash), or nil for names whose folder has not changed.
    static func legacyFileName(_ name: String) -> String? {
        let safe = name.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0) ? String($0) : "_" }.joined()
        if safe == name, !name.hasPrefix(".") { return nil }
        return "\(safe.prefix(40))-\(fnv1a(name))"
    }

    /// Moves a workspace from its legacy folder to its one-to-one folder, once, when only the
    /// legacy one exists.
    func migrateLegacyWorkspace(user: String) {
        guard let legacy = Self.legacyFileName(user) else { return }
        let old = "\(configuration.workspacesRoot)/\(legacy)", new = workspace(for: user)
        let fm = FileManager.default
        guard fm.fileExists(atPath: old), !fm.fileExists(atPath: new) else { return }
        do {
            try fm.moveItem(atPath: old, toPath: new)
            logger.notice("moved a workspace to its new folder", metadata: ["atrium.user": "\(user)", "atrium.from": "\(old)", "atrium.to": "\(new)"])
        } catch {
            logger.warning("could not move a workspace to its new folder", metadata: ["atrium.user": "\(user)", "atrium.error": "\(error)"])
        }
    }

    /// `{user}.log` for the default server, `{user}@{server}.log` for a named one: `@` is
    /// escaped in the user part, so no user's file is another's server's file.
    func logFile(user: String, server: String) -> String {
        let base = server.isEmpty ? Self.fileName(user) : "\(Self.fileName(user))@\(Self.fileName(server))"
        return "\(configuration.logDirectory)/\(base).log"
    }

    /// A short stable name for a server: its socket file and its cgroup folder.
    static func serverHash(user: String, server: String) -> String {
        fnv1a("\(user)/\(server)")
    }

    public func startState(_ request: SpawnRequest, previous: State?) async throws -> State {
        let wantsSocket = configuration.command.contains { $0.contains("{socket}") }
        // The account first: it decides the home and the socket's folder.
        let accountBegan = ContinuousClock.now
        let account = try await accounts?.account(user: request.user, userID: request.userID)
        if let account {
            logger.info("system account ready", metadata: [
                "atrium.user": "\(request.user)", "atrium.account": "\(account.name)",
                "atrium.ms": "\(Self.milliseconds(ContinuousClock.now - accountBegan))",
            ])
        }
        let hash = Self.serverHash(user: request.user, server: request.serverName)
        let address: WorkspaceAddress
        if let previous, previous.account?.uid == account?.uid {
            address = previous.address  // a resume keeps its socket or port
        } else if wantsSocket {
            // A user's sockets sit in a folder only that account (and the hub) can enter.
            let folder = account.map { "\(configuration.socketDirectory)/\($0.uid)" } ?? configuration.socketDirectory
            address = .unix(path: "\(folder)/\(hash).sock")
        } else {
            address = .tcp(host: configuration.host, port: try processes.freePort(host: configuration.host))
        }
        return State(
            pid: nil, processStart: nil, address: address, workspace: account?.home ?? workspace(for: request.user),
            logFile: logFile(user: request.user, server: request.serverName),
            stripPrefix: configuration.stripPrefix ? request.baseURL : nil, suspended: false,
            account: account, cgroup: cgroups == nil ? nil : "\(Self.fileName(request.user).prefix(40))-\(hash)")
    }

    public func start(_ request: SpawnRequest, state: State, progress: ProgressSink) async throws -> State {
        var state = state
        state.suspended = false
        let fm = FileManager.default
        if state.account == nil, state.workspace == workspace(for: request.user) { migrateLegacyWorkspace(user: request.user) }
        try prepareDirectories(state: state)
        let owner = state.account.map { (uid: $0.uid, gid: $0.gid) }
        let firstStart = !fm.fileExists(atPath: "\(state.workspace)/.atrium-initialized")
        for dir in ["code", "io", "data"] {
            let path = "\(state.workspace)/\(dir)"
            if !fm.fileExists(atPath: path) {
                try fm.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                if let owner { try Self.chown(path, owner) }
            }
        }
        if firstStart {
            if let starter = configuration.starterFiles {
                await progress(ProgressEvent(progress: 20, message: "Copying starter files"))
                try copyStarterFiles(from: starter, to: "\(state.workspace)/code", owner: owner)
            }
            _ = fm.createFile(atPath: "\(state.workspace)/.atrium-initialized", contents: Data(Timestamp.format(Date()).utf8))
        }
        if case .unix(let path) = state.address { unlink(path) }
        if case .tcp(let host, let port) = state.address, processes.accepts(host: host, port: port) {
            // A port found free at the previous start is taken now: take another.
            state.address = .tcp(host: host, port: try processes.freePort(host: host))
        }

        let values = templateValues(request: request, state: state)
        let command = (request.command ?? configuration.command).map { Self.fill($0, values) }
        var environment = baseEnvironment()
        for (k, v) in configuration.environment { environment[k] = Self.fill(v, values) }
        for (k, v) in request.environment { environment[k] = v }
        environment["HOME"] = state.workspace
        environment["ATRIUM_WORKSPACE_SECRET"] = request.secret
        if !configuration.hubTag.isEmpty {
            environment["ATRIUM_SERVER_TAG"] = "\(configuration.hubTag)/\(Self.serverHash(user: request.user, server: request.serverName))"
        }
        environment["JUPYTERHUB_USER"] = request.user
        if let account = state.account {
            environment["USER"] = account.name
            environment["LOGNAME"] = account.name
            environment["SHELL"] = accounts?.settings.shell ?? "/bin/sh"
        } else {
            environment["USER"] = ProcessInfo.processInfo.environment["USER"] ?? request.user
        }

        await progress(ProgressEvent(progress: 40, message: "Starting \(command.first ?? "the server")"))
        let header = "\n=== \(Timestamp.format(Date())) starting \(command.joined(separator: " "))\n"
        if !fm.fileExists(atPath: state.logFile) {
            _ = fm.createFile(atPath: state.logFile, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        if let handle = FileHandle(forWritingAtPath: state.logFile) {
            handle.seekToEndOfFile()
            handle.write(Data(header.utf8))
            try? handle.close()
        }
        var cgroupFiles: [Int32] = []
        let cgroupBegan = ContinuousClock.now
        if let cgroups, let name = state.cgroup {
            // A cgroup left from an earlier run (a crash) is emptied before it is reused.
            await cgroups.remove(name)
            cgroupFiles = try cgroups.create(name, limits: CgroupLimits(memory: request.limits.memory, cpu: request.limits.cpu, pids: configuration.pidsLimit))
        }
        defer { for fd in cgroupFiles { close(fd) } }
        let pid = try processes.spawn(
            arguments: command, environment: environment, directory: "\(state.workspace)/code", logFile: state.logFile,
            account: state.account, cgroupFiles: cgroupFiles)
        state.pid = pid
        // The start time identifies this process from now on; read it before anything else.
        var started = processes.startTime(of: pid)
        for _ in 0..<50 where started == nil {
            try? await Task.sleep(for: .milliseconds(2))
            started = processes.startTime(of: pid)
        }
        guard let started else {
            processes.reap(pid)
            let why = processes.exitDescription(of: pid) ?? "ended at once"
            throw Processes.SpawnFailure(description: "\(command.first ?? "the server") \(why): \(lastLines(state.logFile, 5).joined(separator: " | "))")
        }
        state.processStart = started
        if cgroups == nil, let memory = request.limits.memory, !processes.limitMemory(pid: pid, bytes: memory) {
            logger.warning("could not set the memory limit", metadata: ["atrium.user": "\(request.user)", "atrium.pid": "\(pid)"])
        }
        logger.info("started process", metadata: [
            "atrium.user": "\(request.user)", "atrium.server": "\(request.serverName)", "atrium.pid": "\(pid)",
            // The cgroup's set-up and the spawn with the identity change, for the isolation benchmark.
            "atrium.cgroup_spawn_ms": "\(Self.milliseconds(ContinuousClock.now - cgroupBegan))",
        ])
        return state
    }

    func prepareDirectories(state: State) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: configuration.workspacesRoot, withIntermediateDirectories: true)
        try fm.createDirectory(atPath: configuration.logDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try fm.createDirectory(atPath: configuration.socketDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if let account = state.account {
            // Users pass through to their own folder of sockets, and see nothing else in it.
            chmod(configuration.socketDirectory, 0o711)
            if case .unix(let path) = state.address {
                let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
                try fm.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                try Self.chown(folder, (account.uid, account.gid))
                chmod(folder, 0o700)
            }
            if !fm.fileExists(atPath: state.workspace) {
                // An account whose home went missing gets it back, as its own.
                try fm.createDirectory(atPath: state.workspace, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                try Self.chown(state.workspace, (account.uid, account.gid))
            }
        } else {
            chmod(configuration.socketDirectory, 0o700)
            try fm.createDirectory(atPath: state.workspace, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
    }

    static func milliseconds(_ d: Duration) -> String {
        String(format: "%.2f", Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
    }

    /// `lchown`, with an error that names the path.
    static func chown(_ path: String, _ owner: (uid: UInt32, gid: UInt32)) throws {
        guard lchown(path, owner.uid, owner.gid) == 0 else {
            throw Processes.SpawnFailure(description: "could not give \(path) to its user: \(String(cString: strerror(errno)))")
        }
    }

    /// Copies the starter folder's content without replacing anything that exists; what it
    /// copies belongs to `owner` when given.
    func copyStarterFiles(from source: String, to destination: String, owner: (uid: UInt32, gid: UInt32)? = nil) throws {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: source, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw Processes.SpawnFailure(description: "the starter files folder \(source) does not exist")
        }
        guard let walker = fm.enumerator(atPath: source) else { return }
        while let relative = walker.nextObject() as? String {
            let from = "\(source)/\(relative)", to = "\(destination)/\(relative)"
            var dir: ObjCBool = false
            _ = fm.fileExists(atPath: from, isDirectory: &dir)
            if dir.boolValue {
                if !fm.fileExists(atPath: to) {
                    try fm.createDirectory(atPath: to, withIntermediateDirectories: true)
                    if let owner { try Self.chown(to, owner) }
                }
            } else if !fm.fileExists(atPath: to) {
                try fm.copyItem(atPath: from, toPath: to)
                if let owner { try Self.chown(to, owner) }
            }
        }
    }

    func templateValues(request: SpawnRequest, state: State) -> [String: String] {
        var values = [
            "username": request.user, "server_name": request.serverName, "base_url": request.baseURL,
            "workspace": state.workspace, "code": "\(state.workspace)/code", "io": "\(state.workspace)/io",
            "data": "\(state.workspace)/data", "secret": request.secret, "port": "", "socket": "",
        ]
        switch state.address {
        case .tcp(_, let port): values["port"] = String(port)
        case .unix(let path): values["socket"] = path
        }
        return values
    }

    static func fill(_ template: String, _ values: [String: String]) -> String {
        guard template.contains("{") else { return template }
        var result = template
        for (k, v) in values { result = result.replacingOccurrences(of: "{\(k)}", with: v) }
        return result
    }

    func baseEnvironment() -> [String: String] {
        let inherited = ProcessInfo.processInfo.environment
        var environment: [String: String] = [:]
        for key in ["LANG", "LC_ALL", "TZ", "VIRTUAL_ENV", "PYTHONPATH", "SHELL"] { environment[key] = inherited[key] }
        let path = inherited["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        environment["PATH"] = (configuration.extraPath + [path]).joined(separator: ":")
        return environment
    }

    public func status(_ state: State) async -> BackendStatus {
        if state.suspended { return .suspended }
        guard let pid = state.pid, let started = state.processStart else { return .stopped }
        guard processes.isRunning(pid: pid, started: started) else {
            if let cgroups, let name = state.cgroup, cgroups.oomKills(name) > 0 {
                return .failed(reason: "out of memory: the workspace used all the memory it may use and was stopped")
            }
            let how = processes.exitDescription(of: pid) ?? "is no longer running"
            let tail = lastLines(state.logFile, 3).joined(separator: " | ")
            return .failed(reason: "the process \(how)" + (tail.isEmpty ? "" : ": \(tail)"))
        }
        let answers: Bool =
            switch state.address {
            case .unix(let path): processes.accepts(unixSocket: path)
            case .tcp(let host, let port): processes.accepts(host: host, port: port)
            }
        return answers ? .running : .starting
    }

    public func endpoint(_ state: State) -> WorkspaceEndpoint {
        WorkspaceEndpoint(address: state.address, secret: nil, stripPrefix: state.stripPrefix)
    }

    public func suspend(_ state: State) async throws -> State {
        try await stop(state)
        var kept = state
        kept.pid = nil
        kept.processStart = nil
        kept.suspended = true
        return kept
    }

    public func stop(_ state: State) async throws {
        if let pid = state.pid, let started = state.processStart {
            await processes.terminate(pid: pid, started: started, grace: configuration.stopGracePeriod)
        }
        // Whatever the program left running (a detached background job) goes with the cgroup.
        if let cgroups, let name = state.cgroup { await cgroups.remove(name) }
        if case .unix(let path) = state.address { unlink(path) }
    }

    /// Stops processes of this hub's servers that no known server accounts for: by cgroup (every
    /// process of a server is in it), else by the `ATRIUM_SERVER_TAG` in their environment.
    public func stopOrphans(known: [State]) async -> Int {
        var stopped = 0
        if let cgroups {
            let keep = Set(known.compactMap(\.cgroup))
            for name in cgroups.serverFolders() where !keep.contains(name) {
                if !cgroups.processes(name).isEmpty { stopped += 1 }
                await cgroups.remove(name)
            }
        }
        // With cgroups every process of a server is in its cgroup: the environment scan would
        // only read every process's environment again to find nothing more.
        guard cgroups == nil, !configuration.hubTag.isEmpty else { return stopped }
        let keep = Set(known.compactMap { state -> String? in
            guard let pid = state.pid else { return nil }
            return Self.serverTag(of: pid)
        })
        var orphans: [String: [Int32]] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let tag = Self.serverTag(of: pid), tag.hasPrefix(configuration.hubTag + "/"), !keep.contains(tag) else { continue }
            orphans[tag, default: []].append(pid)
        }
        for (tag, pids) in orphans {
            for pid in pids { kill(pid, SIGKILL) }
            logger.notice("stopped the processes of an interrupted start", metadata: ["atrium.tag": "\(tag)", "atrium.pids": "\(pids)"])
        }
        return stopped + orphans.count
    }

    /// The `ATRIUM_SERVER_TAG` in a process's environment, if it has one.
    static func serverTag(of pid: Int32) -> String? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return nil }
        let prefix = Array("ATRIUM_SERVER_TAG=".utf8)
        for entry in data.split(separator: 0) where entry.starts(with: prefix) {
            return String(decoding: entry.dropFirst(prefix.count), as: UTF8.self)
        }
        return nil
    }

    /// With `local.create_system_users: on_approval`, makes the user's account at approval.
    public func prepareUser(user: String, userID: Int64) async throws {
        guard let accounts, configuration.createAccountsOnApproval else { return }
        _ = try await accounts.account(user: user, userID: userID)
    }

    /// Current memory and CPU use of a running server (cgroups only).
    public func usage(_ state: State) async -> ResourceUsage? {
        guard let cgroups, let name = state.cgroup, state.pid != nil, let used = cgroups.usage(name) else { return nil }
        return ResourceUsage(memoryBytes: used.memoryBytes, cpuSeconds: used.cpuSeconds, tasks: used.processes)
    }

    public func remove(user: String, serverName: String, state: State?) async throws {
        if let state { try await stop(state) }
        try? FileManager.default.removeItem(atPath: logFile(user: user, server: serverName))
    }

    public func deleteForever(user: String, userID: Int64, serverName: String, state: State?) async throws {
        try await remove(user: user, serverName: serverName, state: state)
        if let accounts {
            // The account and its home go together, as in the seed's course hub.
            try await accounts.delete(user: user, userID: userID)
            return
        }
        let dir = workspace(for: user)
        if FileManager.default.fileExists(atPath: dir) { try FileManager.default.removeItem(atPath: dir) }
    }

    public func logs(user: String, serverName: String, state: State?, lines: Int) async throws -> [String] {
        lastLines(state?.logFile ?? logFile(user: user, server: serverName), lines)
    }

    /// The last `count` lines of a file, reading at most its last 1 MiB.
    func lastLines(_ path: String, _ count: Int) -> [String] {
        guard count > 0, let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        let size = handle.seekToEndOfFile()
        let window: UInt64 = min(size, 1 << 20)
        handle.seek(toFileOffset: size - window)
        let data = handle.readDataToEndOfFile()
        var text = String(decoding: data, as: UTF8.self)
        if window < size, let firstNewline = text.firstIndex(of: "\n") { text = String(text[text.index(after: firstNewline)...]) }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        return Array(lines.suffix(count))
    }
}

/// FNV-1a of `text`'s UTF-8 bytes in base 36: short, stable names (sockets, cgroups, legacy
/// folders). Not a defence against chosen collisions: names that must be injective use it only
/// beside a one-to-one part or a stored mapping.
func fnv1a(_ text: String) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
    return String(hash, radix: 36)
}

extension String {
    /// The string with `0`s in front up to `width` characters.
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
