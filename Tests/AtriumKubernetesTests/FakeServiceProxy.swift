import AsyncHTTPClient
import AtriumModel
import AtriumProxy
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The API server's service proxy (`/api/v1/namespaces/{ns}/services/[scheme:]{name}[:port]/proxy/…`)
/// as the fake serves it, with the real one's behaviour that matters to a client:
/// - the caller must authenticate (`Authorization: Bearer`, when the test sets a token), and the
///   header is removed before the request goes on;
/// - the Service must exist (404 `Status`), name the port, and have a ready pod behind its
///   selector (else 503 "no endpoints available for service");
/// - absolute paths in `Location` and in HTML links come back with the proxy path in front
///   (the API server's `proxy.Transport` rewriting), and CORS headers are dropped;
/// - upgrades (WebSocket) are tunnelled.
/// A "pod" is a local server the test registers with ``FakeCluster/setUpstream(service:port:)``.
struct ServiceProxyPath: Sendable, Equatable {
    var namespace: String
    var service: String
    var port: String?
    /// `/api/v1/namespaces/{ns}/services/{spec}/proxy`, what the API server puts before links.
    var prefix: String
    /// The rest of the path (at least `/`).
    var rest: String

    init?(_ path: String) {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        guard segments.count >= 8, segments[1] == "api", segments[2] == "v1", segments[3] == "namespaces", segments[5] == "services",
            segments[7] == "proxy"
        else { return nil }
        namespace = String(segments[4])
        // [scheme:]name[:port]
        var spec = segments[6].split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if spec.count == 3 || (spec.count == 2 && ["http", "https"].contains(spec[0])) { spec.removeFirst() }
        service = spec[0]
        port = spec.count > 1 ? spec[1] : nil
        prefix = segments[0...7].joined(separator: "/")
        let tail = segments.dropFirst(8).joined(separator: "/")
        rest = "/" + tail
    }
}

extension FakeCluster {
    /// The port on 127.0.0.1 where `service`'s pods answer.
    func setUpstream(service: String, port: Int) { upstreams[service] = port }
    /// The bearer token service-proxy requests must carry (`nil`: none needed).
    func requireBearer(_ token: String?) { requiredBearer = token }

    /// Where the service proxy sends a request, or the API server's refusal.
    func proxyTarget(_ path: ServiceProxyPath, authorization: String?) -> Result<Int, FakeError> {
        if let requiredBearer, authorization != "Bearer \(requiredBearer)" {
            return .failure(FakeError(Self.status(401, "Unauthorized", "Unauthorized")))
        }
        guard let service = get("services", namespace: path.namespace, name: path.service) else {
            return .failure(FakeError(Self.status(404, "NotFound", "services \"\(path.service)\" not found")))
        }
        let spec = service["spec"] as? Object ?? [:]
        let ports = spec["ports"] as? [Object] ?? []
        let named = ports.contains { port in
            guard let wanted = path.port else { return ports.count == 1 }
            return wanted == (port["name"] as? String) || wanted == (port["port"] as? Int).map(String.init)
        }
        let selector = spec["selector"] as? [String: String] ?? [:]
        let ready = all("pods", namespace: path.namespace).contains { pod in
            Self.isReady(pod) && selector.allSatisfy { Self.labels(pod)[$0.key] == $0.value }
        }
        guard named, ready, let port = upstreams[path.service] else {
            return .failure(FakeError(Self.status(503, "ServiceUnavailable", "no endpoints available for service \"\(path.service)\"")))
        }
        record("PROXY services/\(path.service)")
        return .success(port)
    }

