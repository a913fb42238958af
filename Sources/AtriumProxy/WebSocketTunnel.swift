import NIOCore

/// Relays raw bytes between a client connection and a workspace connection after a WebSocket
/// upgrade. Both connections share one event loop, so the two `TunnelHandler`s call each other
/// directly. Reads on one side happen only while the other side is writable (backpressure).
final class WebSocketTunnel {
    enum Side { case downstream, upstream }

    private let key: RouteKey
    private let gatekeeper: any ProxyGatekeeper
    private let statistics: ProxyStatistics
    fileprivate var downstream: TunnelHandler?
    fileprivate var upstream: TunnelHandler?
    private var open = false
    private var lastActivity: NIODeadline = .distantPast
    private static let activityInterval: TimeAmount = .seconds(1)

    init(key: RouteKey, gatekeeper: any ProxyGatekeeper, statistics: ProxyStatistics) {
        self.key = key
        self.gatekeeper = gatekeeper
        self.statistics = statistics
    }

    fileprivate func register(_ handler: TunnelHandler) {
        switch handler.side {
        case .downstream: downstream = handler
        case .upstream: upstream = handler
        }
    }

    fileprivate func peer(of handler: TunnelHandler) -> TunnelHandler? {
        switch handler.side {
        case .downstream: upstream
        case .upstream: downstream
        }
    }

    /// Both sides are in place: count the tunnel and start reading.
    func start() {
        open = true
        statistics.webSocketOpened()
        downstream?.resumeReading()
        upstream?.resumeReading()
    }

    fileprivate func relay(_ buffer: ByteBuffer, from handler: TunnelHandler) {
        switch handler.side {
        case .downstream: statistics.addRequestBytes(buffer.readableBytes)
        case .upstream: statistics.addResponseBytes(buffer.readableBytes)
        }
        let now = NIODeadline.now()
        if now - lastActivity >= Self.activityInterval {
            lastActivity = now
            gatekeeper.recordActivity(key)
        }
        peer(of: handler)?.write(buffer)
    }

    /// One side closed: close the other and forget both.
    fileprivate func sideClosed(_ handler: TunnelHandler) {
        let other = peer(of: handler)
        downstream = nil
        upstream = nil
        other?.close()
        if open {
            open = false
            statistics.webSocketClosed()
        }
    }

    func closeBoth() {
        let handlers = [downstream, upstream]
        downstream = nil
        upstream = nil
        for handler in handlers { handler?.close() }
        if open {
            open = false
            statistics.webSocketClosed()
        }
    }
}

/// One end of a `WebSocketTunnel`, placed where the HTTP codecs were.
final class TunnelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let side: WebSocketTunnel.Side
    private let tunnel: WebSocketTunnel
    private var context: ChannelHandlerContext?
    private var readPending = false
    private(set) var inputClosed = false

    init(tunnel: WebSocketTunnel, side: WebSocketTunnel.Side) {
        self.tunnel = tunnel
        self.side = side
        tunnel.register(self)
    }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func write(_ buffer: ByteBuffer) {
        context?.write(wrapOutboundOut(buffer), promise: nil)
    }

    func close() {
        context?.close(promise: nil)
    }

    func resumeReading() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    /// The peer finished sending: finish sending here too, keeping this side's input open.
    fileprivate func closeOutput() {
        guard let context else { return }
        let promise = context.eventLoop.makePromise(of: Void.self)
        promise.futureResult.assumeIsolated().whenFailure { _ in
            // The transport cannot half-close; close it completely.
            self.close()
        }
        context.close(mode: .output, promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        tunnel.relay(unwrapInboundIn(data), from: self)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        tunnel.peer(of: self)?.context?.flush()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if tunnel.peer(of: self)?.isWritable ?? false {
            context.read()
        } else {
            readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { tunnel.peer(of: self)?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // Not passed on: the hub's request loop would answer by half-closing this
            // connection's output, which belongs to the tunnel now.
            inputClosed = true
            guard let peer = tunnel.peer(of: self) else {
                context.close(promise: nil)
                return
            }
            if peer.inputClosed {
                tunnel.closeBoth()
            } else {
                peer.closeOutput()
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        tunnel.sideClosed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

@available(*, unavailable)
extension TunnelHandler: Sendable {}

@available(*, unavailable)
extension WebSocketTunnel: Sendable {}
