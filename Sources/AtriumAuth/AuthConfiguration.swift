/// How people log in, and who may.
public struct AuthConfiguration: Sendable, Equatable {
    /// Which authenticator runs.
    public enum Mode: String, Sendable, CaseIterable {
        /// Accounts with their own passwords, self-signup with admin approval.
        case native
        /// Workshop mode: one shared password; anyone who knows it logs in as any allowed name.
        case sharedPassword = "shared_password"
    }

    /// The authenticator. Default: `native`.
    public var mode: Mode = .native
    /// Users who are admins (created at start-up; approved at signup). Default: none.
    public var adminUsers: Set<String> = []
    /// When not empty, only these users (and admins) may log in. Default: empty (anyone).
    public var allowedUsers: Set<String> = []
    /// Users who may never log in, whatever else says. Default: none.
    public var blockedUsers: Set<String> = []
    /// Whether `/hub/signup` is offered (native mode). Default: true.
    public var enableSignup = true
    /// Whether new signups may log in at once, without an admin's approval. Default: false.
    public var openSignup = false
    /// The workshop password (shared-password mode). No default: required in that mode.
    public var sharedPassword: String?
    /// The password admins use in shared-password mode; admins cannot use the shared one.
    public var adminPassword: String?
    /// Rules for new passwords.
    public var passwordPolicy = PasswordPolicy()
    /// Failed logins (within ``failureWindow``) that lock a name. 0 disables lockout. Default: 5.
    public var maxFailedLogins = 5
    /// Failed logins (within ``failureWindow``) from one network address, whatever the names,
    /// that lock that address out (guessing under many names, or the one shared password).
    /// 0 disables. Default: 50 (a class behind one NAT address mistypes too).
    public var maxFailedLoginsPerAddress = 50
    /// How long a lockout lasts. Default: 10 minutes.
    public var lockoutDuration: Duration = .seconds(600)
    /// Failures further apart than this start the count again. Default: 10 minutes.
    public var failureWindow: Duration = .seconds(600)
    /// bcrypt cost for new password hashes. Default: 12.
    public var bcryptCost: UInt8 = 12

    public init() {}

    /// Whether `name` may log in at all under the allow/block lists.
    public func permits(_ name: String) -> Bool {
        if blockedUsers.contains(name) { return false }
        if allowedUsers.isEmpty { return true }
        return allowedUsers.contains(name) || adminUsers.contains(name)
    }
}


extension Duration {
    /// The duration in seconds, as a floating-point number.
    public var seconds: Double {
        let (s, atto) = components
        return Double(s) + Double(atto) / 1e18
    }
}
