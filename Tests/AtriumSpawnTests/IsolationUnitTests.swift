@testable import AtriumLocal
import Foundation
import Logging
import Testing

@Suite("System account names")
struct SystemAccountNameTests {
    @Test("valid Unix names: lower-case letter or _ first, then letters, digits, _ and -, at most 32")
    func unixNames() {
        for good in ["a", "_x", "atrium-ann", "atrium-ann_2", String(repeating: "a", count: 32)] {
            #expect(SystemAccounts.isValidUnixName(good), "\(good)")
        }
        for bad in ["", "Ann", "1ann", "-ann", "ann.b", "ann b", "änn", String(repeating: "a", count: 33), "ann$"] {
            #expect(!SystemAccounts.isValidUnixName(bad), "\(bad)")
        }
    }

    @Test("a name that is already a lower-case Unix name keeps it, behind the prefix")
    func plainNames() {
        #expect(SystemAccounts.candidateName(for: "ann", prefix: "atrium-") == "atrium-ann")
        #expect(SystemAccounts.candidateName(for: "bob_2", prefix: "jupyter-") == "jupyter-bob_2")
    }

    @Test("every other hub name gets a readable part and a hash, and is a valid, distinct Unix name")
    func hashedNames() {
        let names = [
            "Ann", "ann@example.org", "Zoë", "学生一", "a.b", "x", String(repeating: "long", count: 40), "ANN", "Ann ",
            "atrium-ann", "-lead", "9lives",
        ]
        var seen = Set<String>()
        for name in names {
            let unix = SystemAccounts.candidateName(for: name, prefix: "atrium-")
            #expect(SystemAccounts.isValidUnixName(unix), "\(name) -> \(unix)")
            #expect(seen.insert(unix).inserted, "\(name) -> \(unix) collides")
        }
        // Case twins never share an account: "Ann" is hashed, "ann" is plain.
        #expect(SystemAccounts.candidateName(for: "Ann", prefix: "atrium-") != SystemAccounts.candidateName(for: "ann", prefix: "atrium-"))
        #expect(SystemAccounts.candidateName(for: "ann@example.org", prefix: "atrium-").hasPrefix("atrium-annexampleorg-"))
        // A name with no usable character still makes a valid one, and so does an empty prefix.
        #expect(SystemAccounts.isValidUnixName(SystemAccounts.candidateName(for: "学生一", prefix: "")))
        #expect(SystemAccounts.isValidUnixName(SystemAccounts.candidateName(for: "9lives", prefix: "")))
    }

    @Test("a later attempt (the first candidate was taken) gives another name, the same every time")
    func attempts() {
        let first = SystemAccounts.candidateName(for: "ann", prefix: "atrium-", attempt: 0)
        let second = SystemAccounts.candidateName(for: "ann", prefix: "atrium-", attempt: 1)
        let third = SystemAccounts.candidateName(for: "ann", prefix: "atrium-", attempt: 2)
        #expect(Set([first, second, third]).count == 3)
        #expect(second == SystemAccounts.candidateName(for: "ann", prefix: "atrium-", attempt: 1))
    }

    @Test("the mapping file is read back, and a broken one stops the hub instead of being replaced")
    func mappingFile() throws {
        let folder = "/tmp/atrium-map-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let file = "\(folder)/accounts.json"
        try SystemAccounts.save([7: .init(account: "atrium-ann", user: "ann")], to: file)
        let mode = (try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        let accounts = try SystemAccounts(settings: .init(homesRoot: folder, mappingFile: file), logger: Logger(label: "test"))
        // The binding is found by id, and by name when no id is given (deleting a user).
        #expect(accounts.existingAccount(user: "ann", userID: 7) == nil)  // no such system account here
        try "{not json".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: SystemAccounts.Failure.self) { try SystemAccounts(settings: .init(homesRoot: folder, mappingFile: file), logger: Logger(label: "test")) }
    }
}

@Suite("Cgroups")
struct CgroupTests {
    /// A fake cgroup file system in a temporary folder; the kernel's files are plain files here.
    struct FakeMount {
        let root = "/tmp/atrium-cg-\(UUID().uuidString.prefix(8))"