    /// The proxy's client: no redirects followed, no decompression, as the API server's transport.
    static let proxyClient = HTTPClient(
        eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5))))

    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "host", "content-length",
    ]

    /// Forwards one (non-upgrade) request to the pod and rewrites the answer as the API server does.
    static func forward(_ request: Request, _ path: ServiceProxyPath, port: Int) async throws -> Response {
        var url = "http://127.0.0.1:\(port)\(path.rest)"
        if let query = request.uri.query, !query.isEmpty { url += "?" + query }
        var outgoing = HTTPClientRequest(url: url)
        outgoing.method = .init(rawValue: request.method.rawValue)
        for field in request.headers where !hopByHop.contains(field.name.canonicalName) && field.name != .authorization {
            outgoing.headers.add(name: field.name.rawName, value: field.value)
        }
        let body = try await request.body.collect(upTo: 16 << 20)
        if body.readableBytes > 0 { outgoing.body = .bytes(body) }
        let response = try await proxyClient.execute(outgoing, timeout: .seconds(30))
        var answer = try await response.body.collect(upTo: 64 << 20)
        var headers = HTTPFields()
        for (name, value) in response.headers {
            let lower = name.lowercased()
            guard !hopByHop.contains(lower), !lower.hasPrefix("access-control-"), let field = HTTPField.Name(name) else { continue }
            headers.append(HTTPField(name: field, value: lower == "location" ? rewrite(url: value, prefix: path.prefix, port: port) : value))
        }
        let type = response.headers.first(name: "content-type")?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces)
        if type == "text/html" {
            answer = ByteBuffer(string: rewriteHTML(String(buffer: answer), prefix: path.prefix, port: port))
        }
        return Response(status: .init(code: Int(response.status.code)), headers: headers, body: .init(byteBuffer: answer))
    }

    /// The API server's `rewriteURL`: a same-host absolute path gets the proxy path in front.
    static func rewrite(url: String, prefix: String, port: Int) -> String {
        guard var parts = URLComponents(string: url) else { return url }
        if let host = parts.host, host != "127.0.0.1" || (parts.port ?? 80) != port { return url }
        guard parts.path.hasPrefix("/"), !parts.path.hasPrefix(prefix) else { return url }
        parts.scheme = nil
        parts.host = nil
        parts.port = nil
        parts.percentEncodedPath = prefix + parts.percentEncodedPath
        return parts.string ?? url
    }

    /// The API server's `rewriteHTML`: link attributes of HTML tags (not text) go through `rewrite`.
    static func rewriteHTML(_ html: String, prefix: String, port: Int) -> String {
        let pattern = #"(<[a-zA-Z][^>]*?\s(?:href|src|action|formaction|poster)\s*=\s*)(["'])([^"']*)\2"#
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return html }
        var result = ""
        var last = html.startIndex
        for match in regex.matches(in: html, range: NSRange(html.startIndex..., in: html)) {
            guard let whole = Range(match.range, in: html), let head = Range(match.range(at: 1), in: html),
                let quote = Range(match.range(at: 2), in: html), let value = Range(match.range(at: 3), in: html)
            else { continue }
            result += html[last..<whole.lowerBound]
            result += html[head] + html[quote] + rewrite(url: String(html[value]), prefix: prefix, port: port) + html[quote]
            last = whole.upperBound
        }
        return result + html[last...]
    }
}

/// A refusal of the fake, as an `Error` so it fits a `Result`.
struct FakeError: Error, Sendable {
    let response: FakeResponse
    init(_ response: FakeResponse) { self.response = response }
}

/// Upgrades on the service proxy path go through Atrium's own reverse proxy (a byte tunnel once
/// the pod switches protocols); everything else is left to the fake's routes.
struct FakeServiceProxyGatekeeper: ProxyGatekeeper {
    let cluster: FakeCluster

    func decideImmediately(_ request: HTTPRequest) -> ProxyDecision? {
        guard request.headerFields[.upgrade] != nil, let path = request.path, ServiceProxyPath(Self.pathOnly(path)) != nil else { return .hub }
        return nil
    }

    func decide(_ request: HTTPRequest) async -> ProxyDecision {
        guard let path = request.path, let proxyPath = ServiceProxyPath(Self.pathOnly(path)),
            case .success(let port) = await cluster.proxyTarget(proxyPath, authorization: request.headerFields[.authorization])
        else { return .hub }
        return .forward(ProxyTarget(
            address: .tcp(host: "127.0.0.1", port: port), secret: nil, key: RouteKey(user: proxyPath.service), stripPrefix: proxyPath.prefix))
    }

    func recordActivity(_ key: RouteKey) {}
    func upstreamFailed(_ key: RouteKey, error: any Error) {}

    static func pathOnly(_ path: String) -> String {
        String(path.prefix { $0 != "?" })
    }
}
