import AsyncHTTPClient
import AtriumModel
import AtriumProxy
import AtriumTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Testing

/// End-to-end tests: a real Hummingbird hub with the proxy installed, real NIO workspaces.
@Suite(.serialized)
struct ReverseProxyTests {
    private func body(_ response: HTTPClientResponse) async throws -> String {
        String(buffer: try await response.body.collect(upTo: 1 << 20))
    }

    private func json(_ text: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func hubRoutesAndProxiedRoutesShareOneKeepAliveConnection() async throws {
        let upstream = try await TestUpstream.start(name: "alice")
        let gatekeeper = StubGatekeeper()
        gatekeeper.route("alice", to: upstream.address)
        try await withHub(gatekeeper: gatekeeper, upstreams: [upstream]) { hub in
            for round in 0..<3 {
                let hubResponse = try await hub.client.execute(HTTPClientRequest(url: hub.url("/hub/hello")), timeout: .seconds(10))
                #expect(hubResponse.status == .ok)
                #expect(try await body(hubResponse) == "hub says hello")
                let proxied = try await hub.client.execute(
                    HTTPClientRequest(url: hub.url("/user/alice/page\(round)")),
                    timeout: .seconds(10)
                )
                #expect(proxied.status == .ok)
                #expect(proxied.headers.first(name: "x-upstream") == "alice")
                #expect(proxied.headers.first(name: "keep-alive") == nil)
                #expect(try await body(proxied) == "hello from alice /user/alice/page\(round)")
            }
            #expect(hub.connections.value == 1)
            // Reported at most once a second per connection: once here, more if the machine is slow.
            #expect((1...3).contains(gatekeeper.activity("alice")))
            let statistics = hub.proxy.statistics.snapshot
            #expect(statistics.forwardedRequests == 3)
            #expect(statistics.responsesByStatusClass[2] == 3)
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        let upstream = try await TestUpstream.start(name: "alice")
        let gatekeeper = StubGatekeeper()
        gatekeeper.route("alice", to: upstream.address)
        gatekeeper.route("slow", to: upstream.address, slow: true)
        try await withHub(gatekeeper: gatekeeper, upstreams: [upstream]) { hub in
            let requests = [
                "GET /user/alice/one HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET /hub/hello HTTP/1.1\r\nHost: x\r\n\r\n",
                "POST /hub/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
                "GET /user/slow/two HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET /user/alice/three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            ]
            let text = try await rawExchange(port: hub.port, requests.joined())
            let markers = ["hello from alice /user/alice/one", "hub says hello", "\r\n\r\nhello", "hello from alice /user/slow/two", "hello from alice /user/alice/three"]
            var searchStart = text.startIndex
            for marker in markers {
                let range = try #require(text.range(of: marker, range: searchStart..<text.endIndex), "missing \(marker) in order")
                searchStart = range.upperBound
            }
            #expect(text.components(separatedBy: "HTTP/1.1 200").count == 6)
        }
    }

    @Test func forwardsOverTCPAndUnixSocketsWithRewrittenHeaders() async throws {
        let tcp = try await TestUpstream.start(name: "alice")
        let socketPath = FileManager.default.temporaryDirectory.appendingPathComponent("atrium-proxy-\(UUID().uuidString.prefix(8)).sock").path
        let unix = try await TestUpstream.start(name: "bob", unixPath: socketPath)
        let gatekeeper = StubGatekeeper()
        gatekeeper.route("alice", to: tcp.address, secret: "alice-secret")
        gatekeeper.route("bob", to: unix.address)
        try await withHub(gatekeeper: gatekeeper, upstreams: [tcp, unix]) { hub in
            var request = HTTPClientRequest(url: hub.url("/user/alice/headers?x=1"))
            request.headers.add(name: "Authorization", value: "Bearer client-token")
            request.headers.add(name: "Cookie", value: "theme=dark; atrium-session=s3cr3t; lang=en")
            request.headers.add(name: "X-Forwarded-For", value: "10.1.2.3")
            request.headers.add(name: "Proxy-Authorization", value: "Basic abc")
            request.headers.add(name: "X-Custom", value: "kept")
            let response = try await hub.client.execute(request, timeout: .seconds(10))
            #expect(response.status == .ok)
            let echoed = try json(try await body(response))
            #expect(echoed["server"] as? String == "alice")
            #expect(echoed["uri"] as? String == "/user/alice/headers?x=1")
            let headers = try #require(echoed["headers"] as? [String: String])
            #expect(headers["host"] == "127.0.0.1:\(hub.port)")
            #expect(headers["authorization"] == "token alice-secret")
            #expect(headers["cookie"] == "theme=dark; lang=en")
            #expect(headers["x-forwarded-for"] == "10.1.2.3, 127.0.0.1")
            #expect(headers["x-forwarded-proto"] == "http")
            #expect(headers["x-forwarded-host"] == "127.0.0.1:\(hub.port)")
            #expect(headers["x-forwarded-port"] == "\(hub.port)")
            #expect(headers["x-real-ip"] == "127.0.0.1")
            #expect(headers["x-custom"] == "kept")
            #expect(headers["proxy-authorization"] == nil)

            var unixRequest = HTTPClientRequest(url: hub.url("/user/bob/headers"))
            unixRequest.headers.add(name: "Authorization", value: "Bearer client-token")
            unixRequest.headers.add(name: "Cookie", value: "atrium-session=s3cr3t")
            let unixResponse = try await hub.client.execute(unixRequest, timeout: .seconds(10))
            #expect(unixResponse.status == .ok)
            let unixEchoed = try json(try await body(unixResponse))
            #expect(unixEchoed["server"] as? String == "bob")
            let unixHeaders = try #require(unixEchoed["headers"] as? [String: String])
            #expect(unixHeaders["authorization"] == nil)
            #expect(unixHeaders["cookie"] == nil)
            #expect(gatekeeper.activity("bob") == 1)
        }
    }

    @Test func hubDecisionAndAsyncDecisions() async throws {
        let upstream = try await TestUpstream.start(name: "dave")
        let gatekeeper = StubGatekeeper()
        gatekeeper.route("dave", to: upstream.address, slow: true)
        gatekeeper.state.withLockedValue { _ = $0.slowNames.insert("carol") }
        try await withHub(gatekeeper: gatekeeper, upstreams: [upstream]) { hub in
            // Unknown route: the gatekeeper answers .hub and Hummingbird's route answers.
            let carol = try await hub.client.execute(HTTPClientRequest(url: hub.url("/user/carol/lab")), timeout: .seconds(10))
            #expect(carol.status == .serviceUnavailable)
            #expect(try await body(carol) == "{\"hub\": \"carol\"}")
            let eve = try await hub.client.execute(HTTPClientRequest(url: hub.url("/user/eve/lab")), timeout: .seconds(10))
            #expect(eve.status == .serviceUnavailable)
            #expect(try await body(eve) == "{\"hub\": \"eve\"}")

            var post = HTTPClientRequest(url: hub.url("/user/dave/echo"))
            post.method = .POST
            post.body = .bytes(ByteBuffer(string: "async path body"))
            let dave = try await hub.client.execute(post, timeout: .seconds(10))
            #expect(dave.status == .ok)
            #expect(try await body(dave) == "async path body")
            #expect(gatekeeper.state.withLockedValue { $0.slowDecisions } == 2)
        }
    }

    @Test func streamsLargeUploadAndDownload() async throws {
        let upstream = try await TestUpstream.start(name: "alice")
        let gatekeeper = StubGatekeeper()
        gatekeeper.route("alice", to: upstream.address)
        try await withHub(gatekeeper: gatekeeper, upstreams: [upstream]) { hub in
            // 20 MB upload, echoed back while it is still being sent.
            let uploadSize = 20 * 1024 * 1024
            var upload = HTTPClientRequest(url: hub.url("/user/alice/echo"))
            upload.method = .POST
            upload.body = .stream(PatternBody(total: uploadSize), length: .known(Int64(uploadSize)))
            let echo = try await hub.client.execute(upload, timeout: .seconds(120))
            #expect(echo.status == .ok)
            var offset = 0
            var intact = true
            for try await piece in echo.body {
                if intact && !Pattern.matches(piece, at: offset) { intact = false }
                offset += piece.readableBytes
            }
            #expect(intact)
            #expect(offset == uploadSize)

            // 50 MB download.
            let downloadSize = 50 * 1024 * 1024
            let download = try await hub.client.execute(
                HTTPClientRequest(url: hub.url("/user/alice/download?bytes=\(downloadSize)")),
                timeout: .seconds(120)
            )
            #expect(download.status == .ok)
            #expect(download.headers.first(name: "content-length") == "\(downloadSize)")
            offset = 0
            intact = true
            for try await piece in download.body {
                if intact && !Pattern.matches(piece, at: offset) { intact = false }
                offset += piece.readableBytes
            }
            #expect(intact)
            #expect(offset == downloadSize)
            let statistics = hub.proxy.statistics.snapshot
            #expect(statistics.requestBytes == uploadSize)
            #expect(statistics.responseBytes == uploadSize + downloadSize)
        }
    }

    /// 200 MB each way through the proxy must not raise the process's peak memory by anything
    /// near the body size (client, proxy and workspace all live in this process).
    @Test(.enabled(if: residentMemory() != nil))
    func largeTransfersKeepMemoryFlat() async throws {
        let upstream = try await TestUpstream.start(name: "alice")
        let gatekeeper = StubGatekeeper()
        gatekeeper.route("alice", to: upstream.address)
        try await withHub(gatekeeper: gatekeeper, upstreams: [upstream]) { hub in
            let size = 200 * 1024 * 1024
            // Reset the high-water mark to the current size (Linux ≥ 4.0), so earlier tests' peaks
            // do not count.
            try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
            let before = try #require(residentMemory())
            var upload = HTTPClientRequest(url: hub.url("/user/alice/echo"))
            upload.method = .POST
            upload.body = .stream(PatternBody(total: size), length: .known(Int64(size)))
            let echo = try await hub.client.execute(upload, timeout: .seconds(300))
            var received = 0
            for try await piece in echo.body { received += piece.readableBytes }
            #expect(received == size)
            let download = try await hub.client.execute(
                HTTPClientRequest(url: hub.url("/user/alice/download?bytes=\(size)")),
                timeout: .seconds(300)
            )
            received = 0
            for try await piece in download.body { received += piece.readableBytes }
            #expect(received == size)
            let after = try #require(residentMemory())
            let growth = after.peak - before.current
            print("largeTransfersKeepMemoryFlat: peak grew by \(growth / 1024) KiB")
            #expect(growth < 64 * 1024 * 1024, "peak memory grew by \(growth / 1024 / 1024) MB")
        }
    }

    @Test func unreachableWorkspaceAnswers503() async throws {
        // A port that was just free: bind, note, close.
        let probe = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let deadPort = probe.localAddress?.port ?? 1
        try await probe.close()
        let upstream = try await TestUpstream.start(name: "alice")
        let gatekeeper = StubGatekeeper()
        gatekeeper.route("erin", to: .tcp(host: "127.0.0.1", port: deadPort))
        gatekeeper.route("frank", to: .unix(path: "/nonexistent/atrium.sock"))
        gatekeeper.route("alice", to: upstream.address)
        try await withHub(gatekeeper: gatekeeper, upstreams: [upstream]) { hub in
            let erin = try await hub.client.execute(HTTPClientRequest(url: hub.url("/user/erin/tree")), timeout: .seconds(10))
            #expect(erin.status == .serviceUnavailable)
            #expect(erin.headers.first(name: "content-type")?.hasPrefix("application/json") == true)
            let erinBody = try json(try await body(erin))
            #expect(erinBody["status"] as? Int == 503)
            #expect(erinBody["message"] as? String == "The server at /user/erin/ is not reachable: connection refused")
            #expect(gatekeeper.failure("erin") != nil)

            let frank = try await hub.client.execute(HTTPClientRequest(url: hub.url("/user/frank/")), timeout: .seconds(10))
            #expect(frank.status == .serviceUnavailable)
            let frankBody = try json(try await body(frank))
            #expect((frankBody["message"] as? String)?.hasPrefix("The server at /user/frank/ is not reachable: ") == true)

            // The workspace closes before answering.
            let early = try await hub.client.execute(
                HTTPClientRequest(url: hub.url("/user/alice/close-before-head")),
                timeout: .seconds(10)
            )
            #expect(early.status == .serviceUnavailable)
            _ = try await body(early)

            // The workspace closes mid-body: the client sees a broken response, not a short one.
            await #expect(throws: (any Error).self) {
                let response = try await hub.client.execute(
                    HTTPClientRequest(url: hub.url("/user/alice/close-mid")),
                    timeout: .seconds(10)
                )
                _ = try await response.body.collect(upTo: 1 << 20)
            }
            // The hub itself is still fine.
            let after = try await hub.client.execute(HTTPClientRequest(url: hub.url("/hub/hello")), timeout: .seconds(10))
            #expect(after.status == .ok)
            #expect(hub.proxy.statistics.snapshot.upstreamErrors == 3)
        }
    }

    @Test func relaysWebSocketMessages() async throws {
        let upstream = try await TestUpstream.start(name: "alice")
        let gatekeeper = StubGatekeeper()
        gatekeeper.route("alice", to: upstream.address, secret: "s")
        try await withHub(gatekeeper: gatekeeper, upstreams: [upstream]) { hub in
            let (channel, events) = try await connectWebSocket(port: hub.port, path: "/user/alice/ws")
            var iterator = events.makeAsyncIterator()
            guard case .upgraded = await iterator.next() else {
                Issue.record("WebSocket upgrade failed")
                return
            }
            // The client can see the 101 before the proxy has switched its pipelines and counted it.
            #expect(await eventually { hub.proxy.statistics.snapshot.openWebSockets == 1 })

            let text = ByteBuffer(string: "hello through the proxy")
            try await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: text))
            guard case .frame(let first) = await iterator.next() else {
                Issue.record("no text echo")
                return
            }
            #expect(first.opcode == .text)
            #expect(first.unmaskedData == text)

            let binary = ByteBuffer(bytes: (0..<10_000).map { UInt8($0 % 256) })
            try await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .binary, maskKey: .random(), data: binary))
            guard case .frame(let second) = await iterator.next() else {
                Issue.record("no binary echo")
                return
            }
            #expect(second.opcode == .binary)
            #expect(second.unmaskedData == binary)

