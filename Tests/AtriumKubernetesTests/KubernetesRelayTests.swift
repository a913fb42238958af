import AsyncHTTPClient
import AtriumKubernetes
import AtriumModel
import AtriumSpawn
import AtriumStore
import AtriumTestSupport
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Testing

/// A local server standing in for a workspace's pod: it shows how a request arrived, redirects
/// as tornado's `addslash` does (keeping the query), and serves an HTML page with links.
enum FakePod {
    static let page = """
        <!doctype html><html><head><link rel="stylesheet" href="/user/ann/static/style.css">
        <script src="/user/ann/static/app.js"></script><link href="//cdn.example.org/x.css" rel="stylesheet"></head>
        <body><a href="/user/ann/tree">files</a> <a href='relative/x'>here</a> <form action="/user/ann/login" method="post"></form>
        <p>/user/ann/ stays as text</p></body></html>
        """

    static func with<T: Sendable>(_ body: @Sendable (Int) async throws -> T) async throws -> T {
        let router = Router()
        router.get("/user/ann/echo") { request, _ -> Response in
            let seen = ["uri": request.uri.description, "authorization": request.headers[.authorization] ?? "", "host": request.head.authority ?? ""]
            let data = try JSONSerialization.data(withJSONObject: seen)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        router.get("/user/ann/go") { request, _ -> Response in
            Response(status: .found, headers: [.location: "/user/ann/lab?" + (request.uri.query ?? "")])
        }
        router.get("/user/ann/page") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: page)))
        }
        return try await withLocalServer(router: router, body)
    }
}

/// A child process (a real workspace program) killed at the end of the test.
final class ChildProcess: Sendable {
    let process: Process

    /// `log`: a file for its standard output and error (else they are dropped).
    init(_ executable: String, _ arguments: [String], environment: [String: String], log: URL? = nil) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let log {
            FileManager.default.createFile(atPath: log.path, contents: nil)
            let handle = try FileHandle(forWritingTo: log)
            process.standardOutput = handle
            process.standardError = handle
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        self.process = process
    }

    /// SIGKILL: Python programs may ignore SIGTERM while starting.
    func kill() {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    static func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        try await channel.close()
        return port
    }
}

@Suite("Kubernetes api_proxy: workspaces through the API server's service proxy and the hub's relay", .serialized)
struct KubernetesRelayTests {
    static let token = "cluster-token-0123456789"
    static let ns = KubeHub.namespace
    static let workload = WorkspaceNames(user: "ann", server: "").workload
    static let client = FakeCluster.proxyClient

    /// The jupyter-server preset reached through the API server, whose address the NetworkPolicy admits.
    static func apiProxy(_ configuration: inout KubernetesConfiguration) {
        configuration.preset = "jupyter-server"
        configuration.endpointMode = .apiProxy
        configuration.apiServerCIDRs = ["172.18.0.2/32"]
    }

    /// A hub in api_proxy mode (the real readiness probe, through the relay) against the fake
    /// API server, plain or over TLS with a client certificate, which wants the bearer token.
    func withRelayHub(
        tls: Bool = false, _ body: @Sendable (FakeCluster, URL, KubeHub, ServiceProxyRelay, UserRecord) async throws -> Void
    ) async throws {
        let pki = tls ? try TestPKI() : nil
        try await FakeAPIServer.with(FakeCluster(), tls: try pki?.serverConfiguration()) { cluster, url in
            await cluster.requireBearer(Self.token)
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            var connection = try pki.map { try ClusterConnection.kubeconfig(yaml: $0.kubeconfig(server: url)) } ?? ClusterConnection(server: url)
            connection.token = Self.token
            let relay = try await ServiceProxyRelay.start(connection: connection, namespace: Self.ns, logger: logger)
            let store = try await Store.open(":memory:", logger: logger)
            try await store.migrate()
            let ann = try #require(try await store.createUsers([NewUser(name: "ann")]).created.first)
            let hub = try KubeHub.make(
                url: url, cluster: cluster, store: store,
                configure: Self.apiProxy, connection: connection, probe: HTTPReadinessProbe(client: HTTPClient.shared), relay: relay)
            do {
                try await body(cluster, url, hub, relay, ann)
            } catch {
                await hub.close()
                try? await relay.close()
                try? await store.close()
                throw error
            }
            await hub.close()
            try await relay.close()
            try await store.close()
            #expect(await cluster.invalid == [], "every object sent validates against the official schemas")
        }
    }

