"""Hostile-input probes: each case attacks a running server the way issue 7 describes and checks that it defends
itself (the right frame or status, the connection closed or kept as it should be), optionally repeating the attack
and reporting the server's resident memory before and after.

    hostile_probe.py --port N --case CASE [--pid PID --repeat K --max-growth-mib M]

Exits 0 when the server behaved (and, with --pid, when its RSS grew by at most --max-growth-mib over the repeats).
Prints "PASS CASE rss_before_kib=… rss_after_kib=…" on success.
"""
import argparse
import gzip
import socket
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
HOLD_SETTING = [2.0]  # seconds the slow attacks hold their connection open without reading (--hold)


# --- raw HTTP/2 -----------------------------------------------------------------------------------------------------

def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def hpack_int(value, prefix_bits, first_byte_flags):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_flags | value])
    out = bytearray([first_byte_flags | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_string(data):
    return hpack_int(len(data), 7, 0) + data


def literal(name, value, indexed=False):
    """A literal header field with a new name, with incremental indexing or without indexing."""
    return (b"\x40" if indexed else b"\x00") + hpack_string(name) + hpack_string(value)


def request_headers(path, extra=()):
    block = b"".join(literal(n, v) for n, v in [
        (b":method", b"POST"), (b":scheme", b"http"), (b":path", path), (b":authority", b"localhost"),
        (b"content-type", b"application/grpc"), (b"te", b"trailers")])
    return block + b"".join(literal(n, v) for n, v in extra)


def grpc_message(payload, compressed=False):
    return bytes([1 if compressed else 0]) + struct.pack(">I", len(payload)) + payload


class Conn:
    def __init__(self, port, settings=None):
        """Opens a connection; by default with windows wide enough that the server is never held back by us."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        # Send windows granted by the server (RFC 9113 defaults until its SETTINGS arrive).
        self.connection_window = 65_535
        self.initial_stream_window = 65_535
        self.stream_windows = {}
        self.pending = []  # frames read while waiting for window, not yet seen by the caller
        self.auto_ack = True  # acknowledge the server's SETTINGS as they arrive
        if settings is None:
            settings = struct.pack(">HI", 4, 16 << 20)
        self.send(PREFACE + frame(SETTINGS, 0, 0, settings) + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 64 << 20)))

    def send(self, data):
        self.sock.sendall(data)

    def read_frames(self, timeout):
        """Yields newly received frames only (not the pending ones)."""
        pending, self.pending = self.pending, []
        try:
            yield from self.frames(timeout)
        finally:
            self.pending = pending + self.pending

    def frames(self, timeout=10):
        """Yields received frames (kind, flags, stream, payload) until the peer closes or `timeout` passes."""
        while self.pending:
            yield self.pending.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            while len(self.buf) >= 9:
                length = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) < 9 + length:
                    break
                kind, flags = self.buf[3], self.buf[4]
                stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
                payload = self.buf[9:9 + length]
                self.buf = self.buf[9 + length:]
                if kind == SETTINGS and not flags & ACK and self.auto_ack:
                    for i in range(0, len(payload) - 5, 6):
                        ident, value = struct.unpack(">HI", payload[i:i + 6])
                        if ident == 4:
                            delta = value - self.initial_stream_window
                            self.initial_stream_window = value
                            for sid in self.stream_windows:
                                self.stream_windows[sid] += delta
                    self.send(frame(SETTINGS, ACK, 0))
                if kind == WINDOW_UPDATE and len(payload) == 4:
                    increment = struct.unpack(">I", payload)[0] & 0x7FFFFFFF
                    if stream == 0:
                        self.connection_window += increment
                    else:
                        self.stream_windows[stream] = self.stream_windows.get(stream, self.initial_stream_window) + increment
                yield kind, flags, stream, payload
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return
            except ConnectionResetError:
                yield "closed", 0, 0, b""
                return
            if not data:
                yield "closed", 0, 0, b""
                return
            self.buf += data

    def send_data(self, stream, payload, flags=0, timeout=2):
        """Sends one DATA frame within the flow-control windows, waiting up to `timeout` seconds for the server to
        grant window; raises socket.timeout when it does not (the server is holding the client back)."""
        deadline = time.monotonic() + timeout
        while True:
            window = min(self.connection_window, self.stream_windows.setdefault(stream, self.initial_stream_window))
            if window >= len(payload):
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("no flow-control window")
            for f in self.read_frames(timeout=min(remaining, 0.1)):
                self.pending.append(f)
                if f[0] == "closed":
                    raise ConnectionResetError("closed while waiting for window")
        self.connection_window -= len(payload)
        self.stream_windows[stream] -= len(payload)
        self.send(frame(DATA, flags, stream, payload))

    def wait_for(self, predicate, timeout=10):
        for f in self.frames(timeout):
            if predicate(f):
                return f
            if f[0] == "closed":
                return f
        return None

    def alive(self):
        """True when the connection still answers a PING."""
        try:
            self.send(frame(PING, 0, 0, b"alive?!!"))
        except OSError:
            return False
        f = self.wait_for(lambda f: f[0] == PING and f[1] & ACK and f[3] == b"alive?!!", timeout=5)
        return f is not None and f[0] == PING

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fail(message):
    print(message, file=sys.stderr)
    return False


# --- cases: each returns True when the server defended itself ---------------------------------------------------------

def hpack_bomb(port):
    """One 4,000-byte header inserted into the dynamic table, then referenced 12,000 times by 1-byte indices in one
    16 KB HEADERS frame (~48 MB once expanded): the stream must be reset, the connection must live on."""
    c = Conn(port)
    try:
        block = request_headers(b"/grpc.health.v1.Health/Check") + literal(b"x-bomb", b"a" * 4000, indexed=True)
        block += b"\xbe" * (16_384 - len(block) - 1)  # index 62: the newest dynamic-table entry
        c.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, block))
        f = c.wait_for(lambda f: f[0] in (RST_STREAM, HEADERS, GOAWAY) and f[2] in (0, 1))
        if f is None or f[0] != RST_STREAM:
            return fail(f"expected RST_STREAM on stream 1, got {f}")
        if not c.alive():
            return fail("the connection did not survive the reset")
        return True
    finally:
        c.close()


def unary_extra_message(port):
    """A unary call that sends a second message before half-closing gets an error status at once."""
    c = Conn(port)
    try:
        c.send(frame(HEADERS, END_HEADERS, 1, request_headers(b"/grpc.health.v1.Health/Check")))
        c.send(frame(DATA, 0, 1, grpc_message(b"") + grpc_message(b"")))
        f = c.wait_for(lambda f: f[0] in (HEADERS, RST_STREAM) and f[2] == 1 and f[1] & END_STREAM or f[0] == RST_STREAM)
        if f is None or f[0] != HEADERS:
            return fail(f"expected trailers ending stream 1 before the client half-closed, got {f}")
        return True
    finally:
        c.close()


def gzip_bomb_unary(port):
    """25 gzip messages of 4 MiB each (4 KB on the wire) on a unary call, never half-closed: the second message
    ends the call, so nothing is decompressed past the first."""
    c = Conn(port)
    try:
        bomb = grpc_message(gzip.compress(b"\0" * ((4 << 20) - 64)), compressed=True)
        c.send(frame(HEADERS, END_HEADERS, 1, request_headers(
            b"/grpc.health.v1.Health/Check", [(b"grpc-encoding", b"gzip")])))
        try:
            for _ in range(25):
                c.send_data(1, bomb)
        except (socket.timeout, ConnectionResetError):
            pass  # the server ended the call and holds back the window: expected
        f = c.wait_for(lambda f: f[0] in (HEADERS, RST_STREAM) and f[2] == 1 and (f[1] & END_STREAM or f[0] == RST_STREAM))
        if f is None or f[0] not in (HEADERS, RST_STREAM):
            return fail(f"expected the call to end, got {f}")
        return True
    finally:
        c.close()


def gzip_bomb_stream(port):
    """A FullDuplexCall whose client never reads: each request asks for a response, so the handler soon waits on
    write backpressure and stops taking requests, while the client keeps sending gzip messages that expand to
    4 MiB each (4 KB on the wire). The server must stop decoding once its per-stream budget is full and hold the
    flow-control window, instead of decompressing everything the window lets in. Judged by RSS (--pid)."""
    c = Conn(port, settings=struct.pack(">HI", 4, 2**31 - 1))
    c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 2**31 - 1 - 65535 - (64 << 20))))
    try:
        one = b"\x08" + varint(65_536)  # ResponseParameters.size (field 1)
        body = b"\x12" + varint((4 << 20) - 64) + b"\0" * ((4 << 20) - 64)  # Payload.body
        request = b"\x12" + varint(len(one)) + one + b"\x1a" + varint(len(body)) + body
        assert len(request) <= 4 << 20
        bomb = grpc_message(gzip.compress(request), compressed=True)
        c.send(frame(HEADERS, END_HEADERS, 1, request_headers(
            b"/grpc.testing.TestService/FullDuplexCall", [(b"grpc-encoding", b"gzip")])))
        try:
            for _ in range(250):
                c.send_data(1, bomb)
        except socket.timeout:
            pass  # flow control stopped us: what a defended server does
        time.sleep(HOLD_SETTING[0])
        return True
    finally:
        c.close()


def gzip_bomb_no_reader(port):
    """StreamingInputCall to a handler that never reads: gzip messages that expand to 4 MiB each (4 KB on the
    wire) are sent until flow control stops the client, then the connection is held. The caller watches the
    server's buffered request bytes, which must stay near one stream's budget (not the ~1 GiB the window's worth
    of bombs expands to)."""
    c = Conn(port)
    try:
        body = b"\x12" + varint((4 << 20) - 64) + b"\0" * ((4 << 20) - 64)  # Payload.body
        request = b"\x0a" + varint(len(body)) + body  # StreamingInputCallRequest.payload
        bomb = grpc_message(gzip.compress(request), compressed=True)
        c.send(frame(HEADERS, END_HEADERS, 1, request_headers(
            b"/grpc.testing.TestService/StreamingInputCall", [(b"grpc-encoding", b"gzip")])))
        sent = 0
        try:
            for _ in range(1000):
                c.send_data(1, bomb)
                sent += 1
        except socket.timeout:
            pass
        print(f"sent {sent} messages of 4 MiB before flow control stopped the client")
        time.sleep(HOLD_SETTING[0])
        return True
    finally:
        c.close()


def held_window_on_cancel(port):
    """Streams whose window the server holds (their handler never reads) are cancelled one after another on one
    connection; then a unary call on the same connection must still get through. Window held for a cancelled
    stream used to be lost to the connection for good, so a few such streams froze it."""
    c = Conn(port)
    try:
        payload = b"\x12" + varint(16_000) + b"\0" * 16_000  # Payload.body; one message fits one DATA frame
        message = grpc_message(b"\x0a" + varint(len(payload)) + payload)
        stream = 1
        for _ in range(12):
            c.send(frame(HEADERS, END_HEADERS, stream, request_headers(b"/grpc.testing.TestService/StreamingInputCall")))
            try:
                for _ in range(64):
                    c.send_data(stream, message, timeout=0.5)
            except socket.timeout:
                pass  # the server holds this stream's window: its handler is not reading
            c.send(frame(RST_STREAM, 0, stream, struct.pack(">I", 8)))  # CANCEL
            stream += 2
        # A call whose request (40 KB) needs more connection window than the held streams would have left.
        c.send(frame(HEADERS, END_HEADERS, stream, request_headers(b"/grpc.health.v1.Health/Check")))
        request = grpc_message(b"\x0a" + varint(40_000) + b"a" * 40_000)  # HealthCheckRequest.service
        try:
            for i in range(0, len(request), 16_000):
                c.send_data(stream, request[i:i + 16_000], END_STREAM if i + 16_000 >= len(request) else 0, timeout=5)
        except socket.timeout:
            return fail(f"no window left on the connection for a new call (connection window {c.connection_window})")
        f = c.wait_for(lambda f: f[0] == HEADERS and f[2] == stream and f[1] & END_STREAM, timeout=5)
        if f is None or f[0] != HEADERS:
            return fail(f"the call after the cancelled streams did not complete: {f}")
        return True
    finally:
        c.close()


def unfinished_messages(port, limit):
    """40 unary calls each announce a message of 1 MiB - 5 and send as much of it as the server's flow control
    allows, never finishing. Unfinished messages used to get window without limit (up to 100 streams x 4 MiB per
    connection); now, past the connection budget, only one stream at a time gets more. Fails when the server
    accepted more than `limit` bytes in all."""
    c = Conn(port)
    try:
        accepted = 0
        announced = struct.pack(">BI", 0, (1 << 20) - 5)
        chunk = b"\0" * 16_000
        for i in range(40):
            stream = 1 + 2 * i
            c.send(frame(HEADERS, END_HEADERS, stream, request_headers(b"/grpc.health.v1.Health/Check")))
            try:
                c.send_data(stream, announced, timeout=0.3)
                accepted += len(announced)
                while True:
                    c.send_data(stream, chunk, timeout=0.3)
                    accepted += len(chunk)
                    if accepted > 64 << 20:
                        break
            except socket.timeout:
                pass
        print(f"the server accepted {accepted} bytes of unfinished messages")
        if accepted > limit:
            return fail(f"accepted {accepted} bytes, more than {limit}")
        return True
    finally:
        c.close()


def extreme_timeouts(port):
    """The largest and smallest grpc-timeout values the header allows are served without a trap."""
    for value in (b"99999999H", b"99999999n", b"0n", b"1n"):
        c = Conn(port)
        try:
            c.send(frame(HEADERS, END_HEADERS, 1, request_headers(
                b"/grpc.health.v1.Health/Check", [(b"grpc-timeout", value)])))
            c.send(frame(DATA, END_STREAM, 1, grpc_message(b"")))
            f = c.wait_for(lambda f: f[0] in (HEADERS, RST_STREAM) and f[2] == 1 and (f[1] & END_STREAM or f[0] == RST_STREAM))
            if f is None or f[0] == "closed":
                return fail(f"grpc-timeout {value!r}: no answer ({f})")
        finally:
            c.close()
    return True


def ping_ack_flood(port):
    """50,000 unsolicited PING ACK frames: ignored, nothing kept."""
    c = Conn(port)
    try:
        ack = frame(PING, ACK, 0, b"\0" * 8)
        c.send(ack * 50_000)
        if not c.alive():
            return fail("the connection did not survive the unsolicited ACKs")
        return True
    finally:
        c.close()


def http1_request(port):
    """An HTTP/1.1 request on the gRPC port: the server closes the connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                data = s.recv(65536)
            except ConnectionResetError:
                return True
            if not data:
                return True
        return fail("the connection stayed open after an HTTP/1.1 request")
    finally:
        s.close()


def silent_connection(port):
    """A connection that never sends the preface is closed after the header timeout (the server under test runs
    with a short one)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.settimeout(8)
        try:
            while s.recv(65536):
                pass
        except socket.timeout:
            return fail("a silent connection stayed open")
        except ConnectionResetError:
            pass
        return True
    finally:
        s.close()


def unfinished_headers(port):
    """A HEADERS frame without END_HEADERS and no CONTINUATION: closed after the header timeout."""
    c = Conn(port)
    # Nothing else may follow the HEADERS frame: any frame but CONTINUATION (a SETTINGS ACK, say) is a protocol
    # error that closes the connection for another reason.
    c.auto_ack = False
    try:
        c.send(frame(HEADERS, 0, 1, request_headers(b"/grpc.health.v1.Health/Check")))
        f = c.wait_for(lambda f: f[0] == "closed", timeout=8)
        if f is None:
            return fail("a connection with an unfinished header block stayed open")
        return True
    finally:
        c.close()


def slow_reader(port):
    """StreamingOutputCall asking for 150 responses of 1 MB from a client that opens huge windows and never reads:
    the server must stop producing (write backpressure) instead of queueing 150 MB. Judged by RSS (--pid)."""
    c = Conn(port, settings=struct.pack(">HI", 4, 2**31 - 1))
    c.send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 2**31 - 1 - 65535 - (64 << 20))))
    try:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        # grpc.testing.StreamingOutputCallRequest { response_parameters: [{ size: 1_000_000 }] x 150 }
        one = b"\x08" + varint(1_000_000)  # ResponseParameters.size (field 1) = 1,000,000
        request = (b"\x12" + varint(len(one)) + one) * 150
        c.send(frame(HEADERS, END_HEADERS, 1, request_headers(b"/grpc.testing.TestService/StreamingOutputCall")))
        c.send(frame(DATA, END_STREAM, 1, grpc_message(request)))
        time.sleep(HOLD_SETTING[0])  # the server produces what it can while we do not read
        return True
    finally:
        c.close()


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def long_reflection_symbol(port):
    """file_containing_symbol of "a." * 80,000: refused at once as too long (INVALID_ARGUMENT in the error
    response), instead of a quadratic search that stalls the event loop."""
    c = Conn(port)
    try:
        symbol = b"a." * 80_000
        request = b"\x22" + varint(len(symbol)) + symbol  # ServerReflectionRequest.file_containing_symbol = 4
        c.send(frame(HEADERS, END_HEADERS, 1, request_headers(b"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")))
        message = grpc_message(request)
        for i in range(0, len(message), 16_384):
            c.send_data(1, message[i:i + 16_384], END_STREAM if i + 16_384 >= len(message) else 0, timeout=10)
        body = b""
        for f in c.frames(timeout=10):
            if f[0] == DATA and f[2] == 1:
                body += f[3]
            if f[0] in (HEADERS, RST_STREAM, "closed") and (f[1] & END_STREAM or f[0] != HEADERS):
                break
        # ServerReflectionResponse.error_response (field 7) { error_code (1) = 3 }
        if b"\x3a" not in body or b"\x08\x03" not in body:
            return fail(f"expected an error_response with code 3 (INVALID_ARGUMENT), got {body[:200]!r}")
        return True
    finally:
        c.close()


def connection_cap(port, limit):
    """With the server capped at `limit` connections, `limit` connections are served and one more is closed."""
    held = [Conn(port) for _ in range(limit)]
    try:
        if not all(c.alive() for c in held):
            return fail("a connection under the cap was not served")
        extra = Conn(port)
        try:
            f = extra.wait_for(lambda f: f[0] == "closed", timeout=5)
            if f is None:
                return fail("a connection over the cap was served")
        finally:
            extra.close()
        return True
    finally:
        for c in held:
            c.close()


def goaway_hold(port):
    """Opens a FullDuplexCall and leaves it open, sends GOAWAY, and holds the connection (reading) until the server
    closes it or 30 s pass; the caller shuts the server down meanwhile."""
    c = Conn(port)
    try:
        c.send(frame(HEADERS, END_HEADERS, 1, request_headers(b"/grpc.testing.TestService/FullDuplexCall")))
        c.send(frame(GOAWAY, 0, 0, struct.pack(">II", 0, 0)))
        c.wait_for(lambda f: f[0] == "closed", timeout=30)
        return True
    finally:
        c.close()


CASES = {f.__name__: f for f in (hpack_bomb, unary_extra_message, gzip_bomb_unary, gzip_bomb_stream, gzip_bomb_no_reader, held_window_on_cancel, unfinished_messages, extreme_timeouts, ping_ack_flood, http1_request,
                                 silent_connection, unfinished_headers, slow_reader, long_reflection_symbol,
                                 connection_cap, goaway_hold)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--case", required=True, choices=sorted(CASES))
    parser.add_argument("--pid", type=int, help="server process: report its RSS before and after")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--max-growth-mib", type=float, help="fail if the server's RSS grew by more than this")
    parser.add_argument("--limit", type=int, default=2,
                        help="connection_cap: the server's connection limit; unfinished_messages: bytes it may accept")
    parser.add_argument("--hold", type=float, default=HOLD_SETTING[0], help="seconds the slow attacks hold without reading")
    args = parser.parse_args()
    HOLD_SETTING[0] = args.hold
    case = CASES[args.case]
    if args.case == "connection_cap":
        case = lambda port: connection_cap(port, args.limit)  # noqa: E731
    if args.case == "unfinished_messages":
        case = lambda port: unfinished_messages(port, args.limit)  # noqa: E731
    before = rss_kib(args.pid) if args.pid else 0
    for i in range(args.repeat):
        if not case(args.port):
            print(f"FAIL {args.case} (repeat {i + 1})")
            return 1
    # Let the server finish tearing down what the last connections left.
    time.sleep(0.5)
    after = rss_kib(args.pid) if args.pid else 0
    growth_mib = (after - before) / 1024
    print(f"PASS {args.case} repeats={args.repeat} rss_before_kib={before} rss_after_kib={after} growth_mib={growth_mib:.1f}")
    if args.pid and args.max_growth_mib is not None and growth_mib > args.max_growth_mib:
        print(f"FAIL {args.case}: RSS grew by {growth_mib:.1f} MiB (limit {args.max_growth_mib})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
