import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Whether the hub's address can be bound, asked before anything touches the database, so a
/// second hub started by mistake says so at once instead of after migrations and restores.
public enum PortCheck {
    /// nil when `ip:port` can be bound now (or port is 0), else the reason.
    public static func problem(ip: String, port: Int) -> String? {
        guard port != 0 else { return nil }
        let isIPv6 = ip.contains(":")
        let fd = socket(isIPv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }  // nothing learned; the real bind will tell
        defer { close(fd) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        let result: Int32
        if isIPv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET6, ip, &address.sin6_addr) == 1 else { return nil }
            result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET, ip, &address.sin_addr) == 1 else { return nil }
            result = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        guard result != 0 else { return nil }
        let code = errno
        switch code {
        case EADDRINUSE:
            return "\(ip):\(port) is already in use (is another hub running?): stop it, or choose another port with --port (or the port key)"
        case EADDRNOTAVAIL:
            return "\(ip) is not an address of this machine: choose another with --ip (or the ip key)"
        case EACCES:
            return "\(ip):\(port) needs privileges to bind (ports below 1024): choose a port from 1024 with --port"
        default:
            return "cannot listen on \(ip):\(port): \(String(cString: strerror(code)))"
        }
    }
}
