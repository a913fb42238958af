import AtriumModel
import Foundation

extension ServerManager {
    /// One server as the manager knows it now: what the idle culler and the metrics read.
    public struct ServerOverview: Sendable, Equatable {
        public var user: String
        public var userID: Int64
        /// `""` for the default server.
        public var server: String
        public var state: ServerLifecycle.State
        /// When it became ready (`nil` while it starts).
        public var started: Date?
        /// When its current or last start was asked for.
        public var requested: Date?
        /// The profile it was started with.
        public var profile: String?

        public init(
            user: String, userID: Int64, server: String, state: ServerLifecycle.State, started: Date? = nil, requested: Date? = nil,
            profile: String? = nil
        ) {
            self.user = user
            self.userID = userID
            self.server = server
            self.state = state
            self.started = started
            self.requested = requested
            self.profile = profile
        }
    }

    /// Every server the manager holds that is not stopped, in no particular order. A read of
    /// the actor's memory: no store or backend call.
    public func overview() -> [ServerOverview] {
        servers.values.compactMap { server in
            guard server.lifecycle.state != .stopped else { return nil }
            return ServerOverview(
                user: server.user, userID: server.userID, server: server.name, state: server.lifecycle.state, started: server.started,
                requested: server.requested, profile: server.profile)
        }
    }
}
