import AtriumSpawn
import Foundation

extension KubernetesBackend {
    /// Waiting reasons that do not resolve by waiting.
    static let failingWaitReasons: Set<String> = [
        "ImagePullBackOff", "ErrImagePull", "CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError", "InvalidImageName",
        "ErrImageNeverPull", "RunContainerError",
    ]

    /// What a Deployment and its pods come to: pure, so every case is tested without a cluster.
    /// Suspended (0 replicas); running (a pod is ready); failed with the cluster's reason
    /// (`Unschedulable`, `OOMKilled`, `ImagePullBackOff`, `CrashLoopBackOff`, …); starting (the
    /// container runs but is not ready); pending otherwise.
    public static func status(deployment: Deployment?, pods: [Pod]) -> BackendStatus {
        guard let deployment else { return .stopped }
        if (deployment.spec?.replicas ?? 1) == 0 { return .suspended }
        let live = pods.filter { $0.metadata.deletionTimestamp == nil }
        if live.contains(where: isReady) { return .running }
        for pod in live { if let reason = failure(pod) { return .failed(reason: reason) } }
        guard let pod = live.last else { return .pending("waiting for the Deployment's pod") }
        if pod.status?.phase == "Running" { return .starting }
        let waiting = pod.status?.containerStatuses?.compactMap { $0.state?.waiting?.reason }.first
        return .pending(waiting ?? "the pod is \(pod.status?.phase ?? "pending")")
    }

    static func isReady(_ pod: Pod) -> Bool {
        pod.status?.conditions?.contains { $0.type == "Ready" && $0.status == "True" } ?? false
    }

    static func failure(_ pod: Pod) -> String? {
        if let c = pod.status?.conditions?.first(where: { $0.type == "PodScheduled" && $0.status == "False" && $0.reason == "Unschedulable" }) {
            return "Unschedulable: \(c.message ?? "no node can run the workspace")"
        }
        let containers = (pod.status?.initContainerStatuses ?? []) + (pod.status?.containerStatuses ?? [])
        for c in containers where c.state?.terminated?.reason == "OOMKilled" || c.lastState?.terminated?.reason == "OOMKilled" {
            return "OOMKilled: container \(c.name) ran out of memory (raise its memory limit)"
        }
        for c in containers {
            if let waiting = c.state?.waiting, let reason = waiting.reason, failingWaitReasons.contains(reason) {
                return waiting.message.map { "\(reason): \($0)" } ?? reason
            }
        }
        if pod.status?.phase == "Failed" { return "the pod failed" }
        return nil
    }
}
