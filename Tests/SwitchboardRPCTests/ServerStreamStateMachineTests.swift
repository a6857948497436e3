import Testing

@testable import SwitchboardHTTP2

/// The per-stream state machine, fed events without sockets or nghttp2.
@Suite("Server stream state machine")
struct ServerStreamStateMachineTests {
    @Test("a unary call: headers, one message, END_STREAM, response headers once, trailers, normal close")
    func unaryLifecycle() {
        var machine = ServerStreamStateMachine()
        #expect(machine.isReceivingHeaders)
        #expect(!machine.isReceivingMessages)
        let step1 = machine.callStarted()
        #expect(step1)
        #expect(machine.state == .open)
        machine.receivedData(10)
        machine.delivered(5)
        let step2 = machine.receivedEndStream()
        #expect(step2)
        #expect(machine.state == .halfClosed(requestCompleted: false))
        let step3 = machine.requestDrained(hasPartialMessage: false)
        #expect(step3 == .completeRequest)
        let step4 = machine.requestDrained(hasPartialMessage: false)
        #expect(step4 == nil, "a request completes once")
        #expect(machine.isReceivingMessages)
        let step5 = machine.prepareResponseHeaders()
        #expect(step5)
        let step6 = machine.prepareResponseHeaders()
        #expect(!step6, "response headers are sent once")
        let step7 = machine.respond()
        #expect(step7 == .trailers)
        #expect(machine.state == .responded)
        #expect(!machine.canRespond)
        let closed = machine.streamClosed(errorCode: 0)
        #expect(
            closed
                == ServerStreamStateMachine.CloseAction(
                    cancelHandler: false, releasedBufferedBytes: 5, releasedWindow: 10, releasedRawBytes: 0))
        #expect(machine.state == .closed)
    }

    @Test("a call rejected at its headers answers Trailers-Only and never takes messages")
    func rejectedAtHeaders() {
        var machine = ServerStreamStateMachine()
        let step8 = machine.respond()
        #expect(step8 == .trailersOnly)
        let step9 = machine.callStarted()
        #expect(!step9, "a rejected call does not start")
        #expect(!machine.isReceivingMessages)
        let step10 = machine.receivedEndStream()
        #expect(!step10)
        let step11 = machine.requestDrained(hasPartialMessage: false)
        #expect(step11 == nil)
        let step12 = machine.prepareResponseHeaders()
        #expect(!step12)
        let step13 = machine.streamClosed(errorCode: 0)
        #expect(step13?.cancelHandler == false)
    }

    @Test("an error before any response message is Trailers-Only; after one it is trailers")
    func errorShapes() {
        var early = ServerStreamStateMachine()
        early.callStarted()
        let step14 = early.respond()
        #expect(step14 == .trailersOnly)
        var late = ServerStreamStateMachine()
        late.callStarted()
        let step15 = late.prepareResponseHeaders()
        #expect(step15)
        let step16 = late.respond()
        #expect(step16 == .trailers)
    }

    @Test("a second status (a handler finishing after its deadline or a reset) is ignored")
    func respondOnce() {
        var machine = ServerStreamStateMachine()
        machine.callStarted()
        let step17 = machine.respond()
        #expect(step17 == .trailersOnly)
        let step18 = machine.respond()
        #expect(step18 == nil)
        let step19 = machine.prepareResponseHeaders()
        #expect(!step19, "no response headers after the status")
    }

    @Test("a request that ends inside a message fails once; END_STREAM twice is ignored")
    func incompleteRequest() {
        var machine = ServerStreamStateMachine()
        machine.callStarted()
        let step20 = machine.requestDrained(hasPartialMessage: true)
        #expect(step20 == nil, "not half-closed yet")
        let step21 = machine.receivedEndStream()
        #expect(step21)
        let step22 = machine.receivedEndStream()
        #expect(!step22)
        let step23 = machine.requestDrained(hasPartialMessage: true)
        #expect(step23 == .failIncompleteMessage)
        let step24 = machine.requestDrained(hasPartialMessage: true)
        #expect(step24 == nil)
    }

    @Test("a trailers block on an open stream starts no second call")
    func trailersBlock() {
        var machine = ServerStreamStateMachine()
        machine.callStarted()
        #expect(!machine.isReceivingHeaders)
        let step25 = machine.callStarted()
        #expect(!step25)
        #expect(machine.state == .open)
    }

    @Test("the handler is cancelled when the stream closes unanswered or is reset, not after a normal end")
    func cancellation() {
        var unanswered = ServerStreamStateMachine()
        unanswered.callStarted()
        let step26 = unanswered.streamClosed(errorCode: 0)
        #expect(step26?.cancelHandler == true)
        var reset = ServerStreamStateMachine()
        reset.callStarted()
        _ = reset.respond()
        let step27 = reset.streamClosed(errorCode: 8)
        #expect(step27?.cancelHandler == true)
        var ended = ServerStreamStateMachine()
        ended.callStarted()
        _ = ended.respond()
        let step28 = ended.streamClosed(errorCode: 0)
        #expect(step28?.cancelHandler == false)
        let step29 = ended.streamClosed(errorCode: 0)
        #expect(step29 == nil, "a stream closes once")
        let step30 = ended.respond()
        #expect(step30 == nil)
        let step31 = ended.receivedEndStream()
        #expect(!step31)
        #expect(!ended.isReceivingMessages)
    }

    @Test("held window is returned except what complete messages still need; closing returns all of it")
    func windowBookkeeping() {
        var machine = ServerStreamStateMachine()
        machine.callStarted()
        machine.receivedData(100)
        machine.receivedData(50)
        let step32 = machine.releaseWindow(keeping: 120)
        #expect(step32 == 30)
        #expect(machine.heldWindow == 120)
        let step33 = machine.releaseWindow(keeping: 200)
        #expect(step33 == 0, "never more than held")
        let step34 = machine.rawBytesChanged(to: 120)
        #expect(step34 == 120)
        let step35 = machine.rawBytesChanged(to: 20)
        #expect(step35 == -100)
        machine.delivered(4000)
        machine.consumed(1000)
        #expect(machine.bufferedBytes == 3000)
        let closed = machine.streamClosed(errorCode: 0)
        #expect(closed?.releasedWindow == 120)
        #expect(closed?.releasedBufferedBytes == 3000)
        #expect(closed?.releasedRawBytes == 20)
        #expect(machine.heldWindow == 0 && machine.bufferedBytes == 0 && machine.rawBytes == 0)
    }
}
