import Foundation
import NIOCore
import NIOWebSocket

/// Whether a real jupyter-server is on `PATH` (CI installs it with pip; tests that need it fail
/// there without it, and are skipped elsewhere).
public let jupyterServerInstalled: Bool = {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    return path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/jupyter-server") }
}()

/// What became of running code on a Jupyter kernel over its WebSocket.
public enum KernelRun: Sendable, Equatable {
    /// The WebSocket upgrade was refused, with this status (0: the connection closed first).
    case refused(Int)
    /// The first `stream` output (stdout), or `nil` when none came.
    case output(String?)
}

/// Runs `code` on the kernel whose channels are at `path` (`…/api/kernels/{id}/channels`) on
/// 127.0.0.1:`port`, and returns its first stdout output: jupyter-server's kernel protocol over
/// a real WebSocket, as JupyterLab speaks it. Bounded: at most 500 frames are read.
public func runOnKernel(port: Int, path: String, headers: [(String, String)], code: String) async throws -> KernelRun {
    let (channel, events) = try await connectWebSocket(port: port, path: path, headers: headers)
    var iterator = events.makeAsyncIterator()
    switch await iterator.next() {
    case .upgraded?: break
    case .rejected(let status)?: return .refused(Int(status.code))
    default: return .refused(0)
    }
    let request: [String: Any] = [
        "header": ["msg_id": UUID().uuidString, "username": "atrium-test", "session": UUID().uuidString, "msg_type": "execute_request", "version": "5.3"],
        "parent_header": [:], "metadata": [:], "channel": "shell", "buffers": [],
        "content": ["code": code, "silent": false, "store_history": false, "user_expressions": [:], "allow_stdin": false],
    ]
    let data = try JSONSerialization.data(withJSONObject: request)
    try await channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: ByteBuffer(bytes: data)))
    var output: String?
    var text = ""
    for _ in 0..<500 {
        guard case .frame(let frame)? = await iterator.next() else { break }
        guard frame.opcode == .text || frame.opcode == .continuation else { continue }
        text += String(buffer: frame.unmaskedData)
        guard frame.fin else { continue }
        defer { text = "" }
        guard let message = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { continue }
        if message["msg_type"] as? String == "stream", let content = message["content"] as? [String: Any] {
            output = content["text"] as? String
            break
        }
    }
    try? await channel.close().get()
    return .output(output)
}