        func make(_ path: String, _ content: String = "") throws {
            let full = "\(root)/\(path)"
            try FileManager.default.createDirectory(atPath: URL(fileURLWithPath: full).deletingLastPathComponent().path, withIntermediateDirectories: true)
            try content.write(toFile: full, atomically: false, encoding: .utf8)
        }

        func read(_ path: String) -> String? { try? String(contentsOfFile: "\(root)/\(path)", encoding: .utf8) }
    }

    @Test("cgroup v1: a folder per controller under the hub's own cgroup; limits written where the kernel reads them")
    func version1() throws {
        let fs = FakeMount()
        defer { try? FileManager.default.removeItem(atPath: fs.root) }
        for controller in ["memory", "cpu", "cpuacct", "pids"] { try fs.make("\(controller)/cgroup.procs") }
        let own = "4:memory:/hub.service\n1:cpu:/\n2:cpuacct:/\n8:pids:/hub.service\n0::/\n"
        let cgroups = try Cgroups.prepare(mountRoot: fs.root, ownCgroups: own, logger: Logger(label: "test"))
        #expect(cgroups.layout == .v1(controllers: [
            "memory": "\(fs.root)/memory/hub.service/atrium", "cpu": "\(fs.root)/cpu/atrium",
            "cpuacct": "\(fs.root)/cpuacct/atrium", "pids": "\(fs.root)/pids/hub.service/atrium",
        ]))
        // The kernel makes these files in a new cgroup; the fake makes them up front.
        for file in ["memory/hub.service/atrium/s1/memory.limit_in_bytes", "memory/hub.service/atrium/s1/cgroup.procs",
            "cpu/atrium/s1/cpu.cfs_period_us", "cpu/atrium/s1/cpu.cfs_quota_us", "cpu/atrium/s1/cgroup.procs",
            "cpuacct/atrium/s1/cgroup.procs", "pids/hub.service/atrium/s1/pids.max", "pids/hub.service/atrium/s1/cgroup.procs"]
        {
            try fs.make(file)
        }
        let fds = try cgroups.create("s1", limits: CgroupLimits(memory: 256 << 20, cpu: 0.5, pids: 64))
        for fd in fds { close(fd) }
        #expect(fds.count == 4)
        #expect(fs.read("memory/hub.service/atrium/s1/memory.limit_in_bytes") == "268435456")
        #expect(fs.read("cpu/atrium/s1/cpu.cfs_quota_us") == "50000")
        #expect(fs.read("cpu/atrium/s1/cpu.cfs_period_us") == "100000")
        #expect(fs.read("pids/hub.service/atrium/s1/pids.max") == "64")
        try fs.make("memory/hub.service/atrium/s1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
        #expect(cgroups.oomKills("s1") == 2)
        try fs.make("memory/hub.service/atrium/s1/memory.usage_in_bytes", "1048576\n")
        try fs.make("cpuacct/atrium/s1/cpuacct.usage", "2500000000\n")
        try fs.make("pids/hub.service/atrium/s1/pids.current", "3\n")
        #expect(cgroups.usage("s1") == CgroupUsage(memoryBytes: 1_048_576, cpuSeconds: 2.5, processes: 3))
    }

    @Test("cgroup v2: the hub leaves its own cgroup for <own>/hub, hands memory, cpu and pids down, and servers get cpu.max")
    func version2() throws {
        let fs = FakeMount()
        defer { try? FileManager.default.removeItem(atPath: fs.root) }
        try fs.make("cgroup.controllers", "cpuset cpu io memory pids\n")
        try fs.make("system.slice/atrium.service/cgroup.controllers", "cpu memory pids\n")
        try fs.make("system.slice/atrium.service/cgroup.procs", "4242\n")
        try fs.make("system.slice/atrium.service/cgroup.subtree_control")
        try fs.make("system.slice/atrium.service/hub/cgroup.procs")
        try fs.make("system.slice/atrium.service/atrium/cgroup.subtree_control")
        let cgroups = try Cgroups.prepare(mountRoot: fs.root, ownCgroups: "0::/system.slice/atrium.service\n", logger: Logger(label: "test"))
        let base = "\(fs.root)/system.slice/atrium.service/atrium"
        #expect(cgroups.layout == .v2(base: base))
        #expect(fs.read("system.slice/atrium.service/hub/cgroup.procs") == "4242\n")
        #expect(fs.read("system.slice/atrium.service/cgroup.subtree_control") == "+memory +cpu +pids")
        #expect(fs.read("system.slice/atrium.service/atrium/cgroup.subtree_control") == "+memory +cpu +pids")
        for file in ["memory.max", "memory.swap.max", "cpu.max", "pids.max", "cgroup.procs"] {
            try fs.make("system.slice/atrium.service/atrium/s1/\(file)")
        }
        let fds = try cgroups.create("s1", limits: CgroupLimits(memory: 1 << 30, cpu: 1.5, pids: nil))
        for fd in fds { close(fd) }
        #expect(fs.read("system.slice/atrium.service/atrium/s1/memory.max") == "1073741824")
        #expect(fs.read("system.slice/atrium.service/atrium/s1/memory.swap.max") == "0")
        #expect(fs.read("system.slice/atrium.service/atrium/s1/cpu.max") == "150000 100000")
        #expect(fs.read("system.slice/atrium.service/atrium/s1/pids.max") == "max")
        try fs.make("system.slice/atrium.service/atrium/s1/memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
        #expect(cgroups.oomKills("s1") == 1)
    }

    @Test("no controllers delegated, or nothing mounted: a clear refusal that says what to do")
    func unavailable() throws {
        let fs = FakeMount()
        defer { try? FileManager.default.removeItem(atPath: fs.root) }
        try fs.make("cgroup.controllers", "cpu memory pids\n")
        try fs.make("user.slice/cgroup.controllers", "memory\n")
        #expect {
            try Cgroups.prepare(mountRoot: fs.root, ownCgroups: "0::/user.slice\n", logger: Logger(label: "test"))
        } throws: { error in
            "\(error)".contains("lacks the cpu, pids controller(s)") && "\(error)".contains("Delegate=yes")
        }
        let empty = FakeMount()
        try FileManager.default.createDirectory(atPath: empty.root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: empty.root) }
        #expect(throws: Cgroups.Unavailable.self) { try Cgroups.prepare(mountRoot: empty.root, ownCgroups: "", logger: Logger(label: "test")) }
    }

    @Test("a CPU quota is at least 1 ms per 100 ms period")
    func quota() {
        #expect(Cgroups.quota(0.5) == 50_000)
        #expect(Cgroups.quota(2) == 200_000)
        #expect(Cgroups.quota(0.001) == 1000)
    }
}

