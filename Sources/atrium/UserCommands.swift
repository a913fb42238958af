import ArgumentParser
import AtriumApp
import AtriumAuth
import AtriumModel
import AtriumStore
import Foundation

/// Runs `body` with an open, migrated store, turning failures into messages.
func withStore(_ options: HubOptions, _ body: (HubConfiguration, Store) async throws -> Void) async throws {
    let configuration = try options.load()
    if let problem = HubApplication.missingDatabase(configuration) {
        CLI.fail("\(problem). Run this command where the hub runs, or name its configuration with --config (or ATRIUM_CONFIG) or its database with --db; `atrium migrate` creates a new database.")
    }
    let store: Store
    do { store = try await HubApplication.openStore(configuration, logger: CLI.logger()) } catch { CLI.fail("\(error)") }
    do {
        try await body(configuration, store)
        try await store.close()
    } catch {
        try? await store.close()
        if let error = error as? AccountError { CLI.fail(error.message) }
        CLI.fail("\(error)")
    }
}

/// Reads a password: from standard input when asked or when it is not a terminal, else by prompt.
func readPassword(fromStdin: Bool) -> String {
    if fromStdin || isatty(0) == 0 {
        guard let line = readLine(strippingNewline: true), !line.isEmpty else { CLI.fail("no password on standard input") }
        return line
    }
    guard let first = getpass("New password: ").map({ String(cString: $0) }) else { CLI.fail("no password given") }
    guard let second = getpass("Repeat it: ").map({ String(cString: $0) }), first == second else { CLI.fail("the two passwords differ") }
    return first
}

