import Testing

@testable import AtriumSpawn

/// The adaptive admission of starts, as pure arithmetic: no clock, no processes.
@Suite("Spawn admission")
struct SpawnAdmissionTests {
    @Test("starts at the number of cores and stays there while starts compete for them")
    func contention() {
        var admission = SpawnAdmission(cores: 2, ceiling: 100)
        #expect(admission.limit == 2)
        // Alone a start takes 2 s; with the machine shared it takes longer and longer.
        admission.ready(after: 2, waiting: 50)
        #expect(admission.limit == 3)  // as fast as the baseline: room for one more
        admission.ready(after: 3.5, waiting: 50)
        admission.ready(after: 5, waiting: 50)
        admission.ready(after: 6, waiting: 50)
        #expect(admission.limit == 2, "slower than twice the baseline: back to the floor, \(admission)")
        admission.ready(after: 9, waiting: 50)
        #expect(admission.limit == 2, "never below the cores")
    }

    @Test("a failed start halves the limit, down to the cores; slow starts never raise the baseline")
    func failures() {
        var admission = SpawnAdmission(cores: 2, ceiling: 100)
        for _ in 0..<10 { admission.ready(after: 1, waiting: 50) }
        #expect(admission.limit == 12)
        admission.failed()
        #expect(admission.limit == 6)
        admission.failed()
        admission.failed()
        #expect(admission.limit == 2)
        for _ in 0..<50 { admission.ready(after: 5, waiting: 50) }
        #expect(admission.baseline == 1)
        #expect(admission.limit == 2, "slow starts keep it at the floor")
    }

    @Test("grows towards the ceiling when starts do not slow each other down (a cluster, the simulated backend)")
    func noContention() {
        var admission = SpawnAdmission(cores: 2, ceiling: 10)
        for _ in 0..<50 { admission.ready(after: 0.5, waiting: 100) }
        #expect(admission.limit == 10)
    }

    @Test("does not grow without a queue, and a fixed limit never moves")
    func fixedAndIdle() {
        var idle = SpawnAdmission(cores: 4, ceiling: 100)
        for _ in 0..<10 { idle.ready(after: 1, waiting: 0) }
        #expect(idle.limit == 4)
        var fixed = SpawnAdmission.fixed(7)
        for _ in 0..<10 { fixed.ready(after: 0.1, waiting: 100) }
        #expect(fixed.limit == 7)
        for _ in 0..<10 { fixed.ready(after: 100, waiting: 100) }
        #expect(fixed.limit == 7)
        #expect(SpawnAdmission(cores: 8, ceiling: 3).limit == 3, "a ceiling below the cores wins")
    }

    @Test("nonsense figures change nothing")
    func nonsense() {
        var admission = SpawnAdmission(cores: 2, ceiling: 100)
        admission.ready(after: -1, waiting: 10)
        admission.ready(after: .nan, waiting: 10)
        admission.ready(after: .infinity, waiting: 10)
        #expect(admission.limit == 2)
        #expect(admission.baseline == nil)
    }

    @Test("a queued start is told its place and a time", arguments: [
        (0, 2, 2, 3.0, "2 servers are starting now and you are next (about 3 s)"),
        (1, 2, 2, 3.0, "1 start ahead of you (about 3 s)"),
        (5, 2, 2, 3.0, "5 starts ahead of you (about 9 s)"),
        (0, 1, 1, 0.2, "1 server is starting now and you are next (about 1 s)"),
    ] as [(Int, Int, Int, Double, String)])
    func queueMessage(ahead: Int, running: Int, limit: Int, seconds: Double, expected: String) {
        let event = ServerManager.queueEvent(ahead: ahead, running: running, limit: limit, secondsPerStart: seconds)
        #expect(event.message.hasPrefix("Waiting to start: "))
        #expect(event.message.hasSuffix(expected), "\(event.message)")
        #expect(!event.ready && !event.failed)
    }
}
