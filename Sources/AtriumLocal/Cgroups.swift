#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging

/// Limits for one server's cgroup. `nil` leaves that controller unlimited.
public struct CgroupLimits: Sendable, Equatable {
    public var memory: Int64?
    public var cpu: Double?
    public var pids: Int?

    public init(memory: Int64? = nil, cpu: Double? = nil, pids: Int? = nil) {
        self.memory = memory
        self.cpu = cpu
        self.pids = pids
    }
}

/// What a server's cgroup has used.
public struct CgroupUsage: Sendable, Equatable {
    public var memoryBytes: Int64?
    public var cpuSeconds: Double?
    public var processes: Int?
}

/// One cgroup per server, under a folder the hub owns: cgroup v2 where it is mounted (the
/// hub's own cgroup, delegated to it, e.g. by systemd's `Delegate=yes`), else the v1
/// `memory`, `cpu`, `cpuacct` and `pids` hierarchies (each under the hub's own cgroup there).
///
/// A server's processes join its cgroup in the child before exec (see `atrium_spawn_as`), so
/// nothing the program forks escapes it; stopping a server kills whatever is left in it.
public final class Cgroups: Sendable {
    public enum Layout: Sendable, Equatable {
        /// The folder that holds one sub-folder per server.
        case v2(base: String)
        /// The per-controller folders that hold one sub-folder per server.
        case v1(controllers: [String: String])
    }

    public let layout: Layout

    public init(layout: Layout) {
        self.layout = layout
    }

    /// A description for the log: which cgroup version and where.
    public var summary: String {
        switch layout {
        case .v2(let base): "cgroup v2 at \(base)"
        case .v1(let controllers): "cgroup v1 (" + controllers.sorted { $0.key < $1.key }.map { "\($0.key) at \($0.value)" }.joined(separator: ", ") + ")"
        }
    }

    public struct Unavailable: Error, CustomStringConvertible {
        public var description: String
    }

    /// Finds a writable cgroup hierarchy and prepares the hub's folder in it. `mountRoot` is
    /// `/sys/fs/cgroup` except in tests; `ownCgroups` is `/proc/self/cgroup`'s text.
    public static func prepare(
        mountRoot: String = "/sys/fs/cgroup", ownCgroups: String? = nil, folder: String = "atrium", logger: Logger
    ) throws -> Cgroups {
        let own = ownCgroups ?? ((try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? "")
        var memberships: [String: String] = [:]  // controller (or "" for v2) -> path
        for line in own.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3 else { continue }
            if parts[1].isEmpty {
                memberships[""] = String(parts[2])
            } else {
                for controller in parts[1].split(separator: ",") { memberships[String(controller)] = String(parts[2]) }
            }
        }
        let fm = FileManager.default
        if fm.fileExists(atPath: "\(mountRoot)/cgroup.controllers") {
            return Cgroups(layout: .v2(base: try prepareV2(mountRoot: mountRoot, own: memberships[""] ?? "/", folder: folder, logger: logger)))
        }
        var controllers: [String: String] = [:]
        var problems: [String] = []
        for controller in ["memory", "cpu", "cpuacct", "pids"] {
            let mount = "\(mountRoot)/\(controller)"
            guard fm.fileExists(atPath: "\(mount)/cgroup.procs") else {
                problems.append("\(mount) is not a mounted cgroup v1 hierarchy")
                continue
            }
            let path = mount + normalized(memberships[controller] ?? "/") + folder
            do {
                try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
                controllers[controller] = path
            } catch {
                problems.append("cannot create \(path): \(error.localizedDescription)")
            }
        }
        guard controllers["memory"] != nil, controllers["cpu"] != nil, controllers["pids"] != nil else {
            throw Unavailable(description: "no writable cgroup for workspace limits: " + problems.joined(separator: "; "))
        }
        return Cgroups(layout: .v1(controllers: controllers))
    }

    /// `atrium-<hash>`: the hub's folder, named after what identifies the hub (its database and
    /// workspaces: stable across restarts, different for two hubs on one machine).
    public static func folderName(forHub identity: String) -> String {
        "atrium-" + fnv1a(identity)
    }

    /// `/a/b` -> `/a/b/`, `/` -> `/`.
    static func normalized(_ path: String) -> String {
        path.hasSuffix("/") ? path : path + "/"
    }