@Suite("System accounts, failures")
struct SystemAccountFailureTests {
    @Test("useradd failing fails the start with its reason, and nothing is remembered or left behind")
    func useraddFails() async throws {
        let folder = "/tmp/atrium-acct-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let tool = "\(folder)/useradd"
        try "#!/bin/sh\necho \"useradd: user 'atrium-x' is reserved\" >&2\nexit 9\n".write(toFile: tool, atomically: true, encoding: .utf8)
        chmod(tool, 0o755)
        var settings = SystemAccounts.Settings(homesRoot: "\(folder)/homes", mappingFile: "\(folder)/accounts.json")
        settings.prefix = "zz\(UUID().uuidString.prefix(6).lowercased())-"
        settings.useradd = tool
        let accounts = try SystemAccounts(settings: settings, logger: Logger(label: "test"))
        await #expect {
            _ = try await accounts.account(user: "ann", userID: 1)
        } throws: { error in
            "\(error)".contains("could not create the system account \(settings.prefix)ann for ann") && "\(error)".contains("is reserved")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(folder)/accounts.json"))
        #expect(!FileManager.default.fileExists(atPath: "\(folder)/homes/\(settings.prefix)ann"))
    }

    @Test("existing accounts: a missing one is named with the command that makes it; root is refused")
    func existing() async throws {
        var settings = SystemAccounts.Settings(homesRoot: "/tmp", mappingFile: "/tmp/unused-\(UUID().uuidString).json")
        settings.source = .existing
        let accounts = try SystemAccounts(settings: settings, logger: Logger(label: "test"))
        await #expect {
            _ = try await accounts.account(user: "no-such-account-\(UUID().uuidString.prefix(6).lowercased())", userID: 1)
        } throws: { error in "\(error)".contains("useradd -m") }
        await #expect {
            _ = try await accounts.account(user: "root", userID: 2)
        } throws: { error in "\(error)".contains("never run as root") }
    }
}
