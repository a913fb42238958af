import AtriumAuth
import AtriumModel
import AtriumStore
import Foundation
import Logging

/// What the manager keeps in a server row's `state` column: the backend's state plus the
/// hub's own per-server values a restarted hub needs (the proxy secret, the server token).
struct StoredState {
    var backend: JSONValue?
    var secret: String?
    var tokenID: Int64?
    var profile: String?
    /// Why the server failed (start failure, crash, out of memory), kept while it is failed.
    var failure: String?

    init(backend: JSONValue?, secret: String?, tokenID: Int64?, profile: String?) {
        self.backend = backend
        self.secret = secret
        self.tokenID = tokenID
        self.profile = profile
    }

    init(_ json: JSONValue) {
        let object = json.objectValue ?? [:]
        backend = object["backend"].flatMap { $0 == .null ? nil : $0 }
        if case .string(let s)? = object["secret"] { secret = s }
        if case .number(let n)? = object["token_id"] { tokenID = Int64(n) }
        if case .string(let p)? = object["profile"] { profile = p }
        if case .string(let f)? = object["failure"] { failure = f }
    }

    var json: JSONValue {
        var object: [String: JSONValue] = [:]
        if let backend { object["backend"] = backend }
        if let secret { object["secret"] = .string(secret) }
        if let tokenID { object["token_id"] = .number(Double(tokenID)) }
        if let failure { object["failure"] = .string(failure) }
        if let profile { object["profile"] = .string(profile) }
        return .object(object)
    }
}

extension ServerManager {
    // MARK: - Start

    func runStart(_ key: Key, request: SpawnRequest, generation: Int) async {
        let began = ContinuousClock.now
        defer { changed(key) }
        defer {
            // Done, unless a stop took over: then the stop's task says when it is done.
            if servers[key]?.generation == generation, servers[key]?.stopTask == nil { servers[key]?.busy = false }
        }
        guard await acquireSpawnSlot(key) else { return }
        defer { releaseSpawnSlot() }
        func current() -> Managed? {
            guard let s = servers[key], s.generation == generation, s.lifecycle.state == .starting else { return nil }
            return s
        }
        do {
            guard let server = current() else { return }
            record(key, ProgressEvent(progress: 10, message: "Starting \(describe(key)) (\(backend.kind) backend)"))
            let initial = try await backend.startState(request, server.backendState)
            guard current() != nil else { return }
            servers[key]?.backendState = initial
            try await persist(key, phase: .pending)

            let progress: ProgressSink = { event in await self.record(key, event) }
            // Readiness is measured, and its deadline counted, from here: time in the queue
            // is not the server's.
            let processStarting = ContinuousClock.now
            let started = try await withTimeout(settings.startTimeout, what: "start") {
                try await self.backend.start(request, initial, progress)
            }
            guard current() != nil else {
                // A stop arrived meanwhile; it will stop what this start made.
                servers[key]?.backendState = started
                return
            }
            servers[key]?.backendState = started
            var endpoint = try backend.endpoint(started)
            endpoint.secret = servers[key]?.secret
            servers[key]?.endpoint = endpoint
            try await persist(key, phase: .pending)
            record(key, ProgressEvent(progress: 60, message: "Waiting for the server to answer"))
            try await waitUntilReady(key, endpoint: endpoint, state: started, generation: generation)

            guard var server = current() else { return }
            let action = server.lifecycle.event(.ready)
            server.started = Date()
            servers[key] = server
            if action == .publishRoute {
                publishRoute(LiveRoute(user: key.user, userID: server.userID, server: key.server, endpoint: endpoint))
            }
            admission.ready(after: (ContinuousClock.now - processStarting).seconds, waiting: spawnQueue.count)
            try await persist(key, phase: .running)
            let seconds = (ContinuousClock.now - began).seconds
            averageSpawnSeconds = averageSpawnSeconds * 0.8 + seconds * 0.2
            metrics.recordSpawn(.success, seconds: seconds)
            logger.info("server ready", metadata: ["atrium.user": "\(key.user)", "atrium.server": "\(key.server)", "atrium.seconds": "\(seconds)"])
            record(key, readyEvent(url: server.baseURL))
        } catch {
            guard current() != nil else { return }  // cancelled by a stop: the stop cleans up
            let reason = Task.isCancelled ? "the start was cancelled" : "\(error)"
            if !Task.isCancelled { admission.failed() }
            metrics.recordSpawn(.error, seconds: (ContinuousClock.now - began).seconds)
            await failStart(key, reason: reason)
        }
    }

