import Foundation
import Testing

@testable import AtriumKubernetes

/// The pure object builders: golden JSON, schema validity, names for any user name.
@Suite("Kubernetes object builders")
struct KubernetesBuilderTests {
    static let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")

    static func input(storage: WorkspaceInput.Storage = .persistentVolumeClaim(size: "1Gi", storageClass: "standard")) -> WorkspaceInput {
        var input = WorkspaceInput(
            namespace: "course", names: WorkspaceNames(user: "Zoë O'Brien", server: "lab 2"), image: "codercom/code-server:4.96.2", port: 8080,
            args: ["--bind-addr", "0.0.0.0:8080", "--auth", "none", "/workspace"],
            environment: ["USER_ID": "42", "JUPYTERHUB_USER": "Zoë O'Brien", "ATRIUM_WORKSPACE_SECRET": "s3cret"],
            requests: ["cpu": "250m", "memory": "256Mi"], limits: ["cpu": "1", "memory": "2Gi"],
            nodeSelector: ["pool": "students"], tolerations: [Toleration(key: "students", operator: "Exists", effect: "NoSchedule")],
            storage: storage, starterFiles: .init(image: "kevinng77/coe_jupyter:latest", path: "/tmp"),
            hubPodLabels: ["app.kubernetes.io/name": "atrium-hub"])
        input.imagePullPolicy = "IfNotPresent"
        input.secretEnvironment = ["ATRIUM_WORKSPACE_SECRET": "s3cret", "JUPYTERHUB_API_TOKEN": "t0ken"]
        return input
    }

    /// Compares with the golden file; `ATRIUM_RECORD_GOLDEN=1` rewrites it.
    func golden(_ name: String, _ value: some Encodable) throws {
        let text = try WorkspaceObjects.json(value) + "\n"
        let url = Self.goldenDirectory.appendingPathComponent("\(name).json")
        if ProcessInfo.processInfo.environment["ATRIUM_RECORD_GOLDEN"] == "1" {
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: url, encoding: .utf8)
        #expect(text == expected, "\(name) differs from Golden/\(name).json (ATRIUM_RECORD_GOLDEN=1 rewrites it)")
    }

    func validate(_ value: some Encodable) throws -> [String] {
        SchemaValidator.shared.validate(object: try JSONEncoder().encode(value))
    }

