import AsyncHTTPClient
import Foundation
import AtriumModel
import AtriumProxy
import HTTPTypes
import Hummingbird
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// Routes `/user/<name>/…` by a table; names in `slowNames` are decided on the async path, names
/// in `hubNames` (or unknown) go to the hub. Records activity and failures.
final class StubGatekeeper: ProxyGatekeeper {
    struct State {
        var routes: [String: ProxyTarget] = [:]
        var slowNames: Set<String> = []
        var hubNames: Set<String> = []
        var activity: [RouteKey: Int] = [:]
        var failures: [RouteKey: String] = [:]
        var slowDecisions = 0
    }

    let state = NIOLockedValueBox(State())

    func route(_ name: String, to address: WorkspaceAddress, secret: String? = nil, slow: Bool = false) {
        state.withLockedValue {
            $0.routes[name] = ProxyTarget(address: address, secret: secret, key: RouteKey(user: name))
            if slow { $0.slowNames.insert(name) }
        }
    }

    func activity(_ name: String) -> Int { state.withLockedValue { $0.activity[RouteKey(user: name)] ?? 0 } }
    func failure(_ name: String) -> String? { state.withLockedValue { $0.failures[RouteKey(user: name)] } }

    private func name(of request: HTTPRequest) -> String? {
        guard let path = request.path, path.hasPrefix("/user/") else { return nil }
        return path.dropFirst("/user/".count).split(separator: "/").first.map(String.init)
    }

    private func decision(for name: String?) -> ProxyDecision {
        state.withLockedValue { state in
            guard let name, !state.hubNames.contains(name), let target = state.routes[name] else { return .hub }
            return .forward(target)
        }
    }

    func decideImmediately(_ request: HTTPRequest) -> ProxyDecision? {
        let name = name(of: request)
        if let name, state.withLockedValue({ $0.slowNames.contains(name) }) { return nil }
        return decision(for: name)
    }

    func decide(_ request: HTTPRequest) async -> ProxyDecision {
        await Task.yield()
        state.withLockedValue { $0.slowDecisions += 1 }
        return decision(for: name(of: request))
    }

    func recordActivity(_ key: RouteKey) {
        state.withLockedValue { $0.activity[key, default: 0] += 1 }
    }

    func upstreamFailed(_ key: RouteKey, error: any Error) {
        state.withLockedValue { $0.failures[key] = "\(error)" }
    }
}

struct TimeoutError: Error {}

/// Runs `body`, failing after `seconds` (a bound, not a wait: the test never sleeps to sync).
func withTimeout<T: Sendable>(
    seconds: Int64 = 30,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw TimeoutError()
        }
        defer { group.cancelAll() }
        guard let result = try await group.next() else { throw TimeoutError() }
        return result
    }
}

/// Counts connections the hub accepted (each one asks for a new proxy handler).
final class ConnectionCounter: Sendable {
    private let count = NIOLockedValueBox(0)
    func increment() { count.withLockedValue { $0 += 1 } }
    var value: Int { count.withLockedValue { $0 } }
}

struct HubContext: Sendable {
    let port: Int
    let proxy: ReverseProxy
    let connections: ConnectionCounter
    let client: HTTPClient

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }
}

/// Starts a Hummingbird hub with the proxy installed on port 0, runs `body`, shuts everything down.
func withHub(
    gatekeeper: StubGatekeeper,
    configuration: ProxyConfiguration = .init(),
    upstreams: [TestUpstream] = [],
    _ body: @escaping @Sendable (HubContext) async throws -> Void
) async throws {
    var logger = Logger(label: "atrium-proxy-test")
    logger.logLevel = .info
    let proxy = ReverseProxy(configuration: configuration, gatekeeper: gatekeeper, logger: logger)
    let connections = ConnectionCounter()

    let router = Router()
    router.get("/hub/hello") { _, _ in "hub says hello" }
    router.post("/hub/echo") { request, _ -> ByteBuffer in
        try await request.body.collect(upTo: 1 << 20)
    }
    router.get("/user/{name}/**") { _, context -> Response in
        let name = context.parameters.get("name") ?? ""
        return Response(
            status: .serviceUnavailable,
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: "{\"hub\": \"\(name)\"}"))
        )
    }

    @Sendable func makeHandlers() -> [any RemovableChannelHandler] {
        connections.increment()
        return [proxy.makeHandler()]
    }

    let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
    let app = Application(
        router: router,
        server: .http1(configuration: .init(additionalChannelHandlers: makeHandlers())),
        configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in
            portContinuation.yield(channel.localAddress?.port ?? 0)
            portContinuation.finish()
        },
        logger: logger
    )
    var clientConfiguration = HTTPClient.Configuration()
    clientConfiguration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 1)
    clientConfiguration.timeout = .init(connect: .seconds(10), read: .seconds(60))
    let client = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: clientConfiguration)

    do {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw TimeoutError() }
            try await withTimeout(seconds: 120) {
                try await body(HubContext(port: port, proxy: proxy, connections: connections, client: client))
            }
            group.cancelAll()
        }
    } catch {
        try? await client.shutdown()
        for upstream in upstreams { await upstream.shutdown() }
        throw error
    }
    try await client.shutdown()
    for upstream in upstreams { await upstream.shutdown() }
}

// MARK: Raw TCP client (for pipelining)

private final class CollectingHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var received = ByteBuffer()
    let promise: EventLoopPromise<String>

    init(promise: EventLoopPromise<String>) { self.promise = promise }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        received.writeBuffer(&buffer)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.succeed(String(buffer: received))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Writes `request` in one go and returns everything received until the server closes.
func rawExchange(port: Int, _ request: String) async throws -> String {
    let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
    let promise = eventLoop.makePromise(of: String.self)
    let channel = try await ClientBootstrap(group: eventLoop)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(CollectingHandler(promise: promise))
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    try await channel.writeAndFlush(ByteBuffer(string: request))
    // Closing on cancellation lets `withTimeout` end a hung exchange.
    return try await withTaskCancellationHandler {
        try await promise.futureResult.get()
    } onCancel: {
        channel.close(promise: nil)
    }
}

/// Checks `condition` until it holds, for at most `seconds`. Only for state the proxy publishes
/// no event for (statistics updated after the client already saw the close).
func eventually(seconds: Double = 5, _ condition: @Sendable () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

/// The process's resident memory and its high-water mark, in bytes (Linux only).
func residentMemory() -> (current: Int, peak: Int)? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    func value(_ key: String) -> Int? {
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix(key) }) else { return nil }
        return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }.map { $0 * 1024 }
    }
    guard let current = value("VmRSS:"), let peak = value("VmHWM:") else { return nil }
    return (current, peak)
}

