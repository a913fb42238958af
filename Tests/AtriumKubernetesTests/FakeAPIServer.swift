import AtriumKubernetes
import AtriumProxy
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL
import Logging
import NIOCore

/// One request as the fake sees it.
struct FakeRequest: Sendable {
    var method: String
    var path: String
    var query: [String: String]
    var body: Data
}

/// What the fake answers: a JSON body, or a watch stream.
enum FakeResponse: Sendable {
    case json(status: Int, Data)
    case text(String)
    case stream(AsyncStream<Data>)
}

extension FakeCluster {
    static let resources: [String: (apiVersion: String, kind: String)] = [
        "deployments": ("apps/v1", "Deployment"), "services": ("v1", "Service"), "persistentvolumeclaims": ("v1", "PersistentVolumeClaim"),
        "networkpolicies": ("networking.k8s.io/v1", "NetworkPolicy"), "pods": ("v1", "Pod"), "events": ("v1", "Event"),
        "secrets": ("v1", "Secret"),
    ]

    static func status(_ code: Int, _ reason: String, _ message: String) -> FakeResponse {
        let body = try! JSONEncoder().encode(KubernetesStatus(status: "Failure", message: message, reason: reason, code: code))
        return .json(status: code, body)
    }

    static func ok(_ object: Object, status: Int = 200) -> FakeResponse {
        .json(status: status, try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }

    /// Serves the Kubernetes REST paths Atrium uses, with the API server's semantics.
    func handle(_ request: FakeRequest) -> FakeResponse {
        // /api/v1/namespaces/{ns}/{resource}[/{name}[/{sub}]] or /apis/{group}/{version}/namespaces/…
        var parts = request.path.split(separator: "/").map { String($0).removingPercentEncoding ?? String($0) }
        if parts.first == "api" { parts.removeFirst(2) } else if parts.first == "apis" { parts.removeFirst(3) } else {
            return Self.status(404, "NotFound", "the server could not find the requested resource")
        }
        guard parts.count >= 3, parts[0] == "namespaces", let info = Self.resources[parts[2]] else {
            return Self.status(404, "NotFound", "the server could not find the requested resource")
        }
        let namespace = parts[1], resource = parts[2]
        let name = parts.count > 3 ? parts[3] : nil
        let sub = parts.count > 4 ? parts[4] : nil
        record("\(request.method) \(resource)\(sub.map { "/\($0)" } ?? "")")
        let notFound = Self.status(404, "NotFound", "\(resource) \"\(name ?? "")\" not found")

        switch (request.method, name, sub) {
        case ("GET", nil, nil):
            if request.query["watch"] == "true" {
                if takeFailingWatch() { return Self.status(500, "InternalError", "etcd is unhappy") }
                let from = request.query["resourceVersion"].flatMap { Int($0) }
                let timeout = Duration.seconds(Int64(request.query["timeoutSeconds"].flatMap { Int($0) } ?? 300))
                guard let stream = watch(resource, namespace: namespace, selector: request.query["labelSelector"], from: from, timeout: timeout) else {
                    // The real server answers 200 and then an ERROR event with the 410 Status.
                    let gone = try! JSONEncoder().encode(KubernetesStatus(status: "Failure", message: "too old resource version", reason: "Expired", code: 410))
                    let (s, c) = AsyncStream.makeStream(of: Data.self)
                    c.yield(Self.eventLine(type: "ERROR", object: gone))
                    c.finish()
                    return .stream(s)
                }
                return .stream(stream)
            }
            var items = all(resource, namespace: namespace).filter { Self.matches($0, selector: request.query["labelSelector"]) }
            if let field = request.query["fieldSelector"], field.hasPrefix("involvedObject.name=") {
                let target = String(field.dropFirst("involvedObject.name=".count))
                items = items.filter { ($0["involvedObject"] as? Object)?["name"] as? String == target }
            }
            return Self.ok(["apiVersion": info.apiVersion, "kind": "\(info.kind)List", "metadata": ["resourceVersion": currentResourceVersion], "items": items])
        case ("GET", let name?, nil):
            return get(resource, namespace: namespace, name: name).map { Self.ok($0) } ?? notFound
        case ("GET", let name?, "scale"), ("PATCH", let name?, "scale"):
            guard resource == "deployments", var deployment = get(resource, namespace: namespace, name: name) else { return notFound }
            var spec = deployment["spec"] as? Object ?? [:]
            if request.method == "PATCH" {
                if takeFailingScale() { return Self.status(503, "ServiceUnavailable", "the server is currently unable to handle the request") }
                guard let patch = try? JSONSerialization.jsonObject(with: request.body) as? Object,
                    let replicas = (patch["spec"] as? Object)?["replicas"] as? Int, replicas >= 0
                else { return Self.status(422, "Invalid", "Scale.autoscaling \"\(name)\" is invalid: spec.replicas") }
                spec["replicas"] = replicas
                deployment["spec"] = spec
                deployment = put(resource, namespace: namespace, object: deployment, type: "MODIFIED")
                reconcile(namespace: namespace, deployment: name)
            }
            let meta = deployment["metadata"] as? Object ?? [:]
            return Self.ok([
                "apiVersion": "autoscaling/v1", "kind": "Scale",
                "metadata": ["name": name, "namespace": namespace, "resourceVersion": meta["resourceVersion"] ?? ""],
                "spec": ["replicas": spec["replicas"] ?? 1], "status": ["replicas": (deployment["status"] as? Object)?["replicas"] ?? 0],
            ])
        case ("GET", let name?, "log"):
            guard resource == "pods", let lines = logs(pod: name) else { return notFound }
            let tail = request.query["tailLines"].flatMap { Int($0) } ?? lines.count
            return .text(lines.suffix(tail).map { $0 + "\n" }.joined())
        case ("POST", nil, nil):
            guard var object = try? JSONSerialization.jsonObject(with: request.body) as? Object else {
                return Self.status(400, "BadRequest", "the body is not a JSON object")
            }
            if let problem = check(object, resource: resource, info: info) { return problem }
            let name = (object["metadata"] as? Object)?["name"] as? String ?? ""
            if get(resource, namespace: namespace, name: name) != nil {
                return Self.status(409, "AlreadyExists", "\(resource) \"\(name)\" already exists")
            }
            object.removeValue(forKey: "status")
            let stored = put(resource, namespace: namespace, object: object, type: "ADDED")
            if resource == "deployments" { reconcile(namespace: namespace, deployment: name) }
            return Self.ok(get(resource, namespace: namespace, name: name) ?? stored, status: 201)
        case ("PATCH", let name?, nil):
            guard request.query["__content_type"] == "application/merge-patch+json" else {
                return Self.status(415, "UnsupportedMediaType", "only merge patches are served here")
            }
            guard let current = get(resource, namespace: namespace, name: name) else { return notFound }
            guard let patch = try? JSONSerialization.jsonObject(with: request.body) as? Object else { return Self.status(400, "BadRequest", "bad patch") }
            var merged = Self.merge(current, patch) as? Object ?? [:]
            merged["status"] = nil
            if let problem = check(merged, resource: resource, info: info) { return problem }
            merged["status"] = current["status"]
            let stored = put(resource, namespace: namespace, object: merged, type: "MODIFIED")
            if resource == "deployments" { reconcile(namespace: namespace, deployment: name) }
            return Self.ok(get(resource, namespace: namespace, name: name) ?? stored)
        case ("DELETE", let name?, nil):
            guard let current = get(resource, namespace: namespace, name: name) else { return notFound }
            put(resource, namespace: namespace, object: current, type: "DELETED")
            if resource == "deployments" { reconcile(namespace: namespace, deployment: name) }
            return Self.ok(["apiVersion": "v1", "kind": "Status", "status": "Success"])
        default:
            return Self.status(405, "MethodNotAllowed", "\(request.method) is not allowed here")
        }
    }

    /// Name rules (422 Invalid) and, when on, the official schema (strict: unknown fields fail).
    func check(_ object: Object, resource: String, info: (apiVersion: String, kind: String)) -> FakeResponse? {
        let meta = object["metadata"] as? Object ?? [:]
        let name = meta["name"] as? String ?? ""
        let label = "^[a-z]([-a-z0-9]*[a-z0-9])?$", subdomain = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
        let nameOK = resource == "services" ? name.count <= 63 && name.range(of: label, options: .regularExpression) != nil
            : name.count <= 253 && name.range(of: subdomain, options: .regularExpression) != nil
        if !nameOK {
            return Self.status(422, "Invalid", "\(info.kind) \"\(name)\" is invalid: metadata.name: Invalid value: \"\(name)\": a lowercase RFC 1123 name must consist of lower case alphanumeric characters or '-'")
        }
        for (key, value) in meta["labels"] as? [String: String] ?? [:] {
            let valueOK = value.count <= 63 && (value.isEmpty || value.range(of: "^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", options: .regularExpression) != nil)
            if !valueOK { return Self.status(422, "Invalid", "\(info.kind) \"\(name)\" is invalid: metadata.labels: Invalid value: \"\(value)\" for \(key)") }
        }
        // Resource quantities, with the API server's own pattern and message.
        var quantities: [(String, Any)] = []
        if resource == "deployments",
            let containers = (((object["spec"] as? Object)?["template"] as? Object)?["spec"] as? Object)?["containers"] as? [Object]
        {
            for container in containers {
                let resources = container["resources"] as? Object ?? [:]
                for section in ["requests", "limits"] {
                    for (key, value) in resources[section] as? Object ?? [:] { quantities.append(("spec.template.spec.containers.resources.\(section)[\(key)]", value)) }
                }
            }
        }
        if resource == "persistentvolumeclaims", let requests = ((object["spec"] as? Object)?["resources"] as? Object)?["requests"] as? Object {
            for (key, value) in requests { quantities.append(("spec.resources.requests[\(key)]", value)) }
        }
        for (path, value) in quantities where !(value is NSNumber) {
            let text = value as? String ?? ""
            if text.range(of: "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$", options: .regularExpression) == nil || text.hasSuffix("B") {
                return Self.status(422, "Invalid", "\(info.kind) \"\(name)\" is invalid: \(path): Invalid value: \"\(text)\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
            }
        }
        if object["apiVersion"] as? String != info.apiVersion || object["kind"] as? String != info.kind {
            return Self.status(400, "BadRequest", "the object is not a \(info.apiVersion) \(info.kind)")
        }
        if let validator {
            let data = try! JSONSerialization.data(withJSONObject: object)
            let errors = validator.validate(object: data)
            if !errors.isEmpty {
                recordInvalid("\(info.kind) \(name): \(errors.joined(separator: "; "))")
                return Self.status(422, "Invalid", "\(info.kind) \"\(name)\" is invalid: \(errors.joined(separator: "; "))")
            }
        }
        return nil
    }

    /// RFC 7386 JSON merge patch.
    static func merge(_ target: Any, _ patch: Any) -> Any {
        guard let patch = patch as? Object else { return patch }
        var result = target as? Object ?? [:]
        for (key, value) in patch {
            if value is NSNull { result[key] = nil } else { result[key] = merge(result[key] ?? NSNull(), value) }
        }
        return result
    }
}

/// The fake API server on a loopback port, over Hummingbird.
struct FakeAPIServer {
    let cluster: FakeCluster

    /// Runs the server, calls `body` with its URL, and stops it.
    /// With `tls`, the server speaks HTTPS (and may ask for client certificates) and `body`
    /// gets an `https://127.0.0.1:PORT` URL.
    static func response(_ answer: FakeResponse) -> Response {
        switch answer {
        case .json(let status, let data):
            return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        case .text(let text):
            return Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: text)))
        case .stream(let stream):
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody { writer in
                    for await line in stream { try await writer.write(ByteBuffer(bytes: line)) }
                    try await writer.finish(nil)
                })
        }
    }

    static func with<T: Sendable>(
        _ cluster: FakeCluster = FakeCluster(), tls: TLSConfiguration? = nil, _ body: @Sendable (FakeCluster, URL) async throws -> T
    ) async throws -> T {
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, context in
            if let proxyPath = ServiceProxyPath(request.uri.path) {
                switch await cluster.proxyTarget(proxyPath, authorization: request.headers[.authorization]) {
                case .success(let port):
                    do {
                        return try await FakeCluster.forward(request, proxyPath, port: port)
                    } catch {
                        // The API server's answer when the pod does not take the connection.
                        return Self.response(FakeCluster.status(503, "ServiceUnavailable", "error trying to reach service: \(error)"))
                    }
                case .failure(let refusal): return Self.response(refusal.response)
                }
            }
            var query: [String: String] = [:]
            for (k, v) in request.uri.queryParameters { query[String(k)] = String(v) }
            if let type = request.headers[.contentType] { query["__content_type"] = type }
            let body = try await request.body.collect(upTo: 16 << 20)
            let fake = FakeRequest(method: request.method.rawValue, path: request.uri.path, query: query, body: Data(buffer: body))
            return Self.response(await cluster.handle(fake))
        }
        for method in [HTTPRequest.Method.get, .post, .patch, .delete, .put, .head] {
            router.on("/**", method: method, use: handler)
        }
        var logger = Logger(label: "fake-apiserver")
        logger.logLevel = .critical
        // Upgrades on service-proxy paths are tunnelled by Atrium's reverse proxy in front of the routes.
        let serviceProxy = ReverseProxy(
            configuration: ProxyConfiguration(pathPrefix: "/api/v1/namespaces/", strippedCookieNames: [], strippedQueryParameters: []),
            gatekeeper: FakeServiceProxyGatekeeper(cluster: cluster), logger: logger)
        let server: HTTPServerBuilder = .http1(configuration: .init(additionalChannelHandlers: [serviceProxy.makeHandler()]))
        return try await withLocalServer(router: router, server: try tls.map { try .tls(server, tlsConfiguration: $0) } ?? server) { port in
            let result = try await body(cluster, URL(string: "\(tls == nil ? "http" : "https")://127.0.0.1:\(port)")!)
            await cluster.closeWatches()
            return result
        }
    }
}

/// Runs `router` on a free loopback port for the length of `body`, which receives the port.
func withLocalServer<T: Sendable>(
    router: Router<BasicRequestContext>, server: HTTPServerBuilder = .http1(), _ body: @Sendable (Int) async throws -> T
) async throws -> T {
    let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
    var logger = Logger(label: "local-server")
    logger.logLevel = .critical
    let app = Application(
        router: router, server: server, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in
            portContinuation.yield(channel.localAddress?.port ?? 0)
            portContinuation.finish()
        }, logger: logger)
    return try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask {
            try await app.runService(gracefulShutdownSignals: [])
            return nil
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CancellationError() }
        let result = try await body(port)
        group.cancelAll()
        return result
    }
}

