import AtriumModel
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// Tells the hub when the workspace was last used, as a Jupyter single-user server does:
/// every `interval`, if a request arrived since the last successful report, it POSTs
/// `{api_url}/users/{user}/activity`.
///
/// Runs on one event loop; a report finishes (or times out) before the next check is scheduled,
/// so reports never overlap. Failures are logged and retried at the next interval.
final class ActivityReporter: Sendable {
    private let settings: WorkspaceConfiguration.Activity
    private let stats: WorkspaceStats
    private let console: Console
    private let loop: any EventLoop
    /// Last activity time that the hub acknowledged; only touched on `loop`.
    private let reported: NIOLoopBoundBox<Double>
    /// How long one report may take, connection included.
    private let timeout: TimeAmount = .seconds(30)

    init(settings: WorkspaceConfiguration.Activity, stats: WorkspaceStats, console: Console, loop: any EventLoop) {
        self.settings = settings
        self.stats = stats
        self.console = console
        self.loop = loop
        self.reported = .makeBoxSendingValue(0, eventLoop: loop)
    }

    /// Starts the periodic check; it runs until the event loop group shuts down.
    func start() {
        loop.scheduleRepeatedAsyncTask(initialDelay: settings.interval, delay: settings.interval) { _ in
            self.reportIfActive()
        }
    }

    private func reportIfActive() -> EventLoopFuture<Void> {
        stats.snapshot(on: loop).flatMap { snapshot -> EventLoopFuture<Void> in
            guard let last = snapshot.lastActivity, last.timeIntervalSince1970 > self.reported.value else {
                return self.loop.makeSucceededVoidFuture()
            }
            return self.post(lastActivity: last).map { status in
                if (200..<300).contains(status.code) {
                    self.reported.value = max(self.reported.value, last.timeIntervalSince1970)
                } else {
                    self.console.error("atrium-workspace: activity report got HTTP \(status.code)")
                }
            }.recover { error in
                self.console.error("atrium-workspace: activity report failed: \(error)")
            }
        }
    }

    /// One POST on a fresh connection (`Connection: close`), resolving to the response status.
    private func post(lastActivity: Date) -> EventLoopFuture<HTTPResponseStatus> {
        let time = JSONValue.quoted(Timestamp.format(lastActivity))
        let body = #"{"servers":{\#(JSONValue.quoted(settings.serverName)):{"last_activity":\#(time)}},"last_activity":\#(time)}"#
        let path = settings.path + "/users/" + Self.percentEncode(settings.user) + "/activity"
        var headers = HTTPHeaders()
        let hostHeader = settings.host.contains(":") ? "[\(settings.host)]" : settings.host
        headers.add(name: "host", value: settings.port == 80 ? hostHeader : "\(hostHeader):\(settings.port)")
        headers.add(name: "authorization", value: "token \(settings.token)")
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: String(body.utf8.count))
        headers.add(name: "connection", value: "close")
        headers.add(name: "user-agent", value: "atrium-workspace")
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)

        let promise = loop.makePromise(of: HTTPResponseStatus.self)
        let timeout = timeout
        ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ActivityResponseHandler(promise: promise))
                }
            }
            .connect(host: settings.host, port: settings.port)
            .whenComplete { result in
                switch result {
                case .failure(let error):
                    promise.fail(error)
                case .success(let channel):
                    let timer = channel.eventLoop.scheduleTask(in: timeout) {
                        promise.fail(ActivityReportError(description: "no response within \(timeout)"))
                        channel.close(promise: nil)
                    }
                    promise.futureResult.whenComplete { _ in timer.cancel() }
                    channel.write(HTTPClientRequestPart.head(head), promise: nil)
                    channel.write(HTTPClientRequestPart.body(.byteBuffer(channel.allocator.buffer(string: body))), promise: nil)
                    channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { promise.fail($0) }
                }
            }
        return promise.futureResult
    }

    /// Percent-encodes everything but RFC 3986 unreserved characters (user names may hold "@" etc.).
    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                out += "%" + (hex.count == 1 ? "0" + hex : hex)
            }
        }
        return out
    }
}

/// Why a report failed when no lower-level error says it.
struct ActivityReportError: Error, CustomStringConvertible {
    var description: String
}

/// Completes the promise with the response status once the response has ended, then closes.
/// The closing connection's `channelInactive` must not turn a success into a failure, hence `done`
/// (NIO would ignore the second completion anyway; this makes the intent explicit).
private final class ActivityResponseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let promise: EventLoopPromise<HTTPResponseStatus>
    private var status: HTTPResponseStatus?
    private var done = false

    init(promise: EventLoopPromise<HTTPResponseStatus>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if head.status.code >= 200 { status = head.status }
        case .body:
            break
        case .end:
            if let status { complete(.success(status)) }
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        complete(.failure(error))
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        complete(.failure(ActivityReportError(description: "connection closed before a response")))
        context.fireChannelInactive()
    }

    private func complete(_ result: Result<HTTPResponseStatus, any Error>) {
        guard !done else { return }
        done = true
        promise.completeWith(result)
    }
}
