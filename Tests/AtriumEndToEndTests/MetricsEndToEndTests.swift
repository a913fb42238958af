import AtriumTestSupport
import Foundation
import Testing

@Suite("Metrics, end to end")
struct MetricsEndToEndTests {
    @Test("requests proxied to /user/alice/ raise atrium_proxy_requests_total on /hub/metrics of the real binary")
    func proxiedRequestsAreCounted() async throws {
        let w = try await WorkspaceHub.start()
        defer { w.cleanUp() }
        let created = try await w.api.call(.POST, "/users", json: ["usernames": ["alice"]])
        #expect(created.status == 201, "\(created.text)")
        let start = try await w.api.call(.POST, "/users/alice/server")
        #expect(start.status == 201, "\(start.text)")

        let hub = API(base: w.hub.baseURL, token: w.token)
        func scrape() async throws -> PrometheusExposition {
            let reply = try await hub.call(.GET, "/hub/metrics")
            #expect(reply.status == 200, "\(reply.text)")
            #expect(reply.headers["Content-Type"].first == "text/plain; version=0.0.4; charset=utf-8")
            return try PrometheusExposition(parsing: reply.text)
        }
        #expect(try await API(base: w.hub.baseURL).call(.GET, "/hub/metrics").status == 403)

        let before = try await scrape()
        let requestsBefore = before.value("atrium_proxy_requests_total") ?? 0
        #expect(before.value("jupyterhub_running_servers") == 1)
        #expect(before.value("jupyterhub_server_spawn_duration_seconds_count", ["status": "success", "reason": ""]) == 1)
        #expect(before.value("jupyterhub_hub_startup_duration_seconds_count") == 1)

        for _ in 0..<3 {
            let page = try await hub.call(.GET, "/user/alice/")
            #expect(page.status == 200)
            #expect(page.text == "atrium workspace for alice\n")
        }

        let after = try await scrape()
        let requestsAfter = try #require(after.value("atrium_proxy_requests_total"))
        #expect(requestsAfter >= requestsBefore + 3)
        #expect((after.value("atrium_proxy_responses_total", ["code": "2xx"]) ?? 0) >= 3)
        #expect((after.value("atrium_proxy_bytes_total", ["direction": "response"]) ?? 0) >= Double(3 * "atrium workspace for alice\n".utf8.count))
        // The hub's own routes are timed by route pattern; the proxied pages are not among them.
        let handlers = Set(after.matching("jupyterhub_request_duration_seconds_count").compactMap { $0.labels["handler"] })
        #expect(handlers.contains { $0.hasSuffix("/hub/metrics") }, "\(handlers)")
        #expect(!handlers.contains { $0.hasPrefix("/user/alice") }, "\(handlers)")
    }
}
