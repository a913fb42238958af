import AtriumModel
import HTTPTypes
import NIOCore
import Testing

@testable import AtriumProxy

/// Pure header transformations, no I/O.
struct HeaderRewritingTests {
    private let target = ProxyTarget(address: .tcp(host: "127.0.0.1", port: 9000), secret: "sekrit", key: RouteKey(user: "alice"))

    private func request(_ fields: HTTPFields, authority: String? = "hub.example:8000") -> HTTPRequest {
        HTTPRequest(method: .get, scheme: nil, authority: authority, path: "/user/alice/lab?x=1", headerFields: fields)
    }

    @Test("the prefix is stripped for programs that serve at /", arguments: [
        ("/user/alice/", "/"), ("/user/alice", "/"), ("/user/alice/static/x.js?v=1", "/static/x.js?v=1"),
        ("/user/alice?folder=x", "/?folder=x"), ("/user/alicex/y", "/user/alicex/y"),
    ])
    func stripPrefix(path: String, expected: String) {
        #expect(HeaderRewriting.strippingPrefix("/user/alice/", from: path) == expected)
        let request = HTTPRequest(method: .get, scheme: nil, authority: "hub", path: path)
        let target = ProxyTarget(address: .tcp(host: "127.0.0.1", port: 1), secret: nil, key: RouteKey(user: "alice"), stripPrefix: "/user/alice/")
        #expect(HeaderRewriting.upstreamRequest(request, target: target, configuration: .init(), clientAddress: nil).path == expected)
    }

    @Test("a base path goes in front of the forwarded path, after the prefix is stripped", arguments: [
        ("/user/alice/lab?x=1", nil, "/k/api/v1/namespaces/ns/services/http:w:8888/proxy/user/alice/lab?x=1"),
        ("/user/alice/lab?x=1", "/user/alice/", "/k/api/v1/namespaces/ns/services/http:w:8888/proxy/lab?x=1"),
        ("/user/alice?folder=x", "/user/alice/", "/k/api/v1/namespaces/ns/services/http:w:8888/proxy/?folder=x"),
    ] as [(String, String?, String)])
    func basePath(path: String, strip: String?, expected: String) {
        let request = HTTPRequest(method: .get, scheme: nil, authority: "hub", path: path)
        for base in ["/k/api/v1/namespaces/ns/services/http:w:8888/proxy", "/k/api/v1/namespaces/ns/services/http:w:8888/proxy/"] {
            let target = ProxyTarget(
                address: .tcp(host: "127.0.0.1", port: 1), secret: nil, key: RouteKey(user: "alice"), stripPrefix: strip, basePath: base)
            #expect(HeaderRewriting.upstreamRequest(request, target: target, configuration: .init(), clientAddress: nil).path == expected)
        }
    }

    @Test("a hub token in the query never reaches the workspace; other parameters are kept in order", arguments: [
        ("/user/alice/lab?token=ADMIN", "/user/alice/lab"),
        ("/user/alice/lab?x=1&token=ADMIN&y=2", "/user/alice/lab?x=1&y=2"),
        ("/user/alice/api/kernels/k/channels?session_id=s&token=T", "/user/alice/api/kernels/k/channels?session_id=s"),
        ("/user/alice/lab?token=a&token=b", "/user/alice/lab"),
        ("/user/alice/lab?token", "/user/alice/lab"),
        ("/user/alice/lab?tokens=1&my_token=2", "/user/alice/lab?tokens=1&my_token=2"),
        ("/user/alice/lab?x=1", "/user/alice/lab?x=1"),
        ("/user/alice/token=x", "/user/alice/token=x"),
    ])
    func stripsTokenQuery(path: String, expected: String) {
        let request = HTTPRequest(method: .get, scheme: nil, authority: "hub", path: path)
        #expect(HeaderRewriting.upstreamRequest(request, target: target, configuration: .init(), clientAddress: nil).path == expected)
        // A proxy configured to keep it (the fake Kubernetes service proxy) forwards it.
        let keeping = ProxyConfiguration(strippedQueryParameters: [])
        #expect(HeaderRewriting.upstreamRequest(request, target: target, configuration: keeping, clientAddress: nil).path == path)
    }

    @Test func stripsHopByHopCredentialsAndHubCookie() throws {
        var fields = HTTPFields()
        fields[.connection] = "keep-alive, X-Private"
        fields[HTTPField.Name("Keep-Alive")!] = "timeout=5"
        fields[HTTPField.Name("X-Private")!] = "hop"
        fields[HTTPField.Name("Proxy-Authorization")!] = "Basic x"
        fields[.te] = "trailers"
        fields[.authorization] = "Bearer user-token"
        fields.append(HTTPField(name: .cookie, value: "a=1; atrium-session=abc"))
        fields.append(HTTPField(name: .cookie, value: "b=2"))
        fields[.contentLength] = "3"
        let address = try SocketAddress(ipAddress: "192.0.2.7", port: 4000)
        let result = HeaderRewriting.upstreamRequest(
            request(fields),
            target: target,
            configuration: .init(behindTLS: true),
            clientAddress: address
        )
        let out = result.headerFields
        #expect(result.path == "/user/alice/lab?x=1")
        #expect(result.authority == "hub.example:8000")
        #expect(out[.connection] == nil)
        #expect(out[HTTPField.Name("Keep-Alive")!] == nil)
        #expect(out[HTTPField.Name("X-Private")!] == nil)
        #expect(out[HTTPField.Name("Proxy-Authorization")!] == nil)
        #expect(out[.te] == nil)
        #expect(out[.contentLength] == "3")
        #expect(out[values: .authorization] == ["token sekrit"])
        #expect(out[.cookie] == "a=1; b=2")
        #expect(out[HeaderRewriting.xForwardedFor] == "192.0.2.7")
        #expect(out[HeaderRewriting.xRealIP] == "192.0.2.7")
        #expect(out[HeaderRewriting.xForwardedProto] == "https")
        #expect(out[HeaderRewriting.xForwardedHost] == "hub.example:8000")
        #expect(out[HeaderRewriting.xForwardedPort] == "8000")
    }

