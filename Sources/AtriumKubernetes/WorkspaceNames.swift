import Crypto
import Foundation

/// The Kubernetes names and labels of one server's objects, derived from the user and server
/// names alone (so a hub that lost its state still finds them).
///
/// Any user name works: the readable part keeps `[a-z0-9]` and turns the rest into `-`, and a
/// hash of the exact names is always appended, so `Alice`, `alice` and `al.ice` never collide
/// and every name is a valid DNS label (RFC 1035: a letter first, at most 63 characters). The
/// real names are in annotations.
public struct WorkspaceNames: Sendable, Equatable {
    public let user: String
    public let server: String

    public init(user: String, server: String) {
        self.user = user
        self.server = server
    }

    /// The Deployment, Service and NetworkPolicy name, and the `atrium/workspace` label value.
    public var workload: String {
        let readable = server.isEmpty ? Self.slug(user, max: 24) : "\(Self.slug(user, max: 20))-\(Self.slug(server, max: 14))"
        return "atrium-\(readable)-\(Self.hash("\(user)\u{0}\(server)"))"
    }

    /// The per-user volume claim (shared by the user's servers).
    public var volumeClaim: String { "atrium-home-\(userKey)" }

    /// The user as a label value and a folder name: readable part plus hash.
    public var userKey: String { "\(Self.slug(user, max: 24))-\(Self.hash(user))" }

    /// The server as a label value; `default` never collides with a named server (hashed).
    public var serverKey: String { server.isEmpty ? "default" : "\(Self.slug(server, max: 24))-\(Self.hash(server))" }

    static func slug(_ text: String, max: Int) -> String {
        var out = ""
        for scalar in text.lowercased().unicodeScalars {
            let ok = ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
            if ok { out.unicodeScalars.append(scalar) } else if !out.isEmpty, !out.hasSuffix("-") { out += "-" }
            if out.count >= max { break }
        }
        while out.hasSuffix("-") { out.removeLast() }
        return out.isEmpty ? "x" : out
    }

    /// 10 base-32 characters (50 bits) of SHA-256: collisions need a second preimage.
    static func hash(_ text: String) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz234567")
        var bits: UInt64 = 0
        for byte in SHA256.hash(data: Data(text.utf8)).prefix(8) { bits = bits << 8 | UInt64(byte) }
        var out = ""
        for _ in 0..<10 {
            out.append(alphabet[Int(bits & 31)])
            bits >>= 5
        }
        return out
    }
}

/// Label and annotation keys Atrium puts on what it makes.
public enum AtriumLabels {
    public static let managedBy = "app.kubernetes.io/managed-by"
    public static let managedByValue = "atrium"
    public static let user = "atrium/user"
    public static let server = "atrium/server"
    /// `workspace` (Deployment, Service, NetworkPolicy, Pod) or `volume` (PVC).
    public static let type = "atrium/type"
    /// The workload name: the Deployment's selector.
    public static let workspace = "atrium/workspace"
    /// Annotations with the real names.
    public static let userName = "atrium/user-name"
    public static let serverName = "atrium/server-name"
    /// The replica count a suspended Deployment had, to scale back to.
    public static let replicas = "atrium/replicas"

    /// Selects everything Atrium manages that runs (Deployments and Pods).
    public static let workspaceSelector = "\(managedBy)=\(managedByValue),\(type)=workspace"
}
