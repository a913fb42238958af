import AtriumAuth
import AtriumHTTP
import AtriumKubernetes
import AtriumLocal
import AtriumServices
import AtriumSimulated
import AtriumProxy
import AtriumSpawn
import AsyncHTTPClient
import AtriumModel
import AtriumStore
import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import ServiceLifecycle

/// Versions Atrium reports.
public enum AtriumVersion {
    /// Atrium's own version.
    public static let atrium = "0.1.0"
    /// The JupyterHub REST API level implemented (PEP 440); clients gate features on it.
    public static let jupyterHubAPI = "5.4.0"
}

/// The composition root: configuration in, one running hub out. It wires; it does no work of
/// its own beyond start-up bookkeeping (migrations, configured admins).
public enum HubApplication {
    /// Opens the store and applies migrations.
    /// What is wrong when the configured SQLite database does not exist yet (commands other
    /// than `serve` and `migrate` must not create an empty one somewhere else), or nil.
    public static func missingDatabase(_ configuration: HubConfiguration) -> String? {
        let db = configuration.db
        if db == ":memory:" || db.hasPrefix("postgres://") || db.hasPrefix("postgresql://") { return nil }
        let path = absolute(db)
        return FileManager.default.fileExists(atPath: path) ? nil : "there is no Atrium database at \(path)"
    }

    public static func openStore(_ configuration: HubConfiguration, logger: Logger) async throws -> Store {
        let store = try await Store.open(configuration.db, logger: logger)
        do {
            let applied = try await store.migrate()
            if !applied.isEmpty { logger.info("database migrated", metadata: ["atrium.versions": "\(applied)"]) }
        } catch {
            try? await store.close()
            throw error
        }
        return store
    }