    @Test func noSecretRemovesAuthorizationAndOnlyHubCookieDropsHeader() {
        var fields = HTTPFields()
        fields[.authorization] = "Bearer user-token"
        fields[.cookie] = "atrium-session=abc"
        var noSecret = target
        noSecret.secret = nil
        let out = HeaderRewriting.upstreamRequest(request(fields), target: noSecret, configuration: .init(), clientAddress: nil).headerFields
        #expect(out[.authorization] == nil)
        #expect(out[.cookie] == nil)
        #expect(out[HeaderRewriting.xForwardedFor] == nil)
        #expect(out[HeaderRewriting.xForwardedProto] == "http")
    }

    @Test func keepsWebSocketUpgradeHeaders() {
        var fields = HTTPFields()
        fields[.connection] = "keep-alive, Upgrade"
        fields[.upgrade] = "websocket"
        fields[.secWebSocketKey] = "dGhlIHNhbXBsZSBub25jZQ=="
        let original = request(fields)
        #expect(HeaderRewriting.isWebSocketUpgrade(original))
        #expect(HeaderRewriting.stopsHTTPParsing(original))
        let out = HeaderRewriting.upstreamRequest(original, target: target, configuration: .init(), clientAddress: nil).headerFields
        #expect(out[.connection] == "Upgrade")
        #expect(out[.upgrade] == "websocket")
        #expect(out[.secWebSocketKey] == "dGhlIHNhbXBsZSBub25jZQ==")

        var h2c = HTTPFields()
        h2c[.connection] = "Upgrade, HTTP2-Settings"
        h2c[.upgrade] = "h2c"
        let h2cRequest = request(h2c)
        #expect(!HeaderRewriting.isWebSocketUpgrade(h2cRequest))
        #expect(HeaderRewriting.stopsHTTPParsing(h2cRequest))
        let h2cOut = HeaderRewriting.upstreamRequest(h2cRequest, target: target, configuration: .init(), clientAddress: nil).headerFields
        #expect(h2cOut[.upgrade] == nil)
        #expect(h2cOut[.connection] == nil)
    }

    @Test(arguments: [
        ("hub.example", false, "80"),
        ("hub.example", true, "443"),
        ("hub.example:8443", true, "8443"),
        ("[::1]", false, "80"),
        ("[::1]:9000", false, "9000"),
        ("hub.example:x", false, "80"),
    ])
    func forwardedPort(authority: String, tls: Bool, expected: String) {
        #expect(HeaderRewriting.forwardedPort(authority: authority, behindTLS: tls) == expected)
    }

    @Test func cookieStripping() {
        let names: Set<String> = ["atrium-session", "other"]
        #expect(HeaderRewriting.strippingCookies(["a=1;atrium-session=x ; b=2"], names: names) == "a=1; b=2")
        #expect(HeaderRewriting.strippingCookies(["atrium-session=x; other=y"], names: names) == nil)
        #expect(HeaderRewriting.strippingCookies(["atrium-session-like=1"], names: names) == "atrium-session-like=1")
        #expect(HeaderRewriting.strippingCookies([], names: names) == nil)
    }

    @Test func responseLosesHopByHopButKeepsSwitchHeaders() {
        var fields = HTTPFields()
        fields[.connection] = "close"
        fields[HTTPField.Name("Keep-Alive")!] = "timeout=5"
        fields[.contentType] = "text/plain"
        let response = HeaderRewriting.downstreamResponse(HTTPResponse(status: .ok, headerFields: fields))
        #expect(response.headerFields[.connection] == nil)
        #expect(response.headerFields[HTTPField.Name("Keep-Alive")!] == nil)
        #expect(response.headerFields[.contentType] == "text/plain")

        var switching = HTTPFields()
        switching[.connection] = "upgrade"
        switching[.upgrade] = "websocket"
        switching[.secWebSocketAccept] = "abc"
        let switched = HeaderRewriting.downstreamResponse(HTTPResponse(status: .switchingProtocols, headerFields: switching))
        #expect(switched.headerFields[.connection] == "Upgrade")
        #expect(switched.headerFields[.upgrade] == "websocket")
        #expect(switched.headerFields[.secWebSocketAccept] == "abc")
    }

    @Test func unreachableBodyIsJSON() {
        let body = HeaderRewriting.unreachableBody(serverPath: "/user/a\"b/", reason: "connection refused")
        #expect(body == #"{"status": 503, "message": "The server at /user/a\"b/ is not reachable: connection refused"}"#)
    }
}
