"""Raw HTTP/2 probes (Python's h2 library) for behaviour a gRPC client cannot trigger on purpose.

    h2_probe.py --port N --case ping_abuse|stream_pings|unsupported_media_type|method_not_allowed|malformed_frames|
                                       keepalive_dead_peer
Exits 0 when the server behaved as gRPC's HTTP/2 protocol requires.
"""
import argparse
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def events(sock, conn):
    data = sock.recv(65536)
    if not data:
        return None
    evs = conn.receive_data(data)
    out = conn.data_to_send()
    if out:
        sock.sendall(out)
    return evs


def ping_abuse(port):
    sock, conn = connect(port)
    for i in range(10):
        conn.ping(bytes([i]) * 8)
        sock.sendall(conn.data_to_send())
        while True:
            evs = events(sock, conn)
            if evs is None:
                print("connection closed without GOAWAY", file=sys.stderr)
                return 1
            for e in evs:
                if isinstance(e, h2.events.ConnectionTerminated):
                    if e.error_code == 11:  # ENHANCE_YOUR_CALM
                        return 0
                    print(f"GOAWAY with {e.error_code}, expected ENHANCE_YOUR_CALM", file=sys.stderr)
                    return 1
            if any(isinstance(e, h2.events.PingAckReceived) for e in evs):
                break
    print("10 rapid PINGs were tolerated", file=sys.stderr)
    return 1


def stream_pings(port):
    # grpcio and grpc-go send a PING (a bandwidth probe) after data they receive. On a server stream whose messages are
    # spaced out, that is a PING per message: the server sends data in between, so none of them is abuse.
    sock, conn = connect(port)
    conn.send_headers(1, [(":method", "POST"), (":scheme", "http"), (":path", "/grpc.testing.TestService/StreamingOutputCall"),
                          (":authority", f"127.0.0.1:{port}"), ("content-type", "application/grpc"), ("te", "trailers")])
    # StreamingOutputCallRequest{response_parameters: 8 × {size: 10, interval_us: 20000}}, hand-encoded.
    parameters = b"\x08\x0a\x10" + bytes([0xa0, 0x9c, 0x01])
    request = (b"\x12" + bytes([len(parameters)]) + parameters) * 8
    conn.send_data(1, b"\x00" + len(request).to_bytes(4, "big") + request, end_stream=True)
    sock.sendall(conn.data_to_send())
    messages = 0
    while True:
        evs = events(sock, conn)
        if evs is None:
            print(f"connection closed after {messages} messages", file=sys.stderr)
            return 1
        for e in evs:
            if isinstance(e, h2.events.ConnectionTerminated):
                print(f"GOAWAY {e.error_code} after {messages} messages", file=sys.stderr)
                return 1
            if isinstance(e, h2.events.DataReceived):
                messages += 1
                conn.acknowledge_received_data(e.flow_controlled_length, 1)
                conn.ping(messages.to_bytes(8, "big"))
                sock.sendall(conn.data_to_send())
            if isinstance(e, h2.events.StreamEnded):
                if messages < 8:
                    print(f"the stream ended after {messages} messages", file=sys.stderr)
                    return 1
                return 0


def request_status(port, method, content_type):
    sock, conn = connect(port)
    conn.send_headers(1, [(":method", method), (":scheme", "http"), (":path", "/grpc.testing.TestService/EmptyCall"),
                          (":authority", f"127.0.0.1:{port}"), ("content-type", content_type), ("te", "trailers")],
                      end_stream=True)
    sock.sendall(conn.data_to_send())
    while True:
        evs = events(sock, conn)
        if evs is None:
            return None
        for e in evs:
            if isinstance(e, h2.events.ResponseReceived):
                return dict(e.headers).get(":status")


def unsupported_media_type(port):
    status = request_status(port, "POST", "text/plain")
    if status != "415":
        print(f"expected :status 415, got {status}", file=sys.stderr)
        return 1
    return 0


def method_not_allowed(port):
    status = request_status(port, "GET", "application/grpc")
    if status != "405":
        print(f"expected :status 405, got {status}", file=sys.stderr)
        return 1
    return 0


def malformed_frames(port):
    # Garbage after the preface must end in GOAWAY PROTOCOL_ERROR (or a close), and the server must keep serving.
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x04\x09\x00\x00\x00\x00\x01garbage!")
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, socket.timeout):
        pass
    return 0 if request_status(port, "POST", "text/plain") == "415" else 1


def keepalive_dead_peer(port):
    # A peer that completes the preface and then never answers: the server must PING it and, with no ACK, close.
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    data = b""
    started = time.monotonic()
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        print("the server kept a dead peer's connection open", file=sys.stderr)
        return 1
    types = []
    i = 0
    while i + 9 <= len(data):
        length = int.from_bytes(data[i:i + 3], "big")
        types.append(data[i + 3])
        i += 9 + length
    if 6 not in types:
        print(f"connection closed after {time.monotonic() - started:.1f}s without a PING (frames {types})", file=sys.stderr)
        return 1
    return 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--case", required=True)
    args = parser.parse_args()
    cases = {f.__name__: f for f in (ping_abuse, stream_pings, unsupported_media_type, method_not_allowed, malformed_frames, keepalive_dead_peer)}
    result = cases[args.case](args.port)
    if result == 0:
        print(f"PASS {args.case}")
    return result


if __name__ == "__main__":
    sys.exit(main())
