import Foundation

/// The one error type of this module: an API `Status`, a transport failure, a bad kubeconfig,
/// or a watch that could not recover. `reason` is short and stable (for metric labels and
/// tests); `message` is what a person reads.
public struct KubernetesError: Error, Sendable, CustomStringConvertible {
    enum Code: Sendable, Equatable {
        /// The API server answered with a `Status` (or another non-2xx response).
        case api(status: Int)
        case transport
        case configuration
        case decoding
        case watchGaveUp
        case timeout
        case workspaceFailed
    }

    let code: Code
    /// The API's reason (`NotFound`, `AlreadyExists`, `Invalid`, `Gone`, …) or this module's own
    /// (`Transport`, `Configuration`, `Decoding`, `WatchGaveUp`, `Timeout`).
    public let reason: String
    /// What went wrong, as the API server or this module says it.
    public let message: String

    /// The HTTP status of an API error; `nil` for errors that never reached the API.
    public var httpStatus: Int? {
        if case .api(let status) = code { return status }
        return nil
    }

    public var isNotFound: Bool { httpStatus == 404 }
    public var isAlreadyExists: Bool { httpStatus == 409 && reason == "AlreadyExists" }
    public var isConflict: Bool { httpStatus == 409 }
    public var isGone: Bool { httpStatus == 410 }
    /// The API server refused the object as invalid (422).
    public var isInvalid: Bool { httpStatus == 422 }

    public var description: String { "Kubernetes: \(reason): \(message)" }

    static func api(_ status: KubernetesStatus, httpStatus: Int) -> KubernetesError {
        KubernetesError(
            code: .api(status: httpStatus), reason: status.reason ?? "HTTP\(httpStatus)",
            message: status.message ?? "the API server answered \(httpStatus)")
    }

    static func transport(_ message: String) -> KubernetesError { KubernetesError(code: .transport, reason: "Transport", message: message) }
    static func configuration(_ message: String) -> KubernetesError {
        KubernetesError(code: .configuration, reason: "Configuration", message: message)
    }
    static func decoding(_ message: String) -> KubernetesError { KubernetesError(code: .decoding, reason: "Decoding", message: message) }
    static func watchGaveUp(_ message: String) -> KubernetesError { KubernetesError(code: .watchGaveUp, reason: "WatchGaveUp", message: message) }
    /// A workspace that cannot run, with the reason the cluster gives (`ImagePullBackOff: …`).
    static func workspaceFailed(_ reason: String) -> KubernetesError {
        KubernetesError(code: .workspaceFailed, reason: "WorkspaceFailed", message: reason)
    }
    static func timeout(_ message: String) -> KubernetesError { KubernetesError(code: .timeout, reason: "Timeout", message: message) }
}
