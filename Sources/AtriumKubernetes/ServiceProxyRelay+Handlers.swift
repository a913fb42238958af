import AtriumModel
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// One connection from the hub's proxy to the relay. Requests arrive one at a time
/// (`HTTPServerPipelineHandler`); each goes to the API server over one upstream connection per
/// downstream connection, opened on the same event loop, so the two handlers call each other
/// directly.
///
/// Pipeline: `HTTPResponseEncoder` → `ByteToMessageHandler<HTTPRequestDecoder>` →
/// `HTTPServerPipelineHandler` → `HTTPServerProtocolErrorHandler` → `RelayHandler`.
final class RelayHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// HTML held to undo the API server's link rewriting; a larger page passes as it comes.
    static let maxRewrittenHTML = 8 << 20

    /// What happens to the response of the request in flight.
    enum ResponseMode {
        case waiting
        case streaming
        case buffering(HTTPResponseHead, ByteBuffer)
        case switching(HTTPResponseHead)
    }

    struct Exchange {
        var route: RelayRoutes.Route
        var secret: String?
        var keepAlive: Bool
        var isUpgrade: Bool
        var isHead: Bool
        var response: ResponseMode = .waiting
    }

    let routes: RelayRoutes
    let upstream: RelayUpstream
    let logger: Logger
    private var httpHandlers: [any RemovableChannelHandler] = []
    private var context: ChannelHandlerContext?
    private var exchange: Exchange?
    /// Request parts waiting for the upstream connection.
    private var pending: [HTTPClientRequestPart] = []
    private var upstreamSide: RelayUpstreamHandler?
    private var connecting = false
    private var readPending = false
    /// The request was refused; its body is dropped until its end.
    private var discardingBody = false

    init(routes: RelayRoutes, upstream: RelayUpstream, logger: Logger) {
        self.routes = routes
        self.upstream = upstream
        self.logger = logger
    }

    static func configure(channel: any Channel, routes: RelayRoutes, upstream: RelayUpstream, logger: Logger) throws {
        let encoder = HTTPResponseEncoder()
        let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
        let pipelining = HTTPServerPipelineHandler()
        let errors = HTTPServerProtocolErrorHandler()
        let handler = RelayHandler(routes: routes, upstream: upstream, logger: logger)
        handler.httpHandlers = [encoder, decoder, pipelining, errors]
        let sync = channel.pipeline.syncOperations
        try sync.addHandlers([encoder, decoder, pipelining, errors, handler])
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Requests (hub → API server)

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard let route = routes.route(head.uri) else {
                refuse(.forbidden, "the relay passes only this hub's workspace paths in namespace \(routes.namespace)", context)
                return
            }
            var headers = head.headers
            var secret: String?
            if let authorization = headers.first(name: "authorization"), authorization.lowercased().hasPrefix("token ") {
                secret = String(authorization.dropFirst(6)).trimmingCharacters(in: .whitespaces)
            }
            headers.remove(name: "authorization")
            headers.remove(name: "accept-encoding")
            headers.replaceOrAdd(name: "host", value: upstream.authority)
            if let token = upstream.bearerToken() { headers.add(name: "authorization", value: "Bearer \(token)") }
            let isUpgrade = headers.contains(name: "upgrade")
            exchange = Exchange(route: route, secret: secret, keepAlive: head.isKeepAlive, isUpgrade: isUpgrade, isHead: head.method == .HEAD)
            var outgoing = HTTPRequestHead(version: .http1_1, method: head.method, uri: route.uri, headers: headers)
            if let secret, !secret.isEmpty { outgoing.uri = RelayRoutes.addingToken(secret, to: route.uri) }
            send(.head(outgoing), context)
        case .body(let buffer):
            guard !discardingBody else { return }
            send(.body(.byteBuffer(buffer)), context)
        case .end(let trailers):
            guard !discardingBody else {
                discardingBody = false
                return
            }
            send(.end(trailers), context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // A request body goes on as it comes: flushed after each read, not only at its end.
        upstreamSide?.flush()
    }

    func read(context: ChannelHandlerContext) {
        // Upload backpressure: read from the hub only while the API server takes more.
        if let upstreamSide, !upstreamSide.isWritable {
            readPending = true
        } else {
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { upstreamSide?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Nothing is answered on a closed connection: forget the exchange before the upstream goes.
        exchange = nil
        pending = []
        let side = upstreamSide
        upstreamSide = nil
        side?.close()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("relay connection failed", metadata: ["atrium.error": "\(error)"])
        context.close(promise: nil)
    }

    private func send(_ part: HTTPClientRequestPart, _ context: ChannelHandlerContext) {
        if let upstreamSide, upstreamSide.isActive, !connecting {
            upstreamSide.write(part)
            if case .end = part { upstreamSide.flush() }
            return
        }
        pending.append(part)
        guard !connecting else { return }
        connecting = true
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        RelayUpstreamHandler.connect(to: upstream, owner: self, on: context.eventLoop).whenComplete { result in
            let handler = loopBound.value
            handler.connecting = false
            switch result {
            case .success(let side):
                handler.upstreamSide = side
                for part in handler.pending { side.write(part) }
                handler.pending = []
                side.flush()
            case .failure(let error):
                handler.pending = []
                guard let context = handler.context else { return }
                handler.logger.warning("cannot reach the Kubernetes API server", metadata: ["atrium.error": "\(error)"])
                handler.answer(.badGateway, "cannot reach the Kubernetes API server at \(handler.upstream.authority): \(error)", context)
            }
        }
    }

    /// Answers the current request itself and drops whatever of it is still to come.
    private func refuse(_ status: HTTPResponseStatus, _ message: String, _ context: ChannelHandlerContext) {
        discardingBody = true
        answer(status, message, context)
    }

    private func answer(_ status: HTTPResponseStatus, _ message: String, _ context: ChannelHandlerContext) {
        let body = ByteBuffer(string: "{\"status\": \(status.code), \"message\": \(JSONValue.quoted(message))}")
        var headers = HTTPHeaders([("content-type", "application/json"), ("content-length", String(body.readableBytes))])
        headers.add(name: "connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        exchange = nil
        upstreamSide?.close()
    }

    // MARK: Responses (API server → hub)

    func upstreamRead(_ part: HTTPClientResponsePart) {
        guard let context, var current = exchange else {
            upstreamSide?.close()
            return
        }
        switch part {
        case .head(var head):
            if let location = head.headers.first(name: "location") {
                head.headers.replaceOrAdd(
                    name: "location", value: RelayRoutes.restoringLocation(location, proxyPath: current.route.proxyPath, secret: current.secret))
            }
            if head.status == .switchingProtocols, current.isUpgrade {
                current.response = .switching(head)
            } else if Self.isHTML(head), !current.isHead, head.status != .notModified, head.status != .noContent {
                current.response = .buffering(head, context.channel.allocator.buffer(capacity: 0))
            } else {
                current.response = .streaming
                context.write(wrapOutboundOut(.head(head)), promise: nil)
            }
        case .body(let buffer):
            switch current.response {
            case .buffering(let head, var held):
                held.writeImmutableBuffer(buffer)
                if held.readableBytes > Self.maxRewrittenHTML {
                    current.response = .streaming
                    context.write(wrapOutboundOut(.head(head)), promise: nil)
                    context.write(wrapOutboundOut(.body(.byteBuffer(held))), promise: nil)
                } else {
                    current.response = .buffering(head, held)
                }
            case .streaming:
                context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
            case .waiting, .switching:
                break
            }
        case .end(let trailers):
            switch current.response {
            case .switching(let head):
                exchange = nil
                startTunnel(head, context)
                return
            case .buffering(var head, let held):
                let body = RelayRoutes.restoringHTML(held, proxyPath: current.route.proxyPath)
                head.headers.remove(name: "transfer-encoding")
                head.headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
                context.write(wrapOutboundOut(.head(head)), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            case .streaming, .waiting:
                break
            }
            exchange = nil
            let promise = current.keepAlive ? nil : context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: promise)
            promise?.futureResult.whenComplete { _ in context.close(promise: nil) }
            return
        }
        exchange = current
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    var mayReadUpstream: Bool { context?.channel.isWritable ?? true }

    func upstreamWritable() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    func upstreamClosed(_ side: RelayUpstreamHandler, error: (any Error)?) {
        guard side === upstreamSide else { return }
        upstreamSide = nil
        guard let context, context.channel.isActive, let current = exchange else { return }
        if case .waiting = current.response {
            answer(.badGateway, "the Kubernetes API server closed the connection: \(error.map { "\($0)" } ?? "no response")", context)
        } else {
            // A truncated answer can only be told from a whole one by a closed connection.
            context.close(promise: nil)
        }
    }

    static func isHTML(_ head: HTTPResponseHead) -> Bool {
        guard let type = head.headers.first(name: "content-type") else { return false }
        return type.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased() == "text/html"
    }

    // MARK: Upgrade

    /// The API server switched protocols: both connections become one byte tunnel. The `101`
    /// is written as bytes after the HTTP handlers are gone, so nothing the hub sends next is
    /// read as HTTP.
    private func startTunnel(_ head: HTTPResponseHead, _ context: ChannelHandlerContext) {
        guard let side = upstreamSide else {
            context.close(promise: nil)
            return
        }
        upstreamSide = nil
        let (downstreamGlue, upstreamGlue) = RelayGlue.matchedPair()
        do {
            // First in the pipeline: the hub's bytes reach the glue before any HTTP handler,
            // and what the glue writes goes straight to the socket.
            let sync = context.pipeline.syncOperations
            try sync.addHandler(downstreamGlue, position: .first)
            for handler in httpHandlers { sync.removeHandler(handler, promise: nil) }
            var raw = context.channel.allocator.buffer(capacity: 256)
            raw.writeString("HTTP/1.1 101 Switching Protocols\r\n")
            for (name, value) in head.headers { raw.writeString("\(name): \(value)\r\n") }
            raw.writeString("\r\n")
            downstreamGlue.writeRaw(raw)
            try side.switchToRawBytes(replacement: upstreamGlue)
            sync.removeHandler(self, promise: nil)
            // The pipelining handler held back the read after the upgrade request, and the
            // upstream side may have held one too: both sides read again.
            downstreamGlue.startReading()
            upstreamGlue.startReading()
        } catch {
            logger.warning("could not switch the relay to a tunnel", metadata: ["atrium.error": "\(error)"])
            side.close()
            context.close(promise: nil)
        }
    }
}
