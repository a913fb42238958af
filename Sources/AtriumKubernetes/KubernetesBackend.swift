import AtriumModel
import AtriumSpawn
import Foundation
import Logging

/// Runs each server as a one-replica Deployment with a Service, a NetworkPolicy and the user's
/// volume, in one namespace.
///
/// Lifecycle: start creates the objects, or scales an existing (suspended) Deployment back up
/// with its pod template updated; suspend and stop scale to 0 and remember the replica count in
/// an annotation; remove deletes the Deployment, Service and NetworkPolicy and keeps the
/// volume; delete forever also deletes the volume claim when so configured. Status comes from
/// the ``WorkspaceCache`` (from the API directly until the cache has listed).
public struct KubernetesBackend: Backend {
    /// What the hub keeps about one server: enough to find it by name after a restart.
    public struct State: Codable, Sendable, Equatable {
        public var namespace: String
        public var workload: String
        public var port: Int
        public var stripPrefix: String?
        public var suspended: Bool

        public init(namespace: String, workload: String, port: Int, stripPrefix: String?, suspended: Bool) {
            self.namespace = namespace
            self.workload = workload
            self.port = port
            self.stripPrefix = stripPrefix
            self.suspended = suspended
        }
    }

    public let configuration: KubernetesConfiguration
    let client: KubernetesClient
    public let cache: WorkspaceCache
    /// With `endpoint_mode: api_proxy`, the relay endpoints point at.
    public let relay: ServiceProxyRelay?
    let logger: Logger

    /// `cache` must run (as a Service) for status reads to be served from memory. `relay` is
    /// required in `api_proxy` mode and unused otherwise.
    public init(
        configuration: KubernetesConfiguration, client: KubernetesClient, cache: WorkspaceCache, relay: ServiceProxyRelay? = nil, logger: Logger
    ) throws {
        if configuration.endpointMode == .apiProxy, relay == nil {
            throw KubernetesError.configuration("endpoint_mode api_proxy needs the service-proxy relay")
        }
        self.configuration = configuration
        self.client = client
        self.cache = cache
        self.relay = relay
        self.logger = logger
    }

    public var kind: String { "kubernetes" }
    var namespace: String { configuration.namespace }
    var preset: KubernetesConfiguration.Preset? { KubernetesConfiguration.presets[configuration.preset] }
    var port: Int { configuration.port ?? preset?.port ?? 8080 }

    /// The builders' input for `request`: templates expanded, defaults and profile applied.
    public func input(for request: SpawnRequest) -> WorkspaceInput {
        let values = [
            "{username}": request.user, "{server_name}": request.serverName, "{base_url}": request.baseURL,
            "{user_id}": String(request.userID), "{port}": String(port), "{secret}": request.secret,
        ]
        func expand(_ text: String) -> String { values.reduce(text) { $0.replacingOccurrences(of: $1.key, with: $1.value) } }
        var environment = (preset?.environment ?? [:]).merging(configuration.environment) { $1 }.mapValues(expand)
        environment.merge(request.environment) { $1 }
        environment["ATRIUM_WORKSPACE_SECRET"] = request.secret
        environment["USER_ID"] = String(request.userID)
        let command = request.command ?? configuration.command ?? preset?.command
        let args = configuration.args ?? (configuration.command == nil && request.command == nil ? preset?.args : nil)
        var limits = configuration.limits
        if let cpu = request.limits.cpu { limits["cpu"] = Self.cpuQuantity(cpu) }
        if let memory = request.limits.memory { limits["memory"] = Self.memoryQuantity(memory) }
        let image = request.image ?? configuration.image ?? preset?.image ?? "codercom/code-server:latest"
        let starter = configuration.starterFilesPath.map {
            WorkspaceInput.StarterFiles(image: configuration.starterFilesImage ?? image, path: $0)
        }
        var input = WorkspaceInput(
            namespace: namespace, names: WorkspaceNames(user: request.user, server: request.serverName), image: image, port: port,
            command: command?.map(expand), args: args?.map(expand), environment: environment, requests: configuration.requests, limits: limits,
            nodeSelector: configuration.nodeSelector, tolerations: configuration.tolerations, storage: configuration.storage,
            starterFiles: starter, hubPodLabels: configuration.hubPodLabels)
        input.uid = configuration.uid
        input.imagePullPolicy = configuration.imagePullPolicy
        input.secretEnvironment = environment.filter { Self.isCredential($0.key) }
        if configuration.endpointMode == .apiProxy { input.admittedCIDRs = configuration.apiServerCIDRs }
        return input
    }

