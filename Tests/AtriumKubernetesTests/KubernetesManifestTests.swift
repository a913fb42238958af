import Foundation
import Testing
import Yams

/// The kustomize base in deploy/kubernetes: every object validates against the official schemas.
@Suite("Kubernetes manifests")
struct KubernetesManifestTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../deploy/kubernetes").standardized

    @Test func everyManifestValidatesAndIsListed() throws {
        let kustomization = try #require(try Yams.load(yaml: String(contentsOf: Self.directory.appendingPathComponent("kustomization.yaml"), encoding: .utf8)) as? [String: Any])
        let resources = try #require(kustomization["resources"] as? [String])
        var kinds: [String] = []
        for file in resources {
            let text = try String(contentsOf: Self.directory.appendingPathComponent(file), encoding: .utf8)
            for document in try Yams.load_all(yaml: text) {
                let data = try JSONSerialization.data(withJSONObject: try #require(document as? [String: Any]))
                #expect(SchemaValidator.shared.validate(object: data) == [], "\(file)")
                kinds.append(try #require((document as? [String: Any])?["kind"] as? String))
            }
        }
        #expect(Set(kinds) == ["Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "PersistentVolumeClaim", "Deployment", "Service"])
        let onDisk = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path).filter { $0.hasSuffix(".yaml") && $0 != "kustomization.yaml" }
        #expect(Set(onDisk) == Set(resources), "every manifest is in the kustomization")
    }

    @Test func theHubDeploymentIsOneRecreateReplicaWithProbesAndRequests() throws {
        let text = try String(contentsOf: Self.directory.appendingPathComponent("deployment.yaml"), encoding: .utf8)
        let d = try #require(try Yams.load(yaml: text) as? [String: Any])
        let spec = try #require(d["spec"] as? [String: Any])
        #expect(spec["replicas"] as? Int == 1)
        #expect((spec["strategy"] as? [String: Any])?["type"] as? String == "Recreate")
        let pod = try #require((spec["template"] as? [String: Any])?["spec"] as? [String: Any])
        let hub = try #require((pod["containers"] as? [[String: Any]])?.first)
        #expect(((hub["readinessProbe"] as? [String: Any])?["httpGet"] as? [String: Any])?["path"] as? String == "/hub/health")
        #expect(((hub["livenessProbe"] as? [String: Any])?["httpGet"] as? [String: Any])?["path"] as? String == "/hub/health")
        #expect((hub["resources"] as? [String: Any])?["requests"] != nil)
    }

    @Test func theRoleGrantsOnlyWhatTheBackendUses() throws {
        let text = try String(contentsOf: Self.directory.appendingPathComponent("role.yaml"), encoding: .utf8)
        let role = try #require(try Yams.load(yaml: text) as? [String: Any])
        var grants: Set<String> = []
        for rule in try #require(role["rules"] as? [[String: Any]]) {
            for group in rule["apiGroups"] as? [String] ?? [] {
                for resource in rule["resources"] as? [String] ?? [] {
                    for verb in rule["verbs"] as? [String] ?? [] { grants.insert("\(group)/\(resource):\(verb)") }
                }
            }
        }
        #expect(!grants.contains { $0.hasSuffix(":*") || $0.contains("/*") || $0.hasSuffix(":update") })
        // Secrets are written and deleted, never read: no get, list or watch.
        #expect(Set(grants.filter { $0.hasPrefix("/secrets:") }) == Set(["/secrets:create", "/secrets:patch", "/secrets:delete"]))
        #expect(grants.count == 22)
    }
}
