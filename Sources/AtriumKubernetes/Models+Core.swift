import Foundation

// MARK: - Service

public struct KubernetesService: KubernetesObject {
    public static let apiPath = "api/v1"
    public static let resource = "services"
    public static let apiVersion = "v1"
    public static let kind = "Service"
    public var apiVersion: String? = KubernetesService.apiVersion
    public var kind: String? = KubernetesService.kind
    public var metadata: ObjectMeta
    public var spec: ServiceSpec?
}

public struct ServiceSpec: Codable, Sendable, Equatable {
    /// `ClusterIP`, `NodePort`, `LoadBalancer`.
    public var type: String?
    public var selector: [String: String]?
    public var ports: [ServicePort]?
}

public struct ServicePort: Codable, Sendable, Equatable {
    public var name: String?
    public var port: Int
    public var targetPort: Int?
    public var `protocol`: String?
}

// MARK: - PersistentVolumeClaim

public struct PersistentVolumeClaim: KubernetesObject {
    public static let apiPath = "api/v1"
    public static let resource = "persistentvolumeclaims"
    public static let apiVersion = "v1"
    public static let kind = "PersistentVolumeClaim"
    public var apiVersion: String? = PersistentVolumeClaim.apiVersion
    public var kind: String? = PersistentVolumeClaim.kind
    public var metadata: ObjectMeta
    public var spec: PVCSpec?
}

public struct PVCSpec: Codable, Sendable, Equatable {
    public var accessModes: [String]
    public var resources: VolumeResourceRequirements
    public var storageClassName: String?
}

public struct VolumeResourceRequirements: Codable, Sendable, Equatable {
    public var requests: [String: String]
}

// MARK: - Secret

/// A server's credentials (its hub API token and proxy secret), written with `stringData`.
/// The hub only creates, patches and deletes Secrets: it never reads one back.
public struct KubernetesSecret: KubernetesObject {
    public static let apiPath = "api/v1"
    public static let resource = "secrets"
    public static let apiVersion = "v1"
    public static let kind = "Secret"
    public var apiVersion: String? = KubernetesSecret.apiVersion
    public var kind: String? = KubernetesSecret.kind
    public var metadata: ObjectMeta
    public var type: String? = "Opaque"
    public var stringData: [String: String]?
}

// MARK: - NetworkPolicy

public struct NetworkPolicy: KubernetesObject {
    public static let apiPath = "apis/networking.k8s.io/v1"
    public static let resource = "networkpolicies"
    public static let apiVersion = "networking.k8s.io/v1"
    public static let kind = "NetworkPolicy"
    public var apiVersion: String? = NetworkPolicy.apiVersion
    public var kind: String? = NetworkPolicy.kind
    public var metadata: ObjectMeta
    public var spec: NetworkPolicySpec?
}

public struct NetworkPolicySpec: Codable, Sendable, Equatable {
    public var podSelector: LabelSelector
    public var policyTypes: [String]
    public var ingress: [NetworkPolicyIngressRule]
}

public struct NetworkPolicyIngressRule: Codable, Sendable, Equatable {
    public var from: [NetworkPolicyPeer]
    public var ports: [NetworkPolicyPort]
}

public struct NetworkPolicyPeer: Codable, Sendable, Equatable {
    public var podSelector: LabelSelector?
    public var namespaceSelector: LabelSelector?
    public var ipBlock: IPBlock?

    public init(podSelector: LabelSelector? = nil, namespaceSelector: LabelSelector? = nil, ipBlock: IPBlock? = nil) {
        self.podSelector = podSelector
        self.namespaceSelector = namespaceSelector
        self.ipBlock = ipBlock
    }
}

/// Addresses outside the pod network (`cidr`, e.g. `172.18.0.2/32`).
public struct IPBlock: Codable, Sendable, Equatable {
    public var cidr: String

    public init(cidr: String) {
        self.cidr = cidr
    }
}

public struct NetworkPolicyPort: Codable, Sendable, Equatable {
    public var port: Int
    public var `protocol`: String
}

// MARK: - Event, Scale

public struct KubernetesEvent: KubernetesObject {
    public static let apiPath = "api/v1"
    public static let resource = "events"
    public static let apiVersion = "v1"
    public static let kind = "Event"
    public var apiVersion: String? = KubernetesEvent.apiVersion
    public var kind: String? = KubernetesEvent.kind
    public var metadata: ObjectMeta
    public var involvedObject: ObjectReference
    public var reason: String?
    public var message: String?
    /// `Normal` or `Warning`.
    public var type: String?
    public var count: Int?
    public var lastTimestamp: String?

    public init(metadata: ObjectMeta, involvedObject: ObjectReference, reason: String?, message: String?, type: String?) {
        self.metadata = metadata
        self.involvedObject = involvedObject
        self.reason = reason
        self.message = message
        self.type = type
    }
}

public struct ObjectReference: Codable, Sendable, Equatable {
    public var kind: String?
    public var name: String?
    public var namespace: String?
    public var uid: String?

    public init(kind: String?, name: String?, namespace: String?, uid: String? = nil) {
        self.kind = kind
        self.name = name
        self.namespace = namespace
        self.uid = uid
    }
}

/// The `scale` subresource (`autoscaling/v1`).
public struct Scale: Codable, Sendable, Equatable {
    public var apiVersion: String? = "autoscaling/v1"
    public var kind: String? = "Scale"
    public var metadata: ObjectMeta
    public var spec: ScaleSpec
    public var status: ScaleStatus?
}

public struct ScaleSpec: Codable, Sendable, Equatable { public var replicas: Int? }
public struct ScaleStatus: Codable, Sendable, Equatable { public var replicas: Int? }

/// One line of a watch stream.
public enum WatchEvent<Object: KubernetesObject>: Sendable, Equatable {
    case added(Object)
    case modified(Object)
    case deleted(Object)
    case bookmark(resourceVersion: String?)
    /// The server ended the watch with a `Status` (410 Gone: relist).
    case error(KubernetesStatus)
}

extension WatchEvent: Decodable {
    enum CodingKeys: String, CodingKey { case type, object }
    struct BookmarkObject: Decodable { var metadata: ObjectMeta }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(String.self, forKey: .type) {
        case "ADDED": self = .added(try c.decode(Object.self, forKey: .object))
        case "MODIFIED": self = .modified(try c.decode(Object.self, forKey: .object))
        case "DELETED": self = .deleted(try c.decode(Object.self, forKey: .object))
        case "BOOKMARK": self = .bookmark(resourceVersion: try c.decode(BookmarkObject.self, forKey: .object).metadata.resourceVersion)
        case "ERROR": self = .error(try c.decode(KubernetesStatus.self, forKey: .object))
        case let other: throw DecodingError.dataCorruptedError(forKey: .type, in: c, debugDescription: "unknown watch event type \(other)")
        }
    }
}
