import AtriumKubernetes
import Foundation

/// The state of the fake API server: objects as JSON by resource, a global resourceVersion,
/// a bounded watch history (compaction → 410 Gone), and a "controller" that gives each
/// Deployment with replicas ≥ 1 one Pod and removes it at 0, as a ReplicaSet would.
/// Tests flip readiness and inject failures through its hooks.
actor FakeCluster {
    typealias Object = [String: Any]

    struct Change: Sendable {
        var resourceVersion: Int
        var resource: String
        var namespace: String
        var type: String
        var object: Data
    }

    /// A failure a test puts on a workload's pod.
    enum Failure: Sendable {
        case imagePullBackOff, crashLoopBackOff, unschedulable, oomKilled
    }

    private var objects: [String: [String: Data]] = [:]  // resource → "ns/name" → JSON
    private var resourceVersion = 100
    private(set) var history: [Change] = []
    private var oldestRetained = 0
    private var watchers: [UUID: (resource: String, namespace: String, selector: String?, continuation: AsyncStream<Data>.Continuation)] = [:]
    private var podLogs: [String: [String]] = [:]
    private var podCounter = 0
    /// New pods become ready at once (else a test calls `setReady`).
    var autoReady = true
    /// Every object created or patched is checked against the official schemas.
    let validator: SchemaValidator?
    /// Objects that failed validation (the request was answered 422).
    private(set) var invalid: [String] = []
    /// Requests by "METHOD resource" (for "no new objects" assertions).
    private(set) var requests: [String] = []
    /// The next `n` watch requests fail with 500.
    var failingWatches = 0
    /// Service name → port on 127.0.0.1 of the local server standing in for its pods.
    var upstreams: [String: Int] = [:]
    /// The bearer token service-proxy requests must carry.
    var requiredBearer: String?

    init(validator: SchemaValidator? = .shared) {
        self.validator = validator
    }

    func setAutoReady(_ value: Bool) { autoReady = value }
    func failWatches(_ count: Int) { failingWatches = count }
    /// The next `n` scale requests (PATCH …/scale, what stop and suspend send) fail with 503, as
    /// an API server going away would answer.
    var failingScales = 0
    func failScales(_ count: Int) { failingScales = count }
    func takeFailingScale() -> Bool {
        guard failingScales > 0 else { return false }
        failingScales -= 1
        return true
    }
    func takeFailingWatch() -> Bool {
        guard failingWatches > 0 else { return false }
        failingWatches -= 1
        return true
    }

    // MARK: - Generic object store

    func record(_ request: String) { requests.append(request) }

    func all(_ resource: String, namespace: String) -> [Object] {
        (objects[resource] ?? [:]).filter { $0.key.hasPrefix("\(namespace)/") }.sorted { $0.key < $1.key }.compactMap { Self.decode($0.value) }
    }

    /// An object as JSON text (Sendable, for tests outside the actor).
    func jsonText(_ resource: String, namespace: String, name: String) -> String? {
        objects[resource]?["\(namespace)/\(name)"].map { String(decoding: $0, as: UTF8.self) }
    }

    /// A Secret's values as the hub wrote them (`stringData`).
    func secretStringData(namespace: String, name: String) -> [String: String]? {
        get("secrets", namespace: namespace, name: name)?["stringData"] as? [String: String]
    }

    func get(_ resource: String, namespace: String, name: String) -> Object? {
        objects[resource]?["\(namespace)/\(name)"].flatMap(Self.decode)
    }

    func count(_ resource: String) -> Int { objects[resource]?.count ?? 0 }

    var currentResourceVersion: String { String(resourceVersion) }

    /// Forgets watch history up to now: a watch from an older resourceVersion gets 410 Gone.
    func compact() {
        oldestRetained = resourceVersion
        history.removeAll()
    }

    /// Ends every open watch (the API server's timeout, or a restart of it).
    func closeWatches() {
        for (_, w) in watchers { w.continuation.finish() }
        watchers.removeAll()
    }

    @discardableResult
    func put(_ resource: String, namespace: String, object: Object, type: String) -> Object {
        var object = object
        resourceVersion += 1
        var meta = object["metadata"] as? Object ?? [:]
        let name = meta["name"] as? String ?? ""
        meta["namespace"] = namespace
        meta["resourceVersion"] = String(resourceVersion)
        if type == "ADDED" {
            meta["uid"] = UUID().uuidString.lowercased()
            meta["creationTimestamp"] = "2026-01-01T00:00:00Z"
            if resource == "deployments" { meta["generation"] = 1 }
        } else if resource == "deployments", type == "MODIFIED" {
            meta["generation"] = (meta["generation"] as? Int ?? 1) + 1
        }
        object["metadata"] = meta
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        if type == "DELETED" {
            objects[resource]?["\(namespace)/\(name)"] = nil
        } else {
            objects[resource, default: [:]]["\(namespace)/\(name)"] = data
        }
        let change = Change(resourceVersion: resourceVersion, resource: resource, namespace: namespace, type: type, object: data)
        history.append(change)
        if history.count > 10_000 { history.removeFirst(history.count - 10_000); oldestRetained = history.first!.resourceVersion - 1 }
        for (_, w) in watchers where w.resource == resource && w.namespace == namespace && Self.matches(object, selector: w.selector) {
            w.continuation.yield(Self.eventLine(type: type, object: data))
        }
        return object
    }

    static func eventLine(type: String, object: Data) -> Data {
        var line = Data("{\"type\":\"\(type)\",\"object\":".utf8)
        line.append(object)
        line.append(contentsOf: Array("}\n".utf8))
        return line
    }

    /// Opens a watch: history after `from` first, then live changes. `nil` when `from` is
    /// older than the retained history (410 Gone).
    func watch(_ resource: String, namespace: String, selector: String?, from: Int?, timeout: Duration) -> AsyncStream<Data>? {
        if let from, from < oldestRetained { return nil }
        let (stream, continuation) = AsyncStream.makeStream(of: Data.self)
        if let from {
            for change in history where change.resourceVersion > from && change.resource == resource && change.namespace == namespace {
                if let object = Self.decode(change.object), Self.matches(object, selector: selector) {
                    continuation.yield(Self.eventLine(type: change.type, object: change.object))
                }
            }
        }
        let id = UUID()
        watchers[id] = (resource, namespace, selector, continuation)
        continuation.onTermination = { _ in Task { await self.dropWatcher(id) } }
        // The API server ends every watch after its timeout; the client resumes.
        Task {
            try? await Task.sleep(for: timeout)
            continuation.finish()
        }
        return stream
    }

    func dropWatcher(_ id: UUID) { watchers[id] = nil }
    var openWatches: Int { watchers.count }

    // MARK: - The ReplicaSet controller

    /// Gives a Deployment the pods its replicas ask for (0 or 1), replacing a pod whose
    /// template is out of date, and keeps its status.
    func reconcile(namespace: String, deployment name: String) {
        guard let deployment = get("deployments", namespace: namespace, name: name) else {
            for pod in pods(of: name, namespace: namespace) { deletePod(pod, namespace: namespace) }
            return
        }
        let spec = deployment["spec"] as? Object ?? [:]
        let replicas = spec["replicas"] as? Int ?? 1
        let template = spec["template"] as? Object ?? [:]
        let templateHash = String(Self.fnv(try! JSONSerialization.data(withJSONObject: template, options: [.sortedKeys])))
        var pods = pods(of: name, namespace: namespace)
        for pod in pods where replicas == 0 || Self.labels(pod)["pod-template-hash"] != templateHash {
            deletePod(pod, namespace: namespace)
        }
        pods = pods.filter { Self.labels($0)["pod-template-hash"] == templateHash }
        if replicas > 0, pods.isEmpty {
            podCounter += 1
            var meta = template["metadata"] as? Object ?? [:]
            var labels = meta["labels"] as? [String: String] ?? [:]
            labels["pod-template-hash"] = templateHash
            meta["labels"] = labels
            meta["name"] = "\(name)-\(templateHash.prefix(6))-p\(podCounter)"
            let podName = meta["name"] as! String
            var pod: Object = ["apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"] ?? [:]]
            pod["status"] = Self.podStatus(ready: autoReady)
            put("pods", namespace: namespace, object: pod, type: "ADDED")
            podLogs[podName] = ["starting workspace for \(name)", "listening on :\(Self.port(of: template))"]
            for (reason, message) in [("Scheduled", "Successfully assigned \(namespace)/\(podName) to node-1"), ("Pulling", "Pulling image"), ("Started", "Started container workspace")] {
                addEvent(namespace: namespace, pod: podName, reason: reason, message: message, type: "Normal")
            }
        }
        updateDeploymentStatus(namespace: namespace, name: name)
    }

    func updateDeploymentStatus(namespace: String, name: String) {
        guard var deployment = get("deployments", namespace: namespace, name: name) else { return }
        let pods = pods(of: name, namespace: namespace)
        let ready = pods.filter(Self.isReady).count
        let status: Object = ["replicas": pods.count, "readyReplicas": ready, "availableReplicas": ready, "observedGeneration": (deployment["metadata"] as? Object)?["generation"] ?? 1]
        if NSDictionary(dictionary: deployment["status"] as? Object ?? [:]).isEqual(to: status) { return }
        deployment["status"] = status
        put("deployments", namespace: namespace, object: deployment, type: "MODIFIED")
    }

    func pods(of deployment: String, namespace: String) -> [Object] {
        all("pods", namespace: namespace).filter { Self.labels($0)[AtriumLabels.workspace] == deployment }
    }

    func deletePod(_ pod: Object, namespace: String) {
        put("pods", namespace: namespace, object: pod, type: "DELETED")
    }

    func addEvent(namespace: String, pod: String, reason: String, message: String, type: String) {
        let event: Object = [
            "apiVersion": "v1", "kind": "Event", "metadata": ["name": "\(pod).\(reason.lowercased()).\(resourceVersion)"],
            "involvedObject": ["kind": "Pod", "name": pod, "namespace": namespace], "reason": reason, "message": message, "type": type, "count": 1,
        ]
        put("events", namespace: namespace, object: event, type: "ADDED")
    }

    // MARK: - Test hooks

    /// A claim that exists already (a user's files from an earlier start).
    func addClaim(namespace: String, name: String) {
        _ = put(
            "persistentvolumeclaims", namespace: namespace,
            object: ["apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": ["name": name, "namespace": namespace],
                     "spec": ["accessModes": ["ReadWriteOnce"], "resources": ["requests": ["storage": "1Gi"]]]],
            type: "ADDED")
    }

    /// Makes the workload's pod ready (or not).
    func setReady(namespace: String, deployment: String, _ ready: Bool) {
        for var pod in pods(of: deployment, namespace: namespace) {
            pod["status"] = Self.podStatus(ready: ready)
            put("pods", namespace: namespace, object: pod, type: "MODIFIED")
        }
        updateDeploymentStatus(namespace: namespace, name: deployment)
    }

    /// Puts a failure on the workload's pod, with the event the kubelet or scheduler would send.
    func inject(_ failure: Failure, namespace: String, deployment: String) {
        for var pod in pods(of: deployment, namespace: namespace) {
            let name = (pod["metadata"] as? Object)?["name"] as? String ?? ""
            var status: Object
            switch failure {
            case .unschedulable:
                status = ["phase": "Pending", "conditions": [["type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes are available: 3 Insufficient memory."]]]
                addEvent(namespace: namespace, pod: name, reason: "FailedScheduling", message: "0/3 nodes are available: 3 Insufficient memory.", type: "Warning")
            case .imagePullBackOff:
                status = Self.waiting("ImagePullBackOff", "Back-off pulling image \"nope:latest\"")
                addEvent(namespace: namespace, pod: name, reason: "Failed", message: "Failed to pull image \"nope:latest\"", type: "Warning")
            case .crashLoopBackOff:
                status = Self.waiting("CrashLoopBackOff", "back-off 40s restarting failed container=workspace")
                addEvent(namespace: namespace, pod: name, reason: "BackOff", message: "Back-off restarting failed container", type: "Warning")
            case .oomKilled:
                status = Self.waiting("CrashLoopBackOff", "back-off 10s restarting failed container=workspace")
                var statuses = status["containerStatuses"] as! [Object]
                statuses[0]["lastState"] = ["terminated": ["reason": "OOMKilled", "exitCode": 137]]
                status["containerStatuses"] = statuses
            }
            pod["status"] = status
            put("pods", namespace: namespace, object: pod, type: "MODIFIED")
        }
        updateDeploymentStatus(namespace: namespace, name: deployment)
    }

    func logs(pod: String) -> [String]? { podLogs[pod] }
    func appendLog(namespace: String, deployment: String, _ lines: [String]) {
        for pod in pods(of: deployment, namespace: namespace) {
            if let name = (pod["metadata"] as? Object)?["name"] as? String { podLogs[name, default: []] += lines }
        }
    }

    func recordInvalid(_ problem: String) { invalid.append(problem) }

    // MARK: - Helpers

    static func waiting(_ reason: String, _ message: String) -> Object {
        [
            "phase": "Pending", "conditions": [["type": "PodScheduled", "status": "True"], ["type": "Ready", "status": "False"]],
            "containerStatuses": [["name": "workspace", "ready": false, "restartCount": 3, "state": ["waiting": ["reason": reason, "message": message]]]],
        ]
    }

    static func podStatus(ready: Bool) -> Object {
        [
            "phase": ready ? "Running" : "Pending", "podIP": "10.0.0.7",
            "conditions": [["type": "PodScheduled", "status": "True"], ["type": "Ready", "status": ready ? "True" : "False"]],
            "containerStatuses": [
                ["name": "workspace", "ready": ready, "restartCount": 0, "state": ready ? ["running": ["startedAt": "2026-01-01T00:00:01Z"]] : ["waiting": ["reason": "ContainerCreating"]]]
            ],
        ]
    }

    static func isReady(_ pod: Object) -> Bool {
        let conditions = (pod["status"] as? Object)?["conditions"] as? [Object] ?? []
        return conditions.contains { $0["type"] as? String == "Ready" && $0["status"] as? String == "True" }
    }

    static func port(of template: Object) -> Int {
        let containers = (template["spec"] as? Object)?["containers"] as? [Object] ?? []
        return ((containers.first?["ports"] as? [Object])?.first?["containerPort"] as? Int) ?? 0
    }

    static func labels(_ object: Object) -> [String: String] {
        (object["metadata"] as? Object)?["labels"] as? [String: String] ?? [:]
    }

    static func decode(_ data: Data) -> Object? { try? JSONSerialization.jsonObject(with: data) as? Object }

    /// Equality-based selectors: `k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated.
    static func matches(_ object: Object, selector: String?) -> Bool {
        guard let selector, !selector.isEmpty else { return true }
        let labels = labels(object)
        for term in selector.split(separator: ",").map(String.init) {
            if let r = term.range(of: "!=") {
                if labels[String(term[..<r.lowerBound])] == String(term[r.upperBound...]) { return false }
            } else if let r = term.range(of: "=") {
                let key = String(term[..<r.lowerBound])
                let value = String(term[r.upperBound...]).trimmingCharacters(in: CharacterSet(charactersIn: "="))
                if labels[key] != value { return false }
            } else if term.hasPrefix("!") {
                if labels[String(term.dropFirst())] != nil { return false }
            } else if labels[term] == nil {
                return false
            }
        }
        return true
    }

    static func fnv(_ data: Data) -> UInt32 {
        var hash: UInt32 = 2_166_136_261
        for byte in data { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return hash
    }
}

