import AtriumModel
import HTTPTypes
import NIOCore

/// Pure header transformations between the client-facing and the workspace-facing side.
enum HeaderRewriting {
    /// Header names that describe one connection, not the message (RFC 9110 §7.6.1).
    /// `Transfer-Encoding` is left to the HTTP/1 codecs, which re-frame the body.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "upgrade",
    ]
    /// Never removed even when a peer lists them in `Connection`: the codecs need them for framing.
    static let framing: Set<String> = ["content-length", "transfer-encoding", "host"]

    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
    static let xForwardedProto = HTTPField.Name("X-Forwarded-Proto")!
    static let xForwardedHost = HTTPField.Name("X-Forwarded-Host")!
    static let xForwardedPort = HTTPField.Name("X-Forwarded-Port")!
    static let xRealIP = HTTPField.Name("X-Real-IP")!

    /// The lower-cased tokens of all `Connection` fields.
    static func connectionTokens(_ fields: HTTPFields) -> Set<String> {
        var tokens = Set<String>()
        for value in fields[values: .connection] {
            for token in value.split(separator: ",") {
                let trimmed = token.trimmingSpaces().lowercased()
                if !trimmed.isEmpty { tokens.insert(trimmed) }
            }
        }
        return tokens
    }

    /// Whether the request asks to switch to WebSocket (`Connection: upgrade` and `Upgrade: websocket`).
    static func isWebSocketUpgrade(_ request: HTTPRequest) -> Bool {
        guard connectionTokens(request.headerFields).contains("upgrade") else { return false }
        return request.headerFields[values: .upgrade].contains { $0.lowercased().contains("websocket") }
    }

    /// Whether NIO's request decoder stops parsing after this request (llhttp treats any request
    /// with `Connection: upgrade` and an `Upgrade` field as a protocol switch). If the switch does
    /// not happen, the connection cannot carry another request and must be closed.
    static func stopsHTTPParsing(_ request: HTTPRequest) -> Bool {
        connectionTokens(request.headerFields).contains("upgrade") && request.headerFields[.upgrade] != nil
    }

    /// Whether the client or the workspace asked to close the connection after this message.
    static func wantsClose(_ fields: HTTPFields) -> Bool {
        connectionTokens(fields).contains("close")
    }

    /// Removes hop-by-hop fields and those named in `Connection`.
    static func removingHopByHop(_ fields: HTTPFields) -> HTTPFields {
        var drop = hopByHop
        drop.formUnion(connectionTokens(fields).subtracting(framing))
        var result = HTTPFields()
        result.reserveCapacity(fields.count)
        for field in fields where !drop.contains(field.name.canonicalName) {
            result.append(field)
        }
        return result
    }

    /// The cookie header value with the named cookies removed, or `nil` when nothing is left.
    static func strippingCookies(_ values: [String], names: Set<String>) -> String? {
        var kept: [Substring] = []
        for value in values {
            for pair in value.split(separator: ";") {
                let trimmed = pair.trimmingSpaces()
                if trimmed.isEmpty { continue }
                let name = trimmed.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first
                    .map { $0.trimmingSpaces() } ?? ""
                if names.contains(String(name)) { continue }
                kept.append(trimmed)
            }
        }
        return kept.isEmpty ? nil : kept.joined(separator: "; ")
    }

    /// The port a client used, from the `Host` header, or the scheme's default.
    static func forwardedPort(authority: String?, behindTLS: Bool) -> String {
        let fallback = behindTLS ? "443" : "80"
        guard let authority, let colon = authority.lastIndex(of: ":") else { return fallback }
        // "[::1]" without a port has its last colon inside the brackets.
        if let bracket = authority.lastIndex(of: "]"), bracket > colon { return fallback }
        let port = authority[authority.index(after: colon)...]
        guard !port.isEmpty, port.allSatisfy({ $0.isASCII && $0.isNumber }) else { return fallback }
        return String(port)
    }

    /// The request as the workspace receives it: same method, path and `Host`; hop-by-hop fields,
    /// the client's `Authorization` and the hub's cookies removed; the workspace secret and
    /// `X-Forwarded-*` added. WebSocket upgrades keep `Connection: Upgrade` and `Upgrade`.
    static func upstreamRequest(
        _ request: HTTPRequest,
        target: ProxyTarget,
        configuration: ProxyConfiguration,
        clientAddress: SocketAddress?
    ) -> HTTPRequest {
        let original = request.headerFields
        let isUpgrade = isWebSocketUpgrade(request)
        var fields = HTTPFields()
        fields.reserveCapacity(original.count + 6)
        for field in removingHopByHop(original) {
            switch field.name {
            case .authorization, .cookie, xForwardedFor, xForwardedProto, xForwardedHost, xForwardedPort, xRealIP:
                continue
            default:
                fields.append(field)
            }
        }
        if let secret = target.secret {
            fields[.authorization] = "token \(secret)"
        }
        if let cookie = strippingCookies(original[values: .cookie], names: configuration.strippedCookieNames) {
            fields[.cookie] = cookie
        }
        if isUpgrade {
            fields[.connection] = "Upgrade"
            fields[.upgrade] = original[values: .upgrade].joined(separator: ", ")
        }
        let clientIP = clientAddress?.ipAddress
        let previous = original[values: xForwardedFor].joined(separator: ", ")
        switch (previous.isEmpty, clientIP) {
        case (true, .some(let ip)): fields[xForwardedFor] = ip
        case (false, .some(let ip)): fields[xForwardedFor] = "\(previous), \(ip)"
        case (false, .none): fields[xForwardedFor] = previous
        case (true, .none): break
        }
        if let clientIP { fields[xRealIP] = clientIP }
        fields[xForwardedProto] = configuration.behindTLS ? "https" : "http"
        if let authority = request.authority { fields[xForwardedHost] = authority }
        fields[xForwardedPort] = forwardedPort(authority: request.authority, behindTLS: configuration.behindTLS)

        var result = request
        result.headerFields = fields
        if !configuration.strippedQueryParameters.isEmpty, let path = result.path, path.contains("?") {
            result.path = strippingQueryParameters(configuration.strippedQueryParameters, from: path)
        }
        if let prefix = target.stripPrefix, let path = result.path {
            result.path = strippingPrefix(prefix, from: path)
        }
        if let base = target.basePath, let path = result.path {
            result.path = pathBelow(base: base, path)
        }
        return result
    }

    /// The path without the `names` query parameters (a hub token sent as `?token=` is the
    /// client's credential for the hub, never the workspace's). Unchanged when none is there.
    static func strippingQueryParameters(_ names: Set<String>, from path: String) -> String {
        guard let q = path.firstIndex(of: "?") else { return path }
        let base = path[..<q]
        var query = path[path.index(after: q)...]
        var fragment: Substring = ""
        if let hash = query.firstIndex(of: "#") {
            fragment = query[hash...]
            query = query[..<hash]
        }
        let pairs = query.split(separator: "&", omittingEmptySubsequences: false)
        let kept = pairs.filter { pair in
            let key = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            return !names.contains(String(key))
        }
        if kept.count == pairs.count { return path }
        return kept.isEmpty ? String(base) + String(fragment) : String(base) + "?" + kept.joined(separator: "&") + String(fragment)
    }

    /// `/user/alice/x?y` without `/user/alice/` is `/x?y`; a path outside the prefix (or equal
    /// to it without its final slash) becomes `/` plus whatever follows.
    static func strippingPrefix(_ prefix: String, from path: String) -> String {
        let base = prefix.hasSuffix("/") ? String(prefix.dropLast()) : prefix
        guard path.hasPrefix(base) else { return path }
        let rest = path.dropFirst(base.count)
        if rest.isEmpty { return "/" }
        if rest.first == "/" { return String(rest) }
        if rest.first == "?" { return "/" + rest }
        return path  // `/user/alicex`: not this prefix
    }

    /// The workspace's response as the client receives it. A `101` keeps `Connection` and `Upgrade`.
    static func downstreamResponse(_ response: HTTPResponse) -> HTTPResponse {
        var result = response
        if response.status.code == 101 {
            let upgrade = response.headerFields[values: .upgrade].joined(separator: ", ")
            result.headerFields = removingHopByHop(response.headerFields)
            result.headerFields[.connection] = "Upgrade"
            result.headerFields[.upgrade] = upgrade
        } else {
            result.headerFields = removingHopByHop(response.headerFields)
        }
        return result
    }

    /// The JSON body of the proxy's own 503 answer.
    static func unreachableBody(serverPath: String, reason: String) -> String {
        let message = "The server at \(serverPath) is not reachable: \(reason)"
        return "{\"status\": 503, \"message\": \(JSONValue.quoted(message))}"
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    func trimmingSpaces() -> Substring {
        var slice = self[...]
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return Substring(slice)
    }
}