    /// In cgroup v2 a folder with processes cannot hand controllers to sub-folders, so when the
    /// hub's own cgroup (not the root) holds the hub, the hub moves into `<own>/hub` first, and
    /// the servers go into `<own>/<folder>`.
    static func prepareV2(mountRoot: String, own: String, folder: String, logger: Logger) throws -> String {
        let ownPath = mountRoot + (own == "/" ? "" : own)
        let wanted = ["memory", "cpu", "pids"]
        let available = ((try? String(contentsOfFile: "\(ownPath)/cgroup.controllers", encoding: .utf8)) ?? "").split(whereSeparator: \.isWhitespace).map(String.init)
        let missing = wanted.filter { !available.contains($0) }
        guard missing.isEmpty else {
            throw Unavailable(description: "the hub's cgroup \(ownPath) lacks the \(missing.joined(separator: ", ")) controller(s); run the hub with systemd's Delegate=yes (see deploy/atrium.service)")
        }
        if own != "/" {
            let members = ((try? String(contentsOfFile: "\(ownPath)/cgroup.procs", encoding: .utf8)) ?? "").split(separator: "\n")
            if !members.isEmpty {
                let hubFolder = "\(ownPath)/hub"
                do {
                    try FileManager.default.createDirectory(atPath: hubFolder, withIntermediateDirectories: true)
                    for pid in members { try write("\(pid)\n", to: "\(hubFolder)/cgroup.procs") }
                } catch {
                    throw Unavailable(description: "cannot move the hub into \(hubFolder) to delegate its cgroup: \(error); run the hub with systemd's Delegate=yes")
                }
            }
            do {
                try write(wanted.map { "+\($0)" }.joined(separator: " "), to: "\(ownPath)/cgroup.subtree_control")
            } catch {
                throw Unavailable(description: "cannot enable \(wanted.joined(separator: ", ")) in \(ownPath): \(error); run the hub with systemd's Delegate=yes")
            }
        }
        let base = "\(ownPath)/\(folder)"
        do {
            try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
            try write(wanted.map { "+\($0)" }.joined(separator: " "), to: "\(base)/cgroup.subtree_control")
        } catch {
            throw Unavailable(description: "cannot prepare \(base) for workspace limits: \(error)")
        }
        logger.debug("cgroup v2 prepared", metadata: ["atrium.cgroup": "\(base)"])
        return base
    }

    /// Creates (or reuses) the server's cgroup, sets its limits, and opens the `cgroup.procs`
    /// files the child writes itself into. The caller closes the descriptors after the spawn.
    public func create(_ name: String, limits: CgroupLimits) throws -> [Int32] {
        let fm = FileManager.default
        var descriptors: [Int32] = []
        do {
            switch layout {
            case .v2(let base):
                let path = "\(base)/\(name)"
                try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
                try Self.write(limits.memory.map(String.init) ?? "max", to: "\(path)/memory.max")
                // A memory limit means memory: no swapping past it.
                if fm.fileExists(atPath: "\(path)/memory.swap.max") { try Self.write(limits.memory == nil ? "max" : "0", to: "\(path)/memory.swap.max") }
                try Self.write(limits.cpu.map { "\(Self.quota($0)) 100000" } ?? "max 100000", to: "\(path)/cpu.max")
                try Self.write(limits.pids.map(String.init) ?? "max", to: "\(path)/pids.max")
                descriptors.append(try Self.open("\(path)/cgroup.procs"))
            case .v1(let controllers):
                for (controller, base) in controllers.sorted(by: { $0.key < $1.key }) {
                    let path = "\(base)/\(name)"
                    try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
                    switch controller {
                    case "memory":
                        try Self.write(limits.memory.map(String.init) ?? "-1", to: "\(path)/memory.limit_in_bytes")
                        if fm.fileExists(atPath: "\(path)/memory.memsw.limit_in_bytes") {
                            try Self.write(limits.memory.map(String.init) ?? "-1", to: "\(path)/memory.memsw.limit_in_bytes")
                        }
                    case "cpu":
                        try Self.write("100000", to: "\(path)/cpu.cfs_period_us")
                        try Self.write(limits.cpu.map { String(Self.quota($0)) } ?? "-1", to: "\(path)/cpu.cfs_quota_us")
                    case "pids":
                        try Self.write(limits.pids.map(String.init) ?? "max", to: "\(path)/pids.max")
                    default: break
                    }
                    descriptors.append(try Self.open("\(path)/cgroup.procs"))
                }
            }
        } catch {
            for fd in descriptors { close(fd) }
            throw Unavailable(description: "cannot set up the cgroup \(name): \(error)")
        }
        return descriptors
    }

    /// Microseconds of CPU per 100 ms period for `cores` (at least 1 ms, as the kernel requires).
    static func quota(_ cores: Double) -> Int {
        max(1000, Int((cores * 100_000).rounded()))
    }

