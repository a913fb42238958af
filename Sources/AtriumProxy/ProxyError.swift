#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix

/// Why the proxy could not complete a forwarded request.
public struct ProxyError: Error, Sendable, CustomStringConvertible {
    private enum Code: Sendable {
        case connectFailed(String)
        case upstreamClosed
        case upstreamProtocolError
        case bufferLimitExceeded
    }

    private let code: Code

    private init(_ code: Code) { self.code = code }

    /// Connecting to the workspace failed; `detail` is a short human description.
    static func connectFailed(_ underlying: any Error) -> ProxyError {
        ProxyError(.connectFailed(Self.describe(underlying)))
    }
    /// The workspace closed the connection before its response started.
    static let upstreamClosed = ProxyError(.upstreamClosed)
    /// The workspace sent something that is not a valid answer (for example an unsolicited 101).
    static let upstreamProtocolError = ProxyError(.upstreamProtocolError)
    /// A client sent more than `maxBufferedBytes` while the proxy was waiting.
    static let bufferLimitExceeded = ProxyError(.bufferLimitExceeded)

    /// A short, stable label, suitable for metrics.
    public var reason: String {
        switch code {
        case .connectFailed: "connect_failed"
        case .upstreamClosed: "upstream_closed"
        case .upstreamProtocolError: "upstream_protocol_error"
        case .bufferLimitExceeded: "buffer_limit_exceeded"
        }
    }

    /// Text that may be shown to the client.
    public var userMessage: String {
        switch code {
        case .connectFailed(let detail): detail
        case .upstreamClosed: "connection closed before a response"
        case .upstreamProtocolError: "invalid response"
        case .bufferLimitExceeded: "too much data buffered"
        }
    }

    /// Text for the log.
    public var logMessage: String { "\(reason): \(userMessage)" }

    public var description: String { logMessage }

    /// A short description of a connection error, without addresses of other hosts or stack noise.
    static func describe(_ error: any Error) -> String {
        switch error {
        case let error as ProxyError:
            return error.userMessage
        case let error as ChannelError:
            if case .connectTimeout = error { return "connection timed out" }
            return "connection failed"
        case let error as NIOConnectionError:
            if let first = error.connectionErrors.first { return describe(first.error) }
            if error.dnsAError != nil || error.dnsAAAAError != nil { return "name resolution failed" }
            return "connection failed"
        case let error as IOError:
            return String(cString: strerror(error.errnoCode)).lowercased()
        default:
            return "connection failed"
        }
    }
}
