/// The life of one server stream, and the request bytes it holds, as a value: events in, actions out.
///
/// States:
/// - *receivingHeaders*: the request HEADERS are being read; no call yet.
/// - *open*: the call started (its handler runs, or waits for its single request message); request DATA arrives.
/// - *halfClosed*: the client sent END_STREAM; complete messages may still wait in the deframer. `requestCompleted`
///   turns true once they are all delivered and the request stream was ended (or the single-request call launched).
/// - *responded*: the status is queued (trailers, Trailers-Only, or an HTTP error); waiting for nghttp2 to close.
/// - *closed*: nghttp2 closed the stream (ended normally, reset by either side, or the connection went away).
///
/// Transitions: receivingHeaders → open (call started) or → responded (rejected); open → halfClosed (END_STREAM);
/// open or halfClosed → responded (handler finished, deadline, decode error, shutdown); any → closed.
///
/// Invalid transitions are ignored rather than trapped, because each is something a peer or a race can cause:
/// starting a call outside *receivingHeaders* (a trailers block), a second END_STREAM, responding twice (a handler
/// finishing after its deadline or after a reset), DATA before the call started or after the response (discarded,
/// its window returned at once), a response write after *responded* (fails with CANCELLED), and any event after
/// *closed*.
///
/// Byte bookkeeping rides along: decoded bytes delivered and not yet taken (`bufferedBytes`), DATA bytes whose
/// window has not been returned (`heldWindow`), and raw bytes in the deframer (`rawBytes`); closing hands all
/// three back so the connection can return them to its budgets.
struct ServerStreamStateMachine {
    enum State: Equatable {
        case receivingHeaders
        case open
        case halfClosed(requestCompleted: Bool)
        case responded
        case closed
    }

    /// How to send the status.
    enum ResponseAction: Equatable {
        /// Response headers went out: send trailers after the queued messages.
        case trailers
        /// Nothing went out yet: one HEADERS frame carries the status (Trailers-Only).
        case trailersOnly
    }

    /// What to do once a half-closed request has no complete message left.
    enum RequestEndAction: Equatable {
        /// End the request stream (streaming calls) or launch the single-request call with its message.
        case completeRequest
        /// The request ended inside a message: fail the call with INTERNAL.
        case failIncompleteMessage
    }

    /// What the connection gives back when the stream closes.
    struct CloseAction: Equatable {
        /// Cancel the handler: the client reset the stream, or it closed before the call was answered.
        var cancelHandler: Bool
        /// Decoded bytes to return to the connection budget.
        var releasedBufferedBytes: Int
        /// Held window to return to the peer (nghttp2 returns none for a closed stream by itself).
        var releasedWindow: Int
        /// Raw deframer bytes to take off the connection's count.
        var releasedRawBytes: Int
    }

    private(set) var state: State = .receivingHeaders
    /// The response HEADERS were submitted.
    private(set) var responseHeadersSent = false
    /// Decoded bytes delivered and not yet taken by the handler (for single-request calls: until the call ends).
    private(set) var bufferedBytes = 0
    /// Received DATA bytes whose flow-control window has not been returned.
    private(set) var heldWindow = 0
    /// Raw (undecoded) bytes in the deframer as last counted into the connection's total.
    private(set) var rawBytes = 0

    /// Whether request header fields still belong to the request head.
    var isReceivingHeaders: Bool { state == .receivingHeaders }

    /// Whether request messages are taken: the call started and has not been answered.
    var isReceivingMessages: Bool {
        switch state {
        case .open, .halfClosed: return true
        case .receivingHeaders, .responded, .closed: return false
        }
    }

    /// Whether the handler may still send (messages or the final status).
    var canRespond: Bool { isReceivingMessages }

    /// The request head was accepted and the call started.
    /// - Returns: false (and no change) outside *receivingHeaders*.
    @discardableResult
    mutating func callStarted() -> Bool {
        guard state == .receivingHeaders else { return false }
        state = .open
        return true
    }

    /// The client sent END_STREAM.
    /// - Returns: whether the request just half-closed (deliver the remaining messages, then complete it).
    mutating func receivedEndStream() -> Bool {
        guard state == .open else { return false }
        state = .halfClosed(requestCompleted: false)
        return true
    }

    /// The deframer holds no complete message: completes a half-closed request once.
    /// - Parameter hasPartialMessage: whether an unfinished message is left.
    /// - Returns: what to do, or nil when the request is not half-closed or was completed already.
    mutating func requestDrained(hasPartialMessage: Bool) -> RequestEndAction? {
        guard state == .halfClosed(requestCompleted: false) else { return nil }
        state = .halfClosed(requestCompleted: true)
        return hasPartialMessage ? .failIncompleteMessage : .completeRequest
    }

    /// The first response message (or the status of a successful call) is about to be sent.
    /// - Returns: whether the response HEADERS must be submitted first.
    mutating func prepareResponseHeaders() -> Bool {
        guard canRespond, !responseHeadersSent else { return false }
        responseHeadersSent = true
        return true
    }

    /// The call is answered: a status for a started call, or a rejection of its headers.
    /// - Returns: how to send the status, or nil when it was answered already or is closed (ignore the status).
    mutating func respond() -> ResponseAction? {
        switch state {
        case .receivingHeaders, .open, .halfClosed:
            state = .responded
            return responseHeadersSent ? .trailers : .trailersOnly
        case .responded, .closed:
            return nil
        }
    }

    /// Request DATA arrived for a started call; its window is held until released.
    /// - Parameter count: the DATA payload size.
    mutating func receivedData(_ count: Int) {
        heldWindow += count
    }

    /// Returns held window except `keeping` bytes (those of complete messages still waiting for budget).
    /// - Parameter keeping: bytes to keep holding.
    /// - Returns: the bytes whose window to return now (0 for none).
    mutating func releaseWindow(keeping: Int) -> Int {
        let release = heldWindow - keeping
        guard release > 0 else { return 0 }
        heldWindow -= release
        return release
    }

    /// A decoded message was handed to the call.
    /// - Parameter bytes: its size.
    mutating func delivered(_ bytes: Int) {
        bufferedBytes += bytes
    }

    /// The handler took a decoded message.
    /// - Parameter bytes: its size.
    mutating func consumed(_ bytes: Int) {
        bufferedBytes -= bytes
    }

    /// Records the deframer's current raw byte count.
    /// - Parameter raw: the bytes in the deframer now.
    /// - Returns: the change to add to the connection's raw byte count.
    mutating func rawBytesChanged(to raw: Int) -> Int {
        let delta = raw - rawBytes
        rawBytes = raw
        return delta
    }

    /// nghttp2 closed the stream.
    /// - Parameter errorCode: the RST_STREAM (or GOAWAY) error code; 0 for a normal close.
    /// - Returns: what to cancel and give back, or nil when the stream was closed already.
    mutating func streamClosed(errorCode: UInt32) -> CloseAction? {
        guard state != .closed else { return nil }
        let action = CloseAction(
            cancelHandler: state != .responded || errorCode != 0,
            releasedBufferedBytes: bufferedBytes, releasedWindow: heldWindow, releasedRawBytes: rawBytes)
        state = .closed
        bufferedBytes = 0
        heldWindow = 0
        rawBytes = 0
        return action
    }
}