    /// Runs the hub until SIGINT/SIGTERM. `onListening` receives the bound address's port.
    /// `metrics` receives the hub's metrics (pass one whose registry swift-metrics' global
    /// `MetricsSystem` also writes to, as `atrium serve` does).
    public static func run(
        _ configuration: HubConfiguration, metrics: HubMetrics = HubMetrics(), logger: Logger,
        onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) async throws {
        let launched = ContinuousClock.now
        try checkPrivateFiles(configuration)
        let secret = try CookieSecret.load(path: configuration.cookieSecretFile)
        let store = try await openStore(configuration, logger: logger)
        do {
            try await store.probeWrite()
        } catch {
            // A hub that cannot write cannot log anyone in or start anything: say so now, not
            // with a 503 on every request.
            try? await store.close()
            let fault = DatabaseFault.classify(error)?.description ?? "failing"
            throw ConfigurationError(
                key: "db",
                problem: "the database \(configuration.db.hasPrefix("postgres") ? "server" : configuration.db) refuses writes (\(fault)): "
                    + (fault == "read-only" ? "make the file and its folder writable by the hub's user" : "\(error)"))
        }
        // Connections the backend holds open (the Kubernetes API client's pool), closed on every way out.
        var closeBackend: @Sendable () async -> Void = {}
        do {
            let authenticator = Authenticator(configuration: configuration.auth, store: store, logger: logger)
            let notices = try await bootstrap(configuration, store: store, authenticator: authenticator, logger: logger)
            var settings = HTTPSettings(cookieSecret: secret, atriumVersion: AtriumVersion.atrium, apiVersion: AtriumVersion.jupyterHubAPI)
            settings.cookieSecurity = configuration.cookieSecure
            settings.sessionLifetime = configuration.sessionLifetime
            settings.pageDefaultLimit = configuration.apiPageDefaultLimit
            settings.pageMaxLimit = configuration.apiPageMaxLimit
            settings.hubName = configuration.hubName
            settings.metricsRequireAuthentication = configuration.metricsAuthenticate
            let httpClient = HTTPClient.shared
            let routes = RouteTable()
            let activity = ActivityRecorder()
            let (backend, backendServices, close) = try await makeBackend(configuration, logger: logger)
            closeBackend = close
            let manager = ServerManager(
                store: store, backend: backend, settings: configuration.spawn,
                probe: HTTPReadinessProbe(client: httpClient), routes: routes, metrics: metrics, logger: logger)
            let restoring = ContinuousClock.now
            let restored = try await manager.restore()
            await manager.checkRoutes()
            metrics.recordInitSpawners(seconds: (ContinuousClock.now - restoring).seconds)
            if restored != ServerManager.RestoreReport() {
                logger.info(
                    "reattached to servers",
                    metadata: ["atrium.reattached": "\(restored.reattached)", "atrium.suspended": "\(restored.suspended)", "atrium.cleaned": "\(restored.cleaned)"])
            }
            let proxyStatistics = ProxyStatistics()
            let hub = try Hub(
                store: store, authenticator: authenticator, settings: settings, manager: manager, spawnSettings: configuration.spawn,
                proxyStatistics: proxyStatistics, activity: activity, logger: logger)
            let gatekeeper = HubGatekeeper(hub: hub, routes: routes, activity: activity, cacheLifetime: configuration.proxyAuthCacheLifetime.seconds)
            let connectionCap = ConnectionLimits.prepare(configured: configuration.maxConnections, logger: logger)
            let proxy = ReverseProxy(
                configuration: ProxyConfiguration(
                    clientIdleTimeout: configuration.idleTimeout == .zero ? nil : configuration.idleTimeout,
                    maxConnectionsPerAddress: ConnectionLimits.perAddress(configured: configuration.maxConnectionsPerAddress, cap: connectionCap)),
                gatekeeper: gatekeeper, statistics: proxyStatistics, logger: logger)
            let app = Application(
                router: HubRouter.build(hub),
                server: .http1(configuration: .init(additionalChannelHandlers: [proxy.makeHandler()])),
                configuration: .init(
                    address: .hostname(configuration.ip, port: configuration.port), serverName: "Atrium",
                    availableConnectionsDelegate: MaximumAvailableConnections(connectionCap, logger: logger)),
                onServerRunning: { channel in
                    let port = channel.localAddress?.port ?? configuration.port
                    let host = configuration.ip == "0.0.0.0" ? "127.0.0.1" : configuration.ip
                    await manager.setHubAPIURL(configuration.hubAPIURL ?? "http://\(host):\(port)/hub/api")
                    for notice in notices {
                        print(notice.replacingOccurrences(of: "{url}", with: "http://\(configuration.ip):\(port)"))
                    }
                    metrics.recordHubStartup(seconds: (ContinuousClock.now - launched).seconds)
                    onListening(port)
                },
                logger: logger)
            // Backend services (the Kubernetes watch cache) first: when one fails, the hub stops.
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = backendServices.map { .init(service: $0) }
            services += [
                .init(service: ServerManagerService(manager: manager)),
                .init(service: ActivityFlushService(
                    recorder: activity, store: store, manager: manager, interval: configuration.activityFlushInterval, logger: logger)),
                .init(service: EventLoopIntervalService(metrics: metrics)),
            ]
            if configuration.culler.enabled {
                let culler = IdleCuller(
                    settings: configuration.culler, manager: manager, store: store, activity: activity, clock: ContinuousClock(), logger: logger,
                    onCull: { record in
                        // Only what was carried out counts; a refused cull is in the log.
                        if case .failed = record.outcome { return }
                        manager.metrics.recordCull(reason: record.decision.reason.label, action: record.decision.action.rawValue)
                    })
                services.append(.init(service: culler))
            }
            services.append(.init(service: app))
            let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            // POST /hub/api/shutdown: the same graceful stop as SIGTERM, after the answer is sent.
            hub.shutdown.install { Task { await group.triggerGracefulShutdown() } }
            try await group.run()
        } catch {
            await closeBackend()
            try? await store.close()
            throw error
        }
        await closeBackend()
        try await store.close()
    }

