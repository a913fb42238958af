import Foundation

/// Everything the object builders need for one server, resolved already (no templates, no
/// defaults left to apply): one input, pure functions out.
public struct WorkspaceInput: Sendable, Equatable {
    /// Where the user's files live.
    public enum Storage: Sendable, Equatable {
        /// A PersistentVolumeClaim per user; `/workspace`, `/io` and `/data` are its `code`,
        /// `io` and `root` folders.
        case persistentVolumeClaim(size: String, storageClass: String?)
        /// Seed 001's layout on the node: `{studentsDir}/{user}/code → /workspace`,
        /// `io → /io`, `root → /data`.
        case hostPath(studentsDir: String)
    }

    /// Starter files copied into an empty workspace by an init container.
    public struct StarterFiles: Sendable, Equatable {
        /// The image that holds them (often the workspace image itself).
        public var image: String
        /// Their folder inside that image.
        public var path: String

        public init(image: String, path: String) {
            self.image = image
            self.path = path
        }
    }

    public var namespace: String
    public var names: WorkspaceNames
    public var image: String
    public var imagePullPolicy: String?
    public var port: Int
    /// Replaces the image's entrypoint when set.
    public var command: [String]?
    public var args: [String]?
    public var environment: [String: String]
    /// Credentials (tokens, the proxy secret): put in the server's Secret and referenced from
    /// the container, so reading the Deployment does not reveal them.
    public var secretEnvironment: [String: String] = [:]
    /// Quantities by resource name (`cpu`, `memory`).
    public var requests: [String: String]
    public var limits: [String: String]
    public var nodeSelector: [String: String]
    public var tolerations: [Toleration]
    public var storage: Storage
    public var starterFiles: StarterFiles?
    /// The uid and gid the workspace runs as (and the volume's group). Default: 1000.
    public var uid = 1000
    /// Labels of the hub's pods: the only peers the NetworkPolicy lets in.
    public var hubPodLabels: [String: String]
    /// Addresses the NetworkPolicy also lets in: the API server's, when the hub reaches
    /// workspaces through its service proxy.
    public var admittedCIDRs: [String] = []

    public init(
        namespace: String, names: WorkspaceNames, image: String, port: Int, command: [String]? = nil, args: [String]? = nil,
        environment: [String: String] = [:], requests: [String: String] = [:], limits: [String: String] = [:],
        nodeSelector: [String: String] = [:], tolerations: [Toleration] = [], storage: Storage, starterFiles: StarterFiles? = nil,
        hubPodLabels: [String: String]
    ) {
        self.namespace = namespace
        self.names = names
        self.image = image
        self.port = port
        self.command = command
        self.args = args
        self.environment = environment
        self.requests = requests
        self.limits = limits
        self.nodeSelector = nodeSelector
        self.tolerations = tolerations
        self.storage = storage
        self.starterFiles = starterFiles
        self.hubPodLabels = hubPodLabels
    }
}

/// Pure builders: the objects of one server from a ``WorkspaceInput``. No API calls, no
/// clock, no randomness; the same input gives byte-identical JSON.
public enum WorkspaceObjects {
    public static let containerName = "workspace"
    public static let starterContainerName = "starter-files"

    static func labels(_ input: WorkspaceInput, type: String) -> [String: String] {
        var labels = [
            AtriumLabels.managedBy: AtriumLabels.managedByValue,
            AtriumLabels.user: input.names.userKey,
            AtriumLabels.type: type,
        ]
        if type == "workspace" {
            labels[AtriumLabels.server] = input.names.serverKey
            labels[AtriumLabels.workspace] = input.names.workload
        }
        return labels
    }

    static func annotations(_ input: WorkspaceInput, server: Bool = true) -> [String: String] {
        var annotations = [AtriumLabels.userName: input.names.user]
        if server { annotations[AtriumLabels.serverName] = input.names.server }
        return annotations
    }

    static func meta(_ input: WorkspaceInput, name: String, type: String) -> ObjectMeta {
        ObjectMeta(name: name, namespace: input.namespace, labels: labels(input, type: type), annotations: annotations(input, server: type == "workspace"))
    }

