import Testing

@testable import SwitchboardHTTP2

/// The connection's request-byte budget, fed events without sockets.
@Suite("Connection request budget")
struct ConnectionRequestBudgetTests {
    @Test("a stream decodes while it and the connection are under their limits; the connection's limit starves it")
    func admission() {
        var budget = ConnectionRequestBudget(connectionLimit: 100, streamLimit: 40)
        let fresh = budget.admitsMessage(on: 1, streamBufferedBytes: 0)
        #expect(fresh)
        budget.delivered(60)
        let streamFull = budget.admitsMessage(on: 1, streamBufferedBytes: 60)
        #expect(!streamFull)
        #expect(budget.starvedStreams.isEmpty, "a stream over its own limit waits for its handler, not for others")
        budget.delivered(40)
        let connectionFull = budget.admitsMessage(on: 3, streamBufferedBytes: 0)
        #expect(!connectionFull)
        let alsoStarved = budget.admitsMessage(on: 5, streamBufferedBytes: 0)
        #expect(!alsoStarved)
        #expect(budget.starvedStreams == [3, 5])
        budget.released(10)
        let starved = budget.takeStarvedStreams()
        #expect(starved == [3, 5], "retried in stream order once under the limit")
        #expect(budget.starvedStreams.isEmpty)
    }

    @Test("starved streams wait while the connection is still at its limit")
    func starvedWait() {
        var budget = ConnectionRequestBudget(connectionLimit: 100, streamLimit: 200)
        budget.delivered(150)
        _ = budget.admitsMessage(on: 7, streamBufferedBytes: 0)
        budget.released(20)
        let none = budget.takeStarvedStreams()
        #expect(none.isEmpty)
        budget.released(40)
        let retried = budget.takeStarvedStreams()
        #expect(retried == [7])
    }

    @Test("complete messages waiting keep their window held; an unfinished one gets window under the limit")
    func windowUnderLimit() {
        var budget = ConnectionRequestBudget(connectionLimit: 100, streamLimit: 40)
        budget.rawBytesChanged(by: 30)
        let complete = budget.windowToHold(on: 1, raw: 30, hasCompleteMessage: true, hasPartialMessage: false)
        #expect(complete.keeping == 30 && !complete.wakeTailWaiters)
        let partial = budget.windowToHold(on: 1, raw: 30, hasCompleteMessage: false, hasPartialMessage: true)
        #expect(partial.keeping == 0)
        #expect(budget.tailGrantee == nil, "no grant is needed under the limit")
    }

    @Test("past the limit only the first stream to ask gets window for its unfinished message; the rest wait for it")
    func tailGrant() {
        var budget = ConnectionRequestBudget(connectionLimit: 100, streamLimit: 40)
        budget.delivered(60)
        budget.rawBytesChanged(by: 50)
        let first = budget.windowToHold(on: 1, raw: 25, hasCompleteMessage: false, hasPartialMessage: true)
        #expect(first.keeping == 0 && budget.tailGrantee == 1)
        let second = budget.windowToHold(on: 3, raw: 25, hasCompleteMessage: false, hasPartialMessage: true)
        #expect(second.keeping == 25)
        let again = budget.windowToHold(on: 3, raw: 25, hasCompleteMessage: false, hasPartialMessage: true)
        #expect(again.keeping == 25)
        #expect(budget.tailWaiters == [3], "a waiter is listed once")
        // The grantee's message completes: the grant frees and the waiters ask again.
        let done = budget.windowToHold(on: 1, raw: 40, hasCompleteMessage: true, hasPartialMessage: false)
        #expect(done.keeping == 40 && done.wakeTailWaiters)
        #expect(budget.tailGrantee == nil)
        let waiters = budget.takeTailWaiters()
        #expect(waiters == [3])
        #expect(budget.tailWaiters.isEmpty)
    }

    @Test("a closing stream stops starving, waiting and holding the grant; its raw bytes leave the count")
    func streamClose() {
        var budget = ConnectionRequestBudget(connectionLimit: 100, streamLimit: 40)
        budget.delivered(100)
        budget.rawBytesChanged(by: 20)
        _ = budget.admitsMessage(on: 1, streamBufferedBytes: 0)
        _ = budget.windowToHold(on: 1, raw: 10, hasCompleteMessage: false, hasPartialMessage: true)
        _ = budget.windowToHold(on: 3, raw: 10, hasCompleteMessage: false, hasPartialMessage: true)
        #expect(budget.tailGrantee == 1 && budget.tailWaiters == [3])
        budget.streamClosing(1)
        #expect(budget.starvedStreams.isEmpty)
        budget.streamClosed(1, rawBytes: 10)
        #expect(budget.tailGrantee == nil && budget.rawBytes == 10)
        budget.streamClosed(3, rawBytes: 10)
        #expect(budget.tailWaiters.isEmpty)
        #expect(budget.reset() == 100, "what was held comes off the shared gauge")
        #expect(budget.bufferedBytes == 0 && budget.rawBytes == 0)
    }
}
