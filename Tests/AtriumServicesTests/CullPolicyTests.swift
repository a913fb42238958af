import AtriumModel
import AtriumServices
import Foundation
import Testing

/// Every rule of the culler's decisions, as pure functions of a snapshot and a time.
@Suite("Cull policy")
struct CullPolicyTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    func at(_ seconds: Double) -> Date { t0.addingTimeInterval(seconds) }

    func policy(_ configure: (inout CullerSettings) -> Void = { _ in }) -> CullPolicy {
        var settings = CullerSettings()
        configure(&settings)
        return CullPolicy(settings: settings)
    }

    func running(_ server: String = "", lastActivity: Double? = nil, groups: [String] = [], profile: String? = nil) -> CullCandidate {
        CullCandidate(
            user: "ann", groups: groups, server: server, state: .running, started: t0, requested: t0, lastActivity: lastActivity.map(at),
            profile: profile)
    }

    @Test("the defaults are jupyterhub-idle-culler's: off, 600 s, every 300 s, stop, servers only")
    func defaults() {
        let settings = CullerSettings()
        #expect(!settings.enabled)
        #expect(settings.timeout == .seconds(600))
        #expect(settings.interval == .seconds(300))
        #expect(settings.maxAge == nil)
        #expect(!settings.cullUsers && settings.cullAdminUsers && !settings.removeNamedServers)
        #expect(settings.cullDefaultServers && settings.cullNamedServers)
        #expect(settings.concurrency == 10)
        #expect(settings.action == .stop)
    }

    @Test("an idle server is culled at the timeout, not a second before", arguments: [(599.0, false), (600.0, true), (3600.0, true)])
    func idleAtTimeout(elapsed: Double, culled: Bool) {
        let decision = policy().decide(running(lastActivity: 0), now: at(elapsed))
        #expect((decision != nil) == culled)
        if culled {
            #expect(decision?.action == .stop)
            #expect(decision?.reason.label == "idle")
        }
    }

    @Test("activity inside the window keeps a server, however old it is")
    func recentActivityKeeps() {
        #expect(policy().decide(running(lastActivity: 86_000), now: at(86_400)) == nil)
        #expect(policy().decide(running(lastActivity: 86_000), now: at(86_600)) != nil)
    }

    @Test("activity from before the server started does not count: inactivity starts at the start")
    func staleActivityFromAPreviousRun() {
        let server = CullCandidate(user: "ann", state: .running, started: t0, lastActivity: at(-7200))
        #expect(policy().decide(server, now: at(300)) == nil)
        #expect(policy().decide(server, now: at(600))?.reason == .idle(inactive: .seconds(600), timeout: .seconds(600)))
    }

    @Test("a server with no activity at all counts from its start")
    func noActivity() {
        #expect(policy().decide(running(), now: at(599)) == nil)
        #expect(policy().decide(running(), now: at(600)) != nil)
    }

    @Test("max_age culls an active server once it is old enough; without it, never")
    func maxAge() {
        let busy = running(lastActivity: 7190)
        #expect(policy().decide(busy, now: at(7200)) == nil)
        let withMax = policy { $0.maxAge = .seconds(7200) }
        #expect(withMax.decide(busy, now: at(7199)) == nil)
        #expect(withMax.decide(busy, now: at(7200))?.reason == .maxAge(age: .seconds(7200), maxAge: .seconds(7200)))
    }

    @Test("suspend instead of stop when configured")
    func suspendAction() {
        #expect(policy { $0.action = .suspend }.decide(running(lastActivity: 0), now: at(600))?.action == .suspend)
    }

    @Test("named servers are removed with remove_named_servers; default servers are only stopped")
    func removeNamed() {
        let p = policy { $0.removeNamedServers = true }
        #expect(p.decide(running("lab", lastActivity: 0), now: at(600))?.action == .remove)
        #expect(p.decide(running("", lastActivity: 0), now: at(600))?.action == .stop)
        #expect(policy().decide(running("lab", lastActivity: 0), now: at(600))?.action == .stop)
    }

    @Test("cull_default_servers and cull_named_servers leave those servers alone")
    func whichServers() {
        let noDefault = policy { $0.cullDefaultServers = false }
        #expect(noDefault.decide(running("", lastActivity: 0), now: at(9999)) == nil)
        #expect(noDefault.decide(running("lab", lastActivity: 0), now: at(9999)) != nil)
        let noNamed = policy { $0.cullNamedServers = false }
        #expect(noNamed.decide(running("lab", lastActivity: 0), now: at(9999)) == nil)
        #expect(noNamed.decide(running("", lastActivity: 0), now: at(9999)) != nil)
    }

    @Test("a start pending longer than pending_timeout is cancelled; without the setting it waits")
    func stuckPending() {
        let pending = CullCandidate(user: "ann", state: .starting, requested: t0)
        #expect(policy().decide(pending, now: at(86_400)) == nil)
        let p = policy { $0.pendingTimeout = .seconds(300) }
        #expect(p.decide(pending, now: at(299)) == nil)
        let decision = p.decide(pending, now: at(300))
        #expect(decision?.action == .stop)
        #expect(decision?.reason.label == "stuck_pending")
    }

    @Test("servers stopping, suspended, suspending or failed are never culled", arguments: [
        ServerLifecycle.State.stopping, .suspending, .suspended, .failed(reason: "OOMKilled"), .stopped,
    ])
    func otherStates(state: ServerLifecycle.State) {
        let server = CullCandidate(user: "ann", state: state, started: t0, requested: t0, lastActivity: t0)
        #expect(policy { $0.pendingTimeout = .seconds(1); $0.maxAge = .seconds(1) }.decide(server, now: at(99_999)) == nil)
    }

    @Test("a group rule gives its members another timeout; timeout 0 means never idle-culled")
    func groupRules() {
        let p = policy {
            $0.rules = [CullRule(group: "staff", timeout: .seconds(7200)), CullRule(group: "exam", timeout: .zero)]
        }
        #expect(p.decide(running(lastActivity: 0, groups: ["staff"]), now: at(3600)) == nil)
        #expect(p.decide(running(lastActivity: 0, groups: ["staff"]), now: at(7200))?.reason == .idle(inactive: .seconds(7200), timeout: .seconds(7200)))
        #expect(p.decide(running(lastActivity: 0, groups: ["exam"]), now: at(999_999)) == nil)
        #expect(p.decide(running(lastActivity: 0, groups: ["students"]), now: at(600)) != nil)
    }

    @Test("a profile rule applies to servers started with that profile; the first matching rule wins")
    func profileRules() {
        let p = policy {
            $0.rules = [
                CullRule(group: "staff", profile: "gpu", timeout: .seconds(3600)),
                CullRule(profile: "gpu", timeout: .seconds(120), maxAge: .seconds(1800)),
                CullRule(group: "staff", timeout: .seconds(7200)),
            ]
        }
        #expect(p.decide(running(lastActivity: 0, profile: "gpu"), now: at(120))?.reason.label == "idle")
        #expect(p.decide(running(lastActivity: 1790, profile: "gpu"), now: at(1800))?.reason.label == "max_age")
        #expect(p.decide(running(lastActivity: 0, groups: ["staff"], profile: "gpu"), now: at(1800)) == nil)
        #expect(p.decide(running(lastActivity: 0, groups: ["staff"], profile: "gpu"), now: at(3600)) != nil)
        #expect(p.decide(running(lastActivity: 0, groups: ["staff"], profile: "cpu"), now: at(3600)) == nil)
        #expect(p.decide(running(lastActivity: 0, profile: "cpu"), now: at(600)) != nil)
    }

    @Test("users are culled only with cull_users, when no server is left and they were idle for the timeout")
    func users() {
        let idle = UserCullCandidate(user: "ann", created: t0, lastActivity: at(100))
        #expect(policy().decide(idle, now: at(99_999)) == nil)
        let p = policy { $0.cullUsers = true }
        #expect(p.decide(idle, now: at(699)) == nil)
        #expect(p.decide(idle, now: at(700))?.action == .deleteUser)
        var busy = idle
        busy.activeServers = 1
        #expect(p.decide(busy, now: at(99_999)) == nil)
        let never = UserCullCandidate(user: "new", created: t0)
        #expect(p.decide(never, now: at(600))?.reason == .idle(inactive: .seconds(600), timeout: .seconds(600)))
    }

    @Test("admins are culled with cull_users unless cull_admin_users is off")
    func adminUsers() {
        let admin = UserCullCandidate(user: "root", admin: true, created: t0)
        #expect(policy { $0.cullUsers = true }.decide(admin, now: at(600)) != nil)
        #expect(policy { $0.cullUsers = true; $0.cullAdminUsers = false }.decide(admin, now: at(99_999)) == nil)
    }

    @Test("max_age deletes old users even when active (only with cull_users)")
    func userMaxAge() {
        let active = UserCullCandidate(user: "ann", created: t0, lastActivity: at(3590))
        let p = policy { $0.cullUsers = true; $0.maxAge = .seconds(3600) }
        #expect(p.decide(active, now: at(3599)) == nil)
        #expect(p.decide(active, now: at(3600))?.reason == .maxAge(age: .seconds(3600), maxAge: .seconds(3600)))
    }

    @Test("reasons read well in logs")
    func reasonText() {
        #expect(CullReason.idle(inactive: .seconds(723), timeout: .seconds(600)).description == "inactive for 12m 3s (timeout 10m)")
        #expect(CullReason.maxAge(age: .seconds(90_000), maxAge: .seconds(86_400)).description == "running for 1d 1h (max age 1d)")
    }
}