    /// The configured backend, the services it needs running, and what closes its connections
    /// when the hub ends. A `switch`, so a new backend cannot be forgotten here.
    static func makeBackend(_ configuration: HubConfiguration, logger: Logger) async throws
        -> (AnyBackend, [any Service], close: @Sendable () async -> Void)
    {
        switch configuration.backend {
        case .kubernetes:
            var kubernetes = configuration.kubernetes
            kubernetes.storage = configuration.kubernetesStorage.storage
            let client = try KubernetesClient(connection: try kubernetes.connection(), requestTimeout: kubernetes.requestTimeout)
            let close: @Sendable () async -> Void = { try? await client.shutdown() }
            do {
                let cache = WorkspaceCache(client: client, namespace: kubernetes.namespace, logger: logger)
                // Bound now: restored servers' endpoints name the relay's port.
                let relay: ServiceProxyRelay? = kubernetes.endpointMode == .apiProxy
                    ? try await ServiceProxyRelay.start(
                        connection: client.connection, namespace: kubernetes.namespace, port: kubernetes.apiProxyPort, logger: logger)
                    : nil
                let backend = try KubernetesBackend(configuration: kubernetes, client: client, cache: cache, relay: relay, logger: logger)
                return (AnyBackend(backend), [cache] + (relay.map { [$0] } ?? []), close)
            } catch {
                await close()
                throw error
            }
        case .local:
            let local = configuration.local
            let preset = LocalBackendConfiguration.presets[local.preset]
            var backend = LocalBackendConfiguration(
                command: local.command ?? preset?.command ?? [], workspacesRoot: absolute(local.effectiveWorkspacesRoot()),
                socketDirectory: local.socketDirectory, logDirectory: absolute(local.logDirectory))
            backend.environment = preset?.environment ?? [:]
            for item in local.environment {
                let parts = item.split(separator: "=", maxSplits: 1)
                backend.environment[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
            }
            backend.stripPrefix = local.command == nil ? preset?.stripPrefix ?? false : false
            backend.starterFiles = local.starterFiles.map(absolute)
            backend.stopGracePeriod = local.stopGracePeriod
            // The bundled atrium-workspace sits next to the atrium binary; the Jupyter presets'
            // own Python environment comes next, then PATH.
            let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            let pythonEnvironment = local.pythonEnvironment.map(absolute) ?? WorkspaceProgram.defaultPythonEnvironment()
            backend.extraPath = [executable.deletingLastPathComponent().path, pythonEnvironment + "/bin"]
            // Found now, not at a student's first Start.
            let isolation = local.effectiveIsolation()
            let program = try WorkspaceProgram.ensure(
                command: backend.command, preset: local.command == nil ? local.preset : nil, extraPath: backend.extraPath,
                pythonEnvironment: pythonEnvironment, setupPythonEnvironment: local.setupPythonEnvironment,
                forOtherUsers: isolation == .systemUsers, logger: logger)
            backend.pidsLimit = local.pidsLimit
            backend.createAccountsOnApproval = local.createSystemUsers == .onApproval
            backend.hubTag = Cgroups.folderName(forHub: hubIdentity(configuration))
            var accounts: SystemAccounts?
            switch isolation {
            case .systemUsers:
                guard geteuid() == 0 else {
                    throw ConfigurationError(
                        key: "local.isolation",
                        problem: "system_users needs the hub to run as root (it makes each student's account and starts their workspace as it): run it as root, as deploy/atrium.service does, or set local.isolation: hub_user")
                }
                var settings = SystemAccounts.Settings(homesRoot: backend.workspacesRoot, mappingFile: absolute(local.accountsFile))
                settings.source = local.systemUsers
                settings.prefix = local.systemUserPrefix
                settings.shell = local.systemUserShell
                accounts = try SystemAccounts(settings: settings, logger: logger)
                // Students must reach their homes and the program; nothing else of the hub's.
                try FileManager.default.createDirectory(atPath: backend.workspacesRoot, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o711])
                for path in [backend.workspacesRoot, program] {
                    if let blocked = WorkspaceProgram.unreachableFolder(path) {
                        throw ConfigurationError(
                            key: "local.isolation",
                            problem: "students' accounts cannot reach \(path): \(blocked) is closed to other users. Run `chmod o+x \(blocked)`, or move local.workspaces_root (or the program) to a folder such as /var/lib/atrium")
                    }
                }
                logger.notice("workspaces run as their users' own system accounts", metadata: ["atrium.accounts": "\(local.systemUsers.rawValue)"])
            case .hubUser:
                if geteuid() == 0 {
                    logger.warning("local.isolation is hub_user and the hub runs as root: every student's workspace runs as root, and can read the hub's database and cookie secret and every other student's files. Use local.isolation: system_users on a shared machine.")
                }
            }
            let profileLimits = configuration.spawn.profiles.map(\.limits)
            let limited = ([configuration.spawn.defaultLimits] + profileLimits).contains { $0.cpu != nil || $0.memory != nil }
            var cgroups: Cgroups?
            do {
                // One folder per hub (two courses' hubs on one machine never touch each other's
                // servers), the same across restarts so a restarted hub finds its servers.
                cgroups = try Cgroups.prepare(folder: Cgroups.folderName(forHub: hubIdentity(configuration)), logger: logger)
                logger.notice("workspace limits are enforced with \(cgroups!.summary)")
            } catch {
                if isolation == .systemUsers || limited {
                    throw ConfigurationError(
                        key: limited ? "spawn.memory_limit / spawn.cpu_limit" : "local.isolation",
                        problem: "workspace limits need a writable cgroup, and there is none: \(error). Run the hub as root with systemd's Delegate=yes (deploy/atrium.service)\(limited ? ", or remove the limits" : "")")
                }
                logger.info("no writable cgroup: workspaces run without memory, CPU or process limits", metadata: ["atrium.reason": "\(error)"])
            }
            // The hub's cgroup folder goes when the hub stops with no server left in it.
            return (AnyBackend(LocalBackend(configuration: backend, accounts: accounts, cgroups: cgroups, logger: logger)), [], { [cgroups] in cgroups?.removeFolderIfEmpty() })
        case .simulated:
            var simulated = configuration.simulated
            simulated.startDelay = configuration.simulatedStartDelay.min...configuration.simulatedStartDelay.max
            return (AnyBackend(SimulatedBackend(configuration: simulated, endpoint: SimulatedEndpoint(), logger: logger)), [], {})
        }
    }

