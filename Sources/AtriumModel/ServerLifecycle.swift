/// The lifecycle of one workspace server as a state machine. It decides; it does no I/O and
/// reads no clock. The `ServerManager` feeds it commands (from the API) and events (from the
/// backend and its own timers) and carries out the actions it returns.
///
/// A stop during a start is a modelled transition: the start is cancelled, then the stop runs.
public struct ServerLifecycle: Sendable, Equatable {
    /// Where a server is.
    public enum State: Sendable, Equatable {
        case stopped
        /// The backend is starting it (or resuming it); the route is not live yet.
        case starting
        /// Ready: the readiness check passed and the route is live.
        case running
        case suspending
        /// Processes stopped, workspace and configuration kept: resume is fast.
        case suspended
        case stopping
        /// The start or the running server failed, with the reason shown to the user.
        case failed(reason: String)
    }

    /// What the API asks for.
    public enum Command: Sendable, Equatable {
        case start
        case stop
        case suspend
    }

    /// What happened, reported by the manager.
    public enum Event: Sendable, Equatable {
        /// The backend reports the server ready (readiness check passed).
        case ready
        /// The start failed or timed out.
        case startFailed(reason: String)
        /// A running server died or stopped answering.
        case crashed(reason: String)
        /// The backend finished stopping.
        case stopped
        /// The backend finished suspending.
        case suspended
        /// The stop or suspend failed; the server is in an unknown state.
        case stopFailed(reason: String)
    }

    /// What the manager must do next.
    public enum Action: Sendable, Equatable {
        case none
        /// Ask the backend to start (or resume); on success report `.ready`.
        case startBackend
        /// Cancel the running start, then stop the backend.
        case cancelStartAndStop
        /// Cancel the running start, then suspend the backend.
        case cancelStartAndSuspend
        /// Take the route down and stop the backend.
        case stopBackend
        /// Take the route down and suspend the backend.
        case suspendBackend
        /// Put the route up: the server is ready.
        case publishRoute
        /// Take the route down after a failure (the backend is asked to stop leftovers).
        case cleanUpAfterFailure
    }

    /// A command that makes no sense now; maps to HTTP 400 as JupyterHub answers.
    public struct Rejection: Error, Sendable, Equatable, CustomStringConvertible {
        public enum Reason: String, Sendable, Equatable {
            case alreadyRunning = "already running"
            case startPending = "pending spawn"
            case stopPending = "pending stop"
            case notRunning = "not running"
        }

        public let reason: Reason

        public init(reason: Reason) {
            self.reason = reason
        }

        public var description: String { reason.rawValue }
    }

    public private(set) var state: State

    public init(state: State = .stopped) {
        self.state = state
    }

    /// Whether a start or stop is in progress (JupyterHub's `pending`).
    public var pending: String? {
        switch state {
        case .starting: "spawn"
        case .stopping, .suspending: "stop"
        default: nil
        }
    }

    /// Applies a command, or rejects it without changing anything.
    public mutating func command(_ command: Command) -> Result<Action, Rejection> {
        switch (command, state) {
        case (.start, .stopped), (.start, .suspended), (.start, .failed):
            state = .starting
            return .success(.startBackend)
        case (.start, .running):
            return .failure(Rejection(reason: .alreadyRunning))
        case (.start, .starting):
            return .failure(Rejection(reason: .startPending))
        case (.start, .stopping), (.start, .suspending):
            return .failure(Rejection(reason: .stopPending))

        case (.stop, .starting):
            state = .stopping
            return .success(.cancelStartAndStop)
        case (.stop, .running), (.stop, .suspended), (.stop, .failed):
            state = .stopping
            return .success(.stopBackend)
        case (.stop, .stopping), (.stop, .suspending):
            return .failure(Rejection(reason: .stopPending))
        case (.stop, .stopped):
            return .failure(Rejection(reason: .notRunning))

        case (.suspend, .starting):
            state = .suspending
            return .success(.cancelStartAndSuspend)
        case (.suspend, .running):
            state = .suspending
            return .success(.suspendBackend)
        case (.suspend, .suspended):
            return .success(.none)
        case (.suspend, .stopping), (.suspend, .suspending):
            return .failure(Rejection(reason: .stopPending))
        case (.suspend, .stopped), (.suspend, .failed):
            return .failure(Rejection(reason: .notRunning))
        }
    }

    /// Applies an event. Events that arrive late (a `.ready` after a stop was asked for) are
    /// ignored: the later command wins.
    public mutating func event(_ event: Event) -> Action {
        switch (event, state) {
        case (.ready, .starting):
            state = .running
            return .publishRoute
        case (.startFailed(let reason), .starting):
            state = .failed(reason: reason)
            return .cleanUpAfterFailure
        case (.crashed(let reason), .running), (.crashed(let reason), .starting):
            state = .failed(reason: reason)
            return .cleanUpAfterFailure
        case (.stopped, .stopping), (.stopped, .suspending), (.stopped, .running), (.stopped, .failed), (.stopped, .suspended):
            state = .stopped
            return .none
        case (.suspended, .suspending):
            state = .suspended
            return .none
        case (.stopFailed, .stopping), (.stopFailed, .suspending):
            // The backend could not stop it: it still runs (and costs), so it is running again,
            // reachable, and a stop may be retried; never "stopped" or "failed" while it runs.
            state = .running
            return .publishRoute
        default:
            return .none
        }
    }
}
