import AtriumAuth
import AtriumProxy
import AtriumSpawn
import AtriumStore
import Foundation
import Synchronization
import Logging

/// Settings of the HTTP layer, taken from the hub's configuration.
public struct HTTPSettings: Sendable {
    /// When to mark cookies `Secure`.
    public enum CookieSecurity: String, Sendable, CaseIterable {
        /// When the request came over https (directly or per `X-Forwarded-Proto`).
        case auto
        case always
        case never
    }

    /// Key for signing session cookies (at least 32 bytes).
    public var cookieSecret: [UInt8]
    /// How long a browser session lasts. Default: 14 days.
    public var sessionLifetime: Duration = .seconds(14 * 24 * 3600)
    /// `Secure` flag policy. Default: auto.
    public var cookieSecurity: CookieSecurity = .auto
    /// Page size when a paginating client gives no `limit`. Default: 50 (JupyterHub's).
    public var pageDefaultLimit = 50
    /// Largest page a paginating client gets. Default: 200 (JupyterHub's).
    public var pageMaxLimit = 200
    /// The hub's own version.
    public var atriumVersion: String
    /// The JupyterHub API level implemented (clients gate features on it).
    public var apiVersion: String
    /// Shown on pages.
    public var hubName = "Atrium"
    /// Whether `/hub/metrics` needs a credential with `read:metrics` (JupyterHub's
    /// `authenticate_prometheus`). Default: true.
    public var metricsRequireAuthentication = true

    public init(cookieSecret: [UInt8], atriumVersion: String, apiVersion: String) {
        self.cookieSecret = cookieSecret
        self.atriumVersion = atriumVersion
        self.apiVersion = apiVersion
    }
}

/// Everything the routes need, built once by the composition root.
public struct Hub: Sendable {
    public let store: Store
    public let authenticator: Authenticator
    public let settings: HTTPSettings
    public let logger: Logger
    /// Runs workspaces; `nil` on a hub without a backend (some tests).
    public let manager: ServerManager?
    /// What `POST /hub/api/shutdown` pulls.
    public let shutdown = ShutdownSwitch()
    /// Named servers, profiles: what the pages offer.
    public let spawnSettings: SpawnSettings
    /// The hub's metrics: the manager's when there is one (spawns are recorded there), else
    /// the hub's own.
    public let metrics: HubMetrics
    /// The proxy's counters, shown by `/hub/metrics`; `nil` on a hub without the proxy.
    public let proxyStatistics: ProxyStatistics?
    /// Activity not yet in the store: the proxy's, and users' uses of the hub between the
    /// store's once-a-minute writes. Flushed before `last_activity` is answered.
    public let activity: ActivityRecorder
    let sessions: SessionCodec
    let pages: PageRenderer

    public init(
        store: Store, authenticator: Authenticator, settings: HTTPSettings, manager: ServerManager? = nil,
        spawnSettings: SpawnSettings = SpawnSettings(), proxyStatistics: ProxyStatistics? = nil,
        activity: ActivityRecorder = ActivityRecorder(), logger: Logger
    ) throws {
        self.store = store
        self.activity = activity
        self.manager = manager
        self.metrics = manager?.metrics ?? HubMetrics()
        self.proxyStatistics = proxyStatistics
        self.spawnSettings = spawnSettings
        self.authenticator = authenticator
        self.settings = settings
        self.logger = logger
        self.sessions = SessionCodec(secret: settings.cookieSecret, lifetime: settings.sessionLifetime.seconds)
        self.pages = try PageRenderer(hubName: settings.hubName)
    }
}

/// How `POST /hub/api/shutdown` stops the hub: the composition root installs the action (a
/// graceful shutdown of its service group) once the hub runs.
public final class ShutdownSwitch: Sendable {
    private let action = Mutex<(@Sendable () -> Void)?>(nil)

    public init() {}

    public func install(_ body: @escaping @Sendable () -> Void) {
        action.withLock { $0 = body }
    }

    /// Whether a shutdown could be started (false before `install`).
    func trigger() -> Bool {
        guard let body = action.withLock({ $0 }) else { return false }
        body()
        return true
    }
}
