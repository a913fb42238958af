import Foundation

/// The parts of JupyterHub's User model the stress tool reads; everything else is ignored, and
/// anything missing decodes as absent rather than failing.
public struct HubUser: Decodable, Sendable, Equatable {
    public var name: String
    /// Active servers by name (`""` is the default server); absent when the token may not read servers.
    public var servers: [String: HubServer]?

    /// The default server, when it is active.
    public var defaultServer: HubServer? { servers?[""] }
}

/// The parts of JupyterHub's Server model the stress tool reads.
public struct HubServer: Decodable, Sendable, Equatable {
    public var ready: Bool?
    /// `"spawn"`, `"stop"` or absent.
    public var pending: String?
}

/// One page of a paginated listing (`Accept: application/jupyterhub-pagination+json`).
struct UserPage: Decodable {
    struct Pagination: Decodable {
        struct Next: Decodable {
            var offset: Int
            var limit: Int?
        }
        var next: Next?
    }
    var items: [HubUser]
    var _pagination: Pagination?
}

extension HubClient {
    static let paginationMediaType = "application/jupyterhub-pagination+json"

    /// Every user matching `query` (e.g. `state=active`), page by page, following
    /// `_pagination.next` to the end. A hub that answers a plain JSON array (no pagination
    /// support) is read with offset/limit until a short page, or once if it ignores the offset.
    ///
    /// - Throws: ``StressError`` `.unauthorized` for 401/403, `.badAnswer` for other failures
    ///   and bodies that are not a user list.
    func listUsers(query: [(String, String)], pageSize: Int, phase: PhaseRecorder?) async throws -> [HubUser] {
        var users: [HubUser] = []
        var seen = Set<String>()
        var offset = 0
        var limit = pageSize
        for _ in 0..<100_000 {
            let items = (query + [("offset", "\(offset)"), ("limit", "\(limit)")])
                .map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(["-", "_", "."])) ?? $0.1)" }
            let reply = try await send(.GET, "/users?" + items.joined(separator: "&"), accept: Self.paginationMediaType, phase: phase)
            try Self.check(reply, doing: "listing users")
            let decoder = JSONDecoder()
            if let page = try? decoder.decode(UserPage.self, from: reply.body) {
                users += page.items
                guard let next = page._pagination?.next, !page.items.isEmpty else { return users }
                offset = next.offset
                limit = next.limit ?? limit
            } else if let plain = try? decoder.decode([HubUser].self, from: reply.body) {
                let fresh = plain.filter { !seen.contains($0.name) }
                users += fresh
                seen.formUnion(fresh.map(\.name))
                // A short page is the last; a page of names already seen means the hub ignores offset.
                guard plain.count >= limit, !fresh.isEmpty else { return users }
                offset += plain.count
            } else {
                throw StressError(.badAnswer, "listing users: the hub's answer is not a user list: \(reply.snippet)")
            }
        }
        return users
    }

    /// Throws the right ``StressError`` for an answer that is not 2xx.
    static func check(_ reply: Reply, doing what: String) throws {
        guard !reply.isSuccess else { return }
        if reply.status == 401 || reply.status == 403 {
            throw StressError(
                .unauthorized,
                "\(what): the hub refused the token (HTTP \(reply.status)); give an admin token with -t/--token or JUPYTERHUB_API_TOKEN")
        }
        throw StressError(.badAnswer, "\(what): HTTP \(reply.status): \(reply.snippet)")
    }
}