    func failStart(_ key: Key, reason: String) async {
        guard var server = servers[key] else { return }
        _ = server.lifecycle.event(.startFailed(reason: reason))
        server.lastFailure = reason
        servers[key] = server
        removeRoute(key)
        logger.warning("server failed to start", metadata: ["atrium.user": "\(key.user)", "atrium.server": "\(key.server)", "atrium.reason": "\(reason)"])
        record(key, ProgressEvent(progress: 100, message: "Spawn failed: \(reason)", failed: true))
        if let state = server.backendState { try? await backend.stop(state) }
        await revokeToken(key)
        try? await persist(key, phase: .failed)
    }

    /// Polls the endpoint until it answers, the backend reports a failure, or time runs out.
    func waitUntilReady(_ key: Key, endpoint: WorkspaceEndpoint, state: JSONValue, generation: Int) async throws {
        let deadline = ContinuousClock.now + settings.readyTimeout
        let path = endpoint.stripPrefix == nil ? Self.baseURL(user: key.user, server: key.server) : "/"
        var delay = Duration.milliseconds(50)
        while true {
            try Task.checkCancellation()
            if await probe.check(endpoint, path: path) { return }
            if case .failed(let reason) = await poll(state) { throw SpawnError(.backendFailed, reason) }
            if ContinuousClock.now >= deadline {
                throw SpawnError(.backendFailed, "The server did not answer at \(endpoint.address) within \(settings.readyTimeout)")
            }
            try await Task.sleep(for: delay)
            // A connection attempt to a server that is not listening yet is cheap; every second
            // of polling slack is a second later for the user and for everyone queued behind.
            delay = min(delay * 2, .milliseconds(250))
        }
    }