    /// What tells this hub from another on the same machine, the same across its restarts: its
    /// database (the file's absolute path, or the PostgreSQL URL) and its workspaces' folder.
    static func hubIdentity(_ configuration: HubConfiguration) -> String {
        let db = configuration.db
        let database = db.hasPrefix("postgres") || db == ":memory:" ? db : absolute(db)
        return database + "|" + absolute(configuration.local.effectiveWorkspacesRoot())
    }

    /// Refuses to start when the hub's own secrets can be read by other users: the SQLite
    /// database, the cookie secret, the servers' logs and the sockets folder.
    static func checkPrivateFiles(_ configuration: HubConfiguration) throws {
        var files: [(String, String)] = [(absolute(configuration.cookieSecretFile), "600")]
        let db = configuration.db
        if db != ":memory:", !db.hasPrefix("postgres://"), !db.hasPrefix("postgresql://") {
            let path = absolute(db.hasPrefix("sqlite://") ? String(db.dropFirst("sqlite://".count)) : db)
            files += [(path, "600"), (path + "-wal", "600"), (path + "-shm", "600")]
        }
        if configuration.backend == .local {
            files += [(absolute(configuration.local.logDirectory), "700"), (configuration.local.socketDirectory, "700"), (absolute(configuration.local.accountsFile), "600")]
        }
        for (path, fix) in files {
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            if info.st_mode & 0o044 != 0 {
                throw ConfigurationError(
                    key: "file permissions",
                    problem: "\(path) can be read by other users (mode \(String(info.st_mode & 0o777, radix: 8))): it holds the hub's secrets. Run `chmod \(fix) \(path)`")
            }
        }
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    /// Start-up bookkeeping: configured admins exist and are admins; a fresh native hub with no
    /// admin at all gets one, whose password is printed once.
    /// Returns notices to print once the hub listens (`{url}` stands for its address).
    static func bootstrap(_ configuration: HubConfiguration, store: Store, authenticator: Authenticator, logger: Logger) async throws -> [String] {
        let admins = configuration.auth.adminUsers.sorted()
        if !admins.isEmpty {
            _ = try await store.createUsers(admins.map { NewUser(name: $0, admin: true) })
            for name in admins { try await store.setAdmin(name, true) }
        }
        guard configuration.auth.mode == .native else {
            return ["Workshop mode: log in at {url}/hub/login with the shared password and any allowed name."]
        }
        if admins.isEmpty, try await store.userCount() == 0 {
            let password = TokenHashing.newSecret().prefix(20)
            let hash = try await authenticator.hash(String(password))
            _ = try await store.createUsers([NewUser(name: "admin", admin: true, passwordHash: hash)])
            return ["""
                First start: created the admin user "admin" with password \(password)
                Log in at {url}/hub/login and change it at {url}/hub/change-password.
                """]
        }
        // A configured admin without a password gets a generated one, printed once (in the
        // journal, for a service): leaving the name open to whoever signs up first would hand
        // the hub to anyone who reaches its port before the instructor does.
        var notices: [String] = []
        for name in admins {
            if let user = try await store.user(named: name), user.passwordHash == nil {
                let password = String(TokenHashing.newSecret().prefix(20))
                try await store.setPasswordHash(name, try await authenticator.hash(password))
                notices.append("""
                    Admin \(name) had no password: set it to \(password)
                    Log in at {url}/hub/login and change it at {url}/hub/change-password (or run `atrium user set-password \(name)`).
                    """)
            }
        }
        return notices
    }
}