    @Test func goldenObjectsWithVolumeClaim() throws {
        let input = Self.input()
        try golden("deployment-pvc", WorkspaceObjects.deployment(input))
        try golden("service", WorkspaceObjects.service(input))
        try golden("pvc", try #require(WorkspaceObjects.volumeClaim(input)))
        try golden("networkpolicy", WorkspaceObjects.networkPolicy(input))
        try golden("secret", try #require(WorkspaceObjects.secret(input)))
    }

    @Test func credentialsAreInTheSecretNotInTheDeployment() throws {
        let input = Self.input()
        let deployment = try WorkspaceObjects.json(WorkspaceObjects.deployment(input))
        #expect(!deployment.contains("s3cret") && !deployment.contains("t0ken"))
        let env = try #require(WorkspaceObjects.deployment(input).spec?.template.spec.containers.first?.env)
        #expect(env.map { $0.name } == ["ATRIUM_WORKSPACE_SECRET", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_USER", "USER_ID"])
        #expect(env[0].valueFrom?.secretKeyRef == SecretKeySelector(name: input.names.workload, key: "ATRIUM_WORKSPACE_SECRET"))
        #expect(env[3].value == "42")
        #expect(try validate(try #require(WorkspaceObjects.secret(input))) == [])
        var none = input
        none.secretEnvironment = [:]
        #expect(WorkspaceObjects.secret(none) == nil)
        #expect(KubernetesBackend.isCredential("JPY_API_TOKEN") && KubernetesBackend.isCredential("db_password"))
        #expect(!KubernetesBackend.isCredential("USER_ID"))
    }

    @Test("api_proxy: the NetworkPolicy also admits the API server's addresses")
    func networkPolicyAdmitsTheAPIServer() throws {
        var input = Self.input()
        input.admittedCIDRs = ["172.18.0.2/32", "fd00::1/128"]
        let policy = WorkspaceObjects.networkPolicy(input)
        try golden("networkpolicy-api-proxy", policy)
        #expect(policy.spec?.ingress.first?.from.compactMap { $0.ipBlock?.cidr } == ["172.18.0.2/32", "fd00::1/128"])
        #expect(try validate(policy) == [])
    }

    @Test func goldenDeploymentWithHostPath() throws {
        let input = Self.input(storage: .hostPath(studentsDir: "/data/students"))
        try golden("deployment-hostpath", WorkspaceObjects.deployment(input))
        #expect(WorkspaceObjects.volumeClaim(input) == nil)
    }

    @Test func builtObjectsValidateAgainstTheOfficialSchemas() throws {
        for storage in [WorkspaceInput.Storage.persistentVolumeClaim(size: "1Gi", storageClass: nil), .hostPath(studentsDir: "/srv/s")] {
            let input = Self.input(storage: storage)
            #expect(try validate(WorkspaceObjects.deployment(input)) == [])
            #expect(try validate(WorkspaceObjects.service(input)) == [])
            #expect(try validate(WorkspaceObjects.networkPolicy(input)) == [])
            if let claim = WorkspaceObjects.volumeClaim(input) { #expect(try validate(claim) == []) }
        }
    }

    @Test func theValidatorRejectsWrongObjects() throws {
        let good = try JSONEncoder().encode(WorkspaceObjects.deployment(Self.input()))
        #expect(SchemaValidator.shared.validate(object: good) == [])
        func mutated(_ change: (inout [String: Any]) -> Void) throws -> [String] {
            var object = try #require(try JSONSerialization.jsonObject(with: good) as? [String: Any])
            change(&object)
            return SchemaValidator.shared.validate(object: try JSONSerialization.data(withJSONObject: object))
        }
        let unknown = try mutated { o in
            var spec = o["spec"] as! [String: Any]
            spec["replicaCount"] = 1
            o["spec"] = spec
        }
        #expect(unknown.contains("$.spec: unknown field replicaCount"))
        let wrongType = try mutated { o in
            var spec = o["spec"] as! [String: Any]
            spec["replicas"] = "1"
            o["spec"] = spec
        }
        #expect(wrongType.contains("$.spec.replicas: must be an integer"))
        let missing = try mutated { o in
            var spec = o["spec"] as! [String: Any]
            var template = spec["template"] as! [String: Any]
            var podSpec = template["spec"] as! [String: Any]
            var containers = podSpec["containers"] as! [[String: Any]]
            containers[0]["name"] = nil
            containers[0]["imagePullPolice"] = "Always"
            podSpec["containers"] = containers
            template["spec"] = podSpec
            spec["template"] = template
            o["spec"] = spec
        }
        #expect(missing.contains("$.spec.template.spec.containers[0]: missing required field name"))
        #expect(missing.contains("$.spec.template.spec.containers[0]: unknown field imagePullPolice"))
        let wrongKind = try mutated { o in o["kind"] = "Deploymnet" }
        #expect(wrongKind == ["$: no schema for apps/v1 Deploymnet"])
        #expect(SchemaValidator.shared.validate(.object(["port": .bool(true)]), against: "io.k8s.api.networking.v1.NetworkPolicyPort") != [])
    }

    @Test(arguments: ["alice", "Alice", "al.ice", "al_ice", "-", "ユーザー", String(repeating: "x", count: 300), "a@b.example.org", "UPPER CASE"])
    func namesAreDNSLabelsForAnyUser(user: String) {
        for server in ["", "lab", "Lab 2!", String(repeating: "s", count: 100)] {
            let names = WorkspaceNames(user: user, server: server)
            for name in [names.workload, names.volumeClaim] {
                #expect(name.count <= 63)
                #expect(name.range(of: "^[a-z]([-a-z0-9]*[a-z0-9])?$", options: .regularExpression) != nil, "\(name)")
            }
            for value in [names.userKey, names.serverKey] {
                #expect(value.count <= 63)
                #expect(value.range(of: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", options: .regularExpression) != nil, "\(value)")
            }
        }
    }

    @Test func differentNamesNeverShareObjects() {
        let users = ["alice", "Alice", "al.ice", "al-ice", "al_ice", "ALICE"]
        #expect(Set(users.map { WorkspaceNames(user: $0, server: "").workload }).count == users.count)
        #expect(Set(users.map { WorkspaceNames(user: $0, server: "").volumeClaim }).count == users.count)
        // A user called "a-b" with no server is not user "a" with server "b".
        #expect(WorkspaceNames(user: "a-b", server: "").workload != WorkspaceNames(user: "a", server: "b").workload)
        #expect(WorkspaceNames(user: "a", server: "b").workload == WorkspaceNames(user: "a", server: "b").workload)
    }

    @Test func theStarterFilesNeverOverwriteOrDelete() throws {
        let deployment = WorkspaceObjects.deployment(Self.input())
        let starter = try #require(deployment.spec?.template.spec.initContainers?.first)
        let script = try #require(starter.command?.last)
        #expect(script.contains(#"[ -z "$(ls -A /workspace"#))
        #expect(!script.contains("rm "))
        #expect(deployment.spec?.template.spec.automountServiceAccountToken == false)
        #expect(deployment.spec?.template.spec.containers[0].securityContext?.allowPrivilegeEscalation == false)
    }
}
