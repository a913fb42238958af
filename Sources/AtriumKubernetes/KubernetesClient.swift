import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// A Kubernetes API client over AsyncHTTPClient: get, list with label selectors, create,
/// merge-patch, delete, the scale subresource, pod logs, events and watch. Every request has a
/// deadline; errors are ``KubernetesError``s carrying the API's `Status` reason and message.
public final class KubernetesClient: Sendable {
    public let connection: ClusterConnection
    let http: HTTPClient
    /// Deadline of every request but watches (whose deadline is their own timeout plus a margin).
    public let requestTimeout: Duration

    /// Makes a client with its own connection pool; call ``shutdown()`` when done.
    public init(connection: ClusterConnection, requestTimeout: Duration = .seconds(30)) throws {
        self.connection = connection
        self.requestTimeout = requestTimeout
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(10), read: nil)
        // Watches hold connections open; hundreds of concurrent starts need more than the default 8.
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
        configuration.tlsConfiguration = try connection.tlsConfiguration()
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes the connection pool.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    // MARK: - Objects

    /// `GET` one object.
    public func get<T: KubernetesObject>(_ type: T.Type, namespace: String, name: String) async throws -> T {
        try await send(.GET, path: Self.path(T.self, namespace: namespace, name: name), as: T.self)
    }

    /// `GET` the collection, filtered by a label selector (`key=value,key2=value2`).
    public func list<T: KubernetesObject>(_ type: T.Type, namespace: String, labelSelector: String? = nil, fieldSelector: String? = nil)
        async throws -> ObjectList<T>
    {
        var query: [(String, String)] = []
        if let labelSelector { query.append(("labelSelector", labelSelector)) }
        if let fieldSelector { query.append(("fieldSelector", fieldSelector)) }
        return try await send(.GET, path: Self.path(T.self, namespace: namespace), query: query, as: ObjectList<T>.self)
    }

    /// `POST` a new object; 409 `AlreadyExists` when the name is taken.
    public func create<T: KubernetesObject>(_ object: T, namespace: String) async throws -> T {
        try await send(.POST, path: Self.path(T.self, namespace: namespace), body: try encode(object), as: T.self)
    }

    /// JSON merge patch (RFC 7386): `patch` holds only what changes; `null` deletes a key.
    public func mergePatch<T: KubernetesObject>(_ type: T.Type, namespace: String, name: String, patch: some Encodable & Sendable)
        async throws -> T
    {
        try await send(
            .PATCH, path: Self.path(T.self, namespace: namespace, name: name), body: try encode(patch),
            contentType: "application/merge-patch+json", as: T.self)
    }

    /// Deletes an object (dependents in the background); 404 when it does not exist.
    public func delete<T: KubernetesObject>(_ type: T.Type, namespace: String, name: String) async throws {
        _ = try await send(
            .DELETE, path: Self.path(T.self, namespace: namespace, name: name), query: [("propagationPolicy", "Background")], as: KubernetesStatusOrObject.self)
    }

    /// Reads a Deployment's `scale` subresource.
    public func scale(deployment name: String, namespace: String) async throws -> Scale {
        try await send(.GET, path: Self.path(Deployment.self, namespace: namespace, name: name) + "/scale", as: Scale.self)
    }

    /// Sets a Deployment's replica count through the `scale` subresource.
    public func scale(deployment name: String, namespace: String, replicas: Int) async throws -> Scale {
        struct Patch: Encodable, Sendable {
            struct Spec: Encodable, Sendable { var replicas: Int }
            var spec: Spec
        }
        return try await send(
            .PATCH, path: Self.path(Deployment.self, namespace: namespace, name: name) + "/scale",
            body: try encode(Patch(spec: .init(replicas: replicas))), contentType: "application/merge-patch+json", as: Scale.self)
    }

    /// The last `tailLines` lines of a pod's container output.
    public func logs(pod: String, namespace: String, container: String? = nil, tailLines: Int) async throws -> String {
        var query = [("tailLines", String(tailLines))]
        if let container { query.append(("container", container)) }
        let data = try await raw(.GET, path: Self.path(Pod.self, namespace: namespace, name: pod) + "/log", query: query)
        return String(decoding: data, as: UTF8.self)
    }

    /// Events about one object (`involvedObject.name`), oldest first.
    public func events(involving name: String, namespace: String) async throws -> [KubernetesEvent] {
        try await list(KubernetesEvent.self, namespace: namespace, fieldSelector: "involvedObject.name=\(name)").items
    }

    // MARK: - Watch

