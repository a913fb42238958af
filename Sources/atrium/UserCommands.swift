import ArgumentParser
import AtriumApp
import AtriumAuth
import AtriumModel
import AtriumStore
import Foundation

/// Runs `body` with an open, migrated store, turning failures into messages.
func withStore(_ options: HubOptions, _ body: (HubConfiguration, Store) async throws -> Void) async throws {
    let configuration = try options.load()
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
        subcommands: [Add.self, List.self, Delete.self, SetPassword.self, Approve.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create users (approved).")
        @OptionGroup var options: HubOptions
        @Argument(help: "User names.") var names: [String]
        @Flag(help: "Make them admins.") var admin = false
        @Flag(help: "Read one password from standard input and give it to the (single) new user.") var passwordStdin = false

        func run() async throws {
            guard !names.isEmpty else { CLI.fail("give at least one user name") }
            let names = self.names.map(validUserName)
            if passwordStdin && names.count != 1 { CLI.fail("--password-stdin sets the password of exactly one new user") }
            try await withStore(options) { configuration, store in
                var hash: String?
                if passwordStdin {
                    let password = readPassword(fromStdin: true)
                    if let problem = configuration.auth.passwordPolicy.problem(with: password, forUser: names[0]) { CLI.fail(problem) }
                    hash = try await PasswordHasher(cost: configuration.auth.bcryptCost).hash(password)
                }
                let result = try await store.createUsers(names.map { NewUser(name: $0, admin: admin, passwordHash: hash) })
                for user in result.created { print("created \(user.name)\(user.admin ? " (admin)" : "")") }
                for name in result.existing { print("exists  \(name)") }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users.")
        @OptionGroup var options: HubOptions
        func run() async throws {
            try await withStore(options) { _, store in
                var query = UserQuery()
                query.sort = .name
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
    static let configuration = CommandConfiguration(commandName: "token", abstract: "Manage API tokens.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API token and print only the token.")
        @OptionGroup var options: HubOptions
        @Argument(help: "The token's owner.") var name: String
        @Option(help: "Comma-separated scopes (default: everything the owner may do).") var scopes: String?
        @Option(name: .customLong("expires-in"), help: "Lifetime in seconds (default: no expiry).") var expiresIn: Int?
        @Option(help: "A note kept with the token.") var note: String?
        @Flag(help: "Create the owner as an admin if missing (and make an existing owner admin).") var admin = false

        func run() async throws {
            if let expiresIn, expiresIn <= 0 { CLI.fail("--expires-in must be a positive number of seconds") }
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
                    for: owner, scopes: granted, note: note ?? "created with atrium token create", expiresIn: expiresIn.map(Double.init), store: store)
                print(secret)
            }
        }
    }
}