    func acquireSpawnSlot(_ key: Key) async -> Bool {
        if activeSpawns < admission.limit, spawnQueue.isEmpty {
            activeSpawns += 1
            return true
        }
        let id = UUID()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if Task.isCancelled { continuation.resume(returning: false); return }
                spawnQueue.append((id, key, continuation))
                announceQueue(from: spawnQueue.count - 1)
            }
        } onCancel: {
            Task { await self.leaveSpawnQueue(id) }
        }
    }

    func leaveSpawnQueue(_ id: UUID) {
        guard let index = spawnQueue.firstIndex(where: { $0.id == id }) else { return }
        spawnQueue.remove(at: index).continuation.resume(returning: false)
        announceQueue(from: index)
    }

    func releaseSpawnSlot() {
        activeSpawns -= 1
        admitWaiting()
    }

    /// Lets waiting starts run while the admission limit allows (it may have grown).
    func admitWaiting() {
        var admitted = 0
        while activeSpawns < admission.limit, !spawnQueue.isEmpty {
            activeSpawns += 1
            admitted += 1
            spawnQueue.removeFirst().continuation.resume(returning: true)
        }
        if admitted > 0 { announceQueue(from: 0) }
    }

    /// Tells each start from position `index` on where it stands in the queue (progress events).
    func announceQueue(from index: Int) {
        guard index < spawnQueue.count else { return }
        let perStart = admission.recent ?? averageSpawnSeconds
        for position in index..<spawnQueue.count {
            record(spawnQueue[position].key, Self.queueEvent(ahead: position, running: activeSpawns, limit: admission.limit, secondsPerStart: perStart))
        }
    }

    /// The progress event of a start with `ahead` starts before it in the queue.
    static func queueEvent(ahead: Int, running: Int, limit: Int, secondsPerStart: Double) -> ProgressEvent {
        let waves = Double(ahead / max(1, limit) + 1)
        let eta = Int((waves * secondsPerStart).rounded(.up))
        let place = ahead == 0 ? "you are next" : "\(ahead) \(ahead == 1 ? "start" : "starts") ahead of you"
        return ProgressEvent(
            progress: 5,
            message: "Waiting to start: \(running) \(running == 1 ? "server is" : "servers are") starting now and \(place) (about \(max(1, eta)) s)")
    }

    /// Starts waiting in the spawn queue (for metrics).
    public var queuedSpawns: Int { spawnQueue.count }

    /// Starts holding a spawn slot now (for metrics).
    public var spawnsInProgress: Int { activeSpawns }

    // MARK: - Stop and suspend

    func runStop(_ key: Key, remove: Bool) async {
        defer { changed(key) }
        defer { servers[key]?.busy = false }
        guard let server = servers[key] else { return }
        let began = ContinuousClock.now
        var failure: String?
        if let state = server.backendState {
            do { try await backend.stop(state) } catch { failure = "\(error)" }
        }
        metrics.recordStop(failure == nil ? .success : .failure, seconds: (ContinuousClock.now - began).seconds)
        if let failure {
            await stopFailed(key, reason: failure)
            return
        }
        await revokeToken(key)
        guard var after = servers[key] else { return }
        _ = after.lifecycle.event(.stopped)
        after.backendState = nil
        after.endpoint = nil
        after.secret = nil
        after.started = nil
        after.stopTask = nil
        servers[key] = after
        logger.info("server stopped", metadata: ["atrium.user": "\(key.user)", "atrium.server": "\(key.server)"])
        if remove {
            try? await removeStopped(key)
        } else {
            try? await persist(key, phase: .stopped)
        }
    }

    func runSuspend(_ key: Key) async {
        defer { changed(key) }
        defer { servers[key]?.busy = false }
        guard let server = servers[key] else { return }
        do {
            if let state = server.backendState {
                let kept = try await backend.suspend(state)
                servers[key]?.backendState = kept
            }
            guard var after = servers[key] else { return }
            _ = after.lifecycle.event(.suspended)
            after.stopTask = nil
            servers[key] = after
            logger.info("server suspended", metadata: ["atrium.user": "\(key.user)", "atrium.server": "\(key.server)"])
            try? await persist(key, phase: .suspended)
        } catch {
            await stopFailed(key, reason: "\(error)")
        }
    }

    /// The backend could not stop or suspend the server: it still runs, so it is running again
    /// (its route back, its token kept) and the caller hears why; a stop may be retried.
    func stopFailed(_ key: Key, reason: String) async {
        guard var after = servers[key] else { return }
        let action = after.lifecycle.event(.stopFailed(reason: reason))
        after.stopFailure = reason
        // Done: a task left here kept the next start "busy" until its slow-spawn timeout.
        after.stopTask = nil
        servers[key] = after
        logger.error("server failed to stop; it still runs", metadata: ["atrium.user": "\(key.user)", "atrium.server": "\(key.server)", "atrium.reason": "\(reason)"])
        if action == .publishRoute, let endpoint = after.endpoint {
            publishRoute(LiveRoute(user: key.user, userID: after.userID, server: key.server, endpoint: endpoint))
        }
        try? await persist(key, phase: .running)
    }

    /// Deletes a stopped server: the backend's leftovers, and the row of a named server.
    func removeStopped(_ key: Key) async throws {
        await afterPendingWrites(key)
        guard let user = try await store.user(named: key.user) else { return }
        let state = servers[key]?.backendState
        try await backend.remove(key.user, key.server, state)
        await revokeToken(key)
        removeRoute(key)
        // Forgotten only once the store agrees, so a waiter never sees it gone before the row is.
        defer { servers[key] = nil }
        if key.server.isEmpty {
            if var record = try await store.server(userID: user.id, name: "") {
                record.phase = .stopped
                record.state = .object([:])
                record.url = nil
                record.started = nil
                try await store.saveServer(record)
            }
        } else {
            try await store.deleteServer(userID: user.id, name: key.server)
        }
    }

    /// Deletes a stopped server and the user's stored files for it. Only when explicitly asked.
    public func deleteForever(user: String, serverName: String) async throws {
        let key = Key(user: user, server: serverName)
        if let server = servers[key], ![.stopped, .failed(reason: server.lastFailure ?? "")].contains(server.lifecycle.state),
            server.lifecycle.state != .suspended
        {
            throw SpawnError(.rejected, "\(describe(key)) must be stopped first")
        }
        let state = servers[key]?.backendState
        guard let owner = try await store.user(named: user) else { throw SpawnError(.notFound, "No such user: \(user)") }
        try await backend.deleteForever(user, owner.id, serverName, state)
        try await removeStopped(key)
    }

    func waitForStop(_ task: Task<Void, Never>, key: Key) async throws -> StopOutcome {
        await waitUntilSettled(key, timeout: settings.slowStopTimeout) { !$0.busy }
        // The state moves before the task's last store write: while the task is still at work
        // the stop is still pending, whatever the state says (a 204 must not run ahead of the
        // stored phase).
        if servers[key]?.busy == true { return .pending }
        switch servers[key]?.lifecycle.state {
        case .stopping?, .suspending?: return .pending
        case .running?:
            if let failure = servers[key]?.stopFailure {
                throw SpawnError(.backendFailed, "\(describe(key)) could not be stopped and still runs: \(failure)")
            }
            return .stopped
        default: return .stopped
        }
    }

    func revokeToken(_ key: Key) async {
        guard let id = servers[key]?.tokenID else { return }
        servers[key]?.tokenID = nil
        _ = try? await store.deleteToken(id: id, ofUser: key.user)
    }

    // MARK: - Store

    /// Writes the server's row with `phase`, after every write for `key` asked for before it.
    /// A caller and the task it launched both write (a stop writes `stopping`, its task
    /// `suspended`): without the order, the caller's write could land last and leave the row
    /// `stopping` while the API had already answered 204.
    func persist(_ key: Key, phase: ServerPhase) async throws {
        let previous = pendingWrites[key]
        let write = Task {
            _ = await previous?.result
            try await self.write(key, phase: phase)
        }
        pendingWrites[key] = write
        defer { if pendingWrites[key] == write { pendingWrites[key] = nil } }
        try await write.value
    }

    /// Waits for the writes for `key` asked for so far (before a write that bypasses `persist`).
    func afterPendingWrites(_ key: Key) async {
        _ = await pendingWrites[key]?.result
    }

    private func write(_ key: Key, phase: ServerPhase) async throws {
        // Waiters wake once the row is written, so an API answer never runs ahead of the store.
        defer { changed(key) }
        guard let server = servers[key] else { return }
        var stored = StoredState(backend: server.backendState, secret: server.secret, tokenID: server.tokenID, profile: server.profile)
        if phase == .failed { stored.failure = server.lastFailure }
        var record = try await store.server(userID: server.userID, name: key.server)
            ?? ServerRecord(userID: server.userID, userName: key.user, name: key.server)
        let previousPhase = record.phase
        record.phase = phase
        record.state = stored.json
        record.url = phase == .stopped ? nil : server.baseURL
        record.started = phase == .running ? server.started : (phase == .stopped ? nil : record.started)
        record.userOptions = server.userOptions
        // As JupyterHub: a server that becomes ready or stops is active now; a start is its
        // user's activity too. (A stop is not: the idle culler's own stops would make the user
        // look active and put off `cull_users`.)
        if phase == .running || phase == .stopped, previousPhase != phase {
            let now = Date()
            if record.lastActivity.map({ $0 < now }) ?? true { record.lastActivity = now }
            if phase == .running { try await store.recordUserActivity(key.user, at: now) }
        }
        try await store.saveServer(record)
    }
}

func withTimeout<T: Sendable>(_ limit: Duration, what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        guard let first = try await group.next() else { throw CancellationError() }
        group.cancelAll()
        guard let value = first else { throw SpawnError(.backendFailed, "The \(what) took longer than \(limit)") }
        return value
    }
}
