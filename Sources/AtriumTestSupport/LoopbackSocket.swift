import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Raw TCP connections to a hub on 127.0.0.1, for tests that play misbehaving clients (floods,
/// half-sent requests) that an HTTP client library will not.
public enum LoopbackSocket {
    /// A socket connected (or, `nonBlocking`, connecting) to 127.0.0.1:`port`, from the loopback
    /// address `source` when given, so one test can be several clients. Nil when the socket
    /// cannot be made, bound or connected.
    public static func connect(to port: Int, from source: String? = nil, nonBlocking: Bool = false) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0), 0)
        guard fd >= 0 else { return nil }
        let size = socklen_t(MemoryLayout<sockaddr_in>.size)
        if let source {
            var local = address(source, port: 0)
            guard withUnsafePointer(to: &local, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) } }) == 0 else {
                close(fd)
                return nil
            }
        }
        var remote = address("127.0.0.1", port: port)
        let connected = withUnsafePointer(to: &remote) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, size) } }
        guard connected == 0 || (nonBlocking && errno == EINPROGRESS) else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Sends `text` whole or in part, never raising SIGPIPE on a connection the hub closed.
    public static func send(_ fd: Int32, _ text: String) {
        _ = text.withCString { Glibc.send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    }

    private static func address(_ host: String, port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr(host)
        return address
    }
}
