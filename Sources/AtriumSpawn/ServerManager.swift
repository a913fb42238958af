import AtriumAuth
import AtriumModel
import AtriumStore
import Foundation
import Logging

/// What a start request came to.
public enum StartOutcome: Sendable, Equatable {
    /// Ready within the slow-spawn threshold (HTTP 201).
    case ready(url: String)
    /// Still starting; it finishes in the background (HTTP 202).
    case pending(url: String)
}

/// What a stop request came to.
public enum StopOutcome: Sendable, Equatable {
    /// Stopped (HTTP 204).
    case stopped
    /// Still stopping in the background (HTTP 202).
    case pending
}

/// Runs every server's lifecycle. One actor for all servers: its methods only decide and
/// launch work (backend calls run in tasks it owns), so no call waits behind another user's
/// slow start. Operations on one server are serialized by its ``ServerLifecycle``: a command
/// that conflicts with what is running is rejected, a stop cancels a start.
public actor ServerManager {
    /// One server the manager is handling.
    struct Managed {
        var userID: Int64
        var user: String
        var name: String
        var lifecycle = ServerLifecycle()
        /// The backend's state, when it has one.
        var backendState: JSONValue?
        var secret: String?
        var tokenID: Int64?
        var endpoint: WorkspaceEndpoint?
        var started: Date?
        /// When the current (or last) start was asked for: how long a pending server has waited.
        var requested: Date?
        var userOptions: JSONValue = .object([:])
        var profile: String?
        var spawnTask: Task<Void, Never>?
        var stopTask: Task<Void, Never>?
        var events: [ProgressEvent] = []
        var listeners: [UUID: AsyncStream<ProgressEvent>.Continuation] = [:]
        /// Bumped by every start, so a late result of an older start is recognised and dropped.
        var generation = 0
        var lastFailure: String?
        /// Why the last stop or suspend failed (the server then runs on); cleared by the next.
        var stopFailure: String?
        /// A start, stop or suspend task is still at work (its store writes included). Callers
        /// that wait for a transition wait for this, not for the state alone, so an API answer
        /// never runs ahead of the store.
        var busy = false

        var baseURL: String { ServerManager.baseURL(user: user, server: name) }
    }

    struct Key: Hashable {
        var user: String
        var server: String
    }

    let store: Store
    let backend: AnyBackend
    let settings: SpawnSettings
    /// Set by `POST /hub/api/shutdown`'s `servers`; nil keeps the configured behaviour.
    var stopServersOnShutdownOverride: Bool?
    let probe: any ReadinessProbe
    /// The proxy's route table; the manager is its only writer.
    public nonisolated let routes: RouteTable
    let logger: Logger
    /// Where spawn and stop durations are recorded (the hub's metrics).
    public nonisolated let metrics: HubMetrics

    var servers: [Key: Managed] = [:]
    /// The latest row write asked for each server, so writes land in the order they were asked.
    var pendingWrites: [Key: Task<Void, any Error>] = [:]
    /// Callers waiting for a server to leave a transition (bounded by a timeout).
    var settleWaiters: [UUID: (key: Key, done: AsyncStream<Void>.Continuation)] = [:]
    var activeSpawns = 0
    var spawnQueue: [(id: UUID, key: Key, continuation: CheckedContinuation<Bool, Never>)] = []
    /// How many starts may run at once (adapting to the machine, or fixed).
    var admission: SpawnAdmission
    /// Moving average of spawn durations in seconds, for Retry-After.
    var averageSpawnSeconds = 5.0
    /// `JUPYTERHUB_API_URL` for workspaces; known once the hub listens.
    var hubAPIURL: String

    /// Sets the hub API's URL as workspaces reach it (when the hub knows its port).
    public func setHubAPIURL(_ url: String) {
        hubAPIURL = url
    }

    /// Sleeps out the reply timeouts (`slow_spawn_timeout`, `slow_stop_timeout`: how long a call
    /// waits before it answers "pending"). Tests inject one they control, so no outcome hangs on
    /// how fast a loaded machine is.
    public typealias ReplyTimer = @Sendable (Duration) async throws -> Void
    let replyTimer: ReplyTimer

    public init(
        store: Store, backend: AnyBackend, settings: SpawnSettings, probe: any ReadinessProbe, routes: RouteTable = RouteTable(),
        metrics: HubMetrics = HubMetrics(), logger: Logger, replyTimer: @escaping ReplyTimer = { try await Task.sleep(for: $0) }
    ) {
        self.replyTimer = replyTimer
        self.store = store
        self.metrics = metrics
        self.backend = backend
        self.settings = settings
        self.probe = probe
        self.routes = routes
        self.logger = logger
        self.hubAPIURL = settings.hubAPIURL
        // Only local starts compete for the hub's own cores.
        self.admission = settings.adaptiveSpawnLimit && backend.kind == "local"
            ? SpawnAdmission(cores: settings.cores, ceiling: settings.concurrentSpawnLimit)
            : .fixed(settings.concurrentSpawnLimit)
    }

    /// `/user/alice/` or `/user/alice/lab/`, percent-encoding what a path segment cannot hold.
    /// The one place these URLs are made (the API's models use it too).
    public static func baseURL(user: String, server: String) -> String {
        let allowed = CharacterSet.urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?#%"))
        let u = user.addingPercentEncoding(withAllowedCharacters: allowed) ?? user
        guard !server.isEmpty else { return "/user/\(u)/" }
        let s = server.addingPercentEncoding(withAllowedCharacters: allowed) ?? server
        return "/user/\(u)/\(s)/"
    }

    // MARK: - Commands

    /// Starts (or resumes) `user`'s server `serverName`. Waits up to the slow-spawn threshold.
    public func start(user: UserRecord, serverName: String, userOptions: JSONValue? = nil, profile: String? = nil) async throws -> StartOutcome {
        let requested = ContinuousClock.now
        let key = Key(user: user.name, server: serverName)
        var server = try await managed(key, userID: user.id, createNamed: true)
        try checkLimits(starting: key, requested: requested)
        let action: ServerLifecycle.Action
        switch server.lifecycle.command(.start) {
        case .success(let a): action = a
        case .failure(let rejection):
            // As JupyterHub: asking again while the start is pending answers 202, it is the same start.
            if rejection.reason == .startPending { return .pending(url: server.baseURL) }
            if rejection.reason == .stopPending {
                metrics.recordSpawn(.alreadyPending, seconds: (ContinuousClock.now - requested).seconds)
            }
            throw SpawnError(.rejected, "\(describe(key)) is \(rejection.reason.rawValue)")
        }
        guard action == .startBackend else { return .pending(url: server.baseURL) }
        // Claim the start now: a concurrent command sees `starting` from here on.
        let before = servers[key]?.lifecycle ?? ServerLifecycle()
        servers[key] = server

        let chosenProfile = settings.profile(named: profile ?? server.profile)
        if let profile, chosenProfile == nil {
            servers[key]?.lifecycle = before
            throw SpawnError(.rejected, "No such profile: \(profile). Choose one of \(settings.profiles.map(\.name).joined(separator: ", ")).")
        }
        let token: (secret: String, record: TokenRecord)
        do {
            token = try await TokenHashing.issue(
                for: user,
                scopes: ["users:activity!user=\(user.name)", "access:servers!server=\(user.name)/\(serverName)", "read:users:name!user=\(user.name)"],
                note: "server \(describe(key))", expiresIn: nil, store: store)
        } catch {
            servers[key]?.lifecycle = before
            throw error
        }
        // Re-read: the actor may have run other calls during the await above.
        guard var current = servers[key], current.lifecycle.state == .starting else {
            _ = try? await store.deleteToken(id: token.record.id, ofUser: user.name)
            throw SpawnError(.rejected, "\(describe(key)) changed while starting")
        }
        current.generation += 1
        current.requested = Date()
        current.events = [ProgressEvent(progress: 0, message: "Server requested")]
        current.lastFailure = nil
        if let userOptions { current.userOptions = userOptions }
        current.profile = chosenProfile?.name
        current.secret = TokenHashing.newSecret()
        if let old = current.tokenID { Task { [store] in _ = try? await store.deleteToken(id: old, ofUser: user.name) } }
        current.tokenID = token.record.id
        let request = spawnRequest(for: current, profile: chosenProfile, apiToken: token.secret)
        let generation = current.generation
        current.busy = true
        current.spawnTask = Task { await self.runStart(key, request: request, generation: generation) }
        servers[key] = current
        try await persist(key, phase: .pending)

        await waitUntilSettled(key, timeout: settings.slowSpawnTimeout) { !$0.busy || $0.generation != generation }
        guard let after = servers[key], after.generation == generation else { return .pending(url: server.baseURL) }
        // Still at work (its last store write, say): pending, so a 201 never runs ahead of the store.
        if after.busy { return .pending(url: after.baseURL) }
        switch after.lifecycle.state {
        case .running: return .ready(url: after.baseURL)
        case .failed(let reason): throw SpawnError(.backendFailed, reason)
        default: return .pending(url: after.baseURL)
        }
    }

    /// Stops the server; with `remove`, also deletes it (named servers) and what the backend kept.
    public func stop(user: String, serverName: String, remove: Bool = false) async throws -> StopOutcome {
        let key = Key(user: user, server: serverName)
        guard let userRecord = try await store.user(named: user) else { throw SpawnError(.notFound, "No such user: \(user)") }
        var server = try await managed(key, userID: userRecord.id, createNamed: false)
        let action: ServerLifecycle.Action
        switch server.lifecycle.command(.stop) {
        case .success(let a):
            action = a
        case .failure(let rejection) where rejection.reason == .notRunning:
            // Stopped already: as JupyterHub, a stop is then done (204); removing still acts.
            guard remove else { return .stopped }
            try await removeStopped(key)
            return .stopped
        case .failure(let rejection) where rejection.reason == .stopPending:
            return .pending
        case .failure(let rejection):
            throw SpawnError(.rejected, "\(describe(key)) is \(rejection.reason.rawValue)")
        }
        return try await takeDown(key, server, cancellingStart: action == .cancelStartAndStop) { await self.runStop(key, remove: remove) }
    }

    /// Suspends the server: processes stop, the workspace and its configuration stay.
    public func suspend(user: String, serverName: String) async throws -> StopOutcome {
        let key = Key(user: user, server: serverName)
        guard let userRecord = try await store.user(named: user) else { throw SpawnError(.notFound, "No such user: \(user)") }
        var server = try await managed(key, userID: userRecord.id, createNamed: false)
        let action: ServerLifecycle.Action
        switch server.lifecycle.command(.suspend) {
        case .success(let a): action = a
        case .failure(let rejection): throw SpawnError(.rejected, "\(describe(key)) is \(rejection.reason.rawValue)")
        }
        if action == .none { return .stopped }
        return try await takeDown(key, server, cancellingStart: action == .cancelStartAndSuspend) { await self.runSuspend(key) }
    }

    /// Creates a named server without starting it (`PUT …/servers/{name}`).
    public func createNamed(user: UserRecord, serverName: String, userOptions: JSONValue) async throws {
        guard !serverName.isEmpty else { throw SpawnError(.rejected, "A named server needs a name") }
        if try await store.server(userID: user.id, name: serverName) != nil {
            throw SpawnError(.conflict, "Server \(user.name)/\(serverName) already exists")
        }
        try await checkNamedServerAllowed(user: user.name, userID: user.id)
        try await store.saveServer(ServerRecord(userID: user.id, userName: user.name, name: serverName, userOptions: userOptions))
    }

    /// Stops and removes every server of a user (before the user is deleted). With
    /// `deletingFiles`, also deletes each server's stored files through the backend's
    /// `deleteForever` (the admin panel's explicit "also delete stored files").
    public func removeAll(user: String, deletingFiles: Bool = false) async throws {
        guard let record = try await store.user(named: user) else { return }
        let names = (try await store.servers(ofUserIDs: [record.id])[record.id] ?? []).map(\.name)
        // The default server's files may exist without a row (never started here): include it.
        let extra: [String] = deletingFiles ? [""] : []
        for name in Set(names + extra + servers.keys.filter { $0.user == user }.map(\.server)) {
            let key = Key(user: user, server: name)
            if let task = servers[key]?.stopTask { await task.value }
            if let server = servers[key], ![.stopped, .suspended].contains(server.lifecycle.state) {
                _ = try? await stop(user: user, serverName: name, remove: true)
                if let task = servers[key]?.stopTask { await task.value }
            }
            if deletingFiles {
                // Not `try?`: files that could not be deleted must be reported, not forgotten.
                try await deleteForever(user: user, serverName: name)
            } else {
                try? await removeStopped(key)
            }
        }
    }

    /// Users were approved (or created approved): the backend prepares what it keeps per user
    /// (the local backend's system accounts, with `local.create_system_users: on_approval`),
    /// in the background, one after another; a failure is logged, and the first start tries
    /// again and reports it.
    public nonisolated func usersApproved(_ users: [(name: String, id: Int64)]) {
        guard !users.isEmpty else { return }
        Task { [backend, logger] in
            for user in users {
                do {
                    try await backend.prepareUser(user.name, user.id)
                } catch {
                    logger.warning("could not prepare an approved user", metadata: ["atrium.user": "\(user.name)", "atrium.error": "\(error)"])
                }
            }
        }
    }

    /// What a running server uses now (memory, CPU time, processes), when the backend can tell.
    public func usage(user: String, serverName: String) async -> ResourceUsage? {
        guard let server = servers[Key(user: user, server: serverName)], server.lifecycle.state == .running,
            let state = server.backendState
        else { return nil }
        return await backend.usage(state)
    }

    /// The last lines of a server's output.
    public func logs(user: String, serverName: String, lines: Int) async throws -> [String] {
        let key = Key(user: user, server: serverName)
        guard let userRecord = try await store.user(named: user) else { throw SpawnError(.notFound, "No such user: \(user)") }
        let server = try await managed(key, userID: userRecord.id, createNamed: false)
        do {
            return try await backend.logs(user, serverName, server.backendState, lines)
        } catch {
            throw SpawnError(.backendFailed, "Could not read the logs of \(describe(key)): \(error)")
        }
    }

    /// Progress events of a start: the ones so far, then the new ones, ending after the ready
    /// or failed event. Throws when the server is neither starting nor just finished.
    public func progress(user: String, serverName: String) throws -> AsyncStream<ProgressEvent> {
        let key = Key(user: user, server: serverName)
        guard var server = servers[key] else {
            if routes.route(user: user, server: serverName) != nil { return Self.finished(readyEvent(url: Self.baseURL(user: user, server: serverName))) }
            throw SpawnError(.notFound, "\(describe(key)) is not starting")
        }
        switch server.lifecycle.state {
        case .running:
            return Self.finished(readyEvent(url: server.baseURL))
        case .failed(let reason):
            return Self.finished(ProgressEvent(progress: 100, message: "Spawn failed: \(reason)", failed: true))
        case .starting:
            let (stream, continuation) = AsyncStream<ProgressEvent>.makeStream(bufferingPolicy: .bufferingNewest(256))
            for event in server.events { continuation.yield(event) }
            let id = UUID()
            server.listeners[id] = continuation
            servers[key] = server
            continuation.onTermination = { _ in Task { await self.dropListener(key, id) } }
            return stream
        default:
            // As JupyterHub: a server with no start to follow is not found (404).
            throw SpawnError(.notFound, "\(describe(key)) is not starting")
        }
    }

    /// The shared second half of stop and suspend: the route goes first, a running start is
    /// cancelled (and waited for), then `work` runs in the background while the caller waits up
    /// to the slow-stop threshold.
    func takeDown(_ key: Key, _ server: Managed, cancellingStart: Bool, _ work: @escaping @Sendable () async -> Void) async throws
        -> StopOutcome
    {
        var server = server
        removeRoute(key)
        let spawnTask = server.spawnTask
        if cancellingStart { spawnTask?.cancel() }
        server.spawnTask = nil
        let stopTask = Task {
            await spawnTask?.value
            await work()
        }
        server.stopTask = stopTask
        server.stopFailure = nil
        server.busy = true
        servers[key] = server
        try await persist(key, phase: .stopping)
        return try await waitForStop(stopTask, key: key)
    }

    // MARK: - Helpers

    /// Waits until `settled` holds for the server (checked whenever it changes), or `timeout`.
    func waitUntilSettled(_ key: Key, timeout: Duration, _ settled: @escaping (Managed) -> Bool) async {
        if let server = servers[key], settled(server) { return }
        if servers[key] == nil { return }
        let id = UUID()
        let (stream, done) = AsyncStream<Void>.makeStream()
        settleWaiters[id] = (key, done)
        let timer = Task { [replyTimer] in
            try? await replyTimer(timeout)
            self.endWait(id)
        }
        for await _ in stream {
            guard let server = servers[key], !settled(server) else { break }
        }
        timer.cancel()
        endWait(id)
    }

    func endWait(_ id: UUID) {
        settleWaiters.removeValue(forKey: id)?.done.finish()
    }

    /// Something changed for `key`: waiters re-check.
    func changed(_ key: Key) {
        for (_, waiter) in settleWaiters where waiter.key == key { waiter.done.yield() }
    }

    func describe(_ key: Key) -> String {
        key.server.isEmpty ? "\(key.user)'s server" : "\(key.user)'s server \(key.server)"
    }

    static func finished(_ event: ProgressEvent) -> AsyncStream<ProgressEvent> {
        let (stream, continuation) = AsyncStream<ProgressEvent>.makeStream()
        continuation.yield(event)
        continuation.finish()
        return stream
    }

    func readyEvent(url: String) -> ProgressEvent {
        ProgressEvent(progress: 100, message: "Server ready at \(url)", ready: true, url: url)
    }

    func dropListener(_ key: Key, _ id: UUID) {
        servers[key]?.listeners.removeValue(forKey: id)
    }

    /// Records a progress event and hands it to listeners; ready and failed events end streams.
    func record(_ key: Key, _ event: ProgressEvent) {
        guard var server = servers[key] else { return }
        server.events.append(event)
        if server.events.count > 200 { server.events.removeFirst(server.events.count - 200) }
        for listener in server.listeners.values {
            listener.yield(event)
            if event.ready || event.failed { listener.finish() }
        }
        if event.ready || event.failed { server.listeners = [:] }
        servers[key] = server
    }

    /// The managed entry for `key`, loaded from the store when the manager has not seen it yet.
    func managed(_ key: Key, userID: Int64, createNamed: Bool) async throws -> Managed {
        if let existing = servers[key] { return existing }
        let record = try await store.server(userID: userID, name: key.server)
        if let existing = servers[key] { return existing }  // loaded concurrently
        if record == nil, !key.server.isEmpty {
            guard createNamed else { throw SpawnError(.notFound, "No such server: \(key.user)/\(key.server)") }
            try await checkNamedServerAllowed(user: key.user, userID: userID)
            if let existing = servers[key] { return existing }
        }
        var server = Managed(userID: userID, user: key.user, name: key.server)
        if let record {
            server.userOptions = record.userOptions
            server.started = record.started
            let stored = StoredState(record.state)
            server.backendState = stored.backend
            server.secret = stored.secret
            server.tokenID = stored.tokenID
            server.profile = stored.profile
            if record.phase == .suspended { server.lifecycle = ServerLifecycle(state: .suspended) }
        }
        servers[key] = server
        return server
    }

    func checkNamedServerAllowed(user: String, userID: Int64) async throws {
        guard settings.allowNamedServers else { throw SpawnError(.notAllowed, "Named servers are not enabled.") }
        try await checkNamedServerLimit(user: user, userID: userID)
    }

    /// Refuses one more named server beyond `spawn.named_server_limit_per_user`.
    public func checkNamedServerLimit(user: String, userID: Int64) async throws {
        guard settings.namedServerLimitPerUser > 0 else { return }
        let named = (try await store.servers(ofUserIDs: [userID])[userID] ?? []).filter { !$0.name.isEmpty }
        if named.count >= settings.namedServerLimitPerUser {
            throw SpawnError(
                .notAllowed,
                "User \(user) already has the maximum of \(settings.namedServerLimitPerUser) named servers.  One must be deleted before a new server can be created")
        }
    }

    func checkLimits(starting key: Key, requested: ContinuousClock.Instant) throws {
        if settings.activeServerLimit > 0 {
            let active = servers.values.filter { [.starting, .running].contains($0.lifecycle.state) }.count
            if active >= settings.activeServerLimit {
                metrics.recordSpawn(.tooManyUsers, seconds: (ContinuousClock.now - requested).seconds)
                throw SpawnError(.tooBusy(retryAfter: retryAfter()), "Active user limit exceeded. Try again in a few minutes.")
            }
        }
        // Every other server in `starting` holds a spawn slot, waits in the queue, or is about to
        // (between its claim and its task): count them all, not only the slots and the queue,
        // or concurrent requests slip past the limit before any of them reaches the queue.
        let claimed = servers.lazy.filter { $0.key != key && $0.value.lifecycle.state == .starting }.count
        if claimed >= settings.concurrentSpawnLimit + settings.spawnQueueLimit {
            metrics.recordSpawn(.throttled, seconds: (ContinuousClock.now - requested).seconds)
            throw SpawnError(.tooBusy(retryAfter: retryAfter()), "Too many users trying to log in right now. Try again in \(retryAfter()) seconds.")
        }
    }

    func retryAfter() -> Int {
        let waves = Double(spawnQueue.count + 1) / Double(max(1, admission.limit))
        return min(300, max(1, Int((averageSpawnSeconds * max(1, waves)).rounded(.up))))
    }

    func spawnRequest(for server: Managed, profile: SpawnProfile?, apiToken: String) -> SpawnRequest {
        let baseURL = server.baseURL
        var environment = profile?.environment ?? [:]
        environment["JUPYTERHUB_API_TOKEN"] = apiToken
        environment["JPY_API_TOKEN"] = apiToken
        environment["JUPYTERHUB_API_URL"] = hubAPIURL
        environment["JUPYTERHUB_ACTIVITY_URL"] = "\(hubAPIURL)/users/\(server.user)/activity"
        environment["JUPYTERHUB_USER"] = server.user
        environment["JUPYTERHUB_SERVER_NAME"] = server.name
        environment["JUPYTERHUB_BASE_URL"] = "/"
        environment["JUPYTERHUB_SERVICE_PREFIX"] = baseURL
        environment["ATRIUM_WORKSPACE_SECRET"] = server.secret ?? ""
        return SpawnRequest(
            user: server.user, userID: server.userID, serverName: server.name, baseURL: baseURL, image: profile?.image,
            command: profile?.command, environment: environment, limits: profile?.limits ?? settings.defaultLimits,
            profile: profile?.name, userOptions: server.userOptions, secret: server.secret ?? "")
    }
}
