import AtriumModel
import Foundation
import NIOCore
import NIOHTTP1

/// The immutable part of the server that every connection shares: base URL, secret, prebuilt
/// responses and the download pattern. Built once at start-up.
final class WorkspaceRoutes: Sendable {
    /// The routes under the base URL.
    enum Route {
        case root, status, headers, echo, download, websocket, notFound
    }

    /// Size of each body part of a download.
    static let downloadChunk = 64 * 1024
    /// Byte `i` of a download is `UInt8(i % downloadPeriod)`.
    static let downloadPeriod = 251

    let baseURL: String
    let stats: WorkspaceStats
    private let secret: [UInt8]?
    /// `GET {base}` for HTTP/1.1 keep-alive requests (the benchmark's hot path): no per-request work.
    let rootHead: HTTPResponseHead
    let rootBody: ByteBuffer
    /// `downloadChunk + downloadPeriod` bytes of the pattern: a chunk starting at any offset is a
    /// zero-copy slice of it.
    let pattern: ByteBuffer

    init(configuration: WorkspaceConfiguration, stats: WorkspaceStats) {
        self.baseURL = configuration.baseURL
        self.stats = stats
        self.secret = configuration.secret.map { Array($0.utf8) }
        let allocator = ByteBufferAllocator()
        self.rootBody = allocator.buffer(string: "atrium workspace for \(configuration.user)\n")
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        headers.add(name: "content-length", value: String(rootBody.readableBytes))
        self.rootHead = HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)
        var pattern = allocator.buffer(capacity: Self.downloadChunk + Self.downloadPeriod)
        for i in 0..<(Self.downloadChunk + Self.downloadPeriod) {
            pattern.writeInteger(UInt8(i % Self.downloadPeriod))
        }
        self.pattern = pattern
    }

    /// The route for a request path (without the query), or nil when it is outside the base URL.
    func route(path: Substring) -> Route? {
        let utf8 = path.utf8
        guard utf8.starts(with: baseURL.utf8) else { return nil }
        let rest = utf8.dropFirst(baseURL.utf8.count)
        if rest.isEmpty { return .root }
        if rest.elementsEqual("api/status".utf8) { return .status }
        if rest.elementsEqual("headers".utf8) { return .headers }
        if rest.elementsEqual("echo".utf8) { return .echo }
        if rest.elementsEqual("download".utf8) { return .download }
        if rest.elementsEqual("ws".utf8) { return .websocket }
        return .notFound
    }

    /// True when no secret is configured, or the request carries `Authorization: token <secret>`
    /// or (as jupyter-server accepts, and as a Kubernetes service proxy leaves it) `token=<secret>`
    /// in its query. The scheme is case-insensitive; the token is compared in constant time.
    func isAuthorized(_ headers: HTTPHeaders, query: Substring? = nil) -> Bool {
        guard let secret else { return true }
        if let query {
            for item in query.split(separator: "&") where item.hasPrefix("token=") {
                let value = item.dropFirst(6)
                if constantTimeEquals(Array((value.removingPercentEncoding ?? String(value)).utf8), secret) { return true }
            }
        }
        guard let value = headers.first(name: "authorization") else { return false }
        var bytes = Substring(value).utf8[...]
        while bytes.first == UInt8(ascii: " ") { bytes = bytes.dropFirst() }
        let scheme = bytes.prefix { $0 != UInt8(ascii: " ") }
        guard scheme.count == 5, scheme.elementsEqual("token".utf8, by: { $0 | 0x20 == $1 }) else { return false }
        bytes = bytes.dropFirst(5)
        while bytes.first == UInt8(ascii: " ") { bytes = bytes.dropFirst() }
        while bytes.last == UInt8(ascii: " ") { bytes = bytes.dropLast() }
        return constantTimeEquals(Array(bytes), secret)
    }

    /// `GET {base}api/status`, like jupyter-server's.
    func statusBody(_ snapshot: WorkspaceStats.Snapshot) -> String {
        let started = Timestamp.format(stats.started)
        let last = snapshot.lastActivity.map(Timestamp.format) ?? started
        return #"{"started":"\#(started)","last_activity":"\#(last)","connections":\#(snapshot.connections),"requests":\#(snapshot.requests)}"#
    }

    /// `GET {base}headers`: method, uri, version and headers (lowercased name → values, in order).
    func headersBody(_ head: HTTPRequestHead) -> String {
        var names: [String] = []
        var values: [String: [String]] = [:]
        for (name, value) in head.headers {
            let key = name.lowercased()
            if values[key] == nil { names.append(key) }
            values[key, default: []].append(value)
        }
        var json = #"{"method":\#(JSONValue.quoted(head.method.rawValue)),"uri":\#(JSONValue.quoted(head.uri)),"#
        json += #""version":"\#(head.version)","headers":{"#
        for (i, name) in names.enumerated() {
            if i > 0 { json += "," }
            json += JSONValue.quoted(name) + ":[" + values[name]!.map(JSONValue.quoted).joined(separator: ",") + "]"
        }
        return json + "}}"
    }

    /// The byte count of `download?bytes=N`, or nil when missing or invalid.
    static func downloadSize(query: Substring?) -> Int? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") where pair.hasPrefix("bytes=") {
            if let n = Int(pair.dropFirst("bytes=".count)), n >= 0 { return n }
            return nil
        }
        return nil
    }
}

/// Compares without an early exit, so the time taken does not reveal how much of a guess matched.
func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    var difference: UInt8 = a.count == b.count ? 0 : 1
    for i in 0..<max(a.count, b.count) {
        difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0)
    }
    return difference == 0
}

/// Just enough JSON writing for this program's fixed-shape bodies.
enum JSONText {
    /// The error shape the hub uses: `{"status":403,"message":"..."}`.
    static func error(_ status: HTTPResponseStatus, _ message: String) -> String {
        #"{"status":\#(status.code),"message":\#(JSONValue.quoted(message))}"#
    }
}
