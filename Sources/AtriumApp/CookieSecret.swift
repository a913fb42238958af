import Foundation

/// The cookie-signing secret, kept in a file readable only by the hub (mode 0600).
public enum CookieSecret {
    /// Reads the secret from `path`, creating it (32 random bytes, hex) when missing. Refuses a
    /// file others can read, and one that is too short. `ATRIUM_COOKIE_SECRET` (hex) overrides.
    public static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [UInt8] {
        if let hex = environment["ATRIUM_COOKIE_SECRET"], !hex.isEmpty {
            guard let bytes = decodeHex(hex), bytes.count >= 32 else {
                throw ConfigurationError(key: "ATRIUM_COOKIE_SECRET", problem: "must be at least 64 hexadecimal characters")
            }
            return bytes
        }
        let manager = FileManager.default
        if manager.fileExists(atPath: path) {
            let attributes = try manager.attributesOfItem(atPath: path)
            if let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue, mode & 0o077 != 0 {
                throw ConfigurationError(
                    key: "cookie_secret_file",
                    problem: "\(path) can be read by other users (mode \(String(mode, radix: 8))): run `chmod 600 \(path)`")
            }
            let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let bytes = decodeHex(text), bytes.count >= 32 else {
                throw ConfigurationError(key: "cookie_secret_file", problem: "\(path) must hold at least 64 hexadecimal characters")
            }
            return bytes
        }
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let hex = bytes.map { String(format: "%02x", $0) }.joined() + "\n"
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard manager.fileExists(atPath: directory) else {
            throw ConfigurationError(key: "cookie_secret_file", problem: "the folder \(directory) does not exist")
        }
        guard manager.createFile(atPath: path, contents: Data(hex.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ConfigurationError(key: "cookie_secret_file", problem: "cannot create \(path)")
        }
        return bytes
    }

    static func decodeHex(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let byte = UInt8(String(decoding: chars[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            out.append(byte)
            i += 2
        }
        return out
    }
}
