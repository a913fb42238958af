import AtriumModel
import AtriumStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1

/// An error a client can act on: rendered as JupyterHub's `{"status": N, "message": "…"}`.
public struct APIError: Error, HTTPResponseError, Sendable {
    public let status: HTTPResponse.Status
    public let message: String
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = JSONResponse.make(.object(["status": .number(Double(status.code)), "message": .string(message)]), status: status)
        response.headers.append(contentsOf: headers)
        return response
    }

    static func badRequest(_ message: String) -> APIError { APIError(.badRequest, message) }
    static func notFound(_ message: String) -> APIError { APIError(.notFound, message) }
    static func forbidden(_ message: String) -> APIError { APIError(.forbidden, message) }
    static func conflict(_ message: String) -> APIError { APIError(.conflict, message) }

    /// Maps store errors a client caused to their status.
    static func from(_ error: StoreError) -> APIError {
        switch error.code {
        case .notFound: APIError(.notFound, error.userMessage)
        case .alreadyExists: APIError(.conflict, error.userMessage)
        case .badConfiguration, .schemaTooNew: APIError(.internalServerError, "the hub's database is misconfigured")
        }
    }
}

/// JSON responses.
enum JSONResponse {
    static func make(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let data = (try? encoder.encode(value)) ?? Data("null".utf8)
        return Response(
            status: status,
            headers: [.contentType: "application/json; charset=utf-8", .cacheControl: "no-store"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Turns every error into a JSON answer under `/hub/api` (and a plain page elsewhere), and
/// makes sure no client mistake becomes a 500 and no internal detail reaches a client.
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Whether `error` says the client's connection ended under its own request (the body cut
    /// short, the socket reset or closed).
    static func clientWentAway(_ error: any Error) -> Bool {
        if let error = error as? HTTPParserError { return error == .invalidEOFState }
        if let error = error as? ChannelError { return [.eof, .ioOnClosedChannel, .outputClosed, .inputClosed].contains(error) }
        if let error = error as? IOError { return [ECONNRESET, EPIPE].contains(error.errnoCode) }
        return false
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as StoreError where error.code == .notFound || error.code == .alreadyExists {
            throw APIError.from(error)
        } catch let error as HTTPError {
            // Hummingbird's own errors: unknown route, body too large, undecodable body.
            let message: String
            switch error.status {
            case .notFound: message = "Not Found: \(request.uri.path)"
            case .contentTooLarge: message = "Request body too large (limit \(context.maxUploadSize) bytes)"
            case .methodNotAllowed: message = "Method \(request.method) not allowed on \(request.uri.path)"
            default: message = error.body ?? error.status.reasonPhrase
            }
            var api = APIError(error.status, message)
            api.headers = error.headers
            throw api
        } catch let error as any HTTPResponseError where error.status.code < 500 {
            // Hummingbird's other client errors (NIOTooManyBytesError: body over the limit, …).
            let message = error.status == .contentTooLarge
                ? "Request body too large (limit \(context.maxUploadSize) bytes)" : error.status.reasonPhrase
            throw APIError(error.status, message)
        } catch let error where Self.clientWentAway(error) {
            // The client closed its connection before sending its whole request: nobody is left
            // to answer, and it is not the hub's failure (a 500 here let anyone inflate the
            // 5xx rate). nginx's 499 for the metrics.
            context.logger.debug("client went away mid-request", metadata: ["atrium.request": "\(context.id)", "atrium.error": "\(error)"])
            throw APIError(.init(code: 499, reasonPhrase: "Client Closed Request"), "The connection closed before the request was complete.")
        } catch let error as HTTPParserError {
            // A request body the HTTP decoder could not read (a malformed chunk): the client's mistake.
            throw APIError(.badRequest, "Malformed request: \(error.debugDescription)")
        } catch let error where DatabaseFault.classify(error) != nil {
            // Nobody's mistake and not a bug: the database is full, read-only or away. 503 with
            // the class, so clients retry and operators see what to fix.
            let fault = DatabaseFault.classify(error)!
            context.logger.error(
                "request failed: database \(fault)", metadata: ["atrium.request": "\(context.id)", "atrium.error": "\(String(reflecting: error))"])
            var api = APIError(.serviceUnavailable, "The hub's database is \(fault); try again later (request id \(context.id)).")
            api.headers[.retryAfter] = "5"
            throw api
        } catch {
            let id = context.id
            context.logger.error("request failed", metadata: ["atrium.request": "\(id)", "atrium.error": "\(String(reflecting: error))"])
            throw APIError(.internalServerError, "Internal error (request id \(id)); the details are in the hub's log.")
        }
    }
}
