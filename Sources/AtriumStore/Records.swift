import AtriumModel
import Foundation

/// Whether a self-registered account may log in.
public enum Approval: String, Sendable, Codable, CaseIterable {
    /// Created by an admin, or approved after signup.
    case approved
    /// Signed up and waiting for an admin.
    case pending
    /// Approval taken back: cannot log in; data stays.
    case revoked
}

/// A user row.
public struct UserRecord: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var admin: Bool
    public var created: Date
    public var lastActivity: Date?
    public var approval: Approval
    /// bcrypt hash for native accounts; `nil` for users without a password (token-only, shared password).
    public var passwordHash: String?
    /// Rotated to invalidate every browser session of this user (logout everywhere, password change, revoke).
    public var cookieID: String
    /// Names of the groups the user belongs to, sorted.
    public var groups: [String]

    public init(
        id: Int64, name: String, admin: Bool, created: Date, lastActivity: Date?, approval: Approval,
        passwordHash: String?, cookieID: String, groups: [String] = []
    ) {
        self.id = id
        self.name = name
        self.admin = admin
        self.created = created
        self.lastActivity = lastActivity
        self.approval = approval
        self.passwordHash = passwordHash
        self.cookieID = cookieID
        self.groups = groups
    }
}

/// A new user to create.
public struct NewUser: Sendable {
    public var name: String
    public var admin: Bool
    public var approval: Approval
    public var passwordHash: String?

    public init(name: String, admin: Bool = false, approval: Approval = .approved, passwordHash: String? = nil) {
        self.name = name
        self.admin = admin
        self.approval = approval
        self.passwordHash = passwordHash
    }
}

/// A group row with its members.
public struct GroupRecord: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var properties: JSONValue
    public var users: [String]
}

/// A stored API token: never the secret itself, only its salted hash and a short prefix for lookup.
public struct TokenRecord: Sendable, Equatable {
    public var id: Int64
    public var userID: Int64
    public var userName: String
    /// The first characters of the secret, indexed, so a lookup compares against few hashes.
    public var prefix: String
    /// Hex salt and hex SHA-256 of salt + secret.
    public var salt: String
    public var hash: String
    /// The scopes as granted (may contain `inherit`), unexpanded.
    public var scopes: [String]
    public var note: String?
    public var created: Date
    public var expiresAt: Date?
    public var lastActivity: Date?

    public init(
        id: Int64 = 0, userID: Int64, userName: String, prefix: String, salt: String, hash: String,
        scopes: [String], note: String?, created: Date, expiresAt: Date?, lastActivity: Date? = nil
    ) {
        self.id = id
        self.userID = userID
        self.userName = userName
        self.prefix = prefix
        self.salt = salt
        self.hash = hash
        self.scopes = scopes
        self.note = note
        self.created = created
        self.expiresAt = expiresAt
        self.lastActivity = lastActivity
    }
}

/// Where a server is in its life, as stored. The live state machine lives in the spawn module;
/// this is what survives a restart.
public enum ServerPhase: String, Sendable, Codable, CaseIterable {
    case stopped, pending, running, suspended, stopping, failed
}

/// A server row (default server has name `""`).
public struct ServerRecord: Sendable, Equatable {
    public var id: Int64
    public var userID: Int64
    public var userName: String
    public var name: String
    public var phase: ServerPhase
    /// The backend's own state, as JSON, so a restarted hub can reattach.
    public var state: JSONValue
    public var url: String?
    public var started: Date?
    public var lastActivity: Date?
    public var userOptions: JSONValue
    /// What the user calls the server (JupyterHub's `display_name`); written only by
    /// ``Store/setServerDisplayName(userID:name:displayName:)``, never by ``Store/saveServer(_:)``.
    public var displayName: String?

    public init(
        id: Int64 = 0, userID: Int64, userName: String, name: String, phase: ServerPhase = .stopped,
        state: JSONValue = .object([:]), url: String? = nil, started: Date? = nil, lastActivity: Date? = nil,
        userOptions: JSONValue = .object([:]), displayName: String? = nil
    ) {
        self.displayName = displayName
        self.id = id
        self.userID = userID
        self.userName = userName
        self.name = name
        self.phase = phase
        self.state = state
        self.url = url
        self.started = started
        self.lastActivity = lastActivity
        self.userOptions = userOptions
    }
}

/// Failed logins for one name, kept in the database so a restart does not reset a lockout.
public struct LoginFailures: Sendable, Equatable {
    public var name: String
    public var count: Int
    public var lastFailure: Date
    public var lockedUntil: Date?
}

/// Sort keys for user lists (JupyterHub's `sort` parameter, plus `created`).
public enum UserSort: Sendable, Equatable {
    case id, name, lastActivity, created

    /// Parses `id`, `name`, `last_activity`, `created`, each optionally prefixed with `-`.
    public static func parse(_ text: String) -> (UserSort, descending: Bool)? {
        let descending = text.hasPrefix("-")
        let key = descending ? String(text.dropFirst()) : text
        switch key {
        case "id": return (.id, descending)
        case "name": return (.name, descending)
        case "last_activity": return (.lastActivity, descending)
        case "created": return (.created, descending)
        default: return nil
        }
    }
}

/// Server-state filter for user lists (JupyterHub's `state` parameter).
public enum UserStateFilter: String, Sendable {
    /// Users with any server pending or running.
    case active
    /// Users with a running server.
    case ready
    /// Users without an active server.
    case inactive
}

/// A query over users.
public struct UserQuery: Sendable {
    public var offset: Int = 0
    public var limit: Int?
    public var sort: UserSort = .id
    public var descending = false
    /// Case-insensitive substring of the name.
    public var nameFilter: String?
    public var state: UserStateFilter?
    public var approval: Approval?
    public var adminOnly = false
    public var group: String?
    /// Restrict to these names (for filtered scopes); `nil` means no restriction.
    public var names: Set<String>?
    /// Only users with a running server that has shown no activity since this moment (its
    /// last activity, or its start when it never reported any): the admin panel's "idle".
    public var idleBefore: Date?

    public init() {}
}
