import Foundation
import NIOSSL
import Yams

/// How to reach and authenticate to one API server: what a kubeconfig context or the pod's
/// service account comes to.
public struct ClusterConnection: Sendable, Equatable {
    /// `https://host:port` (or `http://` for a test server on loopback).
    public var server: URL
    /// A bearer token.
    public var token: String?
    /// A file holding the bearer token, read again for each request (service-account tokens
    /// are rotated by the kubelet).
    public var tokenFile: String?
    /// PEM bytes of the certificate authority that signs the server's certificate.
    public var certificateAuthority: [UInt8]?
    /// PEM bytes of the client certificate and its key (mutual TLS).
    public var clientCertificate: [UInt8]?
    public var clientKey: [UInt8]?
    /// Skip verification of the server's certificate (kubeconfig `insecure-skip-tls-verify`).
    public var insecureSkipTLSVerify = false
    /// The context's namespace, when it names one.
    public var namespace: String?

    public init(server: URL) {
        self.server = server
    }

    /// The bearer token to send now, if any.
    func currentToken() -> String? {
        if let tokenFile, let data = FileManager.default.contents(atPath: tokenFile) {
            return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return token
    }

    /// The TLS settings for `https` servers (CA, client certificate and key, verification);
    /// `nil` for plain `http`.
    public func tlsConfiguration() throws -> TLSConfiguration? {
        guard server.scheme == "https" else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            if let certificateAuthority {
                tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(certificateAuthority))
            }
            if let clientCertificate, let clientKey {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(clientCertificate).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: clientKey, format: .pem))
            }
        } catch {
            throw KubernetesError.configuration("cannot load the cluster's TLS certificates or key: \(error)")
        }
        if insecureSkipTLSVerify { tls.certificateVerification = .none }
        return tls
    }

    // MARK: - In-cluster

    /// The service account's files inside a pod.
    public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// The pod's own service account: `KUBERNETES_SERVICE_HOST`/`_PORT`, its token (re-read per
    /// request) and CA. `directory` and `environment` are parameters for tests.
    public static func inCluster(
        directory: String = serviceAccountDirectory, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> ClusterConnection {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], let port = environment["KUBERNETES_SERVICE_PORT"] else {
            throw KubernetesError.configuration("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: the hub does not run in a pod")
        }
        let hostPart = host.contains(":") ? "[\(host)]" : host
        guard let url = URL(string: "https://\(hostPart):\(port)") else { throw KubernetesError.configuration("bad in-cluster address \(host):\(port)") }
        var connection = ClusterConnection(server: url)
        let tokenPath = "\(directory)/token"
        guard FileManager.default.isReadableFile(atPath: tokenPath) else { throw KubernetesError.configuration("no service-account token at \(tokenPath)") }
        connection.tokenFile = tokenPath
        guard let ca = FileManager.default.contents(atPath: "\(directory)/ca.crt") else {
            throw KubernetesError.configuration("no service-account CA at \(directory)/ca.crt")
        }
        connection.certificateAuthority = Array(ca)
        if let ns = FileManager.default.contents(atPath: "\(directory)/namespace") {
            connection.namespace = String(decoding: ns, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return connection
    }

    // MARK: - kubeconfig

    /// The default kubeconfig: the first file in `$KUBECONFIG`, else `~/.kube/config`.
    public static func defaultKubeconfigPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let list = environment["KUBECONFIG"], let first = list.split(separator: ":").first { return String(first) }
        return (environment["HOME"] ?? NSHomeDirectory()) + "/.kube/config"
    }

    /// Reads a kubeconfig file; relative file paths in it are relative to the file's folder.
    public static func kubeconfig(path: String, context: String? = nil) throws -> ClusterConnection {
        guard let data = FileManager.default.contents(atPath: path) else { throw KubernetesError.configuration("cannot read kubeconfig \(path)") }
        let folder = (path as NSString).deletingLastPathComponent
        return try kubeconfig(yaml: String(decoding: data, as: UTF8.self), context: context, relativeTo: folder)
    }

    /// Parses kubeconfig text and resolves `context` (or `current-context`).
    public static func kubeconfig(yaml: String, context: String? = nil, relativeTo folder: String = ".") throws -> ClusterConnection {
        let config: Kubeconfig
        do {
            config = try YAMLDecoder().decode(Kubeconfig.self, from: yaml)
        } catch {
            throw KubernetesError.configuration("the kubeconfig is not valid: \(error)")
        }
        guard let contextName = context ?? config.currentContext, !contextName.isEmpty else {
            throw KubernetesError.configuration("the kubeconfig has no current-context; set kubernetes.context")
        }
        guard let ctx = config.contexts?.first(where: { $0.name == contextName })?.context else {
            throw KubernetesError.configuration("the kubeconfig has no context \(contextName)")
        }
        guard let cluster = config.clusters?.first(where: { $0.name == ctx.cluster })?.cluster else {
            throw KubernetesError.configuration("context \(contextName) names cluster \(ctx.cluster), which the kubeconfig does not have")
        }
        guard let url = URL(string: cluster.server), url.scheme == "https" || url.scheme == "http" else {
            throw KubernetesError.configuration("cluster \(ctx.cluster) has no valid server URL: \(cluster.server)")
        }
        func resolve(_ file: String) -> String { file.hasPrefix("/") ? file : "\(folder)/\(file)" }
        func bytes(data: String?, file: String?, what: String) throws -> [UInt8]? {
            if let data {
                guard let decoded = Data(base64Encoded: data.filter { !$0.isWhitespace }) else { throw KubernetesError.configuration("\(what) data is not base64") }
                return Array(decoded)
            }
            if let file {
                guard let contents = FileManager.default.contents(atPath: resolve(file)) else { throw KubernetesError.configuration("cannot read \(what) file \(resolve(file))") }
                return Array(contents)
            }
            return nil
        }
        var connection = ClusterConnection(server: url)
        connection.namespace = ctx.namespace
        connection.insecureSkipTLSVerify = cluster.insecureSkipTLSVerify ?? false
        connection.certificateAuthority = try bytes(data: cluster.certificateAuthorityData, file: cluster.certificateAuthority, what: "certificate-authority")
        if let userName = ctx.user {
            guard let user = config.users?.first(where: { $0.name == userName })?.user else {
                throw KubernetesError.configuration("context \(contextName) names user \(userName), which the kubeconfig does not have")
            }
            connection.token = user.token
            connection.tokenFile = user.tokenFile.map(resolve)
            connection.clientCertificate = try bytes(data: user.clientCertificateData, file: user.clientCertificate, what: "client-certificate")
            connection.clientKey = try bytes(data: user.clientKeyData, file: user.clientKey, what: "client-key")
            if (connection.clientCertificate == nil) != (connection.clientKey == nil) {
                throw KubernetesError.configuration("user \(userName) has a client certificate without a key, or a key without a certificate")
            }
            if user.exec != nil, user.token == nil, user.tokenFile == nil, connection.clientCertificate == nil {
                throw KubernetesError.configuration("user \(userName) authenticates with an exec plugin, which Atrium does not run; use a token or client certificate")
            }
        }
        return connection
    }
}