    /// The Deployment: one replica, `Recreate` (a volume is mounted by one pod at a time).
    public static func deployment(_ input: WorkspaceInput) -> Deployment {
        let name = input.names.workload
        let restricted = SecurityContext(
            allowPrivilegeEscalation: false, capabilities: Capabilities(drop: ["ALL"]), privileged: false, runAsNonRoot: true,
            seccompProfile: nil)
        let mounts = [
            VolumeMount(name: "home", mountPath: "/workspace", subPath: input.storage.isHostPath ? nil : "code", readOnly: nil),
            VolumeMount(name: input.storage.isHostPath ? "io" : "home", mountPath: "/io", subPath: input.storage.isHostPath ? nil : "io", readOnly: nil),
            VolumeMount(name: input.storage.isHostPath ? "root" : "home", mountPath: "/data", subPath: input.storage.isHostPath ? nil : "root", readOnly: nil),
        ]
        let volumes: [Volume]
        switch input.storage {
        case .persistentVolumeClaim:
            volumes = [Volume(name: "home", persistentVolumeClaim: PVCVolumeSource(claimName: input.names.volumeClaim))]
        case .hostPath(let root):
            let base = "\(root)/\(input.names.userKey)"
            volumes = [("home", "code"), ("io", "io"), ("root", "root")].map {
                Volume(name: $0.0, hostPath: HostPathVolumeSource(path: "\(base)/\($0.1)", type: "DirectoryOrCreate"))
            }
        }
        let main = Container(
            name: containerName, image: input.image, imagePullPolicy: input.imagePullPolicy, command: input.command, args: input.args,
            workingDir: "/workspace",
            env: environment(input),
            ports: [ContainerPort(name: "http", containerPort: input.port, protocol: "TCP")],
            resources: ResourceRequirements(requests: input.requests.isEmpty ? nil : input.requests, limits: input.limits.isEmpty ? nil : input.limits),
            volumeMounts: mounts, securityContext: restricted,
            readinessProbe: Probe(tcpSocket: TCPSocketAction(port: input.port), periodSeconds: 2, failureThreshold: 3))
        var initContainers: [Container]?
        if let starter = input.starterFiles {
            // Copies only into an empty workspace, and never deletes or overwrites anything:
            // a student's files survive every restart (seed 004's hook wiped them).
            let script = #"if [ -z "$(ls -A /workspace 2>/dev/null)" ]; then cp -R "$ATRIUM_STARTER_FILES/." /workspace/; fi"#
            initContainers = [
                Container(
                    name: starterContainerName, image: starter.image, imagePullPolicy: input.imagePullPolicy, command: ["sh", "-c", script],
                    env: [EnvVar(name: "ATRIUM_STARTER_FILES", value: starter.path)],
                    resources: ResourceRequirements(requests: ["cpu": "50m", "memory": "64Mi"], limits: ["cpu": "500m", "memory": "256Mi"]),
                    volumeMounts: [mounts[0]], securityContext: restricted)
            ]
        }
        let pod = PodSpec(
            automountServiceAccountToken: false, enableServiceLinks: false,
            securityContext: PodSecurityContext(
                runAsNonRoot: true, runAsUser: input.uid, runAsGroup: input.uid, fsGroup: input.uid, seccompProfile: SeccompProfile(type: "RuntimeDefault")),
            initContainers: initContainers, containers: [main], volumes: volumes,
            nodeSelector: input.nodeSelector.isEmpty ? nil : input.nodeSelector, tolerations: input.tolerations.isEmpty ? nil : input.tolerations,
            restartPolicy: "Always", terminationGracePeriodSeconds: 30)
        let spec = DeploymentSpec(
            replicas: 1, selector: LabelSelector(matchLabels: [AtriumLabels.workspace: name]),
            template: PodTemplateSpec(metadata: ObjectMeta(labels: labels(input, type: "workspace"), annotations: annotations(input)), spec: pod),
            strategy: DeploymentStrategy(type: "Recreate"), revisionHistoryLimit: 2)
        return Deployment(metadata: meta(input, name: name, type: "workspace"), spec: spec)
    }

    /// The container's environment, sorted by name: literal values, then references into the
    /// server's Secret for the credentials.
    static func environment(_ input: WorkspaceInput) -> [EnvVar] {
        let literal = input.environment.filter { input.secretEnvironment[$0.key] == nil }.map { EnvVar(name: $0.key, value: $0.value) }
        let secret = input.secretEnvironment.keys.map { EnvVar(name: $0, secret: input.names.workload, key: $0) }
        return (literal + secret).sorted { $0.name < $1.name }
    }

    /// The server's credentials, or `nil` when it has none.
    public static func secret(_ input: WorkspaceInput) -> KubernetesSecret? {
        guard !input.secretEnvironment.isEmpty else { return nil }
        return KubernetesSecret(metadata: meta(input, name: input.names.workload, type: "workspace"), stringData: input.secretEnvironment)
    }

    /// The ClusterIP Service in front of the pod.
    public static func service(_ input: WorkspaceInput) -> KubernetesService {
        KubernetesService(
            metadata: meta(input, name: input.names.workload, type: "workspace"),
            spec: ServiceSpec(
                type: "ClusterIP", selector: [AtriumLabels.workspace: input.names.workload],
                ports: [ServicePort(name: "http", port: input.port, targetPort: input.port, protocol: "TCP")]))
    }

    /// The user's volume claim, or `nil` with hostPath storage.
    public static func volumeClaim(_ input: WorkspaceInput) -> PersistentVolumeClaim? {
        guard case .persistentVolumeClaim(let size, let storageClass) = input.storage else { return nil }
        return PersistentVolumeClaim(
            metadata: meta(input, name: input.names.volumeClaim, type: "volume"),
            spec: PVCSpec(accessModes: ["ReadWriteOnce"], resources: VolumeResourceRequirements(requests: ["storage": size]), storageClassName: storageClass))
    }

    /// Lets in only the hub's pods (and `admittedCIDRs`, the API server), on the workspace port.
    public static func networkPolicy(_ input: WorkspaceInput) -> NetworkPolicy {
        let peers = [NetworkPolicyPeer(podSelector: LabelSelector(matchLabels: input.hubPodLabels))]
            + input.admittedCIDRs.map { NetworkPolicyPeer(ipBlock: IPBlock(cidr: $0)) }
        return NetworkPolicy(
            metadata: meta(input, name: input.names.workload, type: "workspace"),
            spec: NetworkPolicySpec(
                podSelector: LabelSelector(matchLabels: [AtriumLabels.workspace: input.names.workload]), policyTypes: ["Ingress"],
                ingress: [
                    NetworkPolicyIngressRule(
                        from: peers,
                        ports: [NetworkPolicyPort(port: input.port, protocol: "TCP")])
                ]))
    }

    /// Deterministic JSON (sorted keys) of any built object: what golden tests compare.
    public static func json(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}

extension WorkspaceInput.Storage {
    var isHostPath: Bool {
        if case .hostPath = self { return true }
        return false
    }
}
