import Foundation

// Typed models of the Kubernetes objects Atrium uses: only the fields it reads or writes.
// Unknown fields in answers are ignored on decoding; `nil` fields are left out on encoding, so
// what Atrium sends holds exactly what it means to set (JSONEncoder with sorted keys makes the
// output deterministic for golden tests).

/// Any object the client can address: it knows its API path and kind.
public protocol KubernetesObject: Codable, Sendable, Equatable {
    /// `api/v1` or `apis/apps/v1`.
    static var apiPath: String { get }
    /// The plural resource name in URLs: `deployments`, `pods`.
    static var resource: String { get }
    /// `v1` or `apps/v1`.
    static var apiVersion: String { get }
    static var kind: String { get }
    var metadata: ObjectMeta { get set }
}

/// Standard object metadata.
public struct ObjectMeta: Codable, Sendable, Equatable {
    public var name: String?
    public var namespace: String?
    public var labels: [String: String]?
    public var annotations: [String: String]?
    public var resourceVersion: String?
    public var uid: String?
    public var generation: Int?
    public var creationTimestamp: String?
    public var deletionTimestamp: String?

    public init(name: String? = nil, namespace: String? = nil, labels: [String: String]? = nil, annotations: [String: String]? = nil) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.annotations = annotations
    }
}

/// Metadata of a list: the resourceVersion a watch resumes from.
public struct ListMeta: Codable, Sendable, Equatable {
    public var resourceVersion: String?
    public var `continue`: String?
}

/// A list answer (`DeploymentList`, `PodList`, …).
public struct ObjectList<Item: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var metadata: ListMeta
    public var items: [Item]
}

/// The API's error (and some success) answer.
public struct KubernetesStatus: Codable, Sendable, Equatable {
    public var kind: String?
    public var apiVersion: String?
    public var status: String?
    public var message: String?
    public var reason: String?
    public var code: Int?

    public init(status: String, message: String, reason: String, code: Int) {
        self.kind = "Status"
        self.apiVersion = "v1"
        self.status = status
        self.message = message
        self.reason = reason
        self.code = code
    }
}

public struct LabelSelector: Codable, Sendable, Equatable {
    public var matchLabels: [String: String]?
    public init(matchLabels: [String: String]) { self.matchLabels = matchLabels }
}

// MARK: - Deployment

public struct Deployment: KubernetesObject {
    public static let apiPath = "apis/apps/v1"
    public static let resource = "deployments"
    public static let apiVersion = "apps/v1"
    public static let kind = "Deployment"
    public var apiVersion: String? = Deployment.apiVersion
    public var kind: String? = Deployment.kind
    public var metadata: ObjectMeta
    public var spec: DeploymentSpec?
    public var status: DeploymentStatus?

    public init(metadata: ObjectMeta, spec: DeploymentSpec) {
        self.metadata = metadata
        self.spec = spec
    }
}

public struct DeploymentSpec: Codable, Sendable, Equatable {
    public var replicas: Int?
    public var selector: LabelSelector
    public var template: PodTemplateSpec
    public var strategy: DeploymentStrategy?
    public var revisionHistoryLimit: Int?
}

public struct DeploymentStrategy: Codable, Sendable, Equatable {
    /// `Recreate` or `RollingUpdate`.
    public var type: String
}

public struct DeploymentStatus: Codable, Sendable, Equatable {
    public var replicas: Int?
    public var readyReplicas: Int?
    public var availableReplicas: Int?
    public var observedGeneration: Int?
}

public struct PodTemplateSpec: Codable, Sendable, Equatable {
    public var metadata: ObjectMeta
    public var spec: PodSpec
}

// MARK: - Pod

public struct Pod: KubernetesObject {
    public static let apiPath = "api/v1"
    public static let resource = "pods"
    public static let apiVersion = "v1"
    public static let kind = "Pod"
    public var apiVersion: String? = Pod.apiVersion
    public var kind: String? = Pod.kind
    public var metadata: ObjectMeta
    public var spec: PodSpec?
    public var status: PodStatus?

