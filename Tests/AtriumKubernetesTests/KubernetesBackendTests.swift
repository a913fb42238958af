import AtriumKubernetes
import AtriumModel
import AtriumSpawn
import AtriumStore
import Foundation
import Logging
import Testing

/// Answers like a real endpoint would: ready when the workload's pod is ready in the fake.
struct FakeClusterProbe: ReadinessProbe {
    let cluster: FakeCluster
    func check(_ endpoint: WorkspaceEndpoint, path: String) async -> Bool {
        guard case .tcp(let host, _) = endpoint.address else { return false }
        let parts = host.split(separator: ".")
        guard parts.count > 2 else { return false }
        return await cluster.isReady(namespace: String(parts[1]), deployment: String(parts[0]))
    }
}

/// A hub (store, manager, backend with its running cache) against the fake API server.
struct KubeHub: Sendable {
    let store: Store
    let manager: ServerManager
    let backend: KubernetesBackend
    let client: KubernetesClient
    let cacheTask: Task<Void, any Error>

    static let namespace = "course"

    /// `probe` replaces the one that asks the fake whether the pod is ready; `relay` is the
    /// api_proxy mode's; `connection` replaces a plain one to `url`.
    static func make(
        url: URL, cluster: FakeCluster, store: Store, configure: (inout KubernetesConfiguration) -> Void = { _ in }, limit: Int = 100,
        connection: ClusterConnection? = nil, probe: (any ReadinessProbe)? = nil, relay: ServiceProxyRelay? = nil
    ) throws -> KubeHub {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var configuration = KubernetesConfiguration()
        configuration.namespace = namespace
        configuration.starterFilesPath = "/tmp"
        configure(&configuration)
        let client = try KubernetesClient(connection: connection ?? ClusterConnection(server: url), requestTimeout: .seconds(20))
        let cache = WorkspaceCache(client: client, namespace: configuration.namespace, logger: logger)
        let backend = try KubernetesBackend(configuration: configuration, client: client, cache: cache, relay: relay, logger: logger)
        var settings = SpawnSettings()
        settings.concurrentSpawnLimit = limit
        settings.slowSpawnTimeout = .seconds(60)
        // Bounds for a stuck test, not deadlines a loaded machine could miss.
        settings.readyTimeout = .seconds(120)
        settings.startTimeout = .seconds(180)
        return KubeHub(store: store, manager: ServerManager(store: store, backend: AnyBackend(backend), settings: settings, probe: probe ?? FakeClusterProbe(cluster: cluster), logger: logger),
            backend: backend, client: client, cacheTask: Task { try await cache.run() })
    }


    func close() async {
        cacheTask.cancel()
        _ = await cacheTask.result
        try? await client.shutdown()
    }

    func phase(_ user: String, _ server: String = "") async throws -> ServerPhase? {
        guard let record = try await store.user(named: user) else { return nil }
        return try await store.server(userID: record.id, name: server)?.phase
    }
}

@Suite("Kubernetes backend with the fake API server", .serialized)
struct KubernetesBackendTests {
    let ns = KubeHub.namespace

    func withHub(users: [String] = ["alice"], configure: @escaping @Sendable (inout KubernetesConfiguration) -> Void = { _ in }, limit: Int = 100,
                 _ body: @Sendable (FakeCluster, URL, KubeHub, [UserRecord]) async throws -> Void) async throws {
        try await FakeAPIServer.with { cluster, url in
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let store = try await Store.open(":memory:", logger: logger)
            try await store.migrate()
            let records = try await store.createUsers(users.map { NewUser(name: $0) }).created
            let hub = try KubeHub.make(url: url, cluster: cluster, store: store, configure: configure, limit: limit)
            do {
                try await body(cluster, url, hub, records)
            } catch {
                await hub.close()
                try? await store.close()
                throw error
            }
            await hub.close()
            try await store.close()
            #expect(await cluster.invalid == [], "every object sent validates against the official schemas")
        }
    }

