import AtriumModel
import Synchronization

/// One live route: a ready server the proxy may forward to.
public struct LiveRoute: Sendable, Hashable {
    public var user: String
    public var userID: Int64
    public var server: String
    public var endpoint: WorkspaceEndpoint

    public init(user: String, userID: Int64, server: String, endpoint: WorkspaceEndpoint) {
        self.user = user
        self.userID = userID
        self.server = server
        self.endpoint = endpoint
    }
}

/// The proxy's route table: written by the ``ServerManager`` when a server becomes ready or
/// goes away, read on every proxied request from NIO event loops — hence a reader-writer lock,
/// not an actor: readers on different event loops never wait for each other.
public final class RouteTable: Sendable {
    private struct Key: Hashable {
        var user: String
        var server: String
    }

    private let routes = ReadMostly<[Key: LiveRoute]>([:])

    public init() {}

    /// The live route of `user`'s server `server` (`""` is the default).
    public func route(user: String, server: String) -> LiveRoute? {
        routes.read { $0[Key(user: user, server: server)] }
    }

    public func publish(_ route: LiveRoute) {
        routes.write { $0[Key(user: route.user, server: route.server)] = route }
    }

    public func remove(user: String, server: String) {
        _ = routes.write { $0.removeValue(forKey: Key(user: user, server: server)) }
    }

    /// Every live route (for diagnostics and tests).
    public var all: [LiveRoute] { routes.read { Array($0.values) } }
}
