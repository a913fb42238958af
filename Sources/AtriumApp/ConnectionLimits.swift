import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// How many connections the hub accepts at once, kept well under the process's file
/// descriptor limit: with no descriptor left, a hub cannot open its database, answer, or even
/// let libdispatch read `/proc` (it trapped, SIGILL, in a load test at the default 1,024).
/// Connections beyond the cap wait in the kernel's accept queue, holding no descriptor, and are
/// taken as others close.
enum ConnectionLimits {
    /// Descriptors kept for everything but client connections: the database, workspace
    /// sockets and log files, the Kubernetes client, libraries.
    static let reserved = 256

    /// Raises the soft descriptor limit to the hard one (the soft default is often 1,024 while
    /// the hard one is far higher), warns when it stays low, and returns the connection cap:
    /// `configured` when given (never above what the limit allows), else half of what the
    /// limit leaves after ``reserved`` (a proxied connection holds two descriptors: the client's
    /// and the workspace's).
    /// `RLIM_INFINITY` (all bits set; the C macro does not import).
    static let unlimited = rlim_t.max

    static func prepare(configured: Int, logger: Logger) -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return configured > 0 ? configured : 4096 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max == unlimited ? max(limit.rlim_cur, rlim_t(1 << 20)) : limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let descriptors = limit.rlim_cur == unlimited ? 1 << 20 : Int(limit.rlim_cur)
        let allowed = max(32, (descriptors - reserved) / 2)
        if descriptors < 8192 {
            logger.warning(
                "only \(descriptors) file descriptors: at most \(allowed) connections at once; raise the limit (LimitNOFILE=65536 in the systemd unit, ulimit -n)",
                metadata: ["atrium.nofile": "\(descriptors)"])
        }
        return configured > 0 ? min(configured, allowed) : allowed
    }

    /// Connections one network address may hold: `configured` when given, else an eighth of the
    /// cap (at least 64), so a flood from one client leaves most of the cap to everyone else.
    static func perAddress(configured: Int, cap: Int) -> Int {
        configured > 0 ? configured : max(64, cap / 8)
    }
}
