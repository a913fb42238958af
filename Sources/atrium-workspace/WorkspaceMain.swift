import Dispatch
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// `atrium-workspace`: a small stand-in for a Jupyter single-user server, started by the hub as
/// a child process in tests and used as the "direct" baseline of the proxy benchmark.
///
/// Exit statuses: 0 after SIGTERM/SIGINT, 1 for `--fail-start` or a failed bind, 2 for bad
/// options, 3 for `--exit-after` (a simulated crash: the socket file is left behind, as a real
/// crash would leave it).
@main
enum WorkspaceMain {
    nonisolated static func main() {
        let console = Console()
        // Before anything else, so the hub sees the failure even with incomplete settings.
        if CommandLine.arguments.dropFirst().contains("--fail-start") {
            console.error("atrium-workspace: failing to start as asked (--fail-start)")
            exit(1)
        }
        signal(SIGPIPE, SIG_IGN)
        var warnings: [String] = []
        let configuration: WorkspaceConfiguration
        do {
            guard let parsed = try WorkspaceConfiguration.parse(
                Array(CommandLine.arguments.dropFirst()), environment: ProcessInfo.processInfo.environment,
                warnings: &warnings)
            else {
                console.info(WorkspaceConfiguration.usage)
                exit(0)
            }
            configuration = parsed
        } catch {
            console.error("atrium-workspace: \(error)\n\(WorkspaceConfiguration.usage)")
            exit(2)
        }
        for warning in warnings { console.error("atrium-workspace: \(warning)") }

        // Signals first, so a stop during --ready-delay is prompt too.
        let shutdown = Shutdown()
        let signalQueue = DispatchQueue(label: "atrium-workspace.signals")
        let signalSources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: signalQueue)
            source.setEventHandler { @Sendable in shutdown.request() }
            source.resume()
            return source
        }
        if let exitAfter = configuration.exitAfter {
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(exitAfter.nanoseconds))) { @Sendable in
                console.error("atrium-workspace: exiting with status 3 (--exit-after)")
                exit(3)
            }
        }
        if let delay = configuration.readyDelay {
            shutdown.sleep(delay)
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let stats = WorkspaceStats(group: group, started: Date())
        let routes = WorkspaceRoutes(configuration: configuration, stats: stats)
        let channel: any Channel
        do {
            channel = try bind(configuration.listen, group: group, routes: routes)
        } catch {
            console.error("atrium-workspace: cannot listen on \(configuration.listen): \(error)")
            exit(1)
        }
        shutdown.serve(channel)
        if let activity = configuration.activity {
            ActivityReporter(settings: activity, stats: stats, console: console, loop: group.next()).start()
        }
        switch configuration.listen {
        case .tcp(let host, _):
            let port = channel.localAddress?.port ?? 0
            console.info("atrium-workspace listening on http://\(host.contains(":") ? "[\(host)]" : host):\(port)")
        case .unix(let path):
            console.info("atrium-workspace listening on unix:\(path)")
        }

        try? channel.closeFuture.wait()
        if case .unix(let path) = configuration.listen { unlink(path) }
        console.info("atrium-workspace stopped")
        withExtendedLifetime(signalSources) {}
        exit(0)
    }

    /// Binds and starts accepting. For a Unix socket the file is created under umask 0177 and
    /// chmod'ed to 0600 before the first accept, so only the hub's user can ever connect.
    private static func bind(
        _ listen: WorkspaceConfiguration.Listen, group: MultiThreadedEventLoopGroup, routes: WorkspaceRoutes
    ) throws -> any Channel {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.autoRead, value: false)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 64 * 1024, high: 256 * 1024))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try configureConnection(channel, routes: routes)
                }
            }
        let channel: any Channel
        switch listen {
        case .tcp(let host, let port):
            channel = try bootstrap.bind(host: host, port: port).wait()
        case .unix(let path):
            let previous = umask(0o177)
            defer { umask(previous) }
            channel = try bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
            guard chmod(path, 0o600) == 0 else {
                let reason = String(cString: strerror(errno))
                channel.close(promise: nil)
                throw WorkspaceStartError(description: "chmod 0600 \(path): \(reason)")
            }
        }
        try channel.setOption(.autoRead, value: true).wait()
        return channel
    }

    /// HTTP/1.1 with pipelining assistance and error handling, the WebSocket upgrader for
    /// `{base}ws`, and the route handler. Runs on the channel's event loop.
    private static func configureConnection(_ channel: any Channel, routes: WorkspaceRoutes) throws {
        let counters = routes.stats.counters(for: channel.eventLoop)
        counters.value.connections += 1
        channel.closeFuture.whenComplete { _ in counters.value.connections -= 1 }

        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: 16 << 20,
            shouldUpgrade: { channel, head in
                let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
                guard routes.route(path: parts[0]) == .websocket, routes.isAuthorized(head.headers, query: parts.count > 1 ? parts[1] : nil) else {
                    // The request goes on to WorkspaceHTTPHandler, which answers 403 or 404.
                    return channel.eventLoop.makeSucceededFuture(nil)
                }
                return channel.eventLoop.makeSucceededFuture(HTTPHeaders())
            },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    counters.value.requests += 1
                    counters.value.lastActivity = wallClockSeconds()
                    let pipeline = channel.pipeline.syncOperations
                    pipeline.removeHandler(try pipeline.handler(type: WorkspaceHTTPHandler.self), promise: nil)
                    try pipeline.addHandler(WebSocketEchoHandler(counters: counters))
                }
            })
        let pipeline = channel.pipeline.syncOperations
        try pipeline.configureHTTPServerPipeline(
            withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in }),
            withErrorHandling: true)
        try pipeline.addHandler(WorkspaceHTTPHandler(routes: routes, counters: counters), name: WorkspaceHTTPHandler.name)
    }
}

/// A start-up failure other than bad options.
struct WorkspaceStartError: Error, CustomStringConvertible {
    var description: String
}

/// Coordinates SIGTERM/SIGINT with the main thread: before the server listens a signal exits
/// at once; afterwards it closes the listening channel, and the main thread cleans up and exits.
final class Shutdown: @unchecked Sendable {
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var requested = false
    private var channel: (any Channel)?

    /// Called from the signal queue.
    func request() {
        condition.lock()
        requested = true
        let channel = self.channel
        condition.broadcast()
        condition.unlock()
        if let channel {
            channel.close(promise: nil)
        } else {
            exit(0)
        }
    }

    /// Waits up to `delay`.
    func sleep(_ delay: TimeAmount) {
        let deadline = Date(timeIntervalSinceNow: Double(delay.nanoseconds) / 1_000_000_000)
        condition.lock()
        while !requested, condition.wait(until: deadline) {}
        condition.unlock()
    }

    /// From now on a signal closes `channel`; closes it at once if a signal already came.
    func serve(_ channel: any Channel) {
        condition.lock()
        self.channel = channel
        let already = requested
        condition.unlock()
        if already { channel.close(promise: nil) }
    }
}
