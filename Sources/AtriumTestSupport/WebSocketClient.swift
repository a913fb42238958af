import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

// A small WebSocket client for tests, over NIO's client upgrader.


public enum WebSocketEvent: Sendable {
    case upgraded
    case frame(WebSocketFrame)
    case rejected(HTTPResponseStatus)
    case closed
}

private final class UpgradeRequestHandler: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let path: String
    let host: String
    let extraHeaders: [(String, String)]
    let events: AsyncStream<WebSocketEvent>.Continuation

    init(path: String, host: String, extraHeaders: [(String, String)], events: AsyncStream<WebSocketEvent>.Continuation) {
        self.path = path
        self.host = host
        self.extraHeaders = extraHeaders
        self.events = events
    }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: host)
        headers.add(name: "Content-Length", value: "0")
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            events.yield(.rejected(head.status))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        events.yield(.closed)
        events.finish()
        context.fireChannelInactive()
    }
}

private final class FrameCollector: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = WebSocketFrame
    let events: AsyncStream<WebSocketEvent>.Continuation

    init(events: AsyncStream<WebSocketEvent>.Continuation) { self.events = events }

    func handlerAdded(context: ChannelHandlerContext) {
        events.yield(.upgraded)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        events.yield(.frame(unwrapInboundIn(data)))
    }

    func channelInactive(context: ChannelHandlerContext) {
        events.yield(.closed)
        events.finish()
    }
}

/// Opens a WebSocket through NIO's client upgrader; returns the channel and its events.
/// `headers` are sent with the upgrade request (cookies, `Authorization`).
public func connectWebSocket(port: Int, path: String, headers: [(String, String)] = []) async throws -> (any Channel, AsyncStream<WebSocketEvent>) {
    let (events, continuation) = AsyncStream.makeStream(of: WebSocketEvent.self)
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelInitializer { channel in
            let requestHandler = UpgradeRequestHandler(path: path, host: "127.0.0.1:\(port)", extraHeaders: headers, events: continuation)
            let upgrader = NIOWebSocketClientUpgrader(maxFrameSize: 1 << 24, upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FrameCollector(events: continuation))
                }
            })
            return channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHTTPClientHandlers(
                    withClientUpgrade: (
                        upgraders: [upgrader],
                        completionHandler: { context in
                            context.pipeline.syncOperations.removeHandler(requestHandler, promise: nil)
                        }
                    )
                )
                try channel.pipeline.syncOperations.addHandler(requestHandler)
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    return (channel, events)
}