    /// Watches a collection from `resourceVersion`, calling `onEvent` for each line of the
    /// stream, until the server ends it (after about `timeoutSeconds`). A 410 Gone arrives as
    /// a thrown error with `isGone` (or as an `.error` event): the caller relists.
    public func watch<T: KubernetesObject>(
        _ type: T.Type, namespace: String, labelSelector: String?, resourceVersion: String?, timeoutSeconds: Int = 300,
        onEvent: (WatchEvent<T>) async throws -> Void
    ) async throws {
        var query = [("watch", "true"), ("allowWatchBookmarks", "true"), ("timeoutSeconds", String(timeoutSeconds))]
        if let labelSelector { query.append(("labelSelector", labelSelector)) }
        if let resourceVersion { query.append(("resourceVersion", resourceVersion)) }
        let request = makeRequest(.GET, path: Self.path(T.self, namespace: namespace), query: query, body: nil, contentType: nil)
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .seconds(Int64(timeoutSeconds) + 30))
        } catch {
            throw KubernetesError.transport("watch of \(T.resource) failed: \(error)")
        }
        guard response.status.code / 100 == 2 else {
            let body = (try? await response.body.collect(upTo: 1 << 20)).map { Data(buffer: $0) } ?? Data()
            throw Self.error(status: Int(response.status.code), body: body)
        }
        var pending = Data()
        let decoder = JSONDecoder()
        do {
            for try await chunk in response.body {
                pending.append(contentsOf: chunk.readableBytesView)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = pending[pending.startIndex..<newline]
                    pending = Data(pending[pending.index(after: newline)...])
                    guard !line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) else { continue }
                    let event: WatchEvent<T>
                    do { event = try decoder.decode(WatchEvent<T>.self, from: Data(line)) } catch {
                        throw KubernetesError.decoding("a watch event of \(T.resource) does not decode: \(error)")
                    }
                    try await onEvent(event)
                }
            }
        } catch let error as KubernetesError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            if Task.isCancelled { throw CancellationError() }
            throw KubernetesError.transport("watch of \(T.resource) broke: \(error)")
        }
    }

    // MARK: - Requests

    static func path<T: KubernetesObject>(_ type: T.Type, namespace: String, name: String? = nil) -> String {
        let base = "/\(T.apiPath)/namespaces/\(escape(namespace))/\(T.resource)"
        return name.map { "\(base)/\(escape($0))" } ?? base
    }

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
    }

    func encode(_ value: some Encodable) throws -> Data {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return try encoder.encode(value)
        } catch {
            throw KubernetesError.decoding("cannot encode a request body: \(error)")
        }
    }

    func makeRequest(_ method: HTTPMethod, path: String, query: [(String, String)], body: Data?, contentType: String?) -> HTTPClientRequest {
        var base = connection.server.absoluteString
        while base.hasSuffix("/") { base.removeLast() }
        let queryText = query.isEmpty ? "" : "?" + query.map { "\(Self.escape($0.0))=\(Self.escape($0.1))" }.joined(separator: "&")
        var request = HTTPClientRequest(url: base + path + queryText)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "atrium")
        if let token = connection.currentToken() { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let body {
            request.headers.add(name: "Content-Type", value: contentType ?? "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        return request
    }

    func raw(_ method: HTTPMethod, path: String, query: [(String, String)] = [], body: Data? = nil, contentType: String? = nil)
        async throws -> Data
    {
        let request = makeRequest(method, path: path, query: query, body: body, contentType: contentType)
        let answer = await execute(request)
        switch answer {
        case .success(let (status, data)):
            guard status / 100 == 2 else { throw Self.error(status: status, body: data) }
            return data
        case .failure(let error as HTTPClientError) where error == .deadlineExceeded:
            throw KubernetesError.timeout("\(method) \(path) took longer than \(requestTimeout)")
        case .failure(let error):
            throw KubernetesError.transport("\(method) \(path) failed: \(error)")
        }
    }

    func execute(_ request: HTTPClientRequest) async -> Result<(Int, Data), any Error> {
        do {
            let response = try await http.execute(request, timeout: .nanoseconds(requestTimeout.nanoseconds))
            return .success((Int(response.status.code), Data(buffer: try await response.body.collect(upTo: 64 << 20))))
        } catch {
            return .failure(error)
        }
    }

    func send<R: Decodable>(
        _ method: HTTPMethod, path: String, query: [(String, String)] = [], body: Data? = nil, contentType: String? = nil, as: R.Type
    ) async throws -> R {
        let data = try await raw(method, path: path, query: query, body: body, contentType: contentType)
        do {
            return try JSONDecoder().decode(R.self, from: data)
        } catch {
            throw KubernetesError.decoding("the answer to \(method) \(path) does not decode as \(R.self): \(error)")
        }
    }

    static func error(status: Int, body: Data) -> KubernetesError {
        if let decoded = try? JSONDecoder().decode(KubernetesStatus.self, from: body), decoded.kind == "Status" {
            return .api(decoded, httpStatus: status)
        }
        let text = String(decoding: body.prefix(500), as: UTF8.self)
        return .api(KubernetesStatus(status: "Failure", message: text.isEmpty ? "HTTP \(status)" : text, reason: "HTTP\(status)", code: status), httpStatus: status)
    }
}

/// A delete answers with the object or a `Status`; Atrium needs neither.
struct KubernetesStatusOrObject: Decodable {}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
