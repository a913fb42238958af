import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Serves one connection's HTTP requests (WebSocket upgrades are taken by `HTTPServerUpgradeHandler`
/// before they get here).
///
/// Sits behind `HTTPServerPipelineHandler`, which hands over one request at a time: the next
/// request head arrives only after this response's `.end` was written. Backpressure: while the
/// channel is not writable, reads are held back (echo stops reading the upload) and a download
/// stops writing until `channelWritabilityChanged` says the peer caught up.
final class WorkspaceHTTPHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Name in the pipeline, so the WebSocket upgrade can remove this handler.
    static let name = "atrium.http"

    private enum State {
        /// Waiting for a request head.
        case idle
        /// Writing each body part back as it arrives.
        case echoing(keepAlive: Bool)
        /// Writing `total` bytes of the pattern, `sent` so far.
        case downloading(sent: Int, total: Int, keepAlive: Bool)
        /// The response is written or on its way; body parts are dropped until `.end`.
        case responded
    }

    private let routes: WorkspaceRoutes
    private let counters: NIOLoopBoundBox<WorkspaceStats.Counters>
    private var state = State.idle
    private var readPending = false
    private var needsFlush = false

    init(routes: WorkspaceRoutes, counters: NIOLoopBoundBox<WorkspaceStats.Counters>) {
        self.routes = routes
        self.counters = counters
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            requestHead(context: context, head)
        case .body(let part):
            if case .echoing = state {
                context.write(wrapOutboundOut(.body(.byteBuffer(part))), promise: nil)
                needsFlush = true
            }
        case .end:
            switch state {
            case .echoing(let keepAlive):
                state = .idle
                needsFlush = false
                finish(context: context, keepAlive: keepAlive)
            case .responded:
                state = .idle
            case .idle, .downloading:
                break
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            context.read()
        } else {
            readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            if case .downloading = state { pumpDownload(context: context) }
            if readPending, context.channel.isWritable {
                readPending = false
                context.read()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // Don't swallow a read the next handler (after an upgrade) is waiting for.
        if readPending {
            readPending = false
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .responded  // stops a download in progress
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A refused upgrade (wrong path or no token) is reported as an error before the request
        // is passed on to us; we answer it with 403/404, so it must not close the connection.
        if error is NIOWebSocketUpgradeError { return }
        context.close(promise: nil)
    }

    // MARK: Routing

    private func requestHead(context: ChannelHandlerContext, _ head: HTTPRequestHead) {
        counters.value.requests += 1
        let uri = head.uri[...]
        let question = uri.utf8.firstIndex(of: UInt8(ascii: "?"))
        let path = question.map { uri[..<$0] } ?? uri
        state = .responded

        guard routes.isAuthorized(head.headers, query: question.map { uri[uri.index(after: $0)...] }) else {
            return sendJSON(context: context, head, .forbidden, JSONText.error(.forbidden, "missing or invalid token"))
        }
        guard let route = routes.route(path: path) else {
            return sendJSON(context: context, head, .notFound, JSONText.error(.notFound, "not under \(routes.baseURL)"))
        }
        // Like jupyter-server, polling the status is not activity (or the culler would never cull).
        if route != .status { counters.value.lastActivity = wallClockSeconds() }

        let isGet = head.method == .GET || head.method == .HEAD
        switch route {
        case .root where isGet:
            if head.version == .http1_1, head.isKeepAlive {
                context.write(wrapOutboundOut(.head(routes.rootHead)), promise: nil)
                if head.method == .GET { context.write(wrapOutboundOut(.body(.byteBuffer(routes.rootBody))), promise: nil) }
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            } else {
                send(context: context, head, .ok, contentType: "text/plain; charset=utf-8", body: routes.rootBody)
            }
        case .status where isGet:
            routes.stats.snapshot(on: context.eventLoop).assumeIsolated().whenComplete { result in
                switch result {
                case .success(let snapshot):
                    self.sendJSON(context: context, head, .ok, self.routes.statusBody(snapshot))
                case .failure:
                    self.sendJSON(context: context, head, .internalServerError, JSONText.error(.internalServerError, "status unavailable"))
                }
            }
        case .headers where isGet:
            sendJSON(context: context, head, .ok, routes.headersBody(head))
        case .download where isGet:
            guard let total = WorkspaceRoutes.downloadSize(query: question.map { uri[uri.utf8.index(after: $0)...] }) else {
                return sendJSON(context: context, head, .badRequest, JSONText.error(.badRequest, "download needs ?bytes=N"))
            }
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "application/octet-stream")
            headers.add(name: "content-length", value: String(total))
            addConnectionHeader(&headers, head)
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
            if head.method == .HEAD {
                finish(context: context, keepAlive: head.isKeepAlive)
            } else {
                state = .downloading(sent: 0, total: total, keepAlive: head.isKeepAlive)
                pumpDownload(context: context)
            }
        case .echo where head.method == .POST || head.method == .PUT:
            if head.headers.first(name: "expect")?.lowercased() == "100-continue" {
                context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: head.headers.first(name: "content-type") ?? "application/octet-stream")
            addConnectionHeader(&headers, head)
            // No content-length: the encoder sends it chunked (HTTP/1.1).
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
            state = .echoing(keepAlive: head.isKeepAlive)
        case .websocket where isGet:
            sendJSON(context: context, head, .badRequest,
                     JSONText.error(.badRequest, "expected a WebSocket upgrade as the first request on a connection"))
        case .notFound:
            sendJSON(context: context, head, .notFound, JSONText.error(.notFound, "no such route: \(path)"))
        case .root, .status, .headers, .download, .websocket:
            sendJSON(context: context, head, .methodNotAllowed, JSONText.error(.methodNotAllowed, "\(head.method) not allowed"),
                     extra: ("allow", "GET, HEAD"))
        case .echo:
            sendJSON(context: context, head, .methodNotAllowed, JSONText.error(.methodNotAllowed, "\(head.method) not allowed"),
                     extra: ("allow", "POST, PUT"))
        }
    }

    // MARK: Writing

    /// Writes pattern chunks while the channel is writable; ends the response when all are sent.
    private func pumpDownload(context: ChannelHandlerContext) {
        while case .downloading(var sent, let total, let keepAlive) = state {
            if sent == total {
                state = .responded
                // The request's `.end` normally arrived long ago; if not, `.responded` drops the rest.
                return finish(context: context, keepAlive: keepAlive)
            }
            guard context.channel.isWritable else { break }
            let length = min(WorkspaceRoutes.downloadChunk, total - sent)
            let chunk = routes.pattern.getSlice(at: sent % WorkspaceRoutes.downloadPeriod, length: length)!
            sent += length
            state = .downloading(sent: sent, total: total, keepAlive: keepAlive)
            context.write(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
        }
        context.flush()
    }

    private func sendJSON(
        context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus, _ json: String,
        extra: (String, String)? = nil
    ) {
        var body = context.channel.allocator.buffer(capacity: json.utf8.count + 1)
        body.writeString(json)
        body.writeStaticString("\n")
        send(context: context, request, status, contentType: "application/json", body: body, extra: extra)
    }

    private func send(
        context: ChannelHandlerContext, _ request: HTTPRequestHead, _ status: HTTPResponseStatus,
        contentType: String, body: ByteBuffer, extra: (String, String)? = nil
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: String(body.readableBytes))
        if let extra { headers.add(name: extra.0, value: extra.1) }
        addConnectionHeader(&headers, request)
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        finish(context: context, keepAlive: request.isKeepAlive)
    }

    private func addConnectionHeader(_ headers: inout HTTPHeaders, _ request: HTTPRequestHead) {
        let keepAlive = request.isKeepAlive
        if request.version == .http1_1 {
            if !keepAlive { headers.add(name: "connection", value: "close") }
        } else if keepAlive {
            headers.add(name: "connection", value: "keep-alive")
        }
    }

    /// Ends the response, closing the connection afterwards when the client asked for that.
    private func finish(context: ChannelHandlerContext, keepAlive: Bool) {
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
