import AtriumModel
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// A workspace stand-in: HTTP/1.1 over TCP or a Unix socket.
///
/// Paths (after `/user/<name>`): `/headers` echoes method, URI and headers as JSON; `/echo`
/// streams the request body back; `/download?bytes=N` streams N pattern bytes; `/ws` upgrades to
/// a WebSocket echo; `/close-before-head` closes without answering; `/close-mid` closes halfway
/// through a body; anything else answers `hello from <name> <uri>`.
final class TestUpstream: Sendable {
    let channel: any Channel
    let address: WorkspaceAddress

    private init(channel: any Channel, address: WorkspaceAddress) {
        self.channel = channel
        self.address = address
    }

    static func start(name: String, unixPath: String? = nil) async throws -> TestUpstream {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let httpHandler = UpstreamHTTPHandler(name: name)
                let upgrader = NIOWebSocketServerUpgrader(
                    shouldUpgrade: { channel, head in
                        channel.eventLoop.makeSucceededFuture(head.uri.hasSuffix("/ws") ? HTTPHeaders() : nil)
                    },
                    upgradePipelineHandler: { channel, _ in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(WebSocketEchoHandler())
                        }
                    }
                )
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.configureHTTPServerPipeline(
                        withServerUpgrade: (
                            upgraders: [upgrader],
                            completionHandler: { context in
                                context.pipeline.syncOperations.removeHandler(httpHandler, promise: nil)
                            }
                        )
                    )
                    try sync.addHandler(httpHandler)
                }
            }
        if let unixPath {
            try? FileManager.default.removeItem(atPath: unixPath)
            let channel = try await bootstrap.bind(unixDomainSocketPath: unixPath).get()
            return TestUpstream(channel: channel, address: .unix(path: unixPath))
        }
        let channel = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        let port = channel.localAddress?.port ?? 0
        return TestUpstream(channel: channel, address: .tcp(host: "127.0.0.1", port: port))
    }

    func shutdown() async {
        try? await channel.close()
    }
}

/// Deterministic body bytes: byte `i` is `i % 251`, so corruption, loss and reordering show.
enum Pattern {
    static let period = 251
    /// `period * 261` bytes: a chunk that starts at any multiple of `period` looks the same.
    static let chunk: ByteBuffer = {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(period * 261)
        for i in 0..<(period * 261) { buffer.writeInteger(UInt8(i % period)) }
        return buffer
    }()
    /// Long enough to compare any received piece of up to `chunk` bytes by `memcmp`.
    static let reference: [UInt8] = (0..<(period * 262 * 2)).map { UInt8($0 % period) }

    /// The body bytes from `offset` (a multiple of `period`) on, at most `limit` bytes.
    static func slice(limit: Int) -> ByteBuffer {
        let length = min(limit, chunk.readableBytes)
        return chunk.getSlice(at: chunk.readerIndex, length: length) ?? ByteBuffer()
    }

    /// Whether `buffer` holds the pattern bytes starting at stream offset `offset`.
    static func matches(_ buffer: ByteBuffer, at offset: Int) -> Bool {
        var view = buffer
        var position = offset
        while view.readableBytes > 0 {
            let length = min(view.readableBytes, period * 261)
            let start = position % period
            let equal = view.withUnsafeReadableBytes { received in
                reference.withUnsafeBytes { expected in
                    memcmp(received.baseAddress!, expected.baseAddress! + start, length) == 0
                }
            }
            if !equal { return false }
            view.moveReaderIndex(forwardBy: length)
            position += length
        }
        return true
    }
}

private final class UpstreamHTTPHandler: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    enum Mode {
        case headers(HTTPRequestHead)
        case echo
        case download(remaining: Int)
        case plain(HTTPRequestHead)
        case ignore
    }

    let name: String
    var mode: Mode = .ignore
    var readPending = false

    init(name: String) { self.name = name }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
            if path.hasSuffix("/headers") {
                mode = .headers(head)
            } else if path.hasSuffix("/echo") {
                mode = .echo
                var headers = HTTPHeaders()
                headers.add(name: "x-upstream", value: name)
                context.writeAndFlush(wrapOutboundOut(.head(.init(version: head.version, status: .ok, headers: headers))), promise: nil)
            } else if path.hasSuffix("/download") {
                let query = head.uri.split(separator: "=").last.flatMap { Int($0) } ?? 0
                mode = .download(remaining: query)
            } else if path.hasSuffix("/close-before-head") {
                context.close(promise: nil)
                mode = .ignore
            } else if path.hasSuffix("/close-mid") {
                var headers = HTTPHeaders()
                headers.add(name: "content-length", value: "1000")
                context.write(wrapOutboundOut(.head(.init(version: head.version, status: .ok, headers: headers))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "0123456789")))), promise: nil)
                context.close(promise: nil)
                mode = .ignore
            } else {
                mode = .plain(head)
            }
        case .body(let buffer):
            if case .echo = mode {
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            }
        case .end:
            switch mode {
            case .headers(let head):
                var fields: [String: String] = [:]
                for (name, value) in head.headers {
                    let key = name.lowercased()
                    fields[key] = fields[key].map { "\($0), \(value)" } ?? value
                }
                let object: [String: Any] = ["server": name, "method": "\(head.method)", "uri": head.uri, "headers": fields]
                let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
                respond(context, body: ByteBuffer(bytes: data), contentType: "application/json")
            case .plain(let head):
                respond(context, body: ByteBuffer(string: "hello from \(name) \(head.uri)"), contentType: "text/plain")
            case .echo:
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            case .download(let remaining):
                var headers = HTTPHeaders()
                headers.add(name: "content-length", value: "\(remaining)")
                context.write(wrapOutboundOut(.head(.init(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                pump(context)
            case .ignore:
                break
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    private func respond(_ context: ChannelHandlerContext, body: ByteBuffer, contentType: String) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: "\(body.readableBytes)")
        headers.add(name: "x-upstream", value: name)
        headers.add(name: "keep-alive", value: "timeout=60")
        context.write(wrapOutboundOut(.head(.init(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        mode = .ignore
    }

    /// Writes the download while the connection takes more.
    private func pump(_ context: ChannelHandlerContext) {
        guard case .download(var remaining) = mode else { return }
        while remaining > 0, context.channel.isWritable {
            let slice = Pattern.slice(limit: remaining)
            remaining -= slice.readableBytes
            context.write(wrapOutboundOut(.body(.byteBuffer(slice))), promise: nil)
        }
        mode = .download(remaining: remaining)
        if remaining == 0 {
            mode = .ignore
            context.write(wrapOutboundOut(.end(nil)), promise: nil)
        }
        context.flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            pump(context)
            if readPending {
                readPending = false
                context.read()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        // Echo backpressure: read more only while the answer can be written.
        if context.channel.isWritable {
            context.read()
        } else {
            readPending = true
        }
    }
}

private final class WebSocketEchoHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary, .continuation:
            let echo = WebSocketFrame(fin: frame.fin, opcode: frame.opcode, data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(echo), promise: nil)
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            let close = WebSocketFrame(fin: true, opcode: .connectionClose, data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(close)).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        default:
            break
        }
    }
}
