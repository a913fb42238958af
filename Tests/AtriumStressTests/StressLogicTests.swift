import AtriumStress
import Foundation
import Testing

@Suite("Stress tool: pure logic")
struct StressLogicTests {
    @Test("percentiles interpolate between the closest ranks, as numpy does")
    func percentiles() throws {
        let values = (1...100).map(Double.init)
        #expect(Statistics.percentile(values, 50) == 50.5)
        #expect(Statistics.percentile(values, 0) == 1)
        #expect(Statistics.percentile(values, 100) == 100)
        #expect(try #require(Statistics.percentile(values, 95)) - 95.05 < 1e-9)
        #expect(try #require(Statistics.percentile(values, 99)) - 99.01 < 1e-9)
        #expect(Statistics.percentile([7], 99) == 7)
        #expect(Statistics.percentile([], 50) == nil)
        // Order of the input does not matter.
        #expect(Statistics.percentile([3, 1, 2], 50) == 2)
        #expect(Statistics.percentile([1, 2, 3, 4], 50) == 2.5)
    }

    @Test("latency summary in milliseconds")
    func latencySummary() throws {
        let summary = try #require(LatencySummary(seconds: [0.010, 0.020, 0.030, 0.040, 1.0]))
        #expect(summary.p50 == 30)
        #expect(summary.max == 1000)
        #expect(summary.mean == 220)
        #expect(LatencySummary(seconds: []) == nil)
    }

    @Test("Retry-After as seconds or an HTTP date", arguments: [
        ("5", 5.0), ("0", 0.0), (" 12 ", 12.0), ("1.5", 1.5),
    ])
    func retryAfterSeconds(value: String, seconds: Double) {
        #expect(RetryPolicy.parseRetryAfter(value) == .milliseconds(Int64(seconds * 1000)))
    }

    @Test("Retry-After: dates, garbage and absence")
    func retryAfterOther() {
        let now = Date(timeIntervalSince1970: 1_445_412_470)  // 2015-10-21 07:27:50 GMT
        #expect(RetryPolicy.parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", now: now) == .seconds(10))
        #expect(RetryPolicy.parseRetryAfter("Wed, 21 Oct 2015 07:20:00 GMT", now: now) == .zero)
        #expect(RetryPolicy.parseRetryAfter("soon") == nil)
        #expect(RetryPolicy.parseRetryAfter("-3") == nil)
        #expect(RetryPolicy.parseRetryAfter("") == nil)
        #expect(RetryPolicy.parseRetryAfter(nil) == nil)
    }

    @Test("backoff doubles, honours Retry-After, and is capped")
    func backoff() {
        let policy = RetryPolicy(maxRetries: 3, baseDelay: .milliseconds(500), maxDelay: .seconds(10))
        #expect(policy.delay(attempt: 0) == .milliseconds(500))
        #expect(policy.delay(attempt: 1) == .seconds(1))
        #expect(policy.delay(attempt: 3) == .seconds(4))
        #expect(policy.delay(attempt: 10) == .seconds(10))
        #expect(policy.delay(attempt: 0, retryAfter: .seconds(3)) == .seconds(3))
        #expect(policy.delay(attempt: 0, retryAfter: .seconds(300)) == .seconds(10))
        // Jitter lengthens by at most a fifth.
        #expect(policy.delay(attempt: 1, jitter: 0.999) <= .milliseconds(1200))
        #expect(policy.delay(attempt: 1, jitter: 0.999) > .seconds(1))
        // Capped waits are spread over the cap's last fifth, not all equal (no lock-step waves).
        let capped = (0..<5).map { policy.delay(attempt: 0, retryAfter: .seconds(45), jitter: Double($0) / 5) }
        #expect(Set(capped).count == 5)
        #expect(capped.allSatisfy { $0 >= .seconds(8) && $0 <= .seconds(10) })
        // By default JupyterHub's 30-60 s Retry-After is honoured as given.
        #expect(RetryPolicy().delay(attempt: 0, retryAfter: .seconds(47)) == .seconds(47))
    }

    @Test("only 429, 503 and 504 are retried, a bounded number of times")
    func retriedStatuses() {
        let policy = RetryPolicy(maxRetries: 2)
        #expect(policy.shouldRetry(status: 429, attempt: 0))
        #expect(policy.shouldRetry(status: 503, attempt: 1))
        #expect(policy.shouldRetry(status: 504, attempt: 0))
        #expect(!policy.shouldRetry(status: 429, attempt: 2))
        for status in [200, 201, 400, 403, 404, 409, 500, 502] {
            #expect(!policy.shouldRetry(status: status, attempt: 0))
        }
    }

