import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// One client connection's proxy: sits in the hub's HTTP/1 pipeline between the HTTP codecs and
/// the hub's request loop, forwards requests under the proxy prefix to workspaces, and passes
/// all others (and the hub's responses) through untouched.
///
/// Exactly one request is in flight per connection: a request arriving while another one is being
/// answered (pipelining, or a proxied request after a hub request on a keep-alive connection)
/// is queued and the socket is not read until the previous response has ended, so responses
/// never interleave and memory stays bounded.
public final class ProxyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = HTTPRequestPart
    public typealias InboundOut = HTTPRequestPart
    public typealias OutboundIn = HTTPResponsePart
    public typealias OutboundOut = HTTPResponsePart

    /// One forwarded request and its response.
    struct Exchange {
        var target: ProxyTarget
        /// The request as sent upstream.
        var request: HTTPRequest
        var isUpgrade: Bool
        /// The client sent `Connection: close`.
        var closeAfterResponse: Bool
        var requestEnded = false
        var responseStarted = false
        var responseEnded = false
        /// A `101` answered an upgrade request; the tunnel starts at the response's end.
        var switching = false
    }

    enum State {
        /// Waiting for a request head.
        case idle
        /// The hub's request loop owns the current request.
        case hub(requestEnded: Bool, responseEnded: Bool)
        /// The gatekeeper's slow path is running; body parts wait in the queue.
        case deciding(HTTPRequest)
        /// Connecting to the workspace; body parts wait in the queue.
        case connecting(Exchange)
        /// The request goes to, and the response comes from, `upstream`.
        case forwarding(Exchange)
        /// A WebSocket tunnel relays raw bytes; this handler only passes events on.
        case upgraded
        case closed
    }

    let proxy: ReverseProxy
    var logger: Logger
    var state: State = .idle
    /// Request parts that cannot be handled yet, in arrival order.
    var queue = CircularBuffer<HTTPRequestPart>()
    var queuedBytes = 0
    var draining = false
    /// Between `channelRead` and `channelReadComplete` of the socket.
    var inReadCycle = false
    /// Parts went to the hub since its last `channelReadComplete`. The hub's async channel only
    /// hands parts to the request loop on `channelReadComplete`, so parts released from the
    /// queue outside a read cycle need one of their own.
    var firedToHubSinceReadComplete = false
    var readPending = false
    /// The request loop half-closed the output while a proxied exchange was still running.
    var deferredOutputClose: (promise: EventLoopPromise<Void>?, pending: Bool) = (nil, false)
    var context: ChannelHandlerContext?
    /// The keep-alive connection to the last target.
    var upstream: UpstreamHandler?
    /// When activity was last reported, and for which server.
    var lastActivity: (key: RouteKey, at: NIODeadline)?
    /// The client's network address, once this connection is counted against its limit.
    var countedAddress: String?
    /// When the client last sent something, or the hub last finished answering it.
    var lastClientProgress = NIODeadline.now()
    /// The next look at whether the client has gone quiet (``ProxyConfiguration/clientIdleTimeout``).
    var idleCheck: Scheduled<Void>?

    init(proxy: ReverseProxy) {
        self.proxy = proxy
        self.logger = proxy.logger
    }

    // MARK: Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { connectionOpened(context) }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        closeUpstream()
        connectionEnded()
        self.context = nil
    }

    public func channelActive(context: ChannelHandlerContext) {
        connectionOpened(context)
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        queue.removeAll()
        queuedBytes = 0
        closeUpstream()
        connectionEnded()
        context.fireChannelInactive()
    }

    /// Counts the connection against its address's limit (closing it when the address holds
    /// its share already) and starts watching for a quiet client.
    func connectionOpened(_ context: ChannelHandlerContext) {
        guard countedAddress == nil, case .idle = state else { return }
        let address = context.channel.remoteAddress?.ipAddress ?? "unknown"
        guard proxy.connections.open(address, limit: proxy.configuration.maxConnectionsPerAddress) else {
            proxy.statistics.recordRefusedConnection()
            logger.debug("Closing connection: too many from one address", metadata: ["atrium.address": "\(address)"])
            state = .closed
            context.close(promise: nil)
            return
        }
        countedAddress = address
        lastClientProgress = .now()
        if let timeout = proxy.configuration.clientIdleTimeout { scheduleIdleCheck(context, in: TimeAmount(timeout)) }
    }

    func connectionEnded() {
        idleCheck?.cancel()
        idleCheck = nil
        if let address = countedAddress {
            countedAddress = nil
            proxy.connections.close(address)
        }
    }

    /// Whether the hub is waiting for the client: for a request head, or for the rest of a
    /// request body it can take. Not while the client waits for an answer, nor in a tunnel.
    var waitingForClient: Bool {
        switch state {
        case .idle: return true
        case .hub(let requestEnded, _): return !requestEnded
        case .forwarding(let exchange): return !exchange.requestEnded && (upstream?.isWritable ?? false)
        case .deciding, .connecting, .upgraded, .closed: return false
        }
    }

    func scheduleIdleCheck(_ context: ChannelHandlerContext, in delay: TimeAmount) {
        idleCheck = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            self.checkIdle()
        }
    }

    /// Closes the connection when the hub has waited for its client longer than the idle
    /// timeout; otherwise looks again when it could next be due.
    func checkIdle() {
        idleCheck = nil
        guard let context, let timeout = proxy.configuration.clientIdleTimeout.map(TimeAmount.init) else { return }
        switch state {
        case .upgraded, .closed: return
        default: break
        }
        let now = NIODeadline.now()
        guard waitingForClient else {
            // The client waits for us; its quiet time starts when the answer is done.
            lastClientProgress = now
            scheduleIdleCheck(context, in: timeout)
            return
        }
        let quiet = now - lastClientProgress
        if quiet >= timeout {
            proxy.statistics.recordIdleClose()
            logger.debug("Closing connection: the client sent nothing for \(timeout)")
            closeDownstream(context)
        } else {
            scheduleIdleCheck(context, in: timeout - quiet)
        }
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        switch state {
        case .idle, .hub:
            // The hub's request loop answers parse errors with 400.
            context.fireErrorCaught(error)
        case .deciding, .connecting, .forwarding, .upgraded, .closed:
            logger.debug("Closing proxied connection after error", metadata: ["atrium.error": "\(error)"])
            closeDownstream(context)
        }
    }

    // MARK: Inbound (client → hub or workspace)

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        inReadCycle = true
        lastClientProgress = .now()
        switch state {
        case .closed, .upgraded:
            return
        default:
            break
        }
        queue.append(part)
        if case .body(let buffer) = part { queuedBytes += buffer.readableBytes }
        drain(context)
        if queuedBytes > proxy.configuration.maxBufferedBytes {
            logger.warning("Closing connection: \(ProxyError.bufferLimitExceeded.logMessage)")
            closeDownstream(context)
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        inReadCycle = false
        firedToHubSinceReadComplete = false
        upstream?.flush()
        context.fireChannelReadComplete()
    }

    func fireToHub(_ part: HTTPRequestPart, _ context: ChannelHandlerContext) {
        firedToHubSinceReadComplete = true
        context.fireChannelRead(wrapInboundOut(part))
    }

    public func read(context: ChannelHandlerContext) {
        if mayReadDownstream {
            context.read()
        } else {
            readPending = true
        }
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { upstream?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    /// Whether the client socket may be read: not while anything is queued, and during an upload
    /// only while the workspace connection takes more (upload backpressure).
    var mayReadDownstream: Bool {
        guard queue.isEmpty else { return false }
        switch state {
        case .idle, .hub, .upgraded: return true
        case .deciding, .connecting, .closed: return false
        case .forwarding(let exchange): return exchange.requestEnded || (upstream?.isWritable ?? false)
        }
    }

    func resumeReadingIfPossible(_ context: ChannelHandlerContext) {
        if readPending, mayReadDownstream {
            readPending = false
            context.read()
        }
    }

    /// Handles queued parts for as long as the state allows.
    func drain(_ context: ChannelHandlerContext) {
        if draining { return }
        draining = true
        defer { draining = false }
        // Pop before processing: processing may itself consume queued parts (a failed exchange
        // drops its queued body) or empty the queue (closing).
        while let part = queue.popFirst() {
            let size: Int
            if case .body(let buffer) = part { size = buffer.readableBytes } else { size = 0 }
            queuedBytes -= size
            guard process(part, context) else {
                queue.prepend(part)
                queuedBytes += size
                break
            }
        }
        upstream?.flush()
        if firedToHubSinceReadComplete, !inReadCycle {
            firedToHubSinceReadComplete = false
            context.fireChannelReadComplete()
        }
        resumeReadingIfPossible(context)
    }

    /// Handles one part; `false` if it has to wait.
    func process(_ part: HTTPRequestPart, _ context: ChannelHandlerContext) -> Bool {
        switch state {
        case .idle:
            if case .head(let head) = part {
                start(head, context)
            } else {
                fireToHub(part, context)
            }
            return true
        case .hub(let requestEnded, let responseEnded):
            if requestEnded { return false }
            fireToHub(part, context)
            if case .end = part {
                state = responseEnded ? .idle : .hub(requestEnded: true, responseEnded: false)
            }
            return true
        case .deciding, .connecting:
            return false
        case .forwarding(var exchange):
            if exchange.requestEnded { return false }
            switch part {
            case .head:
                // The decoder never sends a head inside a request; treat it as a broken client.
                closeDownstream(context)
                return true
            case .body(let buffer):
                proxy.statistics.addRequestBytes(buffer.readableBytes)
            case .end:
                exchange.requestEnded = true
                state = .forwarding(exchange)
            }
            upstream?.write(part)
            if exchange.requestEnded, exchange.responseEnded { finish(exchange, context) }
            return true
        case .upgraded, .closed:
            return true
        }
    }

    /// A new request head: pass it to the hub or ask the gatekeeper.
    func start(_ head: HTTPRequest, _ context: ChannelHandlerContext) {
        guard let path = head.path, path.hasPrefix(proxy.configuration.pathPrefix) else {
            passToHub(head, context)
            return
        }
        if let decision = proxy.gatekeeper.decideImmediately(head) {
            apply(decision, to: head, context)
            return
        }
        state = .deciding(head)
        let gatekeeper = proxy.gatekeeper
        context.eventLoop.makeFutureWithTask {
            await gatekeeper.decide(head)
        }.assumeIsolated().whenSuccess { decision in
            guard case .deciding = self.state, let context = self.context else { return }
            self.apply(decision, to: head, context)
            self.drain(context)
        }
    }

    func passToHub(_ head: HTTPRequest, _ context: ChannelHandlerContext) {
        state = .hub(requestEnded: false, responseEnded: false)
        fireToHub(.head(head), context)
    }

    func apply(_ decision: ProxyDecision, to head: HTTPRequest, _ context: ChannelHandlerContext) {
        switch decision {
        case .hub:
            passToHub(head, context)
        case .forward(let target):
            forward(head, to: target, context)
        }
    }

    func forward(_ head: HTTPRequest, to target: ProxyTarget, _ context: ChannelHandlerContext) {
        // Per-request work stays small: metadata changes only with the target, and activity is
        // reported at most once a second per connection (the store keeps it per flush anyway).
        let now = NIODeadline.now()
        if lastActivity?.key != target.key || now - lastActivity!.at >= .seconds(1) {
            if lastActivity?.key != target.key {
                logger[metadataKey: "atrium.user"] = "\(target.key.user)"
                logger[metadataKey: "atrium.server"] = "\(target.key.server)"
            }
            lastActivity = (target.key, now)
            proxy.gatekeeper.recordActivity(target.key)
        }
        proxy.statistics.recordForwardedRequest()
        let request = HeaderRewriting.upstreamRequest(
            head,
            target: target,
            configuration: proxy.configuration,
            clientAddress: context.channel.remoteAddress
        )
        let exchange = Exchange(
            target: target,
            request: request,
            isUpgrade: HeaderRewriting.isWebSocketUpgrade(head),
            closeAfterResponse: HeaderRewriting.wantsClose(head.headerFields) || HeaderRewriting.stopsHTTPParsing(head)
        )
        // An upgrade gets a fresh connection: many servers (NIO's upgrader among them) only
        // switch protocols on a connection's first request.
        if let upstream, upstream.target == target, upstream.reusable, upstream.isActive, !exchange.isUpgrade {
            state = .forwarding(exchange)
            upstream.write(.head(request))
            return
        }
        closeUpstream()
        state = .connecting(exchange)
        UpstreamHandler.connect(
            to: target,
            owner: self,
            on: context.eventLoop,
            timeout: proxy.configuration.connectTimeout
        ).assumeIsolated().whenComplete { result in
            guard case .connecting(let exchange) = self.state, let context = self.context else {
                if case .success(let channel) = result { channel.close(promise: nil) }
                return
            }
            switch result {
            case .success(let channel):
                guard let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamHandler.self),
                    channel.isActive
                else {
                    channel.close(promise: nil)
                    self.failBeforeResponse(exchange, error: ProxyError.upstreamClosed, context)
                    return
                }
                self.upstream = handler
                self.state = .forwarding(exchange)
                handler.write(.head(exchange.request))
                self.drain(context)
            case .failure(let error):
                self.failBeforeResponse(exchange, error: ProxyError.connectFailed(error), context)
            }
        }
    }

    // MARK: Outbound (hub's responses)

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
        guard case .end = unwrapOutboundIn(data), case .hub(let requestEnded, _) = state else { return }
        if requestEnded {
            becomeIdle(context)
        } else {
            // The hub answered before reading the whole body; it drains the rest itself.
            state = .hub(requestEnded: false, responseEnded: true)
        }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // The request loop half-closes its output when the client half-closed its input; a
        // proxied response still on its way must be allowed to finish first.
        if mode == .output {
            switch state {
            case .deciding, .connecting, .forwarding:
                deferredOutputClose = (promise, true)
                return
            default:
                break
            }
        }
        context.close(mode: mode, promise: promise)
    }

    // MARK: Completion

    /// Both the request and the response are complete.
    func finish(_ exchange: Exchange, _ context: ChannelHandlerContext) {
        if let upstream, !upstream.reusable { closeUpstream() }
        if exchange.closeAfterResponse || deferredOutputClose.pending {
            closeDownstream(context)
            return
        }
        becomeIdle(context)
    }

    /// The exchange is over: wait for the client's next request (its quiet time starts now)
    /// and handle what it already sent.
    func becomeIdle(_ context: ChannelHandlerContext) {
        state = .idle
        lastClientProgress = .now()
        drain(context)
    }

    /// Answers 503 for a request whose response never started.
    func failBeforeResponse(_ exchange: Exchange, error: any Error, _ context: ChannelHandlerContext) {
        var exchange = exchange
        if !exchange.requestEnded {
            // Parts queued while connecting: if the whole request is here, drop its body and keep
            // the connection; otherwise the rest is still on the wire and the connection must close.
            while let part = queue.first {
                if case .head = part { break }
                queue.removeFirst()
                if case .body(let buffer) = part { queuedBytes -= buffer.readableBytes }
                if case .end = part {
                    exchange.requestEnded = true
                    break
                }
            }
        }
        proxy.statistics.recordUpstreamError()
        proxy.statistics.recordResponse(statusCode: 503)
        proxy.gatekeeper.upstreamFailed(exchange.target.key, error: error)
        logger.info(
            "Workspace not reachable",
            metadata: ["atrium.error": "\(ProxyError.describe(error))", "atrium.target": "\(exchange.target.address)"]
        )
        closeUpstream()
        let key = exchange.target.key
        let serverPath = proxy.configuration.pathPrefix + key.user + "/" + (key.server.isEmpty ? "" : key.server + "/")
        let body = HeaderRewriting.unreachableBody(serverPath: serverPath, reason: ProxyError.describe(error))
        let bodyBuffer = context.channel.allocator.buffer(string: body)
        // Without the rest of the request body the connection cannot be reused.
        let mustClose = !exchange.requestEnded || exchange.closeAfterResponse || deferredOutputClose.pending
        var response = HTTPResponse(status: .serviceUnavailable)
        response.headerFields[.contentType] = "application/json; charset=utf-8"
        response.headerFields[.contentLength] = "\(bodyBuffer.readableBytes)"
        if mustClose { response.headerFields[.connection] = "close" }
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        context.write(wrapOutboundOut(.body(bodyBuffer)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        if mustClose {
            closeDownstream(context)
        } else {
            becomeIdle(context)
        }
    }

    func closeUpstream() {
        let old = upstream
        upstream = nil
        old?.close()
    }

    func closeDownstream(_ context: ChannelHandlerContext) {
        state = .closed
        queue.removeAll()
        queuedBytes = 0
        closeUpstream()
        let promise = deferredOutputClose.promise
        deferredOutputClose = (nil, false)
        context.close(promise: promise)
    }
}

@available(*, unavailable)
extension ProxyHandler: Sendable {}
