import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// The relay's connection to the API server: TLS (when `https`), HTTP/1 codecs, this handler.
final class RelayUpstreamHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    weak var owner: RelayHandler?
    private var context: ChannelHandlerContext?
    private var httpHandlers: [any RemovableChannelHandler] = []
    private var readPending = false
    private var error: (any Error)?

    init(owner: RelayHandler) {
        self.owner = owner
    }

    var isActive: Bool { context?.channel.isActive ?? false }
    var isWritable: Bool { context?.channel.isWritable ?? true }

    static func connect(to upstream: RelayUpstream, owner: RelayHandler, on eventLoop: any EventLoop) -> EventLoopFuture<RelayUpstreamHandler> {
        let boundOwner = NIOLoopBound(owner, eventLoop: eventLoop)
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(10))
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    if let tls = upstream.tls {
                        try sync.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: upstream.serverHostname))
                    }
                    let encoder = HTTPRequestEncoder()
                    let decoder = ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes, informationalResponseStrategy: .drop))
                    let handler = RelayUpstreamHandler(owner: boundOwner.value)
                    handler.httpHandlers = [encoder, decoder]
                    try sync.addHandlers([encoder, decoder, handler])
                }
            }
            .connect(host: upstream.host, port: upstream.port)
            .flatMapThrowing { channel in try channel.pipeline.syncOperations.handler(type: RelayUpstreamHandler.self) }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func write(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    func close() {
        context?.close(promise: nil)
    }

    func resumeReading() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    func switchToRawBytes(replacement: any ChannelHandler) throws {
        guard let context else { throw ChannelError.ioOnClosedChannel }
        let sync = context.pipeline.syncOperations
        try sync.addHandler(replacement, position: .before(self))
        for handler in httpHandlers { sync.removeHandler(handler, promise: nil) }
        owner = nil
        sync.removeHandler(self, promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let owner else {
            context.close(promise: nil)
            return
        }
        owner.upstreamRead(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner?.upstreamReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        // Download backpressure: read from the API server only while the hub takes more.
        if owner?.mayReadUpstream ?? true {
            context.read()
        } else {
            readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { owner?.upstreamWritable() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        owner?.upstreamClosed(self, error: error)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.error == nil { self.error = error }
        context.close(promise: nil)
    }
}

/// One half of a byte tunnel: what one side reads, the other writes; each reads only while
/// its partner can write.
final class RelayGlue: ChannelDuplexHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    typealias OutboundOut = NIOAny

    private var partner: RelayGlue?
    private var context: ChannelHandlerContext?
    private var readPending = false

    static func matchedPair() -> (RelayGlue, RelayGlue) {
        let first = RelayGlue()
        let second = RelayGlue()
        first.partner = second
        second.partner = first
        return (first, second)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    /// Asks for the next bytes (a read a removed handler held back is not re-issued by NIO).
    func startReading() {
        context?.read()
    }

    /// Writes and flushes bytes of this side's own (the relay's `101`).
    func writeRaw(_ buffer: ByteBuffer) {
        context?.writeAndFlush(NIOAny(buffer), promise: nil)
    }

    private func partnerWrite(_ data: NIOAny) {
        context?.write(data, promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    private func partnerClose() {
        context?.close(promise: nil)
    }

    private func partnerWriteEOF() {
        context?.close(mode: .output, promise: nil)
    }

    private var partnerWritable: Bool { context?.channel.isWritable ?? false }

    private func partnerBecameWritable() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.partnerWrite(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.partnerClose()
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            partner?.partnerWriteEOF()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if partner?.partnerWritable ?? false {
            context.read()
        } else {
            readPending = true
        }
    }
}