    func get(_ url: String, secret: String? = nil, bearer: String? = nil, client: HTTPClient = Self.client) async throws
        -> (status: Int, headers: HTTPHeaders, body: String)
    {
        var request = HTTPClientRequest(url: url)
        if let secret { request.headers.add(name: "Authorization", value: "token \(secret)") }
        if let bearer { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
        let response = try await client.execute(request, timeout: .seconds(20))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), response.headers, String(buffer: body))
    }

    @Test("a workspace answers through the relay: the probe, the bearer token, the secret as ?token=, Location and HTML links restored",
          arguments: [false, true])
    func httpThroughRelay(tls: Bool) async throws {
        try await withRelayHub(tls: tls) { cluster, url, hub, relay, ann in
            try await FakePod.with { podPort in
                await cluster.setUpstream(service: Self.workload, port: podPort)
                // The manager's real HTTP probe reaches the pod only through the relay and the service proxy.
                #expect(try await hub.manager.start(user: ann, serverName: "") == .ready(url: "/user/ann/"))
                #expect(await cluster.requests.contains("PROXY services/\(Self.workload)"))
                let route = try #require(hub.manager.routes.all.first)
                #expect(route.endpoint.address == .tcp(host: "127.0.0.1", port: relay.port))
                let base = try #require(route.endpoint.basePath)
                #expect(base.hasSuffix("/api/v1/namespaces/\(Self.ns)/services/http:\(Self.workload):8888/proxy"))
                let secret = try #require(route.endpoint.secret)
                let policy = try #require(await cluster.jsonText("networkpolicies", namespace: Self.ns, name: Self.workload))
                #expect(policy.contains(#"{"ipBlock":{"cidr":"172.18.0.2\/32"}}"#), "the NetworkPolicy admits the API server")

                let relayURL = "http://127.0.0.1:\(relay.port)\(base)"
                let echo = try await get("\(relayURL)/user/ann/echo?x=1", secret: secret)
                #expect(echo.status == 200)
                let seen = try #require(try JSONSerialization.jsonObject(with: Data(echo.body.utf8)) as? [String: String])
                #expect(seen["uri"] == "/user/ann/echo?x=1&token=\(secret)", "the secret travels in the query")
                #expect(seen["authorization"] == "", "neither the cluster's token nor the secret reaches the pod as a header")

                let redirect = try await get("\(relayURL)/user/ann/go?x=1", secret: secret)
                #expect(redirect.status == 302)
                #expect(redirect.headers.first(name: "location") == "/user/ann/lab?x=1", "prefix and token taken out again")

                // The fake API server rewrites links as the real one does; the relay undoes it.
                let key = String(base.split(separator: "/")[0])
                let proxyPath = String(base.dropFirst(key.count + 1))
                var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow)
                configuration.tlsConfiguration = try hub.client.connection.tlsConfiguration()
                let apiClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
                let direct = try await get("\(url.absoluteString)\(proxyPath)/user/ann/page", bearer: Self.token, client: apiClient)
                try await apiClient.shutdown()
                #expect(direct.status == 200)
                #expect(direct.body.contains("href=\"/api/v1/namespaces/\(Self.ns)/services/http:\(Self.workload):8888/proxy/user/ann/tree\""))
                let page = try await get("\(relayURL)/user/ann/page", secret: secret)
                #expect(page.status == 200)
                #expect(page.body == FakePod.page)
                #expect(page.headers.first(name: "content-length") == String(FakePod.page.utf8.count))

                // Only this hub's workspace paths pass, with the relay's key, in this namespace.
                for path in [
                    "/api/v1/namespaces/\(Self.ns)/services/http:\(Self.workload):8888/proxy/user/ann/echo",
                    "/\(key)/api/v1/namespaces/kube-system/services/http:\(Self.workload):8888/proxy/",
                    "/\(key)/api/v1/namespaces/\(Self.ns)/secrets/\(Self.workload)",
                    "/\(key)/api/v1/namespaces/\(Self.ns)/services/http:\(Self.workload):8888/proxy/../../secrets/x",
                    "/0000/api/v1/namespaces/\(Self.ns)/services/http:\(Self.workload):8888/proxy/user/ann/echo",
                ] {
                    let refused = try await get("http://127.0.0.1:\(relay.port)\(path)", secret: secret)
                    #expect(refused.status == 403, "\(path)")
                    #expect(refused.body.contains("\"message\""))
                }

                // Suspended: no pod behind the Service, and the API server's 503 comes back.
                _ = try await hub.manager.suspend(user: "ann", serverName: "")
                let gone = try await get("\(relayURL)/user/ann/echo", secret: secret)
                #expect(gone.status == 503)
                #expect(gone.body.contains("no endpoints available"))
            }
        }
    }

    @Test("WebSocket, large bodies both ways and the secret check of a real workspace program (atrium-workspace) through the relay")
    func webSocketThroughRelay() async throws {
        let binary = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/debug/atrium-workspace").path
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build atrium-workspace first (swift build)")
        try await withRelayHub { cluster, _, hub, relay, ann in
            try await FakePod.with { podPort in
                await cluster.setUpstream(service: Self.workload, port: podPort)
                #expect(try await hub.manager.start(user: ann, serverName: "") == .ready(url: "/user/ann/"))
                let route = try #require(hub.manager.routes.all.first)
                let secret = try #require(route.endpoint.secret)
                let base = try #require(route.endpoint.basePath)
                // The pod now runs the workspace program, which wants the server's secret.
                let port = try await ChildProcess.freePort()
                let workspace = try ChildProcess(
                    binary, ["--port", String(port)],
                    environment: ["ATRIUM_WORKSPACE_SECRET": secret, "JUPYTERHUB_SERVICE_PREFIX": "/user/ann/", "JUPYTERHUB_USER": "ann"])
                defer { workspace.kill() }
                await cluster.setUpstream(service: Self.workload, port: port)
                var answered = false
                for _ in 0..<100 where !answered {
                    answered = (try? await get("http://127.0.0.1:\(relay.port)\(base)/user/ann/api/status", secret: secret).status) == 200
                    if !answered { try await Task.sleep(for: .milliseconds(50)) }
                }
                #expect(answered, "the workspace accepts the secret the relay moved into the query")
                #expect(try await get("http://127.0.0.1:\(relay.port)\(base)/user/ann/api/status", secret: "wrong").status == 403)

                // Large bodies stream through the relay both ways and arrive whole.
                var upload = HTTPClientRequest(url: "http://127.0.0.1:\(relay.port)\(base)/user/ann/echo")
                upload.method = .POST
                upload.headers.add(name: "Authorization", value: "token \(secret)")
                let sent = ByteBuffer(bytes: (0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
                upload.body = .bytes(sent)
                let echoed = try await Self.client.execute(upload, timeout: .seconds(60))
                #expect(echoed.status == .ok)
                #expect(try await echoed.body.collect(upTo: 4 << 20) == sent)
                var download = HTTPClientRequest(url: "http://127.0.0.1:\(relay.port)\(base)/user/ann/download?bytes=5000000")
                download.headers.add(name: "Authorization", value: "token \(secret)")
                let downloaded = try await Self.client.execute(download, timeout: .seconds(60))
                #expect(try await downloaded.body.collect(upTo: 8 << 20).readableBytes == 5_000_000)

                let (channel, events) = try await connectWebSocket(
                    port: relay.port, path: "\(base)/user/ann/ws", headers: [("Authorization", "token \(secret)")])
                var iterator = events.makeAsyncIterator()
                guard case .upgraded? = await iterator.next() else {
                    Issue.record("the WebSocket upgrade was refused")
                    return
                }
                for message in ["hello", String(repeating: "x", count: 200_000)] {
                    try await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(string: message)))
                    var echoed = ""
                    while echoed.count < message.count, case .frame(let frame)? = await iterator.next() {
                        echoed += String(buffer: frame.unmaskedData)
                    }
                    #expect(echoed == message)
                }
                try await channel.close()

                let (_, refusedEvents) = try await connectWebSocket(port: relay.port, path: "\(base)/user/ann/ws", headers: [("Authorization", "token wrong")])
                var refused = refusedEvents.makeAsyncIterator()
                guard case .rejected(let status)? = await refused.next() else {
                    Issue.record("a WebSocket with the wrong secret was not refused")
                    return
                }
                #expect(status.code == 403)
            }
        }
    }

    @Test("a restarted hub reattaches through its new relay (a new port and key); the old relay is gone")
    func restartUsesTheNewRelay() async throws {
        try await withRelayHub { cluster, url, hub, relay, ann in
            try await FakePod.with { podPort in
                await cluster.setUpstream(service: Self.workload, port: podPort)
                #expect(try await hub.manager.start(user: ann, serverName: "") == .ready(url: "/user/ann/"))
                let before = try #require(hub.manager.routes.all.first?.endpoint)
                await hub.close()
                try await relay.close()

                var logger = Logger(label: "test")
                logger.logLevel = .critical
                let connection = hub.client.connection
                let newRelay = try await ServiceProxyRelay.start(connection: connection, namespace: Self.ns, logger: logger)
                let second = try KubeHub.make(
                    url: url, cluster: cluster, store: hub.store,
                    configure: Self.apiProxy, connection: connection, probe: HTTPReadinessProbe(client: HTTPClient.shared), relay: newRelay)
                #expect(try await second.manager.restore().reattached == 1)
                let after = try #require(second.manager.routes.all.first?.endpoint)
                #expect(after.address == .tcp(host: "127.0.0.1", port: newRelay.port))
                #expect(after.basePath != before.basePath, "a new key")
                #expect(after.secret == before.secret, "the server keeps its secret")
                let echo = try await get("http://127.0.0.1:\(newRelay.port)\(try #require(after.basePath))/user/ann/echo", secret: after.secret)
                #expect(echo.status == 200)
                await #expect(throws: (any Error).self) {
                    _ = try await get("http://127.0.0.1:\(relay.port)\(try #require(before.basePath))/user/ann/echo", secret: before.secret)
                }
                await second.close()
                try await newRelay.close()
            }
        }
    }
}
