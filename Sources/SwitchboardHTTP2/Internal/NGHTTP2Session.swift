// The only file that imports nghttp2. It owns one `nghttp2_session *` and turns nghttp2's callbacks into calls on a
// Swift delegate carrying Swift values; bytes go in through `receive` and come out of `drainOutput`, so the
// protocol engine runs without sockets (and is driven by a NIO channel handler on its event loop).
//
// nghttp2 calls back only synchronously inside mem_recv / mem_send / resume_data, so confining an instance to one
// event loop makes every callback run there too.
private import CNghttp2
import NIOCore
import SwitchboardRPC

/// HTTP/2 error codes this transport sends or interprets.
enum HTTP2ErrorCode: UInt32 {
    case noError = 0x0
    case protocolError = 0x1
    case internalError = 0x2
    case flowControlError = 0x3
    case refusedStream = 0x7
    case cancel = 0x8
    case enhanceYourCalm = 0xb
}

/// What the session reports to its owner. Every call happens on the owner's event loop.
protocol NGHTTP2SessionDelegate: AnyObject {
    /// A header block started on a stream (a new request on a server; response headers or trailers on a client).
    func session(_ session: NGHTTP2Session, beginHeadersOn streamID: Int32)
    /// One header field, as raw bytes valid only during the call (so ignored headers cost no String).
    func session(_ session: NGHTTP2Session, header name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, on streamID: Int32)
    /// A header block ended.
    func session(_ session: NGHTTP2Session, endHeadersOn streamID: Int32, endStream: Bool)
    /// A chunk of DATA payload.
    func session(_ session: NGHTTP2Session, data: UnsafeRawBufferPointer, on streamID: Int32)
    /// A DATA frame carried END_STREAM.
    func session(_ session: NGHTTP2Session, endStreamOn streamID: Int32)
    /// The stream is closed; `errorCode` is non-zero for a reset.
    func session(_ session: NGHTTP2Session, streamClosed streamID: Int32, errorCode: UInt32)
    /// A PING (not an ACK) arrived.
    func sessionReceivedPing(_ session: NGHTTP2Session)
    /// A PING ACK arrived.
    func sessionReceivedPingAck(_ session: NGHTTP2Session)
    /// The peer sent GOAWAY.
    func session(_ session: NGHTTP2Session, goAwayWithLastStreamID lastStreamID: Int32, errorCode: UInt32)
    /// The outbound queue of a stream has room again (bytes were taken by nghttp2).
    func session(_ session: NGHTTP2Session, didDrainOutboundOn streamID: Int32, remaining: Int)
    /// The peer's SETTINGS (not an ACK) arrived.
    func sessionReceivedSettings(_ session: NGHTTP2Session)
}

extension NGHTTP2SessionDelegate {
    func sessionReceivedSettings(_ session: NGHTTP2Session) {}
}

/// Settings sent to the peer at start, and the header budget enforced on what it sends.
struct HTTP2Settings {
    var maxConcurrentStreams: UInt32 = 100
    var initialWindowSize: UInt32 = 1 << 20
    var maxFrameSize: UInt32 = 16_384
    /// Advertised as SETTINGS_MAX_HEADER_LIST_SIZE and enforced per header block (name + value + 32 bytes per
    /// field, as RFC 9113 counts): nghttp2 1.52 advertises it but does not enforce it on receive, so one 16 KB
    /// HEADERS frame of 1-byte references to a 4 KB dynamic-table entry would deliver ~48 MB of headers.
    var maxHeaderListSize: UInt32 = 16_384
    /// The most fields one header block may carry.
    var maxHeaderCount: Int = 256
    /// The connection-level receive window; nil: four stream windows.
    var connectionWindowSize: UInt32?
}

/// Owns one nghttp2 session.
final class NGHTTP2Session {
    /// Data queued for one stream's DATA frames, plus what ends it. A class so that queueing mutates in place
    /// (a struct in the dictionary copied its array on every change).
    private final class Outbound {
        var chunks: [ByteBuffer] = []
        var queuedBytes = 0
        /// Trailers to send after the data (END_STREAM on the trailers HEADERS frame).
        var trailers: [(String, String)]?
        /// End the stream with the last DATA frame (client half-close).
        var endStream = false
        /// nghttp2 returned DEFERRED and waits for resume_data.
        var deferred = false
    }