    /// Variables whose values are credentials: the hub's tokens and the proxy secret, and
    /// anything configured whose name says token, secret or password.
    static func isCredential(_ name: String) -> Bool {
        let upper = name.uppercased()
        return ["TOKEN", "SECRET", "PASSWORD"].contains { upper.contains($0) }
    }

    static func cpuQuantity(_ cores: Double) -> String { "\(Int((cores * 1000).rounded()))m" }
    static func memoryQuantity(_ bytes: Int64) -> String {
        bytes % (1 << 20) == 0 ? "\(bytes >> 20)Mi" : String(bytes)
    }

    public func startState(_ request: SpawnRequest, previous: State?) async throws -> State {
        let stripPrefix = (configuration.command == nil && request.command == nil && preset?.stripPrefix == true) ? request.baseURL : nil
        return State(
            namespace: namespace, workload: WorkspaceNames(user: request.user, server: request.serverName).workload, port: port,
            stripPrefix: stripPrefix, suspended: false)
    }

    public func start(_ request: SpawnRequest, state: State, progress: ProgressSink) async throws -> State {
        let input = input(for: request)
        // What this start creates, removed again if the API server refuses one of its objects
        // as invalid (a claim that existed before, with the user's files, is never among them).
        var created: [@Sendable () async throws -> Void] = []
        do {
            if let claim = WorkspaceObjects.volumeClaim(input), try await createIfMissing(claim) {
                created.append { try await self.deleteIfPresent(PersistentVolumeClaim.self, claim.metadata.name ?? "") }
            }
            if configuration.networkPolicy {
                let policy = WorkspaceObjects.networkPolicy(input)
                if try await createIfMissing(policy) { created.append { try await self.deleteIfPresent(NetworkPolicy.self, policy.metadata.name ?? "") } }
            }
            let service = WorkspaceObjects.service(input)
            if try await createIfMissing(service) { created.append { try await self.deleteIfPresent(KubernetesService.self, service.metadata.name ?? "") } }
            if let secret = WorkspaceObjects.secret(input), try await createOrReplaceValues(secret) {
                created.append { try await self.deleteIfPresent(KubernetesSecret.self, secret.metadata.name ?? "") }
            }
            let wanted = WorkspaceObjects.deployment(input)
            do {
                _ = try await client.create(wanted, namespace: namespace)
                await progress(ProgressEvent(progress: 20, message: "Created Deployment \(state.workload) in \(namespace)"))
            } catch let error as KubernetesError where error.isAlreadyExists {
                try await resume(state.workload, template: wanted)
                await progress(ProgressEvent(progress: 20, message: "Scaled Deployment \(state.workload) back up"))
            }
        } catch let error as KubernetesError where error.isInvalid {
            for remove in created.reversed() { try? await remove() }
            throw error
        }
        try await waitForPod(state, progress: progress)
        var started = state
        started.suspended = false
        return started
    }

    /// Scales an existing Deployment back to its remembered replicas, with the pod template
    /// (image, environment, limits) brought up to date.
    func resume(_ name: String, template wanted: Deployment) async throws {
        let existing = try await client.get(Deployment.self, namespace: namespace, name: name)
        let replicas = existing.metadata.annotations?[AtriumLabels.replicas].flatMap { Int($0) }.map { max($0, 1) } ?? 1
        struct Patch: Encodable, Sendable {
            struct Meta: Encodable, Sendable {
                var annotations: [String: String?]
            }
            struct Spec: Encodable, Sendable {
                var template: PodTemplateSpec
            }
            var metadata: Meta
            var spec: Spec
        }
        if let template = wanted.spec?.template {
            let patch = Patch(metadata: Patch.Meta(annotations: [AtriumLabels.replicas: nil]), spec: Patch.Spec(template: template))
            _ = try await client.mergePatch(Deployment.self, namespace: namespace, name: name, patch: patch)
        }
        if existing.spec?.replicas != replicas { _ = try await client.scale(deployment: name, namespace: namespace, replicas: replicas) }
    }

