/// Where a workspace server listens, as the proxy and the readiness check reach it.
public enum WorkspaceAddress: Sendable, Hashable, Codable, CustomStringConvertible {
    /// A TCP port, normally on loopback.
    case tcp(host: String, port: Int)
    /// A Unix domain socket (mode 0600, so only the hub's user can connect).
    case unix(path: String)

    public var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "http://[\(host)]:\(port)" : "http://\(host):\(port)"
        case .unix(let path): "http+unix://\(path)"
        }
    }
}

/// A path under a workspace's base path (an upstream that serves the workspace below a path,
/// like the Kubernetes API server's service proxy): `/api/proxy` and `/x?y` give
/// `/api/proxy/x?y`, with one slash between them.
public func pathBelow(base: String, _ path: String) -> String {
    let trimmed = base.hasSuffix("/") ? base.dropLast() : Substring(base)
    return path.hasPrefix("/") ? trimmed + path : trimmed + "/" + path
}
