import AtriumSpawn
import AtriumStore
import Logging
import ServiceLifecycle

/// Writes the proxy's activity to the store every `interval`, and once more on shutdown; then
/// checks the proxy's routes against the servers — JupyterHub's `update_last_activity` (its
/// proxy poll) followed by `check_routes`.
struct ActivityFlushService: Service {
    let recorder: ActivityRecorder
    let store: Store
    let manager: ServerManager
    let interval: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            let began = ContinuousClock.now
            do {
                try await recorder.flush(to: store)
                manager.metrics.recordProxyPoll(seconds: (ContinuousClock.now - began).seconds)
            } catch {
                logger.error("could not record activity", metadata: ["atrium.error": "\(error)"])
            }
            if !Task.isShuttingDownGracefully { await manager.checkRoutes() }
        }
    }
}

/// Measures how late the hub's task scheduler wakes a task that asked to sleep 50 ms, as
/// JupyterHub measures its event loop (`jupyterhub_event_loop_interval_seconds`): a loaded or
/// blocked cooperative pool shows as intervals well above 50 ms.
struct EventLoopIntervalService: Service {
    let metrics: HubMetrics
    var interval: Duration = .milliseconds(50)

    func run() async throws {
        let clock = ContinuousClock()
        var last = clock.now
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                return
            }
            let now = clock.now
            metrics.recordEventLoopInterval(seconds: (now - last).seconds)
            last = now
        }
    }
}

/// Lets the server manager act on shutdown: cancel starts, and stop servers if configured.
struct ServerManagerService: Service {
    let manager: ServerManager

    func run() async throws {
        try? await gracefulShutdown()
        await manager.shutdown()
    }
}