    /// The folders of the server's cgroup (one in v2, one per controller in v1).
    func folders(_ name: String) -> [String] {
        switch layout {
        case .v2(let base): ["\(base)/\(name)"]
        case .v1(let controllers): controllers.values.sorted().map { "\($0)/\(name)" }
        }
    }

    /// The names of the server cgroups in the hub's folder(s).
    public func serverFolders() -> [String] {
        let bases: [String] =
            switch layout {
            case .v2(let base): [base]
            case .v1(let controllers): Array(controllers.values)
            }
        var names = Set<String>()
        for base in bases {
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? [] {
                var isFolder: ObjCBool = false
                if FileManager.default.fileExists(atPath: "\(base)/\(entry)", isDirectory: &isFolder), isFolder.boolValue { names.insert(entry) }
            }
        }
        return names.sorted()
    }

    /// The pids in the server's cgroup.
    public func processes(_ name: String) -> [Int32] {
        var pids = Set<Int32>()
        for folder in folders(name) {
            let text = (try? String(contentsOfFile: "\(folder)/cgroup.procs", encoding: .utf8)) ?? ""
            for line in text.split(separator: "\n") { if let pid = Int32(line) { pids.insert(pid) } }
        }
        return pids.sorted()
    }

    /// How many times the kernel's OOM killer killed a process of this server.
    public func oomKills(_ name: String) -> Int {
        let file: String
        switch layout {
        case .v2(let base): file = "\(base)/\(name)/memory.events"
        case .v1(let controllers):
            guard let memory = controllers["memory"] else { return 0 }
            file = "\(memory)/\(name)/memory.oom_control"
        }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == "oom_kill", let count = Int(parts[1]) { return count }
        }
        return 0
    }

    /// Current memory, CPU time used so far, and process count.
    public func usage(_ name: String) -> CgroupUsage? {
        func number(_ path: String) -> Int64? {
            (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Int64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
        switch layout {
        case .v2(let base):
            let path = "\(base)/\(name)"
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            var cpu: Double?
            if let stat = try? String(contentsOfFile: "\(path)/cpu.stat", encoding: .utf8) {
                for line in stat.split(separator: "\n") where line.hasPrefix("usage_usec ") {
                    cpu = Double(line.dropFirst("usage_usec ".count)).map { $0 / 1_000_000 }
                }
            }
            return CgroupUsage(memoryBytes: number("\(path)/memory.current"), cpuSeconds: cpu, processes: number("\(path)/pids.current").map(Int.init))
        case .v1(let controllers):
            guard let memory = controllers["memory"], FileManager.default.fileExists(atPath: "\(memory)/\(name)") else { return nil }
            let cpu = controllers["cpuacct"].flatMap { number("\($0)/\(name)/cpuacct.usage") }.map { Double($0) / 1_000_000_000 }
            let pids = controllers["pids"].flatMap { number("\($0)/\(name)/pids.current") }.map(Int.init)
            return CgroupUsage(memoryBytes: number("\(memory)/\(name)/memory.usage_in_bytes"), cpuSeconds: cpu, processes: pids)
        }
    }

    /// Kills every process left in the server's cgroup and removes it. Bounded: gives up (and
    /// leaves the folder) when processes keep appearing.
    public func remove(_ name: String) async {
        let fm = FileManager.default
        guard folders(name).contains(where: { fm.fileExists(atPath: $0) }) else { return }
        if case .v2(let base) = layout, fm.fileExists(atPath: "\(base)/\(name)/cgroup.kill") {
            try? Self.write("1", to: "\(base)/\(name)/cgroup.kill")
        }
        for _ in 0..<200 {
            let left = processes(name)
            if left.isEmpty { break }
            for pid in left { kill(pid, SIGKILL) }
            try? await Task.sleep(for: .milliseconds(10))
        }
        for folder in folders(name) where fm.fileExists(atPath: folder) { rmdir(folder) }
    }

    /// Removes the hub's folder(s) when no server cgroup is left in them (rmdir refuses otherwise).
    public func removeFolderIfEmpty() {
        switch layout {
        case .v2(let base): rmdir(base)
        case .v1(let controllers): for base in controllers.values { rmdir(base) }
        }
    }

    static func write(_ text: String, to path: String) throws {
        let fd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Unavailable(description: "\(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw Unavailable(description: "writing \(text) to \(path): \(String(cString: strerror(errno)))") }
    }

    static func open(_ path: String) throws -> Int32 {
        let fd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Unavailable(description: "\(path): \(String(cString: strerror(errno)))") }
        return fd
    }
}
