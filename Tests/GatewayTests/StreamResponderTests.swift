import NIOCore
import NIOHTTP1
import SwitchboardProtos
import SwitchboardRPC
import Testing

@testable import SwitchboardGateway

/// A response writer that records the parts it is given; the head waits until the test lets it finish.
private actor Recorder {
    var parts: [String] = []
    private var headStarted = false
    private var headGate: CheckedContinuation<Void, Never>?
    private var startWaiters: [CheckedContinuation<Void, Never>] = []

    func head() async {
        headStarted = true
        for waiter in startWaiters { waiter.resume() }
        startWaiters = []
        await withCheckedContinuation { headGate = $0 }
        parts.append("head")
    }

    func append(_ part: String) { parts.append(part) }

    func untilHeadStarted() async {
        if headStarted { return }
        await withCheckedContinuation { startWaiters.append($0) }
    }

    func releaseHead() {
        headGate?.resume()
        headGate = nil
    }
}

private struct RecordingWriter: HTTPResponseWriter {
    let recorder: Recorder
    func head(_ status: HTTPResponseStatus, _ headers: HTTPHeaders) async throws { await recorder.head() }
    func body(_ bytes: ByteBuffer) async throws { await recorder.append("body " + String(buffer: bytes)) }
    func end() async throws { await recorder.append("end") }
    func respond(_ status: HTTPResponseStatus, _ headers: HTTPHeaders, _ body: ByteBuffer) async throws { await recorder.append("respond") }
}

/// The order of a server stream's parts when several tasks write them (the head's timer, the messages, the error).
@Suite("Gateway stream responses")
struct StreamResponderTests {
    /// A responder whose head is being written (and waits for the test), and the task writing it.
    private func headPending(sse: Bool) async -> (Recorder, StreamResponder, Task<Void, any Error>) {
        let recorder = Recorder()
        let responder = StreamResponder(writer: RecordingWriter(recorder: recorder), headers: [:], sse: sse)
        let head = Task { try await responder.sendHead() }
        await recorder.untilHeadStarted()
        return (recorder, responder, head)
    }

    @Test("a message that comes while the head is being written is written after it, then the end")
    func messageWaitsForHead() async throws {
        let (recorder, responder, head) = await headPending(sse: false)
        let message = Task { try await responder.send(.object(["n": .number(1)])) }
        // The message has reached the responder (it holds the head as sent) but must not be written yet.
        while !(await responder.queuedWrites >= 2) { await Task.yield() }
        #expect(await recorder.parts.isEmpty)
        await recorder.releaseHead()
        try await head.value
        try await message.value
        try await responder.finish()
        #expect(await recorder.parts == ["head", #"body {"result":{"n":1}}"# + "\n", "end"])
    }

    @Test("a head whose caller is cancelled is still written before the error line that follows it")
    func cancelledHeadStillPrecedesError() async throws {
        let (recorder, responder, head) = await headPending(sse: true)
        head.cancel()
        let failure = Task { try await responder.fail(RPCError(code: .unavailable, message: "upstream gone")) }
        while !(await responder.queuedWrites >= 2) { await Task.yield() }
        #expect(await recorder.parts.isEmpty)
        await recorder.releaseHead()
        try await failure.value
        let parts = await recorder.parts
        #expect(parts.count == 3 && parts[0] == "head" && parts[1].hasPrefix("body event: error") && parts[2] == "end", "\(parts)")
    }
}
