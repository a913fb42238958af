import AtriumModel
import Testing

@Suite("Server lifecycle")
struct ServerLifecycleTests {
    @Test("start, ready, stop, stopped")
    func happyPath() {
        var machine = ServerLifecycle()
        #expect(machine.command(.start) == .success(.startBackend))
        #expect(machine.pending == "spawn")
        #expect(machine.event(.ready) == .publishRoute)
        #expect(machine.state == .running)
        #expect(machine.pending == nil)
        #expect(machine.command(.stop) == .success(.stopBackend))
        #expect(machine.pending == "stop")
        #expect(machine.event(.stopped) == ServerLifecycle.Action.none)
        #expect(machine.state == .stopped)
    }

    @Test("a stop during a start cancels the start; the late ready is ignored")
    func stopDuringStart() {
        var machine = ServerLifecycle()
        _ = machine.command(.start)
        #expect(machine.command(.stop) == .success(.cancelStartAndStop))
        #expect(machine.event(.ready) == ServerLifecycle.Action.none)
        #expect(machine.state == .stopping)
        _ = machine.event(.stopped)
        #expect(machine.state == .stopped)
    }

    @Test("conflicting commands are rejected with JupyterHub's reasons", arguments: [
        (ServerLifecycle.State.running, ServerLifecycle.Command.start, ServerLifecycle.Rejection.Reason.alreadyRunning),
        (.starting, .start, .startPending),
        (.stopping, .start, .stopPending),
        (.stopping, .stop, .stopPending),
        (.stopped, .stop, .notRunning),
        (.stopped, .suspend, .notRunning),
        (.suspending, .suspend, .stopPending),
    ])
    func rejections(state: ServerLifecycle.State, command: ServerLifecycle.Command, reason: ServerLifecycle.Rejection.Reason) {
        var machine = ServerLifecycle(state: state)
        #expect(machine.command(command) == .failure(ServerLifecycle.Rejection(reason: reason)))
        #expect(machine.state == state)
    }

    @Test("suspend and resume")
    func suspendResume() {
        var machine = ServerLifecycle(state: .running)
        #expect(machine.command(.suspend) == .success(.suspendBackend))
        _ = machine.event(.suspended)
        #expect(machine.state == .suspended)
        #expect(machine.command(.suspend) == .success(ServerLifecycle.Action.none))
        #expect(machine.command(.start) == .success(.startBackend))
    }

    @Test("failures: a failed start can be retried; a crash takes the route down")
    func failures() {
        var machine = ServerLifecycle()
        _ = machine.command(.start)
        #expect(machine.event(.startFailed(reason: "boom")) == .cleanUpAfterFailure)
        #expect(machine.state == .failed(reason: "boom"))
        #expect(machine.command(.start) == .success(.startBackend))
        _ = machine.event(.ready)
        #expect(machine.event(.crashed(reason: "oom")) == .cleanUpAfterFailure)
        #expect(machine.command(.stop) == .success(.stopBackend))
    }
}
