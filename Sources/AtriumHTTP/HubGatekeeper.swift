import AtriumAuth
import AtriumModel
import AtriumProxy
import AtriumSpawn
import AtriumStore
import Crypto
import Foundation
import HTTPTypes
import Synchronization

/// The proxy's authentication and routing: who may reach which workspace. Sessions and tokens
/// are checked against the store once and then cached for ``cacheLifetime``, so the proxy's hot
/// path touches only memory. A revoked token or a logged-out session stops working within that
/// time. Anything it cannot allow goes to the hub's own `/user/…` routes, which answer with a
/// login redirect, a 403, or the "not running" page.
public final class HubGatekeeper: ProxyGatekeeper {
    struct Grant {
        var user: String
        var scopes: ScopeSet
        var expires: Date
    }

    let hub: Hub
    let routes: RouteTable
    let activity: ActivityRecorder
    let cacheLifetime: TimeInterval
    /// Session cookie value → grant; token hash → grant; user → groups.
    /// Read on every proxied request from every event loop, written rarely: reader-writer locks.
    private let sessions = ReadMostly<[String: Grant]>([:])
    private let tokens = ReadMostly<[SHA256.Digest: Grant]>([:])
    private let groups = ReadMostly<[String: (groups: [String], expires: Date)]>([:])
    /// Credentials checked and found not valid (token hash or cookie value → until when).
    private let unknownTokens = ReadMostly<[SHA256.Digest: Date]>([:])
    private let unknownSessions = ReadMostly<[String: Date]>([:])

    public init(hub: Hub, routes: RouteTable, activity: ActivityRecorder, cacheLifetime: TimeInterval = 10) {
        self.hub = hub
        self.routes = routes
        self.activity = activity
        self.cacheLifetime = cacheLifetime
    }