extension FakeCluster {
    /// Whether the workload's pod is ready (what the readiness probe of a real endpoint finds).
    func isReady(namespace: String, deployment: String) -> Bool {
        pods(of: deployment, namespace: namespace).contains(where: Self.isReady)
    }
    func podCount(namespace: String, deployment: String) -> Int { pods(of: deployment, namespace: namespace).count }
    func replicas(namespace: String, deployment: String) -> Int? {
        (get("deployments", namespace: namespace, name: deployment)?["spec"] as? Object)?["replicas"] as? Int
    }
    func annotation(_ key: String, namespace: String, deployment: String) -> String? {
        ((get("deployments", namespace: namespace, name: deployment)?["metadata"] as? Object)?["annotations"] as? [String: String])?[key]
    }
    func uid(_ resource: String, namespace: String, name: String) -> String? {
        (get(resource, namespace: namespace, name: name)?["metadata"] as? Object)?["uid"] as? String
    }
    func exists(_ resource: String, namespace: String, name: String) -> Bool { get(resource, namespace: namespace, name: name) != nil }
    func image(namespace: String, deployment: String) -> String? {
        let spec = (get("deployments", namespace: namespace, name: deployment)?["spec"] as? Object)?["template"] as? Object
        return (((spec?["spec"] as? Object)?["containers"] as? [Object])?.first?["image"]) as? String
    }
}
