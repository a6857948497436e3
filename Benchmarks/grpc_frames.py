"""Hand-built protobuf request bodies for h2load and nghttp: the benchmarks' searches, framed as gRPC messages.

Only what the benchmark requests use: length-delimited fields (strings, nested messages) and varints.
"""
import struct


def varint(n):
    """A protobuf varint."""
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def field(n, payload):
    """A length-delimited field: number n, the payload's bytes."""
    return varint(n << 3 | 2) + varint(len(payload)) + payload


def number(n, value):
    """A varint field: number n, the value (an enum, a bool as 1)."""
    return varint(n << 3) + varint(value)


def frame(message):
    """A gRPC message: uncompressed, its length big-endian, then the bytes."""
    return b"\x00" + struct.pack(">I", len(message)) + message
