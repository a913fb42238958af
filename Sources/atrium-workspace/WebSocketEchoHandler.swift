import NIOCore
import NIOWebSocket

/// Echoes WebSocket text, binary and continuation frames as they arrive (so fragmentation is
/// preserved), answers pings, and completes the closing handshake.
///
/// Installed by the upgrader after `WorkspaceHTTPHandler` is removed. Incoming data frames count
/// as activity, as kernel messages do for a Jupyter server. Reads are held back while the channel
/// is not writable, so a client that does not read its echoes cannot grow our memory.
final class WebSocketEchoHandler: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let counters: NIOLoopBoundBox<WorkspaceStats.Counters>
    private var sentClose = false
    private var readPending = false
    private var needsFlush = false

    init(counters: NIOLoopBoundBox<WorkspaceStats.Counters>) {
        self.counters = counters
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary, .continuation:
            guard !sentClose else { return }
            counters.value.lastActivity = wallClockSeconds()
            let reply = WebSocketFrame(fin: frame.fin, opcode: frame.opcode, data: frame.unmaskedData)
            context.write(wrapOutboundOut(reply), promise: nil)
            needsFlush = true
        case .ping:
            guard !sentClose else { return }
            context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
            needsFlush = true
        case .pong:
            break
        case .connectionClose:
            if sentClose {
                // Our close was answered: the handshake is complete.
                context.close(promise: nil)
            } else {
                // Echo the status code (RFC 6455 §5.5.1), then close the TCP connection.
                var data = frame.unmaskedData
                let code = data.readSlice(length: min(2, data.readableBytes)) ?? context.channel.allocator.buffer(capacity: 0)
                close(context: context, payload: code)
            }
        default:
            var payload = context.channel.allocator.buffer(capacity: 2)
            payload.write(webSocketErrorCode: .protocolError)
            close(context: context, payload: payload)
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
        if context.channel.isWritable, readPending {
            readPending = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func close(context: ChannelHandlerContext, payload: ByteBuffer) {
        sentClose = true
        needsFlush = false
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: payload)))
            .assumeIsolated()
            .whenComplete { _ in context.close(promise: nil) }
    }
}
