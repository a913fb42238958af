import Foundation
import Logging
import ServiceLifecycle

/// A watch-based cache of the Deployments and Pods Atrium manages in one namespace (selected by
/// the managed-by and type labels), so status reads cost no API call.
///
/// It is a `Service`: `run()` lists, then watches from the list's resourceVersion, resumes
/// after the server ends a watch, relists on 410 Gone, and retries other errors with bounded
/// exponential backoff. When a watch fails `maxConsecutiveFailures` times in a row it gives up
/// loudly: ``health`` turns unhealthy and `run()` throws (which ends the hub's ServiceGroup),
/// never a silently frozen cache.
public final class WorkspaceCache: Service, Sendable {
    /// What the cache knows about its own health.
    public enum Health: Sendable, Equatable {
        /// Not listed yet.
        case starting
        case healthy
        case failed(String)
    }

    /// Backoff and give-up settings.
    public struct Retry: Sendable {
        public var initialBackoff: Duration = .milliseconds(200)
        public var maxBackoff: Duration = .seconds(10)
        public var maxConsecutiveFailures = 8
        /// How long the server keeps each watch open.
        public var watchTimeoutSeconds = 300
        public init() {}
    }

    let client: KubernetesClient
    let namespace: String
    let retry: Retry
    let logger: Logger
    let state = CacheState()

    public init(client: KubernetesClient, namespace: String, retry: Retry = Retry(), logger: Logger) {
        self.client = client
        self.namespace = namespace
        self.retry = retry
        self.logger = logger
    }

    public var health: Health { get async { await state.health } }

    /// The cached Deployment called `name`, and the pods it selects (`atrium/workspace`).
    public func snapshot(_ name: String) async -> (deployment: Deployment?, pods: [Pod])? {
        await state.snapshot(name)
    }

    /// Returns after the next change to `name`'s Deployment or pods, or after `timeout`.
    public func waitForChange(_ name: String, timeout: Duration) async {
        await state.waitForChange(name, timeout: timeout)
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await self.reflect(Deployment.self) }
                    group.addTask { try await self.reflect(Pod.self) }
                    try await group.next()
                    group.cancelAll()
                }
            }
        } catch is CancellationError {
            return
        } catch {
            await state.fail("\(error)")
            logger.critical("the Kubernetes watch cache gave up", metadata: ["atrium.error": "\(error)"])
            throw error
        }
    }

    /// List, then watch from the list's resourceVersion; relist on 410; back off on errors.
    func reflect<T: KubernetesObject>(_ type: T.Type) async throws {
        var resourceVersion: String?
        var failures = 0
        while true {
            try Task.checkCancellation()
            do {
                if resourceVersion == nil {
                    let list = try await client.list(T.self, namespace: namespace, labelSelector: AtriumLabels.workspaceSelector)
                    await state.replace(list.items)
                    resourceVersion = list.metadata.resourceVersion
                    failures = 0
                }
                var gone = false
                try await client.watch(
                    T.self, namespace: namespace, labelSelector: AtriumLabels.workspaceSelector, resourceVersion: resourceVersion,
                    timeoutSeconds: retry.watchTimeoutSeconds
                ) { event in
                    switch event {
                    case .added(let object), .modified(let object):
                        await state.upsert(object)
                        resourceVersion = object.metadata.resourceVersion ?? resourceVersion
                    case .deleted(let object):
                        await state.remove(object)
                        resourceVersion = object.metadata.resourceVersion ?? resourceVersion
                    case .bookmark(let version):
                        resourceVersion = version ?? resourceVersion
                    case .error(let status):
                        if status.code == 410 { gone = true; return }
                        throw KubernetesError.api(status, httpStatus: status.code ?? 500)
                    }
                    failures = 0
                }
                if gone {
                    logger.info("watch expired (410 Gone), relisting", metadata: ["atrium.resource": "\(T.resource)"])
                    resourceVersion = nil
                }
            } catch let error as KubernetesError where error.isGone {
                resourceVersion = nil
            } catch is CancellationError {
                throw CancellationError()
            } catch where Task.isCancelled {
                // The hub is stopping: the request failed because it was cancelled, not the cluster.
                throw CancellationError()
            } catch {
                failures += 1
                if failures >= retry.maxConsecutiveFailures {
                    throw KubernetesError.watchGaveUp("the watch of \(T.resource) failed \(failures) times in a row; last error: \(error)")
                }
                let backoff = min(retry.initialBackoff * (1 << min(failures - 1, 16)), retry.maxBackoff)
                logger.warning(
                    "watch failed, retrying", metadata: ["atrium.resource": "\(T.resource)", "atrium.error": "\(error)", "atrium.backoff": "\(backoff)"])
                try await Task.sleep(for: backoff)
            }
        }
    }
}

/// The cache's memory, keyed by workload name (`atrium/workspace` label).
actor CacheState {
    var health: WorkspaceCache.Health = .starting
    private var listed: Set<String> = []
    private var deployments: [String: Deployment] = [:]
    private var pods: [String: [String: Pod]] = [:]  // workload → pod name → pod
    private var waiters: [String: [UUID: CheckedContinuation<Void, Never>]] = [:]

    func snapshot(_ name: String) -> (deployment: Deployment?, pods: [Pod])? {
        guard health == .healthy else { return nil }
        return (deployments[name], (pods[name] ?? [:]).values.sorted { ($0.metadata.name ?? "") < ($1.metadata.name ?? "") })
    }

    func fail(_ reason: String) {
        health = .failed(reason)
        for (_, list) in waiters { for (_, c) in list { c.resume() } }
        waiters.removeAll()
    }

    static func workload(_ meta: ObjectMeta) -> String? { meta.labels?[AtriumLabels.workspace] }

    func replace<T: KubernetesObject>(_ items: [T]) {
        var touched = Set<String>()
        if T.self == Deployment.self {
            touched.formUnion(deployments.keys)
            deployments = [:]
        } else {
            touched.formUnion(pods.keys)
            pods = [:]
        }
        for item in items {
            upsertQuietly(item)
            if let w = Self.workload(item.metadata) { touched.insert(w) }
        }
        listed.insert(T.resource)
        if listed.count == 2 { health = .healthy }
        for name in touched { notify(name) }
    }

    func upsert<T: KubernetesObject>(_ object: T) {
        upsertQuietly(object)
        if let w = Self.workload(object.metadata) { notify(w) }
    }

    private func upsertQuietly<T: KubernetesObject>(_ object: T) {
        guard let w = Self.workload(object.metadata) else { return }
        if let d = object as? Deployment { deployments[w] = d }
        if let p = object as? Pod, let name = p.metadata.name { pods[w, default: [:]][name] = p }
    }

    func remove<T: KubernetesObject>(_ object: T) {
        guard let w = Self.workload(object.metadata) else { return }
        if object is Deployment { deployments[w] = nil }
        if let p = object as? Pod, let name = p.metadata.name { pods[w]?[name] = nil }
        notify(w)
    }

    private func notify(_ name: String) {
        for (_, c) in waiters.removeValue(forKey: name) ?? [:] { c.resume() }
    }

    func waitForChange(_ name: String, timeout: Duration) async {
        let id = UUID()
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.resume(name, id)
        }
        await withCheckedContinuation { continuation in
            if case .failed = health { continuation.resume(); return }
            waiters[name, default: [:]][id] = continuation
        }
        timer.cancel()
    }

    private func resume(_ name: String, _ id: UUID) {
        waiters[name]?.removeValue(forKey: id)?.resume()
    }
}