    public init(metadata: ObjectMeta, spec: PodSpec?, status: PodStatus?) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

public struct PodSpec: Codable, Sendable, Equatable {
    public var automountServiceAccountToken: Bool?
    public var enableServiceLinks: Bool?
    public var securityContext: PodSecurityContext?
    public var initContainers: [Container]?
    public var containers: [Container]
    public var volumes: [Volume]?
    public var nodeSelector: [String: String]?
    public var tolerations: [Toleration]?
    public var restartPolicy: String?
    public var terminationGracePeriodSeconds: Int?
}

public struct PodSecurityContext: Codable, Sendable, Equatable {
    public var runAsNonRoot: Bool?
    public var runAsUser: Int?
    public var runAsGroup: Int?
    public var fsGroup: Int?
    public var seccompProfile: SeccompProfile?
}

public struct SeccompProfile: Codable, Sendable, Equatable {
    /// `RuntimeDefault`.
    public var type: String
}

public struct Container: Codable, Sendable, Equatable {
    public var name: String
    public var image: String
    public var imagePullPolicy: String?
    public var command: [String]?
    public var args: [String]?
    public var workingDir: String?
    public var env: [EnvVar]?
    public var ports: [ContainerPort]?
    public var resources: ResourceRequirements?
    public var volumeMounts: [VolumeMount]?
    public var securityContext: SecurityContext?
    public var readinessProbe: Probe?
}

/// An environment variable: a literal value, or a key of a Secret (credentials never appear in
/// the Deployment itself).
public struct EnvVar: Codable, Sendable, Equatable {
    public var name: String
    public var value: String?
    public var valueFrom: EnvVarSource?

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    public init(name: String, secret: String, key: String) {
        self.name = name
        self.valueFrom = EnvVarSource(secretKeyRef: SecretKeySelector(name: secret, key: key))
    }
}

public struct EnvVarSource: Codable, Sendable, Equatable {
    public var secretKeyRef: SecretKeySelector?
}

public struct SecretKeySelector: Codable, Sendable, Equatable {
    public var name: String
    public var key: String
}

public struct ContainerPort: Codable, Sendable, Equatable {
    public var name: String?
    public var containerPort: Int
    public var `protocol`: String?
}

public struct ResourceRequirements: Codable, Sendable, Equatable {
    public var requests: [String: String]?
    public var limits: [String: String]?
}

public struct VolumeMount: Codable, Sendable, Equatable {
    public var name: String
    public var mountPath: String
    public var subPath: String?
    public var readOnly: Bool?
}

public struct SecurityContext: Codable, Sendable, Equatable {
    public var allowPrivilegeEscalation: Bool?
    public var capabilities: Capabilities?
    public var privileged: Bool?
    public var runAsNonRoot: Bool?
    public var seccompProfile: SeccompProfile?
}

public struct Capabilities: Codable, Sendable, Equatable {
    public var drop: [String]?
}

public struct Probe: Codable, Sendable, Equatable {
    public var tcpSocket: TCPSocketAction?
    public var periodSeconds: Int?
    public var failureThreshold: Int?
}

public struct TCPSocketAction: Codable, Sendable, Equatable {
    public var port: Int
}

public struct Toleration: Codable, Sendable, Equatable {
    public var key: String?
    /// `Exists` or `Equal`.
    public var `operator`: String?
    public var value: String?
    /// `NoSchedule`, `PreferNoSchedule`, `NoExecute`.
    public var effect: String?

    public init(key: String? = nil, operator op: String? = nil, value: String? = nil, effect: String? = nil) {
        self.key = key
        self.operator = op
        self.value = value
        self.effect = effect
    }
}

public struct Volume: Codable, Sendable, Equatable {
    public var name: String
    public var persistentVolumeClaim: PVCVolumeSource?
    public var hostPath: HostPathVolumeSource?
    public var emptyDir: EmptyDirVolumeSource?
}

public struct PVCVolumeSource: Codable, Sendable, Equatable { public var claimName: String }
public struct HostPathVolumeSource: Codable, Sendable, Equatable {
    public var path: String
    /// `DirectoryOrCreate`.
    public var type: String?
}
public struct EmptyDirVolumeSource: Codable, Sendable, Equatable {}

public struct PodStatus: Codable, Sendable, Equatable {
    /// `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
    public var phase: String?
    public var conditions: [PodCondition]?
    public var containerStatuses: [ContainerStatus]?
    public var initContainerStatuses: [ContainerStatus]?
    public var podIP: String?

    public init(phase: String? = nil, conditions: [PodCondition]? = nil, containerStatuses: [ContainerStatus]? = nil) {
        self.phase = phase
        self.conditions = conditions
        self.containerStatuses = containerStatuses
    }
}

public struct PodCondition: Codable, Sendable, Equatable {
    /// `PodScheduled`, `Ready`, …
    public var type: String
    /// `True`, `False`, `Unknown`.
    public var status: String
    public var reason: String?
    public var message: String?

    public init(type: String, status: String, reason: String? = nil, message: String? = nil) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
    }
}

public struct ContainerStatus: Codable, Sendable, Equatable {
    public var name: String
    public var ready: Bool
    public var restartCount: Int
    public var image: String?
    public var state: ContainerState?
    public var lastState: ContainerState?

    public init(name: String, ready: Bool, restartCount: Int = 0, state: ContainerState? = nil, lastState: ContainerState? = nil) {
        self.name = name
        self.ready = ready
        self.restartCount = restartCount
        self.state = state
        self.lastState = lastState
    }
}

public struct ContainerState: Codable, Sendable, Equatable {
    public var waiting: StateDetail?
    public var running: StateDetail?
    public var terminated: StateDetail?

    public init(waiting: StateDetail? = nil, running: StateDetail? = nil, terminated: StateDetail? = nil) {
        self.waiting = waiting
        self.running = running
        self.terminated = terminated
    }
}

/// The union of the waiting, running and terminated details Atrium reads.
public struct StateDetail: Codable, Sendable, Equatable {
    public var reason: String?
    public var message: String?
    public var exitCode: Int?
    public var startedAt: String?

    public init(reason: String? = nil, message: String? = nil, exitCode: Int? = nil, startedAt: String? = nil) {
        self.reason = reason
        self.message = message
        self.exitCode = exitCode
        self.startedAt = startedAt
    }
}