            var closeData = ByteBuffer()
            closeData.write(webSocketErrorCode: .normalClosure)
            try await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, maskKey: .random(), data: closeData))
            guard case .frame(let closeFrame) = await iterator.next() else {
                Issue.record("no close echo")
                return
            }
            #expect(closeFrame.opcode == .connectionClose)
            // The workspace closes after its close frame; the proxy closes the client side.
            try await channel.closeFuture.get()
            // The proxy counts the tunnel closed once the client's side of the close reaches it,
            // which is after the client sees its channel close; the proxy has no event for it.
            let closed = await eventually { hub.proxy.statistics.snapshot.openWebSockets == 0 }
            #expect(closed)
            #expect(gatekeeper.activity("alice") >= 2)
        }
    }

    @Test func clientClosingTheSocketClosesTheTunnel() async throws {
        let upstream = try await TestUpstream.start(name: "alice")
        let gatekeeper = StubGatekeeper()
        gatekeeper.route("alice", to: upstream.address)
        try await withHub(gatekeeper: gatekeeper, upstreams: [upstream]) { hub in
            let (channel, events) = try await connectWebSocket(port: hub.port, path: "/user/alice/ws")
            var iterator = events.makeAsyncIterator()
            guard case .upgraded = await iterator.next() else {
                Issue.record("WebSocket upgrade failed")
                return
            }
            let text = ByteBuffer(string: "ping")
            try await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: text))
            guard case .frame(let echo) = await iterator.next() else {
                Issue.record("no echo")
                return
            }
            #expect(echo.unmaskedData == text)
            // No close handshake: the client just drops the TCP connection.
            try await channel.close()
            let closed = await eventually { hub.proxy.statistics.snapshot.openWebSockets == 0 }
            #expect(closed)
            // The hub keeps serving.
            let after = try await hub.client.execute(HTTPClientRequest(url: hub.url("/hub/hello")), timeout: .seconds(10))
            #expect(after.status == .ok)
        }
    }

    @Test func upgradeRefusedByWorkspaceIsRelayedAsNormalResponse() async throws {
        let upstream = try await TestUpstream.start(name: "alice")
        let gatekeeper = StubGatekeeper()
        gatekeeper.route("alice", to: upstream.address)
        try await withHub(gatekeeper: gatekeeper, upstreams: [upstream]) { hub in
            let request = "GET /user/alice/not-a-socket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
            // NIO's request decoder stops after an upgrade request, so the proxy closes the
            // connection after relaying the refusal (rawExchange returns on close).
            let text = try await rawExchange(port: hub.port, request)
            #expect(text.hasPrefix("HTTP/1.1 200"))
            #expect(text.lowercased().contains("connection: close"))
            #expect(text.hasSuffix("hello from alice /user/alice/not-a-socket"))
        }
    }
}

/// An upload body of `total` pattern bytes, produced lazily.
struct PatternBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let total: Int

    struct AsyncIterator: AsyncIteratorProtocol {
        var remaining: Int
        mutating func next() async -> ByteBuffer? {
            guard remaining > 0 else { return nil }
            let slice = Pattern.slice(limit: remaining)
            remaining -= slice.readableBytes
            return slice
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(remaining: total) }
}