/// The parts of a kubeconfig file Atrium reads.
struct Kubeconfig: Decodable {
    struct NamedCluster: Decodable {
        var name: String
        var cluster: Cluster
    }
    struct Cluster: Decodable {
        var server: String
        var certificateAuthority: String?
        var certificateAuthorityData: String?
        var insecureSkipTLSVerify: Bool?
        enum CodingKeys: String, CodingKey {
            case server
            case certificateAuthority = "certificate-authority"
            case certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
        }
    }
    struct NamedUser: Decodable {
        var name: String
        var user: User
    }
    struct User: Decodable {
        var token: String?
        var tokenFile: String?
        var clientCertificate: String?
        var clientCertificateData: String?
        var clientKey: String?
        var clientKeyData: String?
        var exec: Exec?
        struct Exec: Decodable { var command: String? }
        enum CodingKeys: String, CodingKey {
            case token, tokenFile, exec
            case clientCertificate = "client-certificate"
            case clientCertificateData = "client-certificate-data"
            case clientKey = "client-key"
            case clientKeyData = "client-key-data"
        }
    }
    struct NamedContext: Decodable {
        var name: String
        var context: Context
    }
    struct Context: Decodable {
        var cluster: String
        var user: String?
        var namespace: String?
    }
    var clusters: [NamedCluster]?
    var users: [NamedUser]?
    var contexts: [NamedContext]?
    var currentContext: String?
    enum CodingKeys: String, CodingKey {
        case clusters, users, contexts
        case currentContext = "current-context"
    }
}
