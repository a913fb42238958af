import Foundation
import HTTPTypes
import Hummingbird
import Mustache
import NIOCore

/// Renders the embedded templates.
struct PageRenderer: Sendable {
    let library: MustacheLibrary
    let hubName: String

    init(hubName: String) throws {
        var library = MustacheLibrary()
        for (name, text) in Templates.all { try library.register(text, named: name) }
        self.library = library
        self.hubName = hubName
    }

    /// An HTML response for `template` with `values`, and any cookies to set.
    func render(_ template: String, _ values: [String: Any], status: HTTPResponse.Status = .ok, cookies: [Cookie] = []) -> Response {
        var values = values
        values["hubName"] = hubName
        let html = library.render(values, withTemplate: template) ?? "template \(template) missing"
        var response = Response(
            status: status,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                .init("X-Frame-Options")!: "DENY",
                .init("Content-Security-Policy")!: "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'; frame-ancestors 'none'; report-uri /hub/security/csp-report",
            ],
            body: .init(byteBuffer: ByteBuffer(string: html)))
        for cookie in cookies { response.setCookie(cookie) }
        return response
    }
}

/// `application/x-www-form-urlencoded` bodies.
struct FormBody {
    let fields: [String: String]

    static func read(_ request: Request, context: some RequestContext) async throws -> FormBody {
        let buffer = try await request.body.collect(upTo: 64 * 1024)
        let text = String(decoding: buffer.readableBytesView, as: UTF8.self)
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&", omittingEmptySubsequences: true) {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = Self.decode(kv[0])
            let value = kv.count > 1 ? Self.decode(kv[1]) : ""
            if let key, let value { fields[key] = value }
        }
        return FormBody(fields: fields)
    }

    static func decode(_ s: Substring) -> String? {
        s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }

    subscript(_ key: String) -> String? { fields[key] }
}