    /// Creates the server's Secret, or (a new start brings a new token) overwrites its values
    /// with a merge patch; a pod created by the coming scale-up reads the new values. Returns
    /// whether it created the Secret.
    @discardableResult
    func createOrReplaceValues(_ secret: KubernetesSecret) async throws -> Bool {
        do {
            _ = try await client.create(secret, namespace: namespace)
            return true
        } catch let error as KubernetesError where error.isAlreadyExists {
            struct Patch: Encodable, Sendable {
                var stringData: [String: String]
            }
            _ = try await client.mergePatch(
                KubernetesSecret.self, namespace: namespace, name: secret.metadata.name ?? "", patch: Patch(stringData: secret.stringData ?? [:]))
            return false
        }
    }

    /// Creates `object` unless it exists; returns whether it created it.
    @discardableResult
    func createIfMissing<T: KubernetesObject>(_ object: T) async throws -> Bool {
        do {
            _ = try await client.create(object, namespace: namespace)
            return true
        } catch let error as KubernetesError where error.isAlreadyExists {
            return false
        }
    }

    /// Waits until the pod runs (or fails), relaying its Events as progress.
    func waitForPod(_ state: State, progress: ProgressSink) async throws {
        var seen = Set<String>()
        var step = 25
        while true {
            try Task.checkCancellation()
            let (deployment, pods) = try await current(state.workload)
            // Events first, so even a pod that came up at once tells how it got there.
            for pod in pods {
                guard let name = pod.metadata.name, let events = try? await client.events(involving: name, namespace: namespace) else { continue }
                for event in events {
                    let key = "\(event.metadata.name ?? "")/\(event.count ?? 1)"
                    guard seen.insert(key).inserted else { continue }
                    step = min(step + 5, 55)
                    await progress(ProgressEvent(progress: step, message: "[\(event.reason ?? "Event")] \(event.message ?? "")"))
                }
            }
            switch Self.status(deployment: deployment, pods: pods) {
            case .running, .starting: return
            case .failed(let reason): throw KubernetesError.workspaceFailed(reason)
            case .stopped:
                // The cache may not have seen the Deployment just created yet: ask the API.
                if try await getIfPresent(Deployment.self, state.workload) == nil {
                    throw KubernetesError.workspaceFailed("the Deployment \(state.workload) was deleted during the start")
                }
            case .pending, .suspended: break
            }
            if await cache.health == .healthy {
                await cache.waitForChange(state.workload, timeout: .seconds(1))
            } else {
                try await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// The Deployment and its pods: from the cache once it has listed, else from the API.
    func current(_ workload: String) async throws -> (Deployment?, [Pod]) {
        if let snapshot = await cache.snapshot(workload) { return (snapshot.deployment, snapshot.pods) }
        let deployment = try await getIfPresent(Deployment.self, workload)
        let pods = try await client.list(Pod.self, namespace: namespace, labelSelector: "\(AtriumLabels.workspace)=\(workload)").items
        return (deployment, pods)
    }

    public func status(_ state: State) async -> BackendStatus {
        if case .failed(let reason) = await cache.health { return .failed(reason: "the Kubernetes watch cache failed: \(reason)") }
        do {
            let (deployment, pods) = try await current(state.workload)
            return Self.status(deployment: deployment, pods: pods)
        } catch {
            return .pending("cannot read the workspace's status: \(error)")
        }
    }

    /// Unhealthy once the watch cache has given up.
    public func healthProblem() async -> String? {
        if case .failed(let reason) = await cache.health { return "the Kubernetes watch cache failed: \(reason)" }
        return nil
    }

    /// The Service's cluster DNS name, or (`api_proxy`) the relay with the service-proxy path.
    public func endpoint(_ state: State) -> WorkspaceEndpoint {
        if configuration.endpointMode == .apiProxy, let relay {
            return WorkspaceEndpoint(
                address: .tcp(host: relay.host, port: relay.port), secret: nil, stripPrefix: state.stripPrefix,
                basePath: relay.basePath(service: state.workload, port: state.port))
        }
        return WorkspaceEndpoint(
            address: .tcp(host: "\(state.workload).\(state.namespace).svc.\(configuration.clusterDomain)", port: state.port), secret: nil,
            stripPrefix: state.stripPrefix)
    }

    public func suspend(_ state: State) async throws -> State {
        try await scaleDown(state.workload)
        var suspended = state
        suspended.suspended = true
        return suspended
    }

    /// The hub's default stop is a suspend: the Deployment stays, at 0 replicas.
    public func stop(_ state: State) async throws {
        try await scaleDown(state.workload)
    }

    /// Annotates the replica count, then scales to 0. A missing Deployment is already stopped.
    func scaleDown(_ name: String) async throws {
        guard let existing = try await getIfPresent(Deployment.self, name) else { return }
        let replicas = existing.spec?.replicas ?? 1
        guard replicas > 0 else { return }
        struct Patch: Encodable, Sendable {
            struct Meta: Encodable, Sendable { var annotations: [String: String] }
            var metadata: Meta
        }
        _ = try await client.mergePatch(
            Deployment.self, namespace: namespace, name: name, patch: Patch(metadata: Patch.Meta(annotations: [AtriumLabels.replicas: String(replicas)])))
        _ = try await client.scale(deployment: name, namespace: namespace, replicas: 0)
    }

    public func remove(user: String, serverName: String, state: State?) async throws {
        let name = state?.workload ?? WorkspaceNames(user: user, server: serverName).workload
        try await deleteIfPresent(Deployment.self, name)
        try await deleteIfPresent(KubernetesService.self, name)
        try await deleteIfPresent(NetworkPolicy.self, name)
        try await deleteIfPresent(KubernetesSecret.self, name)
    }

    public func deleteForever(user: String, userID: Int64, serverName: String, state: State?) async throws {
        try await remove(user: user, serverName: serverName, state: state)
        guard configuration.deleteVolumeOnDeleteForever, case .persistentVolumeClaim = configuration.storage else { return }
        let names = WorkspaceNames(user: user, server: serverName)
        // The claim is the user's, shared by their servers: kept while another server uses it.
        let others = try await client.list(
            Deployment.self, namespace: namespace, labelSelector: "\(AtriumLabels.workspaceSelector),\(AtriumLabels.user)=\(names.userKey)")
        if others.items.contains(where: { $0.metadata.name != names.workload }) {
            logger.info("volume kept: another server of this user uses it", metadata: ["atrium.user": "\(user)"])
            return
        }
        try await deleteIfPresent(PersistentVolumeClaim.self, names.volumeClaim)
    }

    func getIfPresent<T: KubernetesObject>(_ type: T.Type, _ name: String) async throws -> T? {
        do {
            return try await client.get(T.self, namespace: namespace, name: name)
        } catch let error as KubernetesError where error.isNotFound {
            return nil
        }
    }

    func deleteIfPresent<T: KubernetesObject>(_ type: T.Type, _ name: String) async throws {
        do { try await client.delete(T.self, namespace: namespace, name: name) } catch let error as KubernetesError where error.isNotFound { return }
    }

    public func logs(user: String, serverName: String, state: State?, lines: Int) async throws -> [String] {
        let name = state?.workload ?? WorkspaceNames(user: user, server: serverName).workload
        let (_, pods) = try await current(name)
        guard let pod = pods.last(where: { $0.metadata.deletionTimestamp == nil }), let podName = pod.metadata.name else { return [] }
        let text = try await client.logs(pod: podName, namespace: namespace, container: WorkspaceObjects.containerName, tailLines: lines)
        return text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty }
    }
}