    @Test("start, ready, suspend, resume (same Deployment, no new objects), remove keeps the volume, delete forever")
    func lifecycle() async throws {
        try await withHub(configure: { $0.deleteVolumeOnDeleteForever = true }) { cluster, _, hub, users in
            let alice = users[0]
            let names = WorkspaceNames(user: "alice", server: "")
            await cluster.setAutoReady(false)
            let starting = Task { try await hub.manager.start(user: alice, serverName: "") }
            #expect(await eventually { await cluster.podCount(namespace: ns, deployment: names.workload) == 1 })
            // Status reads need only the workload name, which is derived from the names alone.
            let started = KubernetesBackend.State(namespace: ns, workload: names.workload, port: 8080, stripPrefix: "/user/alice/", suspended: false)
            #expect(await hub.backend.status(started) != .running)
            await cluster.setReady(namespace: ns, deployment: names.workload, true)
            #expect(try await starting.value == .ready(url: "/user/alice/"))
            #expect(try await hub.phase("alice") == .running)
            #expect(await eventually { await hub.backend.status(started) == .running })
            let route = try #require(hub.manager.routes.all.first)
            #expect(route.endpoint.address == .tcp(host: "\(names.workload).\(ns).svc.cluster.local", port: 8080))
            #expect(route.endpoint.stripPrefix == "/user/alice/")
            let uid = await cluster.uid("deployments", namespace: ns, name: names.workload)
            for resource in ["deployments", "services", "networkpolicies", "persistentvolumeclaims", "secrets"] { #expect(await cluster.count(resource) == 1) }
            // Credentials live in the server's Secret; the Deployment only refers to them.
            let token = try #require(await secretValue("JUPYTERHUB_API_TOKEN", cluster: cluster, name: names.workload))
            #expect(token.count > 20)
            #expect(try #require(await secretValue("ATRIUM_WORKSPACE_SECRET", cluster: cluster, name: names.workload)).count > 20)
            let deploymentJSON = try #require(await cluster.jsonText("deployments", namespace: ns, name: names.workload))
            #expect(!deploymentJSON.contains(token))
            #expect(deploymentJSON.contains("secretKeyRef"))

            // Suspend: scaled to 0 with the replica count remembered; the pod goes.
            _ = try await hub.manager.suspend(user: "alice", serverName: "")
            #expect(try await hub.phase("alice") == .suspended)
            #expect(await cluster.replicas(namespace: ns, deployment: names.workload) == 0)
            #expect(await cluster.annotation(AtriumLabels.replicas, namespace: ns, deployment: names.workload) == "1")
            #expect(await cluster.podCount(namespace: ns, deployment: names.workload) == 0)
            #expect(await eventually { await hub.backend.status(started) == .suspended })

            // Resume: the same Deployment scaled back, nothing new created.
            await cluster.setAutoReady(true)
            let posts = await cluster.requests.filter { $0.hasPrefix("POST") }.count
            #expect(try await hub.manager.start(user: alice, serverName: "") == .ready(url: "/user/alice/"))
            #expect(await cluster.uid("deployments", namespace: ns, name: names.workload) == uid)
            #expect(await cluster.replicas(namespace: ns, deployment: names.workload) == 1)
            #expect(await cluster.annotation(AtriumLabels.replicas, namespace: ns, deployment: names.workload) == nil)
            for resource in ["deployments", "services", "networkpolicies", "persistentvolumeclaims", "secrets"] { #expect(await cluster.count(resource) == 1) }
            let newPosts = await cluster.requests.filter { $0.hasPrefix("POST") }.count - posts
            #expect(newPosts == 5, "the five creates of the idempotent start all answered 409 AlreadyExists")
            // The new start's token replaced the old one in the Secret.
            let newToken = try #require(await secretValue("JUPYTERHUB_API_TOKEN", cluster: cluster, name: names.workload))
            #expect(newToken != token)

            // Stop (the hub's default) also scales to 0; remove deletes all but the volume.
            _ = try await hub.manager.stop(user: "alice", serverName: "", remove: true)
            #expect(await cluster.exists("deployments", namespace: ns, name: names.workload) == false)
            #expect(await cluster.exists("services", namespace: ns, name: names.workload) == false)
            #expect(await cluster.exists("networkpolicies", namespace: ns, name: names.workload) == false)
            #expect(await cluster.exists("secrets", namespace: ns, name: names.workload) == false)
            #expect(await cluster.exists("persistentvolumeclaims", namespace: ns, name: names.volumeClaim))

            try await hub.manager.deleteForever(user: "alice", serverName: "")
            #expect(await cluster.exists("persistentvolumeclaims", namespace: ns, name: names.volumeClaim) == false)
        }
    }

    /// A value of the server's Secret as the hub wrote it (`stringData`).
    func secretValue(_ key: String, cluster: FakeCluster, name: String) async -> String? {
        await cluster.secretStringData(namespace: ns, name: name)?[key]
    }

    /// Issue 18 item 4: a start the API server refused (an invalid quantity) left the Service,
    /// Secret, NetworkPolicy and claim behind until the user was deleted.
    @Test("a start the API server refuses as invalid removes what it created; a claim that existed before stays")
    func invalidStartRemovesItsObjects() async throws {
        try await withHub(users: ["alice", "bob"], configure: { $0.requests["memory"] = "2GB" }) { cluster, _, hub, users in
            let failed = try? await hub.manager.start(user: users[0], serverName: "")
            #expect(failed == nil || failed != .ready(url: "/user/alice/"))
            #expect(await eventually { (try? await hub.phase("alice")) == .failed })
            for resource in ["deployments", "services", "networkpolicies", "persistentvolumeclaims", "secrets"] {
                #expect(await cluster.count(resource) == 0, "\(resource) left behind")
            }
            // bob's claim, with his files, was there before his failing start: it stays.
            let claimName = WorkspaceNames(user: "bob", server: "").volumeClaim
            await cluster.addClaim(namespace: ns, name: claimName)
            _ = try? await hub.manager.start(user: users[1], serverName: "")
            #expect(await eventually { (try? await hub.phase("bob")) == .failed })
            #expect(await cluster.count("persistentvolumeclaims") == 1)
            for resource in ["deployments", "services", "networkpolicies", "secrets"] { #expect(await cluster.count(resource) == 0, "\(resource) left behind") }
        }
    }

    /// Issue 18 item 3: a stop the API server refused answered 204 and recorded the server as
    /// failed while its Deployment stayed at one replica with its pod running.
    @Test("a stop the API server refuses answers the reason and the server stays running with its pod; the retry stops it")
    func failedStopStaysRunning() async throws {
        try await withHub { cluster, _, hub, users in
            let names = WorkspaceNames(user: "alice", server: "")
            #expect(try await hub.manager.start(user: users[0], serverName: "") == .ready(url: "/user/alice/"))
            await cluster.failScales(1)
            do {
                _ = try await hub.manager.stop(user: "alice", serverName: "")
                Issue.record("the refused stop answered as if it had stopped")
            } catch let error as SpawnError {
                #expect(error.message.contains("still runs"))
            }
            #expect(try await hub.phase("alice") == .running)
            #expect(await cluster.replicas(namespace: ns, deployment: names.workload) == 1)
            #expect(await cluster.podCount(namespace: ns, deployment: names.workload) == 1)
            #expect(hub.manager.routes.all.count == 1)
            #expect(try await hub.manager.stop(user: "alice", serverName: "") == .stopped)
            #expect(try await hub.phase("alice") == .stopped)
            #expect(await cluster.replicas(namespace: ns, deployment: names.workload) == 0)
        }
    }

    @Test("a resume updates the image and limits of the suspended Deployment")
    func resumeUpdatesTheTemplate() async throws {
        try await withHub { cluster, url, hub, users in
            let names = WorkspaceNames(user: "alice", server: "")
            _ = try await hub.manager.start(user: users[0], serverName: "")
            _ = try await hub.manager.suspend(user: "alice", serverName: "")
            await hub.close()
            let updated = try KubeHub.make(url: url, cluster: cluster, store: hub.store, configure: { $0.image = "codercom/code-server:4.99.0" })
            _ = try await updated.manager.restore()
            _ = try await updated.manager.start(user: users[0], serverName: "")
            #expect(await cluster.image(namespace: ns, deployment: names.workload) == "codercom/code-server:4.99.0")
            #expect(await cluster.podCount(namespace: ns, deployment: names.workload) == 1)
            await updated.close()
        }
    }

    @Test("logs come from the pod, tailLines honoured")
    func logs() async throws {
        try await withHub { cluster, _, hub, users in
            _ = try await hub.manager.start(user: users[0], serverName: "")
            let workload = WorkspaceNames(user: "alice", server: "").workload
            await cluster.appendLog(namespace: ns, deployment: workload, ["line a", "line b", "line c"])
            #expect(try await hub.manager.logs(user: "alice", serverName: "", lines: 2) == ["line b", "line c"])
        }
    }

    @Test("failures carry the cluster's reason", arguments: [
        (FakeCluster.Failure.imagePullBackOff, "ImagePullBackOff"), (.crashLoopBackOff, "CrashLoopBackOff"), (.unschedulable, "Unschedulable"),
        (.oomKilled, "OOMKilled"),
    ])
    func failureReasons(failure: FakeCluster.Failure, reason: String) async throws {
        try await withHub { cluster, _, hub, users in
            await cluster.setAutoReady(false)
            let workload = WorkspaceNames(user: "alice", server: "").workload
            let starting = Task { try await hub.manager.start(user: users[0], serverName: "") }
            #expect(await eventually { await cluster.podCount(namespace: ns, deployment: workload) == 1 })
            await cluster.inject(failure, namespace: ns, deployment: workload)
            _ = try? await starting.value
            #expect(await eventually { (try? await hub.phase("alice")) == .failed })
            let why = await hub.manager.failure(user: "alice", serverName: "") ?? ""
            #expect(why.contains(reason), "\(why)")
            // The failed server was stopped: scaled to 0, its objects kept for a retry.
            #expect(await cluster.replicas(namespace: ns, deployment: workload) == 0)
        }
    }

    @Test("progress events come from the pod's Kubernetes Events")
    func progressFromEvents() async throws {
        try await withHub { cluster, _, hub, users in
            await cluster.setAutoReady(false)
            let workload = WorkspaceNames(user: "alice", server: "").workload
            let starting = Task { try await hub.manager.start(user: users[0], serverName: "") }
            #expect(await eventually { await cluster.podCount(namespace: ns, deployment: workload) == 1 })
            let events = try await hub.manager.progress(user: "alice", serverName: "")
            await cluster.setReady(namespace: ns, deployment: workload, true)
            _ = try await starting.value
            var messages: [String] = []
            for await event in events { messages.append(event.message) }
            #expect(messages.contains { $0.contains("[Scheduled]") }, "\(messages)")
        }
    }

    @Test("a restarted hub reattaches to running servers and finds suspended ones")
    func restartReattaches() async throws {
        try await withHub(users: ["alice", "bob", "carol"]) { cluster, url, hub, users in
            for user in users { _ = try await hub.manager.start(user: user, serverName: "") }
            _ = try await hub.manager.suspend(user: "bob", serverName: "")
            let posts = await cluster.requests.filter { $0.hasPrefix("POST") }.count
            await hub.close()  // the old hub goes away; its servers stay

            let second = try KubeHub.make(url: url, cluster: cluster, store: hub.store)
            let report = try await second.manager.restore()
            #expect(report.reattached == 2)
            #expect(report.suspended == 1)
            #expect(second.manager.routes.all.map(\.user).sorted() == ["alice", "carol"])
            #expect(await cluster.requests.filter { $0.hasPrefix("POST") }.count == posts, "reattaching creates nothing")
            // And the new hub drives them: resume bob.
            #expect(try await second.manager.start(user: users[1], serverName: "") == .ready(url: "/user/bob/"))
            await second.close()
        }
    }

    @Test("200 users started at once under a small spawn limit")
    func twoHundredUsers() async throws {
        let names = (0..<200).map { "student\($0)" }
        try await withHub(users: names, limit: 8) { cluster, _, hub, users in
            let outcomes = await withTaskGroup(of: Bool.self) { group in
                for user in users { group.addTask { (try? await hub.manager.start(user: user, serverName: "")) != nil } }
                return await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            // A start answered after the slow spawn timeout goes on in the background: wait for
            // the last one to finish (an event, bounded), not for a moment on the clock.
            for _ in 0..<1200 where await hub.manager.spawnsInProgress > 0 || hub.manager.routes.all.count < 200 {
                try await Task.sleep(for: .milliseconds(100))
            }
            for user in users where await hub.manager.failure(user: user.name, serverName: "") != nil {
                Issue.record("\(user.name): \(await hub.manager.failure(user: user.name, serverName: "") ?? "")")
                break
            }
            #expect(outcomes == 200)
            #expect(hub.manager.routes.all.count == 200)
            #expect(await cluster.count("deployments") == 200)
            #expect(await cluster.count("pods") == 200)
            #expect(await hub.manager.spawnsInProgress == 0)
        }
    }
}
