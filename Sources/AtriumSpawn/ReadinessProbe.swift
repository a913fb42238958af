import AsyncHTTPClient
import AtriumModel
import Foundation
import NIOCore
import NIOHTTP1

/// Tells whether a started server answers HTTP yet.
public protocol ReadinessProbe: Sendable {
    /// One attempt: true when the endpoint answered `path` with any HTTP response that is not a
    /// gateway error (a login redirect or a 404 still proves the server is up, as JupyterHub counts it).
    func check(_ endpoint: WorkspaceEndpoint, path: String) async -> Bool
}

/// The HTTP probe used in production: one GET over TCP or the Unix socket, with the secret.
public struct HTTPReadinessProbe: ReadinessProbe {
    let client: HTTPClient
    let timeout: TimeAmount

    public init(client: HTTPClient, timeout: TimeAmount = .seconds(2)) {
        self.client = client
        self.timeout = timeout
    }

    public func check(_ endpoint: WorkspaceEndpoint, path: String) async -> Bool {
        let path = endpoint.basePath.map { pathBelow(base: $0, path) } ?? path
        let url: String
        switch endpoint.address {
        case .tcp(let host, let port):
            url = "http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(path)"
        case .unix(let socketPath):
            guard let encoded = socketPath.addingPercentEncoding(withAllowedCharacters: .alphanumerics) else { return false }
            url = "http+unix://\(encoded)\(path)"
        }
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        if let secret = endpoint.secret { request.headers.add(name: "Authorization", value: "token \(secret)") }
        do {
            let response = try await client.execute(request, timeout: timeout)
            // Drain a little and drop the rest; only the status matters.
            _ = try? await response.body.collect(upTo: 64 * 1024)
            return ![502, 503, 504].contains(response.status.code)
        } catch {
            return false
        }
    }
}
