import AtriumModel
import Foundation
import Hummingbird

/// JupyterHub's pagination. A client that sends `Accept: application/jupyterhub-pagination+json`
/// gets `{"items": […], "_pagination": {…}}` with the default and maximum page sizes. Any other
/// client gets a plain list: the whole list unless it asked for `offset`/`limit` (JupyterHub
/// silently cuts plain lists at 200; Atrium does not).
struct PageRequest {
    var offset: Int
    var limit: Int?
    var paginated: Bool

    static let mediaType = "application/jupyterhub-pagination+json"

    init(_ request: Request, settings: HTTPSettings) throws {
        paginated = request.headers[.accept]?.contains(Self.mediaType) ?? false
        offset = try Self.integer(request, "offset") ?? 0
        // As JupyterHub: a limit below 1 is 1 (`limit=0` never means an empty page).
        let asked = try Self.integer(request, "limit").map { max(1, $0) }
        if paginated {
            limit = min(asked ?? settings.pageDefaultLimit, settings.pageMaxLimit)
        } else {
            limit = asked
        }
    }

    static func integer(_ request: Request, _ name: String) throws -> Int? {
        guard let raw = request.uri.queryParameters[Substring(name)] else { return nil }
        guard let value = Int(raw) ?? Double(raw).flatMap({ $0.rounded() == $0 && abs($0) < 1e15 ? Int($0) : nil }), value >= 0 else {
            throw APIError.badRequest("Query parameter '\(name)' must be a non-negative integer, not '\(raw)'")
        }
        return value
    }

    /// Wraps one page of `items` (out of `total`) as the client asked.
    func response(_ items: [JSONValue], total: Int, request: Request) -> Response {
        guard paginated else { return JSONResponse.make(.array(items)) }
        let limit = self.limit ?? items.count
        var next: JSONValue = .null
        if offset + items.count < total {
            let nextOffset = offset + items.count
            var query = request.uri.queryParameters.filter { $0.key != "offset" && $0.key != "limit" }
                .map { "\($0.key)=\(String($0.value).addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? "")" }
            query += ["offset=\(nextOffset)", "limit=\(limit)"]
            let host = request.head.authority ?? "localhost"
            let scheme = request.headers[.init("X-Forwarded-Proto")!] ?? "http"
            next = .object([
                "offset": .number(Double(nextOffset)),
                "limit": .number(Double(limit)),
                "url": .string("\(scheme)://\(host)\(request.uri.path)?\(query.joined(separator: "&"))"),
            ])
        }
        return JSONResponse.make(.object([
            "items": .array(items),
            "_pagination": .object([
                "offset": .number(Double(offset)),
                "limit": .number(Double(limit)),
                "total": .number(Double(total)),
                "next": next,
            ]),
        ]))
    }
}

extension Request {
    /// Whether a boolean query flag is set (`?flag`, `?flag=1`, `?flag=true`).
    func flag(_ name: String) -> Bool {
        guard let raw = uri.queryParameters[Substring(name)] else { return false }
        return raw.isEmpty || ["1", "true", "yes"].contains(raw.lowercased())
    }
}