    /// The route a `/user/{name}/[{server}/]…` path belongs to: a live named server when the
    /// second segment names one, else the default server.
    func route(for path: String) -> LiveRoute? {
        guard path.hasPrefix("/user/") else { return nil }
        let rest = path.utf8.dropFirst("/user/".utf8.count)
        let end = rest.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) ?? rest.endIndex
        let segments = rest[..<end].split(separator: UInt8(ascii: "/"), maxSplits: 2, omittingEmptySubsequences: false)
        guard let first = segments.first, !first.isEmpty, let user = Self.decodeSegment(first) else { return nil }
        if segments.count >= 2, !segments[1].isEmpty, let server = Self.decodeSegment(segments[1]),
            let named = routes.route(user: user, server: server)
        {
            return named
        }
        return routes.route(user: user, server: "")
    }

    /// A path segment as text; Foundation's percent-decoding only when there is something to decode.
    static func decodeSegment(_ bytes: Substring.UTF8View.SubSequence) -> String? {
        let text = String(Substring(bytes))
        return text.utf8.contains(UInt8(ascii: "%")) ? text.removingPercentEncoding : text
    }

    enum Credential: Equatable {
        case token(String)
        case session(String)
    }

    /// Every credential the request carries, in the order they are tried: the `Authorization`
    /// token, the `?token=` query, the session cookie. A front end such as JupyterLab sends its
    /// workspace's own token beside the hub's cookie; a credential the hub does not know never
    /// hides one it does.
    static func credentials(_ request: HTTPRequest) -> [Credential] {
        var found: [Credential] = []
        if let secret = Hub.tokenSecret(authorization: request.headerFields[.authorization]) { found.append(.token(secret)) }
        if let path = request.path, let q = path.firstIndex(of: "?") {
            for pair in path[path.index(after: q)...].split(separator: "&") where pair.hasPrefix("token=") {
                if let value = String(pair.dropFirst(6)).removingPercentEncoding, !value.isEmpty, !found.contains(.token(value)) {
                    found.append(.token(value))
                }
            }
        }
        for cookieHeader in request.headerFields[values: .cookie] {
            for part in cookieHeader.split(separator: ";") {
                let trimmed = part.trimmingCharacters(in: .whitespaces)
                if trimmed.hasPrefix(SessionCodec.cookieName + "=") {
                    found.append(.session(String(trimmed.dropFirst(SessionCodec.cookieName.count + 1))))
                }
            }
        }
        return found
    }

    /// The credentials worth checking against the store for `route`: a workspace's own secret is
    /// never a hub credential (it is not a token, and must not be looked up as one).
    static func candidates(_ request: HTTPRequest, route: LiveRoute) -> [Credential] {
        credentials(request).filter { credential in
            if case .token(let secret) = credential, let own = route.endpoint.secret {
                return !TokenHashing.constantTimeEqual(secret, own)
            }
            return true
        }
    }

    /// Tokens are cached by their hash, so the cache holds no secrets.
    static func tokenKey(_ secret: String) -> SHA256.Digest {
        SHA256.hash(data: Array(secret.utf8))
    }

    /// The cached verdict on one credential: a grant, `.unknown` (checked, not valid), or nil
    /// (not cached, or expired).
    enum Cached {
        case grant(Grant)
        case unknown
    }

    func cached(_ credential: Credential, now: Date) -> Cached? {
        switch credential {
        case .token(let secret):
            let key = Self.tokenKey(secret)
            if let grant = tokens.read({ $0[key] }), grant.expires > now { return .grant(grant) }
            if let until = unknownTokens.read({ $0[key] }), until > now { return .unknown }
        case .session(let value):
            if let grant = sessions.read({ $0[value] }), grant.expires > now { return .grant(grant) }
            if let until = unknownSessions.read({ $0[value] }), until > now { return .unknown }
        }
        return nil
    }

    func isCached(_ credential: Credential, now: Date) -> Bool {
        if case .none = cached(credential, now: now) { return false }
        return true
    }

    /// The decision from cached verdicts, or nil when a credential must be checked first. Any
    /// credential that grants access to the route forwards; none at all goes to the hub.
    func decide(_ request: HTTPRequest, now: Date) -> ProxyDecision? {
        guard let path = request.path, let route = route(for: path) else { return .hub }
        var complete = true
        for credential in Self.candidates(request, route: route) {
            switch cached(credential, now: now) {
            case .none:
                complete = false
            case .unknown:
                continue
            case .grant(let grant):
                let ownerGroups: [String]
                if grant.user == route.user || grant.scopes.hasUnfiltered("access:servers") {
                    ownerGroups = []
                } else {
                    guard let cached = groups.read({ $0[route.user] }), cached.expires > now else {
                        complete = false
                        continue
                    }
                    ownerGroups = cached.groups
                }
                if grant.scopes.allows("access:servers", user: route.user, groups: ownerGroups, server: route.server) {
                    let prefix = route.endpoint.stripPrefix
                    return .forward(ProxyTarget(
                        address: route.endpoint.address, secret: route.endpoint.secret,
                        key: RouteKey(user: route.user, server: route.server),
                        stripPrefix: prefix, basePath: route.endpoint.basePath))
                }
            }
        }
        return complete ? .hub : nil
    }

    public func decideImmediately(_ request: HTTPRequest) -> ProxyDecision? {
        decide(request, now: Date())
    }

    public func decide(_ request: HTTPRequest) async -> ProxyDecision {
        let now = Date()
        guard let path = request.path, let route = route(for: path) else { return .hub }
        let candidates = Self.candidates(request, route: route)
        guard !candidates.isEmpty else { return .hub }
        do {
            for credential in candidates where !isCached(credential, now: now) {
                switch credential {
                case .token(let secret):
                    let key = Self.tokenKey(secret)
                    if let grant = try await tokenGrant(secret, now: now) {
                        tokens.write { $0[key] = grant }
                    } else {
                        remember(key, in: unknownTokens, until: now.addingTimeInterval(cacheLifetime))
                    }
                case .session(let value):
                    if let grant = try await sessionGrant(value, now: now) {
                        sessions.write { $0[value] = grant }
                    } else {
                        remember(value, in: unknownSessions, until: now.addingTimeInterval(cacheLifetime))
                    }
                }
            }
            if let owner = try await hub.store.user(named: route.user) {
                groups.write { $0[route.user] = (owner.groups, now.addingTimeInterval(cacheLifetime)) }
            }
        } catch {
            hub.logger.error("proxy authentication failed", metadata: ["atrium.error": "\(error)"])
            return .hub
        }
        return decide(request, now: now) ?? .hub
    }

    /// Remembers a credential that is not valid, so a front end that keeps sending one (its
    /// workspace token, a stale cookie) costs no store look-up per request. Bounded: a full
    /// cache drops its expired entries, then everything.
    private func remember<Key: Hashable & Sendable>(_ key: Key, in cache: ReadMostly<[Key: Date]>, until: Date) {
        cache.write { entries in
            if entries.count >= Self.unknownCacheLimit {
                let now = Date()
                entries = entries.filter { $0.value > now }
                if entries.count >= Self.unknownCacheLimit { entries.removeAll(keepingCapacity: true) }
            }
            entries[key] = until
        }
    }

    static let unknownCacheLimit = 10_000

    func sessionGrant(_ value: String, now: Date) async throws -> Grant? {
        guard let user = try await hub.sessionUser(cookie: value, now: now) else { return nil }
        return Grant(user: user.name, scopes: Permissions.scopes(of: user), expires: now.addingTimeInterval(cacheLifetime))
    }

    func tokenGrant(_ secret: String, now: Date) async throws -> Grant? {
        guard let (token, owner) = try await hub.tokenOwner(secret: secret, now: now) else { return nil }
        let lifetime = min(cacheLifetime, token.expiresAt.map { $0.timeIntervalSince(now) } ?? cacheLifetime)
        return Grant(user: owner.name, scopes: Permissions.scopes(of: token, owner: owner), expires: now.addingTimeInterval(lifetime))
    }

    public func recordActivity(_ key: RouteKey) {
        guard let route = routes.route(user: key.user, server: key.server) else { return }
        activity.touch(user: key.user, userID: route.userID, server: key.server)
    }

    public func upstreamFailed(_ key: RouteKey, error: any Error) {
        hub.logger.warning(
            "workspace not reachable", metadata: ["atrium.user": "\(key.user)", "atrium.server": "\(key.server)", "atrium.error": "\(error)"])
        guard let manager = hub.manager else { return }
        Task { await manager.checkHealth(user: key.user, serverName: key.server) }
    }
}