    private var session: OpaquePointer?
    private var outbound: [Int32: Outbound] = [:]
    /// Only one header block is in flight on a connection at a time (CONTINUATION frames may not interleave), so
    /// one budget serves every stream; it restarts at each block.
    private var headerBlockBytes = 0
    private var headerBlockCount = 0
    private let maxHeaderListSize: Int
    private let maxHeaderCount: Int
    /// The owner. `unowned(unsafe)` because the owner holds the session and outlives it, and a weak load on every
    /// callback (one per header) showed up in profiles.
    unowned(unsafe) var delegate: (any NGHTTP2SessionDelegate)?
    let isServer: Bool

    /// Creates a session and queues the initial SETTINGS.
    /// - Parameters:
    ///   - isServer: server or client side.
    ///   - settings: the local settings.
    init(isServer: Bool, settings: HTTP2Settings) {
        self.isServer = isServer
        self.maxHeaderListSize = Int(settings.maxHeaderListSize)
        self.maxHeaderCount = settings.maxHeaderCount
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        defer { nghttp2_session_callbacks_del(callbacks) }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, onBeginHeaders)
        nghttp2_session_callbacks_set_on_header_callback(callbacks, onHeader)
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, onFrameRecv)
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, onDataChunk)
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, onStreamClose)

        var option: OpaquePointer?
        nghttp2_option_new(&option)
        defer { nghttp2_option_del(option) }
        // Window is returned only when the application has taken a message, which is what gives backpressure.
        nghttp2_option_set_no_auto_window_update(option, 1)
        nghttp2_option_set_peer_max_concurrent_streams(option, 100)

        let userData = Unmanaged.passUnretained(self).toOpaque()
        if isServer {
            nghttp2_session_server_new2(&session, callbacks, userData, option)
        } else {
            nghttp2_session_client_new2(&session, callbacks, userData, option)
        }
        var entries = [
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS.rawValue), value: settings.maxConcurrentStreams),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE.rawValue), value: settings.initialWindowSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_FRAME_SIZE.rawValue), value: settings.maxFrameSize),
            nghttp2_settings_entry(settings_id: Int32(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE.rawValue), value: settings.maxHeaderListSize),
        ]
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count)
        // Open the connection-level window wider than one stream's, so one stream can use its whole window and
        // streams whose window is held (their handler is behind) do not stop the others.
        let connectionWindow = settings.connectionWindowSize.map { Int($0) } ?? Int(settings.initialWindowSize) * 4
        if connectionWindow > 65_535 {
            nghttp2_session_set_local_window_size(
                session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(clamping: connectionWindow))
        }
    }

    deinit {
        nghttp2_session_del(session)
    }

    struct ProtocolError: Error, CustomStringConvertible {
        let code: Int
        var description: String { String(cString: nghttp2_strerror(Int32(code))) }
    }

    /// Feeds received bytes.
    /// - Throws: ``ProtocolError`` when the peer violated HTTP/2 (nghttp2 has queued a GOAWAY: drain, then close).
    func receive(_ buffer: ByteBuffer) throws {
        let result = buffer.withUnsafeReadableBytes { raw -> Int in
            guard let base = raw.baseAddress else { return 0 }
            return nghttp2_session_mem_recv(session, base.assumingMemoryBound(to: UInt8.self), raw.count)
        }
        if result < 0 { throw ProtocolError(code: result) }
    }

    /// Moves what nghttp2 wants to send into a buffer, stopping once the buffer holds `limit` bytes, so a writer
    /// that respects the channel's writability never pulls more out of nghttp2 than the socket can take.
    /// - Parameters:
    ///   - buffer: the buffer to append to.
    ///   - limit: stop after the buffer holds at least this many bytes.
    /// - Throws: ``ProtocolError`` on a fatal session error.
    func drainOutput(into buffer: inout ByteBuffer, limit: Int = .max) throws {
        while buffer.readableBytes < limit {
            var data: UnsafePointer<UInt8>?
            let n = nghttp2_session_mem_send(session, &data)
            if n < 0 { throw ProtocolError(code: n) }
            if n == 0 { return }
            buffer.writeBytes(UnsafeRawBufferPointer(start: data, count: n))
        }
    }

    /// Whether either side still wants the connection.
    var isActive: Bool { nghttp2_session_want_read(session) != 0 || nghttp2_session_want_write(session) != 0 }

    /// The highest stream id the peer opened that this side processed.
    var lastProcessedStreamID: Int32 { nghttp2_session_get_last_proc_stream_id(session) }

    /// Bytes queued for a stream and not yet taken by nghttp2.
    func queuedBytes(on streamID: Int32) -> Int { outbound[streamID]?.queuedBytes ?? 0 }

    // MARK: - Submitting

    private func withNV<R>(_ headers: [(String, String)], _ body: (UnsafeMutablePointer<nghttp2_nv>, Int) -> R) -> R {
        // nghttp2 copies names and values during the submit call, so one temporary buffer holding them all suffices.
        var total = 0
        for (name, value) in headers { total += name.utf8.count + value.utf8.count }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(total, 1)) { bytes in
            withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: max(headers.count, 1)) { nva in
                var offset = 0
                for (i, (name, value)) in headers.enumerated() {
                    let base = bytes.baseAddress! + offset
                    let nameCount = copyUTF8(name, to: base)
                    let valueCount = copyUTF8(value, to: base + nameCount)
                    nva.initializeElement(
                        at: i,
                        to: nghttp2_nv(
                            name: base, value: base + nameCount, namelen: nameCount, valuelen: valueCount,
                            flags: UInt8(Self.uniquePerCall.contains(name) ? NGHTTP2_NV_FLAG_NO_INDEX.rawValue : NGHTTP2_NV_FLAG_NONE.rawValue)))
                    offset += nameCount + valueCount
                }
                return body(nva.baseAddress!, headers.count)
            }
        }
    }

    /// Headers whose values differ on every call: indexing them in HPACK's dynamic table would only evict the ones
    /// that repeat, and cost both ends a table update per response.
    private static let uniquePerCall: Set<String> = ["x-request-id", "traceparent", GRPCHeaderName.message, GRPCHeaderName.statusDetails]

    private func copyUTF8(_ string: String, to destination: UnsafeMutablePointer<UInt8>) -> Int {
        var string = string
        return string.withUTF8 { utf8 in
            if let source = utf8.baseAddress { destination.update(from: source, count: utf8.count) }
            return utf8.count
        }
    }

    private func dataProvider() -> nghttp2_data_provider {
        nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: readCallback)
    }

    /// Server: sends response headers and opens the body (messages and trailers follow via the queue).
    func submitResponse(streamID: Int32, headers: [(String, String)]) {
        if outbound[streamID] == nil { outbound[streamID] = Outbound() }
        var provider = dataProvider()
        _ = withNV(headers) { nghttp2_submit_response(session, streamID, $0, $1, &provider) }
    }

    /// Server: sends a single HEADERS frame with END_STREAM (gRPC Trailers-Only).
    func submitTrailersOnly(streamID: Int32, headers: [(String, String)]) {
        outbound[streamID] = nil
        _ = withNV(headers) { nghttp2_submit_response(session, streamID, $0, $1, nil) }
    }

    /// Client: starts a request; returns the stream id or nil when no stream can be opened.
    func submitRequest(headers: [(String, String)]) -> Int32? {
        var provider = dataProvider()
        let id = withNV(headers) { nghttp2_submit_request(session, nil, $0, $1, &provider, nil) }
        guard id > 0 else { return nil }
        outbound[id] = Outbound()
        return id
    }

    /// Queues DATA for a stream.
    func enqueue(_ data: ByteBuffer, on streamID: Int32) {
        guard let state = outbound[streamID] else { return }
        state.queuedBytes += data.readableBytes
        state.chunks.append(data)
        resumeIfDeferred(state, streamID)
    }

    /// Queues trailers to end the stream after its data.
    func enqueueTrailers(_ trailers: [(String, String)], on streamID: Int32) {
        guard let state = outbound[streamID] else { return }
        state.trailers = trailers
        resumeIfDeferred(state, streamID)
    }

    /// Queues END_STREAM after the data (client half-close).
    func enqueueEndStream(on streamID: Int32) {
        guard let state = outbound[streamID] else { return }
        state.endStream = true
        resumeIfDeferred(state, streamID)
    }

    private func resumeIfDeferred(_ state: Outbound, _ streamID: Int32) {
        guard state.deferred else { return }
        state.deferred = false
        nghttp2_session_resume_data(session, streamID)
    }

    /// Resets a stream.
    func resetStream(_ streamID: Int32, code: HTTP2ErrorCode) {
        outbound[streamID] = nil
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, code.rawValue)
    }

    /// Returns window for bytes the application has consumed.
    func consume(_ bytes: Int, on streamID: Int32) {
        guard bytes > 0 else { return }
        if nghttp2_session_consume(session, streamID, bytes) != 0 {
            // The stream is gone; still return the connection-level window.
            nghttp2_session_consume_connection(session, bytes)
        }
    }

    /// Returns connection-level window only (for bytes of streams already closed).
    func consumeConnection(_ bytes: Int) {
        guard bytes > 0 else { return }
        nghttp2_session_consume_connection(session, bytes)
    }

    /// Sends GOAWAY.
    /// - Parameters:
    ///   - lastStreamID: the last stream this side will process.
    ///   - code: the error code.
    func submitGoAway(lastStreamID: Int32, code: HTTP2ErrorCode) {
        nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), lastStreamID, code.rawValue, nil, 0)
    }

    /// Sends a PING.
    func submitPing() {
        nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
    }

    // MARK: - Callback targets

    fileprivate func read(streamID: Int32, into buf: UnsafeMutablePointer<UInt8>, length: Int, flags: UnsafeMutablePointer<UInt32>) -> Int {
        guard let state = outbound[streamID] else {
            return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
        var written = 0
        while written < length, !state.chunks.isEmpty {
            let n = min(length - written, state.chunks[0].readableBytes)
            state.chunks[0].withUnsafeReadableBytes { raw in
                (buf + written).update(from: raw.baseAddress!.assumingMemoryBound(to: UInt8.self), count: n)
            }
            state.chunks[0].moveReaderIndex(forwardBy: n)
            if state.chunks[0].readableBytes == 0 { state.chunks.removeFirst() }
            written += n
        }
        state.queuedBytes -= written
        if state.chunks.isEmpty {
            if let trailers = state.trailers {
                flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue) | UInt32(NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue)
                outbound[streamID] = nil
                _ = withNV(trailers) { nghttp2_submit_trailer(session, streamID, $0, $1) }
                if written > 0 { delegate?.session(self, didDrainOutboundOn: streamID, remaining: 0) }
                return written
            }
            if state.endStream {
                flags.pointee |= UInt32(NGHTTP2_DATA_FLAG_EOF.rawValue)
                outbound[streamID] = nil
                if written > 0 { delegate?.session(self, didDrainOutboundOn: streamID, remaining: 0) }
                return written
            }
            if written == 0 {
                state.deferred = true
                return Int(NGHTTP2_ERR_DEFERRED.rawValue)
            }
        }
        delegate?.session(self, didDrainOutboundOn: streamID, remaining: state.queuedBytes)
        return written
    }

    fileprivate func beginHeaderBlock(on streamID: Int32) {
        headerBlockBytes = 0
        headerBlockCount = 0
        delegate?.session(self, beginHeadersOn: streamID)
    }

    /// Counts a field against the header-block budget; false past it (the callback then resets the stream and
    /// nghttp2 decodes the rest of the block without delivering it).
    fileprivate func admitHeader(nameCount: Int, valueCount: Int) -> Bool {
        headerBlockBytes += nameCount + valueCount + 32
        headerBlockCount += 1
        return headerBlockBytes <= maxHeaderListSize && headerBlockCount <= maxHeaderCount
    }

    fileprivate func frameReceived(_ frame: UnsafePointer<nghttp2_frame>) {
        let hd = frame.pointee.hd
        let endStream = hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch UInt32(hd.type) {
        case NGHTTP2_HEADERS.rawValue:
            delegate?.session(self, endHeadersOn: hd.stream_id, endStream: endStream)
        case NGHTTP2_DATA.rawValue:
            if endStream { delegate?.session(self, endStreamOn: hd.stream_id) }
        case NGHTTP2_PING.rawValue:
            if hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 {
                delegate?.sessionReceivedPingAck(self)
            } else {
                delegate?.sessionReceivedPing(self)
            }
        case NGHTTP2_SETTINGS.rawValue:
            if hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { delegate?.sessionReceivedSettings(self) }
        case NGHTTP2_GOAWAY.rawValue:
            delegate?.session(
                self, goAwayWithLastStreamID: frame.pointee.goaway.last_stream_id,
                errorCode: frame.pointee.goaway.error_code)
        default:
            break
        }
    }

    fileprivate func streamClosed(_ streamID: Int32, errorCode: UInt32) {
        outbound[streamID] = nil
        delegate?.session(self, streamClosed: streamID, errorCode: errorCode)
    }
}