func validUserName(_ raw: String) -> String {
    let name = Authenticator.normalize(raw)
    do { return try UserName(name).rawValue } catch { CLI.fail(error.description + " (choose another name)") }
}

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage users.",
        subcommands: [Add.self, List.self, Delete.self, SetPassword.self, Approve.self, Unlock.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create users (approved).")
        @OptionGroup var options: HubOptions
        @Argument(help: "User names.") var names: [String]
        @Flag(help: "Make them admins.") var admin = false
        @Flag(help: "Read one password from standard input and give it to the (single) new user.") var passwordStdin = false
        @Flag(help: "Give each new user a generated password, printed once beside the name.") var generatePasswords = false

        func run() async throws {
            guard !names.isEmpty else { CLI.fail("give at least one user name") }
            let names = self.names.map(validUserName)
            if passwordStdin && names.count != 1 { CLI.fail("--password-stdin sets the password of exactly one new user") }
            if passwordStdin && generatePasswords { CLI.fail("choose one of --password-stdin and --generate-passwords") }
            try await withStore(options) { configuration, store in
                let hasher = PasswordHasher(cost: configuration.auth.bcryptCost)
                var hash: String?
                if passwordStdin {
                    let password = readPassword(fromStdin: true)
                    if let problem = configuration.auth.passwordPolicy.problem(with: password, forUser: names[0]) { CLI.fail(problem) }
                    hash = try await hasher.hash(password)
                }
                var passwords: [String: String] = [:]
                var newUsers: [NewUser] = []
                for name in names {
                    var userHash = hash
                    if generatePasswords {
                        let password = String(TokenHashing.newSecret().prefix(16))
                        passwords[name] = password
                        userHash = try await hasher.hash(password)
                    }
                    newUsers.append(NewUser(name: name, admin: admin, passwordHash: userHash))
                }
                let result = try await store.createUsers(newUsers)
                for user in result.created {
                    let role = user.admin ? " (admin)" : ""
                    if let password = passwords[user.name] {
                        print("created \(user.name)\(role)\tpassword: \(password)")
                    } else {
                        print("created \(user.name)\(role)")
                    }
                }
                for name in result.existing { print("exists  \(name)") }
                // How the new users will log in, so nobody is left with an account that cannot.
                let created = result.created.map(\.name)
                guard !created.isEmpty else { return }
                switch configuration.auth.mode {
                case .sharedPassword:
                    let who = result.created.contains { $0.admin } ? " (admins use auth.admin_password)" : ""
                    print("They log in with the workshop's shared password\(who).")
                case .native:
                    if hash == nil, !generatePasswords {
                        let example = created[0]
                        print("""
                            They have no password yet, so they cannot log in: run `atrium user set-password \(example)` for each, \
                            or reset their passwords in the admin panel (/hub/admin). (`atrium user add --generate-passwords` gives new users one.)
                            """)
                    }
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users.")
        @OptionGroup var options: HubOptions
        @Flag(help: "Only signups awaiting approval (approve them with `atrium user approve NAME…`).") var pending = false
        func run() async throws {
            try await withStore(options) { _, store in
                var query = UserQuery()
                query.sort = .name
                if pending { query.approval = .pending }
                for user in try await store.users(query).users {
                    let flags = [user.admin ? "admin" : nil, user.approval == .approved ? nil : user.approval.rawValue].compactMap { $0 }
                    print(user.name + (flags.isEmpty ? "" : "\t" + flags.joined(separator: ",")))
                }
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete users (their tokens and memberships too).")
        @OptionGroup var options: HubOptions
        @Argument(help: "User names.") var names: [String]
        func run() async throws {
            var missing = false
            try await withStore(options) { _, store in
                for name in names {
                    if try await store.deleteUser(name) { print("deleted \(name)") } else {
                        FileHandle.standardError.write(Data("no such user: \(name)\n".utf8))
                        missing = true
                    }
                }
            }
            if missing { throw ExitCode(1) }
        }
    }

    struct SetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-password", abstract: "Set a user's password (prompts, or reads standard input).")
        @OptionGroup var options: HubOptions
        @Argument(help: "User name.") var name: String
        @Flag(help: "Read the password from standard input.") var passwordStdin = false
        func run() async throws {
            try await withStore(options) { configuration, store in
                guard try await store.user(named: name) != nil else { CLI.fail("no such user: \(name) (create it with `atrium user add \(name)`)") }
                let password = readPassword(fromStdin: passwordStdin)
                try await Authenticator(configuration: configuration.auth, store: store, logger: CLI.logger()).setPassword(name: name, password)
                print("password of \(name) set")
            }
        }
    }

    struct Unlock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Lift a login lockout: of user names, and of network addresses with --address.")
        @OptionGroup var options: HubOptions
        @Argument(help: "User names.") var names: [String] = []
        @Option(help: "A network address locked out for failed logins under any names (repeatable).") var address: [String] = []
        func validate() throws {
            if names.isEmpty && address.isEmpty { throw ValidationError("name a user, or an address with --address") }
        }
        func run() async throws {
            try await withStore(options) { _, store in
                for name in names {
                    try await store.clearLoginFailures(Authenticator.normalize(name))
                    print("unlocked \(name)")
                }
                for address in address {
                    try await store.clearLoginFailures(Authenticator.addressKey(address))
                    print("unlocked address \(address)")
                }
            }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve signups so they can log in.")
        @OptionGroup var options: HubOptions
        @Argument(help: "User names.") var names: [String]
        func run() async throws {
            try await withStore(options) { _, store in
                for name in names {
                    guard try await store.user(named: name) != nil else { CLI.fail("no such user: \(name)") }
                    try await store.setApproval(name, .approved)
                    print("approved \(name)")
                }
            }
        }
    }
}

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Manage API tokens.", subcommands: [Create.self, List.self, Revoke.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a user's tokens (never their secrets).")
        @OptionGroup var options: HubOptions
        @Argument(help: "The tokens' owner.") var name: String

        func run() async throws {
            let name = validUserName(self.name)
            try await withStore(options) { _, store in
                guard try await store.user(named: name) != nil else { CLI.fail("no such user: \(name)") }
                let tokens = try await store.tokens(ofUser: name)
                if tokens.isEmpty { print("\(name) has no tokens") }
                for token in tokens {
                    let expires = token.expiresAt.map { "expires " + Timestamp.format($0) } ?? "no expiry"
                    let used = token.lastActivity.map { "last used " + Timestamp.format($0) } ?? "never used"
                    print("a\(token.id)\t\(token.prefix)…\t\(expires)\t\(used)\t\(token.scopes.joined(separator: ","))\t\(token.note ?? "")")
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke (delete) tokens of a user by id, as `token list` shows them.")
        @OptionGroup var options: HubOptions
        @Argument(help: "The tokens' owner.") var name: String
        @Argument(help: "Token ids (a12 or 12).") var ids: [String]

        func run() async throws {
            guard !ids.isEmpty else { CLI.fail("give at least one token id (see `atrium token list \(name)`)") }
            let name = validUserName(self.name)
            let numbers = ids.map { raw -> Int64 in
                let digits = raw.hasPrefix("a") ? String(raw.dropFirst()) : raw
                guard let id = Int64(digits), id > 0 else { CLI.fail("'\(raw)' is not a token id (see `atrium token list \(name)`)") }
                return id
            }
            var missing = false
            try await withStore(options) { _, store in
                for (raw, id) in zip(ids, numbers) {
                    if try await store.deleteToken(id: id, ofUser: name) { print("revoked \(raw)") } else {
                        FileHandle.standardError.write(Data("\(name) has no token \(raw)\n".utf8))
                        missing = true
                    }
                }
            }
            if missing { throw ExitCode(1) }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API token and print only the token.")
        @OptionGroup var options: HubOptions
        @Argument(help: "The token's owner.") var name: String
        @Option(help: "Comma-separated scopes (default: everything the owner may do).") var scopes: String?
        @Option(name: .customLong("expires-in"), help: "Lifetime: 3600 (seconds), 90m, 12h, 30d (default: no expiry).") var expiresIn: String?
        @Option(help: "A note kept with the token.") var note: String?
        @Flag(help: "Create the owner as an admin if missing (and make an existing owner admin).") var admin = false

        func run() async throws {
            var lifetime: Double?
            if let expiresIn {
                guard let seconds = Double(expiresIn.trimmingCharacters(in: .whitespaces)) ?? DurationText.seconds(expiresIn), seconds > 0 else {
                    CLI.fail("--expires-in takes a positive duration: 3600 (seconds), 90m, 12h or 30d (not '\(expiresIn)')")
                }
                lifetime = seconds
            }
            let name = validUserName(self.name)
            try await withStore(options) { _, store in
                var owner = try await store.user(named: name)
                if owner == nil {
                    guard admin else { CLI.fail("no such user: \(name) (add --admin to create it as an admin, or `atrium user add \(name)`)") }
                    _ = try await store.createUsers([NewUser(name: name, admin: true)])
                } else if admin, owner?.admin == false {
                    try await store.setAdmin(name, true)
                }
                owner = try await store.user(named: name)
                guard let owner else { CLI.fail("no such user: \(name)") }
                let requested = scopes.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }
                let granted: [String]
                do { granted = try Permissions.requestedTokenScopes(scopes: requested, roles: nil, owner: owner) } catch let error as ScopeError {
                    CLI.fail(error.description + " (see the scope list in the README)")
                }
                let (secret, _) = try await TokenHashing.issue(
                    for: owner, scopes: granted, note: note ?? "created with atrium token create", expiresIn: lifetime, store: store)
                print(secret)
            }
        }
    }
}
