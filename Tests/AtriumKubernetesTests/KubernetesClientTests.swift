import AtriumKubernetes
import Foundation
import Logging
import Testing

/// The API client and the watch cache against the fake API server.
@Suite("Kubernetes client and watch cache")
struct KubernetesClientTests {
    static func service(_ name: String) -> KubernetesService {
        var s = WorkspaceObjects.service(KubernetesBuilderTests.input())
        s.metadata.name = name
        return s
    }

    @Test func createGetListPatchDeleteWithStatusErrors() async throws {
        try await FakeAPIServer.with { cluster, url in
            let client = try KubernetesClient(connection: ClusterConnection(server: url), requestTimeout: .seconds(10))
            defer { Task { try? await client.shutdown() } }
            let created = try await client.create(Self.service("web-1"), namespace: "ns")
            #expect(created.metadata.resourceVersion != nil)
            let again = await #expect(throws: KubernetesError.self) { try await client.create(Self.service("web-1"), namespace: "ns") }
            #expect(again?.isAlreadyExists == true)
            #expect(again?.reason == "AlreadyExists")
            let missing = await #expect(throws: KubernetesError.self) { try await client.get(KubernetesService.self, namespace: "ns", name: "nope") }
            #expect(missing?.isNotFound == true)
            #expect(missing?.message.contains("not found") == true)
            let invalid = await #expect(throws: KubernetesError.self) { try await client.create(Self.service("Bad_Name"), namespace: "ns") }
            #expect(invalid?.httpStatus == 422)
            #expect(invalid?.reason == "Invalid")

            let listed = try await client.list(KubernetesService.self, namespace: "ns", labelSelector: "\(AtriumLabels.managedBy)=atrium")
            #expect(listed.items.map(\.metadata.name) == ["web-1"])
            #expect(try await client.list(KubernetesService.self, namespace: "ns", labelSelector: "\(AtriumLabels.managedBy)=other").items.isEmpty)
            struct Patch: Encodable, Sendable { var metadata: [String: [String: String]] }
            let patched = try await client.mergePatch(KubernetesService.self, namespace: "ns", name: "web-1", patch: Patch(metadata: ["annotations": ["x": "y"]]))
            #expect(patched.metadata.annotations?["x"] == "y")
            #expect(patched.metadata.resourceVersion != created.metadata.resourceVersion)
            try await client.delete(KubernetesService.self, namespace: "ns", name: "web-1")
            let gone = await #expect(throws: KubernetesError.self) { try await client.delete(KubernetesService.self, namespace: "ns", name: "web-1") }
            #expect(gone?.isNotFound == true)
            #expect(await cluster.invalid.isEmpty)
        }
    }

    @Test func watchCacheFollowsChangesAndRelistsAfterGone() async throws {
        try await FakeAPIServer.with { cluster, url in
            let client = try KubernetesClient(connection: ClusterConnection(server: url))
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            var retry = WorkspaceCache.Retry()
            retry.watchTimeoutSeconds = 2
            retry.initialBackoff = .milliseconds(10)
            let cache = WorkspaceCache(client: client, namespace: "ns", retry: retry, logger: logger)
            let running = Task { try await cache.run() }
            defer { running.cancel() }
            let input = KubernetesBuilderTests.input()
            let name = input.names.workload
            _ = try await client.create(WorkspaceObjects.deployment(input), namespace: "ns")
            #expect(await eventually { await cache.snapshot(name)?.pods.count == 1 })
            // History compacted and watches cut: the cache must relist to see the next change.
            await cluster.compact()
            await cluster.closeWatches()
            _ = try await client.scale(deployment: name, namespace: "ns", replicas: 0)
            #expect(await eventually {
                let snapshot = await cache.snapshot(name)
                return snapshot?.deployment?.spec?.replicas == 0 && snapshot?.pods.isEmpty == true
            })
            #expect(await cache.health == .healthy)
            try await client.shutdown()
        }
    }

    @Test func watchCacheFailsLoudlyWhenItCannotRecover() async throws {
        try await FakeAPIServer.with { cluster, url in
            let client = try KubernetesClient(connection: ClusterConnection(server: url))
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            var retry = WorkspaceCache.Retry()
            retry.watchTimeoutSeconds = 1
            retry.initialBackoff = .milliseconds(5)
            retry.maxBackoff = .milliseconds(20)
            retry.maxConsecutiveFailures = 3
            await cluster.failWatches(1_000)
            let cache = WorkspaceCache(client: client, namespace: "ns", retry: retry, logger: logger)
            let error = await #expect(throws: KubernetesError.self) { try await cache.run() }
            #expect(error?.reason == "WatchGaveUp")
            guard case .failed = await cache.health else { Issue.record("health is not failed"); return }
            try await client.shutdown()
        }
    }

    @Test func kubeconfigContextsTokensAndCertificates() throws {
        let yaml = """
            apiVersion: v1
            kind: Config
            current-context: dev
            clusters:
            - name: c1
              cluster:
                server: https://k8s.example.org:6443
                certificate-authority-data: \(Data("CA".utf8).base64EncodedString())
            - name: c2
              cluster:
                server: https://10.0.0.1
                insecure-skip-tls-verify: true
            users:
            - name: alice
              user:
                token: abc
            - name: bob
              user:
                client-certificate-data: \(Data("CERT".utf8).base64EncodedString())
                client-key-data: \(Data("KEY".utf8).base64EncodedString())
            contexts:
            - name: dev
              context: {cluster: c1, user: alice, namespace: course}
            - name: ops
              context: {cluster: c2, user: bob}
            """
        let dev = try ClusterConnection.kubeconfig(yaml: yaml)
        #expect(dev.server.absoluteString == "https://k8s.example.org:6443")
        #expect(dev.token == "abc")
        #expect(dev.certificateAuthority == Array("CA".utf8))
        #expect(dev.namespace == "course")
        let ops = try ClusterConnection.kubeconfig(yaml: yaml, context: "ops")
        #expect(ops.insecureSkipTLSVerify)
        #expect(ops.clientCertificate == Array("CERT".utf8))
        #expect(ops.clientKey == Array("KEY".utf8))
        #expect(ops.token == nil)
        #expect(throws: KubernetesError.self) { try ClusterConnection.kubeconfig(yaml: yaml, context: "nope") }
        // Garbage certificates are a configuration error, not a crash.
        #expect(throws: KubernetesError.self) { try KubernetesClient(connection: ops) }
    }

    @Test func inClusterConfiguration() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sa-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "tok1\n".write(toFile: "\(dir)/token", atomically: true, encoding: .utf8)
        try "CA".write(toFile: "\(dir)/ca.crt", atomically: true, encoding: .utf8)
        try "hub-ns".write(toFile: "\(dir)/namespace", atomically: true, encoding: .utf8)
        let c = try ClusterConnection.inCluster(directory: dir, environment: ["KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"])
        #expect(c.server.absoluteString == "https://10.96.0.1:443")
        #expect(c.namespace == "hub-ns")
        #expect(c.tokenFile == "\(dir)/token")
        #expect(throws: KubernetesError.self) { try ClusterConnection.inCluster(directory: dir, environment: [:]) }
    }
}

/// Waits (bounded: 10 s) for a condition, re-checking on a short interval.
/// Waits for `condition`, polling; the bound only ends a test that is stuck (a loaded machine
/// takes seconds where an idle one takes milliseconds), it never decides a passing outcome.
func eventually(_ condition: @Sendable () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .seconds(120)
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}
