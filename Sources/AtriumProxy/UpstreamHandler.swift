import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOPosix

/// The last handler of a connection to a workspace. It hands everything to the `ProxyHandler`
/// that owns the connection; both live on the same event loop, so calls are direct.
///
/// Pipeline: `HTTPRequestEncoder` → `ByteToMessageHandler<HTTPResponseDecoder>` →
/// `HTTP1ToHTTPClientCodec` → `UpstreamHandler`.
final class UpstreamHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPResponsePart
    typealias OutboundIn = HTTPRequestPart
    typealias OutboundOut = HTTPRequestPart

    /// The client connection this one serves; weak so a closed client frees its upstreams.
    weak var owner: ProxyHandler?
    let target: ProxyTarget
    /// False once the workspace asked to close, or the exchange ended abnormally.
    var reusable = true
    /// The first error seen on this connection (used for the 503 text).
    private(set) var error: (any Error)?
    private var context: ChannelHandlerContext?
    private var readPending = false

    init(owner: ProxyHandler, target: ProxyTarget) {
        self.owner = owner
        self.target = target
    }

    var isActive: Bool { context?.channel.isActive ?? false }
    var isWritable: Bool { context?.channel.isWritable ?? false }

    /// The HTTP/1 handlers, for removal after a protocol switch.
    private var httpHandlers: [any RemovableChannelHandler] = []

    /// Configures a freshly created upstream channel.
    static func configure(channel: any Channel, owner: ProxyHandler, target: ProxyTarget) throws {
        let encoder = HTTPRequestEncoder()
        let decoder = ByteToMessageHandler(
            HTTPResponseDecoder(leftOverBytesStrategy: .forwardBytes, informationalResponseStrategy: .forward)
        )
        let codec = HTTP1ToHTTPClientCodec()
        let handler = UpstreamHandler(owner: owner, target: target)
        handler.httpHandlers = [codec, decoder, encoder]
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(encoder)
        try sync.addHandler(decoder)
        try sync.addHandler(codec)
        try sync.addHandler(handler)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    // MARK: Calls from the ProxyHandler

    func write(_ part: HTTPRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    func flush() {
        context?.flush()
    }

    func close() {
        reusable = false
        context?.close(promise: nil)
    }

    /// Reads again if a read was held back because the client was not writable.
    func resumeReading() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    /// Replaces the HTTP/1 handlers with `replacement`, which then sees raw bytes.
    func switchToRawBytes(replacement: any ChannelHandler) throws {
        guard let context else { throw ProxyError.upstreamClosed }
        try context.pipeline.syncOperations.addHandler(replacement, position: .before(self))
        for handler in httpHandlers {
            context.pipeline.syncOperations.removeHandler(handler, promise: nil)
        }
        httpHandlers = []
    }

    // MARK: Channel events

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard let owner else {
            close()
            return
        }
        owner.upstreamRead(part, from: self)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        owner?.upstreamReadComplete(from: self)
    }

    func read(context: ChannelHandlerContext) {
        // Read from the workspace only while the client can take more: download backpressure.
        if owner?.upstreamMayRead(self) ?? true {
            context.read()
        } else {
            readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        owner?.upstreamWritabilityChanged(self)
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        reusable = false
        owner?.upstreamClosed(self)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The decoder has delivered everything before this event; a half-closed workspace
            // connection cannot serve another request.
            reusable = false
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.error == nil { self.error = error }
        reusable = false
        context.close(promise: nil)
    }
}

extension UpstreamHandler {
    /// Opens a connection to `target` on `eventLoop`; its `UpstreamHandler` reports to `owner`.
    static func connect(
        to target: ProxyTarget,
        owner: ProxyHandler,
        on eventLoop: any EventLoop,
        timeout: Duration
    ) -> EventLoopFuture<any Channel> {
        let boundOwner = NIOLoopBound(owner, eventLoop: eventLoop)
        let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.nanoseconds(max(nanoseconds, 1)))
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try UpstreamHandler.configure(channel: channel, owner: boundOwner.value, target: target)
                }
            }
        switch target.address {
        case .tcp(let host, let port):
            return bootstrap.connect(host: host, port: port)
        case .unix(let path):
            return bootstrap.connect(unixDomainSocketPath: path)
        }
    }
}
