import AtriumKubernetes
import Foundation
import NIOSSL
import Testing

struct PKIError: Error, CustomStringConvertible {
    var description: String { "openssl failed making the test certificates" }
}

/// A test certificate authority made with the `openssl` command: it signs the fake API server's
/// certificate (for 127.0.0.1) and a client certificate for the hub.
struct TestPKI {
    let folder: String
    var caPEM: Data { FileManager.default.contents(atPath: "\(folder)/ca.crt") ?? Data() }

    static let available = FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl")

    init() throws {
        #expect(Self.available, "CI must install openssl (.ci/run)")
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("atrium-pki-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        try "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n".write(toFile: "\(folder)/server.ext", atomically: true, encoding: .utf8)
        try "extendedKeyUsage=clientAuth\n".write(toFile: "\(folder)/client.ext", atomically: true, encoding: .utf8)
        try Self.run("""
            cd '\(folder)' &&
            openssl req -x509 \(key) -keyout ca.key -out ca.crt -days 2 -subj /CN=atrium-test-ca \
              -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
            openssl req \(key) -keyout server.key -out server.csr -subj /CN=127.0.0.1 &&
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile server.ext &&
            openssl req \(key) -keyout client.key -out client.csr -subj /CN=atrium-hub &&
            openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 2 -extfile client.ext
            """)
    }

    static func run(_ script: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", script]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw PKIError() }
    }

    func file(_ name: String) -> Data { FileManager.default.contents(atPath: "\(folder)/\(name)") ?? Data() }

    /// The fake API server's TLS: its certificate, and client certificates required (signed by the CA).
    func serverConfiguration() throws -> TLSConfiguration {
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile("\(folder)/server.crt").map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: "\(folder)/server.key", format: .pem)))
        tls.certificateVerification = .noHostnameVerification
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile("\(folder)/ca.crt"))
        return tls
    }

    /// A kubeconfig for `server` with the CA and the client certificate inline (`*-data`), or the
    /// CA as a file; `withClientCertificate: false` leaves the client certificate out.
    func kubeconfig(server: URL, caAsFile: Bool = false, withClientCertificate: Bool = true, insecure: Bool = false) -> String {
        var cluster = "    server: \(server.absoluteString)\n"
        if insecure {
            cluster += "    insecure-skip-tls-verify: true\n"
        } else if caAsFile {
            cluster += "    certificate-authority: ca.crt\n"
        } else {
            cluster += "    certificate-authority-data: \(file("ca.crt").base64EncodedString())\n"
        }
        let user = withClientCertificate
            ? "    client-certificate-data: \(file("client.crt").base64EncodedString())\n    client-key-data: \(file("client.key").base64EncodedString())\n"
            : "    token: no-certificate\n"
        return """
            apiVersion: v1
            kind: Config
            current-context: test
            clusters:
            - name: fake
              cluster:
            \(cluster)users:
            - name: hub
              user:
            \(user)contexts:
            - name: test
              context: {cluster: fake, user: hub, namespace: course}
            """
    }
}

/// Needs the `openssl` command (`.ci/run` installs it; under CI its absence fails).
@Suite(
    "Kubernetes client over TLS",
    .enabled(if: TestPKI.available || ProcessInfo.processInfo.environment["CI"] == "true", "needs the openssl command"))
struct KubernetesTLSTests {
    func list(_ yaml: String, folder: String) async throws -> Int {
        let client = try KubernetesClient(connection: ClusterConnection.kubeconfig(yaml: yaml, relativeTo: folder), requestTimeout: .seconds(10))
        do {
            let count = try await client.list(Deployment.self, namespace: "course").items.count
            try await client.shutdown()
            return count
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    @Test("the cluster's CA (inline or as a file) and a client certificate from the kubeconfig reach an HTTPS API server that requires one")
    func mutualTLS() async throws {
        let pki = try TestPKI()
        defer { try? FileManager.default.removeItem(atPath: pki.folder) }
        try await FakeAPIServer.with(tls: try pki.serverConfiguration()) { _, url in
            #expect(url.scheme == "https")
            let inline = try await list(pki.kubeconfig(server: url), folder: pki.folder)
            let asFile = try await list(pki.kubeconfig(server: url, caAsFile: true), folder: pki.folder)
            // insecure-skip-tls-verify trusts any server certificate (the client certificate still goes).
            let insecure = try await list(pki.kubeconfig(server: url, insecure: true), folder: pki.folder)
            #expect(inline == 0 && asFile == 0 && insecure == 0)
        }
    }

    @Test("without the cluster's CA, or without the client certificate the server requires, requests fail with an error")
    func refusals() async throws {
        let pki = try TestPKI()
        defer { try? FileManager.default.removeItem(atPath: pki.folder) }
        try await FakeAPIServer.with(tls: try pki.serverConfiguration()) { _, url in
            // The system's trust store does not know the test CA.
            let noCA = pki.kubeconfig(server: url).replacingOccurrences(
                of: "    certificate-authority-data: \(pki.file("ca.crt").base64EncodedString())\n", with: "")
            let untrusted = await #expect(throws: (any Error).self) { try await list(noCA, folder: pki.folder) }
            #expect(String(describing: untrusted).lowercased().contains("certificate"), "\(String(describing: untrusted))")
            let anonymous = await #expect(throws: (any Error).self) {
                try await list(pki.kubeconfig(server: url, withClientCertificate: false), folder: pki.folder)
            }
            #expect(String(describing: anonymous).contains("CERTIFICATE_REQUIRED"), "\(String(describing: anonymous))")
        }
    }
}
