import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// The workspace side of `ProxyHandler`: responses, upstream closure and the WebSocket switch.
extension ProxyHandler {
    // MARK: Upstream events (workspace → client)

    func upstreamRead(_ part: HTTPResponsePart, from handler: UpstreamHandler) {
        guard handler === upstream, case .forwarding(var exchange) = state, let context else {
            // Data on a connection with no request in flight: the workspace is misbehaving.
            handler.close()
            return
        }
        switch part {
        case .head(let response):
            if response.status.kind == .informational && response.status.code != 101 {
                if !exchange.responseStarted {
                    context.write(wrapOutboundOut(.head(HeaderRewriting.downstreamResponse(response))), promise: nil)
                }
                return
            }
            if exchange.responseStarted {
                handler.close()
                return
            }
            if response.status.code == 101 {
                guard exchange.isUpgrade else {
                    // An unsolicited switch: nothing sensible can follow.
                    handler.close()
                    return
                }
                exchange.switching = true
            }
            exchange.responseStarted = true
            state = .forwarding(exchange)
            if HeaderRewriting.wantsClose(response.headerFields) { handler.reusable = false }
            proxy.statistics.recordResponse(statusCode: response.status.code)
            var downstreamResponse = HeaderRewriting.downstreamResponse(response)
            if exchange.closeAfterResponse && !exchange.switching {
                downstreamResponse.headerFields[.connection] = "close"
            }
            context.write(wrapOutboundOut(.head(downstreamResponse)), promise: nil)
        case .body(let buffer):
            guard exchange.responseStarted, !exchange.switching else { return }
            proxy.statistics.addResponseBytes(buffer.readableBytes)
            context.write(wrapOutboundOut(.body(buffer)), promise: nil)
        case .end(let trailers):
            guard exchange.responseStarted else { return }
            if exchange.switching {
                startTunnel(exchange, upstream: handler, context)
                return
            }
            exchange.responseEnded = true
            state = .forwarding(exchange)
            context.writeAndFlush(wrapOutboundOut(.end(trailers)), promise: nil)
            if exchange.requestEnded { finish(exchange, context) }
        }
    }

    func upstreamReadComplete(from handler: UpstreamHandler) {
        guard handler === upstream else { return }
        context?.flush()
    }

    func upstreamMayRead(_ handler: UpstreamHandler) -> Bool {
        guard handler === upstream, let context else { return true }
        return context.channel.isWritable
    }

    func upstreamWritabilityChanged(_ handler: UpstreamHandler) {
        guard handler === upstream, handler.isWritable, let context else { return }
        resumeReadingIfPossible(context)
    }

    func upstreamClosed(_ handler: UpstreamHandler) {
        guard handler === upstream else { return }
        upstream = nil
        guard case .forwarding(let exchange) = state, let context else { return }
        if !exchange.responseStarted {
            failBeforeResponse(exchange, error: handler.error ?? ProxyError.upstreamClosed, context)
        } else {
            // Mid-response (or mid-upload after the response): the client cannot tell a truncated
            // answer from a complete one unless the connection closes.
            logger.debug("Workspace closed the connection during an exchange")
            closeDownstream(context)
        }
    }

    // MARK: WebSocket

    /// The workspace accepted the upgrade: replace the HTTP codecs on both connections by a
    /// byte tunnel.
    func startTunnel(_ exchange: Exchange, upstream handler: UpstreamHandler, _ context: ChannelHandlerContext) {
        context.flush()
        state = .upgraded
        upstream = nil
        if !queue.isEmpty {
            // Bytes the client sent after its upgrade request were decoded as HTTP; they cannot
            // be turned back into bytes faithfully.
            logger.debug("Client sent data before the upgrade completed; closing")
            closeDownstream(context)
            handler.close()
            return
        }
        let tunnel = WebSocketTunnel(
            key: exchange.target.key,
            gatekeeper: proxy.gatekeeper,
            statistics: proxy.statistics
        )
        let downstreamSide = TunnelHandler(tunnel: tunnel, side: .downstream)
        let upstreamSide = TunnelHandler(tunnel: tunnel, side: .upstream)
        do {
            let sync = context.pipeline.syncOperations
            try sync.addHandler(downstreamSide, position: .before(self))
            let httpHandlers: [any RemovableChannelHandler] = [
                try sync.handler(type: HTTP1ToHTTPServerCodec.self),
                try sync.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self),
                try sync.handler(type: HTTPResponseEncoder.self),
            ]
            for httpHandler in httpHandlers {
                sync.removeHandler(httpHandler, promise: nil)
            }
            try handler.switchToRawBytes(replacement: upstreamSide)
        } catch {
            logger.error("Could not switch to a WebSocket tunnel", metadata: ["atrium.error": "\(error)"])
            tunnel.closeBoth()
            handler.close()
            closeDownstream(context)
            return
        }
        tunnel.start()
        resumeReadingIfPossible(context)
    }
}
