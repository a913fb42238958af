import AtriumSpawn
import AtriumStore
import Logging
import ServiceLifecycle

/// Writes the proxy's activity to the store every `interval`, and once more on shutdown.
struct ActivityFlushService: Service {
    let recorder: ActivityRecorder
    let store: Store
    let interval: Duration
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            do {
                try await recorder.flush(to: store)
            } catch {
                logger.error("could not record activity", metadata: ["atrium.error": "\(error)"])
            }
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
