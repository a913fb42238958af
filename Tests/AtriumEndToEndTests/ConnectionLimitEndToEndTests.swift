import AtriumTestSupport
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue 19, item 7: at the default 1,024 file descriptors, a flood of connections took every
/// descriptor and the hub died (libdispatch trapped when it could not open /proc). The hub now
/// accepts at most what its descriptor limit allows; the rest wait in the kernel's queue.
@Suite("Connection limits, end to end", .serialized)
struct ConnectionLimitEndToEndTests {
    static var prlimit: String? {
        ["/usr/bin/prlimit", "/bin/prlimit"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    @Test(
        "under a 1,024-descriptor limit, 5,000 connections opened and held leave the hub alive, and it answers once they go",
        .enabled(if: prlimit != nil || ProcessInfo.processInfo.environment["CI"] == "true", "prlimit (util-linux) is missing"))
    func descriptorFlood() async throws {
        let prlimit = try #require(Self.prlimit, "CI must have prlimit (util-linux)")
        let hub = try HubProcess()
        hub.launcher = [prlimit, "--nofile=1024:1024", "--"]
        defer { hub.stop() }
        _ = try await hub.start(config: "backend: simulated\nauth:\n  bcrypt_cost: 4\n")
        let port = hub.port

        // This test's own process needs the descriptors it holds.
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < 6000, limit.rlim_max >= 6000 {
            limit.rlim_cur = 6000
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        let sockets = try await HubProcess.offload { () -> [Int32] in
            var opened: [Int32] = []
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            for _ in 0..<5000 {
                // Non-blocking: a connection waiting in a full accept queue must not stall the test.
                let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
                guard fd >= 0 else { break }
                _ = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
                opened.append(fd)
            }
            return opened
        }
        #expect(sockets.count == 5000, "the test itself could open only \(sockets.count) sockets")
        // Held for a moment while the hub accepts what it may (an event: its own health answer
        // is not possible while the queue is full, so wait on the process instead).
        try await Task.sleep(for: .seconds(2))
        #expect(hub.isRunning, "the hub died under the flood")
        for fd in sockets { close(fd) }

        // Alive and answering once the flood is gone (bounded wait for the answer).
        let api = API(base: hub.baseURL)
        var answered = false
        for _ in 0..<300 where !answered {
            if let reply = try? await api.call(.GET, "/hub/health"), reply.status == 200 { answered = true } else {
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        #expect(answered, "the hub did not answer after the flood")
        #expect(hub.isRunning)
    }
}
