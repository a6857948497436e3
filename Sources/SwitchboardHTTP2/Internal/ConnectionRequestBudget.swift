/// A connection's budget of request bytes held for handlers, as a value: which stream may decode another message,
/// which may get flow-control window for more of an unfinished one, and who waits for budget to free.
///
/// Two counts share one limit: decoded bytes delivered and not yet taken by handlers, and raw bytes in the streams'
/// deframers. A stream whose complete messages cannot be decoded because the connection holds its whole decoded
/// budget is *starved* and retried, in stream order, when decoded bytes are given back. Past the limit, only one
/// stream (the first to ask, the *tail grantee*) still gets window for an unfinished message, so that some message
/// always completes; the others are *tail waiters* and ask again when the grantee's message completes, when
/// decoded bytes are given back, or when a stream closes.
///
/// The connection handler calls these in the order its events happen and does what they return (decode, return
/// window, wake streams); the shared gauge of request bytes across connections stays with it.
struct ConnectionRequestBudget {
    /// The connection's limit on decoded plus raw request bytes held.
    let connectionLimit: Int
    /// One stream's limit on decoded bytes delivered and not yet taken.
    let streamLimit: Int
    /// Decoded request bytes held by all streams.
    private(set) var bufferedBytes = 0
    /// Raw bytes held in all streams' deframers (complete messages waiting for budget, and unfinished ones).
    private(set) var rawBytes = 0
    /// Streams with complete messages waiting for decoded budget.
    private(set) var starvedStreams: Set<Int32> = []
    /// Past the limit, the one stream still granted window for an unfinished message.
    private(set) var tailGrantee: Int32?
    /// Streams refused window for an unfinished message, in the order they asked.
    private(set) var tailWaiters: [Int32] = []

    /// Creates an empty budget.
    /// - Parameters:
    ///   - connectionLimit: the connection's limit.
    ///   - streamLimit: one stream's limit on decoded bytes.
    init(connectionLimit: Int, streamLimit: Int) {
        self.connectionLimit = connectionLimit
        self.streamLimit = streamLimit
    }

    /// Whether a stream may decode another complete message now; a refusal for want of connection budget marks
    /// the stream starved. A stream holding nothing may always take one message while the connection is under its
    /// budget, so every stream makes progress.
    /// - Parameters:
    ///   - id: the stream.
    ///   - streamBufferedBytes: the decoded bytes the stream holds.
    /// - Returns: whether to decode.
    mutating func admitsMessage(on id: Int32, streamBufferedBytes: Int) -> Bool {
        if streamBufferedBytes < streamLimit && bufferedBytes < connectionLimit { return true }
        if bufferedBytes >= connectionLimit { starvedStreams.insert(id) }
        return false
    }

    /// A decoded message was handed to a call.
    /// - Parameter bytes: its size.
    mutating func delivered(_ bytes: Int) {
        bufferedBytes += bytes
    }

    /// A stream's deframer grew or shrank.
    /// - Parameter delta: the change in its raw bytes.
    mutating func rawBytesChanged(by delta: Int) {
        rawBytes += delta
    }

    /// How much of a stream's received window to keep holding, once the budgets have allowed what they allow.
    ///
    /// Complete messages still waiting keep their bytes held. An unfinished message gets window while the
    /// connection is under its limit; past it only the tail grantee does, and any other stream waits.
    /// - Parameters:
    ///   - id: the stream.
    ///   - raw: the raw bytes in its deframer.
    ///   - hasCompleteMessage: whether a complete message is still waiting.
    ///   - hasPartialMessage: whether an unfinished message is in the deframer.
    /// - Returns: the bytes to keep holding, and whether the tail grant was freed (wake the tail waiters).
    mutating func windowToHold(
        on id: Int32, raw: Int, hasCompleteMessage: Bool, hasPartialMessage: Bool
    ) -> (keeping: Int, wakeTailWaiters: Bool) {
        let keeping: Int
        if hasCompleteMessage {
            keeping = raw
        } else if raw == 0 || grantsTailWindow(to: id) {
            keeping = 0
        } else {
            // An unfinished message while the connection holds its whole budget: its bytes so far stay
            // unacknowledged, so the client can send no more on this stream until budget frees.
            keeping = raw
            if !tailWaiters.contains(id) { tailWaiters.append(id) }
        }
        guard tailGrantee == id, !hasPartialMessage || hasCompleteMessage else { return (keeping, false) }
        tailGrantee = nil
        return (keeping, true)
    }

    /// Whether a stream may get window for more of an unfinished message: always while the connection's decoded
    /// and raw bytes are under its limit; past it, only the first stream to ask, until its message is complete.
    private mutating func grantsTailWindow(to id: Int32) -> Bool {
        if rawBytes + bufferedBytes < connectionLimit { return true }
        if tailGrantee == nil { tailGrantee = id }
        return tailGrantee == id
    }

    /// The streams to let ask for window again; they are no longer waiting.
    /// - Returns: the tail waiters, in the order they asked.
    mutating func takeTailWaiters() -> [Int32] {
        guard !tailWaiters.isEmpty else { return [] }
        defer { tailWaiters.removeAll() }
        return tailWaiters
    }

    /// Handlers took decoded bytes (or a stream closed with some undelivered).
    /// - Parameter bytes: the bytes given back.
    mutating func released(_ bytes: Int) {
        bufferedBytes -= bytes
    }

    /// The starved streams to retry, once the decoded bytes are under the limit again; they are no longer starved.
    /// - Returns: the streams in stream order, or none while the connection is still at its limit.
    mutating func takeStarvedStreams() -> [Int32] {
        guard !starvedStreams.isEmpty, bufferedBytes < connectionLimit else { return [] }
        defer { starvedStreams.removeAll() }
        return starvedStreams.sorted()
    }

    /// A stream closed: it starves no more.
    /// - Parameter id: the stream.
    mutating func streamClosing(_ id: Int32) {
        starvedStreams.remove(id)
    }

    /// A closed stream's raw bytes are gone: it waits for no window and holds no grant.
    /// - Parameters:
    ///   - id: the stream.
    ///   - rawBytes: its raw bytes at close.
    mutating func streamClosed(_ id: Int32, rawBytes: Int) {
        self.rawBytes -= rawBytes
        tailWaiters.removeAll { $0 == id }
        if tailGrantee == id { tailGrantee = nil }
    }

    /// The connection went away: forgets everything.
    /// - Returns: the decoded plus raw bytes that were held (to take off the shared gauge).
    mutating func reset() -> Int {
        let held = bufferedBytes + rawBytes
        self = ConnectionRequestBudget(connectionLimit: connectionLimit, streamLimit: streamLimit)
        return held
    }
}
