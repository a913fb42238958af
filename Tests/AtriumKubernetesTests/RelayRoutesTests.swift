import NIOCore
import Testing

@testable import AtriumKubernetes

/// The relay's pure parts: which paths pass, and how the API server's rewriting is undone.
struct RelayRoutesTests {
    let routes = RelayRoutes(key: "k3y", namespace: "course")
    let proxyPath = "/api/v1/namespaces/course/services/http:atrium-ann-x:8888/proxy"

    @Test("paths of this namespace's service proxy pass, with the key removed", arguments: [
        ("/k3y/api/v1/namespaces/course/services/http:atrium-ann-x:8888/proxy/user/ann/lab?x=1", "/user/ann/lab?x=1"),
        ("/k3y/api/v1/namespaces/course/services/http:atrium-ann-x:8888/proxy", ""),
        ("/k3y/api/v1/namespaces/course/services/http:atrium-ann-x:8888/proxy?token=a", "?token=a"),
    ])
    func accepted(uri: String, rest: String) throws {
        let route = try #require(routes.route(uri))
        #expect(route.proxyPath == proxyPath)
        #expect(route.uri == proxyPath + rest)
    }

    @Test("anything else is refused", arguments: [
        "/api/v1/namespaces/course/services/http:atrium-ann-x:8888/proxy/",  // no key
        "/other/api/v1/namespaces/course/services/http:atrium-ann-x:8888/proxy/",  // wrong key
        "/k3y/api/v1/namespaces/kube-system/services/http:x:80/proxy/",  // other namespace
        "/k3y/api/v1/namespaces/course/secrets/x",  // not the service proxy
        "/k3y/api/v1/namespaces/course/services/x",  // the Service object, not its proxy
        "/k3y/api/v1/namespaces/course/services//proxy/",  // no service name
        "/k3y/api/v1/namespaces/course/services/http:x:80/proxy/../../../secrets/y",  // climbing out
        "/k3y/api/v1/namespaces/course/pods/x/proxy/",  // pod proxy
        "/k3y",
    ])
    func refused(uri: String) {
        #expect(routes.route(uri) == nil)
    }

    @Test("the secret joins the query", arguments: [
        ("/x", "s3cret", "/x?token=s3cret"), ("/x?a=1", "s3cret", "/x?a=1&token=s3cret"), ("/x", "a+b/c=", "/x?token=a%2Bb%2Fc%3D"),
    ])
    func token(uri: String, secret: String, expected: String) {
        #expect(RelayRoutes.addingToken(secret, to: uri) == expected)
    }

    @Test("Location loses the proxy prefix and the relay's token, nothing else", arguments: [
        ("/api/v1/namespaces/course/services/http:atrium-ann-x:8888/proxy/user/ann/lab?token=s3cret", "/user/ann/lab"),
        ("/api/v1/namespaces/course/services/http:atrium-ann-x:8888/proxy/user/ann/lab?a=1&token=s3cret&b=2#f", "/user/ann/lab?a=1&b=2#f"),
        ("/api/v1/namespaces/course/services/http:atrium-ann-x:8888/proxy", "/"),
        ("/user/ann/tree?token=other", "/user/ann/tree?token=other"),
        ("https://example.org/x", "https://example.org/x"),
        ("relative/path", "relative/path"),
    ])
    func location(location: String, expected: String) {
        #expect(RelayRoutes.restoringLocation(location, proxyPath: proxyPath, secret: "s3cret") == expected)
    }

    @Test("HTML links lose the proxy prefix wherever it was put; other text stays")
    func html() {
        let p = proxyPath
        let rewritten = #"<a href="\#(p)/user/ann/tree">x</a><script src='\#(p)/s.js'></script>\#(p)x /api/v1/namespaces/course <img src="\#(p)/"/>\#(p)/"#
        let restored = RelayRoutes.restoringHTML(ByteBuffer(string: rewritten), proxyPath: p)
        #expect(String(buffer: restored) == #"<a href="/user/ann/tree">x</a><script src='/s.js'></script>\#(p)x /api/v1/namespaces/course <img src="/"/>/"#)
        #expect(String(buffer: RelayRoutes.restoringHTML(ByteBuffer(string: ""), proxyPath: p)) == "")
    }
}