    @Test("names, and the next index after the highest existing one")
    func naming() {
        #expect(StressNames.name(7) == "hub-stress-test-7")
        #expect(StressNames.index(of: "hub-stress-test-12") == 12)
        for other in ["hub-stress-test-", "hub-stress-test-x", "hub-stress-test-01", "hub-stress-test-1a", "alice", "hub-stress-test", "hub-stress-test--1"] {
            #expect(StressNames.index(of: other) == nil, "\(other)")
        }
        #expect(StressNames.nextIndex(after: []) == 1)
        #expect(StressNames.nextIndex(after: ["alice", "hub-stress-test-3", "hub-stress-test-10", "hub-stress-test-2"]) == 11)
        #expect(StressNames.nextIndex(after: ["hub-stress-test-x"]) == 1)
        #expect(StressNames.isStressUser("hub-stress-test-x"))
        #expect(!StressNames.isStressUser("hub-stress-tester"))
    }

    @Test("batches continue after existing users and cut at the batch size")
    func batches() {
        let batches = StressNames.batches(count: 25, batchSize: 10, after: ["hub-stress-test-4"])
        #expect(batches.map(\.count) == [10, 10, 5])
        #expect(batches.first?.first == "hub-stress-test-5")
        #expect(batches.last?.last == "hub-stress-test-29")
        #expect(StressNames.batches(count: 0, batchSize: 10, after: []).isEmpty)
    }

    @Test("endpoint and token: options first, then the environment; missing ones name the variables")
    func target() throws {
        let environment = ["JUPYTERHUB_ENDPOINT": "http://hub:8000/hub/api", "JUPYTERHUB_API_TOKEN": "env-token"]
        #expect(try HubTarget.resolve(endpoint: nil, token: nil, environment: environment)
            == HubTarget(endpoint: "http://hub:8000/hub/api", token: "env-token"))
        #expect(try HubTarget.resolve(endpoint: "https://x/hub/api", token: "t", environment: environment)
            == HubTarget(endpoint: "https://x/hub/api", token: "t"))
        let noEndpoint = #expect(throws: StressError.self) { try HubTarget.resolve(endpoint: nil, token: "t", environment: [:]) }
        #expect(noEndpoint?.code == .badArguments)
        #expect(noEndpoint?.userMessage.contains("JUPYTERHUB_ENDPOINT") == true)
        let noToken = #expect(throws: StressError.self) { try HubTarget.resolve(endpoint: "http://h/hub/api", token: "", environment: [:]) }
        #expect(noToken?.userMessage.contains("JUPYTERHUB_API_TOKEN") == true)
        let badURL = #expect(throws: StressError.self) { try HubTarget.resolve(endpoint: "localhost:8000", token: "t", environment: [:]) }
        #expect(badURL?.userMessage.contains("http://") == true)
    }

    @Test("exit statuses: 0 success, 1 bad arguments (ArgumentParser's 64 too), 128 a failed run")
    func exitStatuses() {
        var report = StressReport(command: "stress-test", endpoint: "http://h", dryRun: false)
        #expect(ExitStatus.of(report) == .success)
        report.success = false
        #expect(ExitStatus.of(report).rawValue == 128)
        #expect(ExitStatus.of(StressError(.badArguments, "x")).rawValue == 1)
        #expect(ExitStatus.of(StressError(.unauthorized, "x")).rawValue == 128)
        #expect(ExitStatus.of(StressError(.unreachable, "x")).rawValue == 128)
        #expect(ExitStatus.forParser(64) == 1)
        #expect(ExitStatus.forParser(0) == 0)
        #expect(ExitStatus.forParser(1) == 1)
    }

    @Test("the report as JSON has snake_case keys and every phase's figures")
    func reportJSON() throws {
        var report = StressReport(command: "stress-test", endpoint: "http://h/hub/api", dryRun: false)
        let phase = PhaseRecorder("create-users")
        phase.request(seconds: 0.01, status: 201, willRetry: false)
        phase.request(seconds: 0.02, status: 429, willRetry: true)
        phase.request(seconds: 0, status: nil, failure: "timeout", willRetry: false)
        phase.succeeded(10)
        report.phases.append(phase.report())
        let object = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        #expect(object["dry_run"] as? Bool == false)
        let phases = try #require(object["phases"] as? [[String: Any]])
        #expect(phases.first?["operations"] as? Int == 10)
        #expect(phases.first?["requests"] as? Int == 3)
        #expect(phases.first?["retries"] as? Int == 1)
        #expect(phases.first?["errors"] as? [String: Int] == ["429": 1, "timeout": 1])
        #expect((phases.first?["latency_ms"] as? [String: Any])?["p50"] != nil)
        #expect(phases.first?["operations_per_second"] != nil)
        #expect(report.table().contains("create-users"))
    }
}
