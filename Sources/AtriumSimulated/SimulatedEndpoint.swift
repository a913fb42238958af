import AtriumModel
import AtriumSpawn
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// The simulated cluster's memory and its one HTTP server. Every running simulated workspace
/// answers through it, told apart by the per-server secret the proxy sends.
public final class SimulatedEndpoint: Sendable {
    struct Workspace {
        var user: String
        var server: String
        var secret: String?
        var failure: String?
        var log: [String]
    }

    private let workspaces = Mutex<[String: Workspace]>([:])
    private let bySecret = Mutex<[String: String]>([:])
    private let bound = Mutex<WorkspaceAddress?>(nil)
    private let starting = Mutex<Task<WorkspaceAddress, any Error>?>(nil)
    private let channel = Mutex<(any Channel)?>(nil)

    public init() {}

    /// The server's address, starting it on first use (loopback, a free port).
    public func address() async throws -> WorkspaceAddress {
        if let known = knownAddress { return known }
        let task = starting.withLock { current -> Task<WorkspaceAddress, any Error> in
            if let current { return current }
            let task = Task { try await self.bind() }
            current = task
            return task
        }
        return try await task.value
    }

    /// The address once the server runs.
    public var knownAddress: WorkspaceAddress? { bound.withLock { $0 } }

    private func bind() async throws -> WorkspaceAddress {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(SimulatedHTTPHandler(endpoint: self))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let address = WorkspaceAddress.tcp(host: "127.0.0.1", port: server.localAddress?.port ?? 0)
        channel.withLock { $0 = server }
        bound.withLock { $0 = address }
        return address
    }

    /// Stops the HTTP server.
    public func shutdown() async {
        let server = channel.withLock { $0 }
        try? await server?.close()
    }

    func run(id: String, user: String, server: String, secret: String) {
        let line = "\(Timestamp.format(Date())) simulated workspace \(id) running for \(user)\(server.isEmpty ? "" : "/\(server)")"
        workspaces.withLock { all in
            var workspace = all[id] ?? Workspace(user: user, server: server, log: [])
            workspace.secret = secret
            workspace.failure = nil
            workspace.log.append(line)
            all[id] = workspace
        }
        bySecret.withLock { $0[secret] = id }
    }

    func fail(id: String, reason: String) {
        workspaces.withLock { all in
            var workspace = all[id] ?? Workspace(user: "", server: "", log: [])
            workspace.failure = reason
            workspace.log.append("\(Timestamp.format(Date())) failed: \(reason)")
            all[id] = workspace
        }
    }

    func remove(id: String) {
        let secret = workspaces.withLock { $0.removeValue(forKey: id)?.secret }
        if let secret { _ = bySecret.withLock { $0.removeValue(forKey: secret) } }
    }

    func status(id: String) -> BackendStatus {
        workspaces.withLock { all in
            guard let workspace = all[id] else { return .stopped }
            if let failure = workspace.failure { return .failed(reason: failure) }
            return workspace.secret == nil ? .starting : .running
        }
    }

    func log(id: String) -> [String] { workspaces.withLock { $0[id]?.log ?? [] } }

    /// The workspace a request's secret belongs to.
    func workspace(secret: String) -> (user: String, server: String)? {
        guard let id = bySecret.withLock({ $0[secret] }) else { return nil }
        return workspaces.withLock { $0[id].map { ($0.user, $0.server) } }
    }

    /// Running simulated workspaces (for tests and diagnostics).
    public var runningCount: Int { workspaces.withLock { $0.values.filter { $0.secret != nil && $0.failure == nil }.count } }
}

/// Answers every request: 200 with a short text for a known secret, 403 otherwise.
final class SimulatedHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let endpoint: SimulatedEndpoint
    /// The request being read (one at a time: the pipeline's pipelining handler sees to that).
    private var head: HTTPRequestHead?

    init(endpoint: SimulatedEndpoint) { self.endpoint = endpoint }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        var status = HTTPResponseStatus.forbidden
        var body = #"{"status": 403, "message": "simulated workspace: missing or wrong secret"}"#
        if let authorization = head.headers.first(name: "authorization"), authorization.hasPrefix("token "),
            let workspace = endpoint.workspace(secret: String(authorization.dropFirst(6)))
        {
            status = .ok
            body = "simulated workspace for \(workspace.user)\(workspace.server.isEmpty ? "" : "/\(workspace.server)") at \(head.uri)\n"
        }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: status == .ok ? "text/plain; charset=utf-8" : "application/json")
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        let keepAlive = head.isKeepAlive
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }
}