// MARK: - C callbacks (non-capturing; recover the owner from user_data)

private func owner(_ userData: UnsafeMutableRawPointer?) -> NGHTTP2Session? {
    guard let userData else { return nil }
    return Unmanaged<NGHTTP2Session>.fromOpaque(userData).takeUnretainedValue()
}

private func onBeginHeaders(_ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    guard let owner = owner(userData), let frame else { return Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
    owner.beginHeaderBlock(on: frame.pointee.hd.stream_id)
    return 0
}

private func onHeader(
    _ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ name: UnsafePointer<UInt8>?, _ namelen: Int,
    _ value: UnsafePointer<UInt8>?, _ valuelen: Int, _ flags: UInt8, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let owner = owner(userData), let frame, let name else { return Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
    guard owner.admitHeader(nameCount: namelen, valueCount: valuelen) else {
        return Int32(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
    }
    owner.delegate?.session(
        owner, header: UnsafeRawBufferPointer(start: name, count: namelen),
        value: UnsafeRawBufferPointer(start: value, count: value == nil ? 0 : valuelen), on: frame.pointee.hd.stream_id)
    return 0
}

private func onFrameRecv(_ session: OpaquePointer?, _ frame: UnsafePointer<nghttp2_frame>?, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    guard let owner = owner(userData), let frame else { return Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
    owner.frameReceived(frame)
    return 0
}

private func onDataChunk(
    _ session: OpaquePointer?, _ flags: UInt8, _ streamID: Int32, _ data: UnsafePointer<UInt8>?, _ len: Int,
    _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    guard let owner = owner(userData) else { return Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
    owner.delegate?.session(owner, data: UnsafeRawBufferPointer(start: data, count: len), on: streamID)
    return 0
}

private func onStreamClose(_ session: OpaquePointer?, _ streamID: Int32, _ errorCode: UInt32, _ userData: UnsafeMutableRawPointer?) -> Int32 {
    guard let owner = owner(userData) else { return Int32(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
    owner.streamClosed(streamID, errorCode: errorCode)
    return 0
}

private func readCallback(
    _ session: OpaquePointer?, _ streamID: Int32, _ buf: UnsafeMutablePointer<UInt8>?, _ length: Int,
    _ flags: UnsafeMutablePointer<UInt32>?, _ source: UnsafeMutablePointer<nghttp2_data_source>?,
    _ userData: UnsafeMutableRawPointer?
) -> Int {
    guard let owner = owner(userData), let buf, let flags else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
    return owner.read(streamID: streamID, into: buf, length: length, flags: flags)
}
