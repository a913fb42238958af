import Foundation

/// Settings of the Kubernetes backend (the `kubernetes.*` configuration keys).
public struct KubernetesConfiguration: Sendable, Equatable {
    /// How the hub reaches workspaces.
    public enum EndpointMode: String, Sendable, CaseIterable {
        /// The Service's cluster DNS name: the hub runs in the cluster.
        case dns
        /// The API server's service proxy, through a ``ServiceProxyRelay`` on loopback: the hub
        /// runs outside the cluster (a laptop), with only the API server reachable.
        case apiProxy = "api_proxy"
    }

    /// A ready-made workspace program.
    public struct Preset: Sendable, Equatable {
        public var image: String
        public var port: Int
        public var command: [String]?
        public var args: [String]?
        public var environment: [String: String]
        /// Whether the proxy strips `/user/{name}/` (programs that serve at `/`).
        public var stripPrefix: Bool
    }

    /// `code-server` (default, seed 001), `jupyterlab` and `jupyter-server` (Jupyter docker-stacks images).
    public static let presets: [String: Preset] = [
        "code-server": Preset(
            image: "codercom/code-server:latest", port: 8080, command: nil,
            args: [
                "--bind-addr", "0.0.0.0:8080", "--auth", "none", "--disable-telemetry", "--disable-update-check", "--user-data-dir",
                "/data/.code-server", "/workspace",
            ], environment: [:], stripPrefix: true),
        "jupyterlab": Preset(
            image: "quay.io/jupyter/minimal-notebook:latest", port: 8888, command: jupyter("jupyter-lab"), args: nil,
            environment: ["JUPYTER_TOKEN": "{secret}"], stripPrefix: false),
        "jupyter-server": Preset(
            image: "quay.io/jupyter/base-notebook:latest", port: 8888, command: jupyter("jupyter-server"), args: nil,
            environment: ["JUPYTER_TOKEN": "{secret}"], stripPrefix: false),
    ]

    private static func jupyter(_ program: String) -> [String] {
        [
            program, "--ServerApp.ip=0.0.0.0", "--ServerApp.port=8888", "--ServerApp.base_url={base_url}", "--ServerApp.root_dir=/workspace",
            "--ServerApp.allow_remote_access=True", "--ServerApp.open_browser=False",
        ]
    }

    /// Where workspaces run. Default: `atrium`.
    public var namespace = "atrium"
    /// The preset that gives image, port, command and environment defaults. Default: code-server.
    public var preset = "code-server"
    /// Replaces the preset's image (a profile's image replaces this).
    public var image: String?
    /// Replaces the preset's port.
    public var port: Int?
    /// Replaces the image's entrypoint / the preset's command. Templates: `{username}`,
    /// `{server_name}`, `{base_url}`, `{user_id}`, `{port}`.
    public var command: [String]?
    public var args: [String]?
    /// Extra environment (same templates, plus `{secret}`), on top of the preset's.
    public var environment: [String: String] = [:]
    /// Resource requests. Default: 250m CPU, 256Mi memory (seed 001).
    public var requests: [String: String] = ["cpu": "250m", "memory": "256Mi"]
    /// Resource limits when neither a profile nor `spawn` limits say otherwise. Default: 1 CPU, 2Gi.
    public var limits: [String: String] = ["cpu": "1", "memory": "2Gi"]
    public var nodeSelector: [String: String] = [:]
    public var tolerations: [Toleration] = []
    /// Per-user storage. Default: a 1Gi PersistentVolumeClaim (seed 004).
    public var storage: WorkspaceInput.Storage = .persistentVolumeClaim(size: "1Gi", storageClass: nil)
    /// Starter files: image (default: the workspace image) and folder in it.
    public var starterFilesImage: String?
    public var starterFilesPath: String?
    /// Whether "delete forever" deletes the user's volume claim too. Default: false.
    public var deleteVolumeOnDeleteForever = false
    public var endpointMode: EndpointMode = .dns
    /// With `api_proxy`: the loopback port of the relay (0: any free port).
    public var apiProxyPort = 0
    /// With `api_proxy`: the API server's addresses (CIDRs), which each workspace's
    /// NetworkPolicy must admit, as service-proxy traffic comes from there.
    public var apiServerCIDRs: [String] = []
    /// The cluster's DNS domain. Default: cluster.local.
    public var clusterDomain = "cluster.local"
    /// Labels of the hub's pods, the only peers the NetworkPolicy admits.
    public var hubPodLabels: [String: String] = ["app.kubernetes.io/name": "atrium-hub"]
    /// Whether each workspace gets a NetworkPolicy. Default: true.
    public var networkPolicy = true
    /// The uid, gid and fsGroup workspaces run as. Default: 1000.
    public var uid = 1000
    /// `Always`, `IfNotPresent` or `Never`; `nil` is the cluster's default.
    public var imagePullPolicy: String?
    /// kubeconfig file; `nil` is `$KUBECONFIG` or `~/.kube/config`.
    public var kubeconfig: String?
    /// kubeconfig context; `nil` is its current context.
    public var context: String?
    /// Use the pod's service account instead of a kubeconfig.
    public var inCluster = false
    /// Deadline of each API request. Default: 30 s.
    public var requestTimeout: Duration = .seconds(30)

    public init() {}

    /// The connection the configuration names.
    public func connection() throws -> ClusterConnection {
        if inCluster { return try ClusterConnection.inCluster() }
        return try ClusterConnection.kubeconfig(path: kubeconfig ?? ClusterConnection.defaultKubeconfigPath(), context: context)
    }
}
