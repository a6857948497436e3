#!/usr/bin/env python3
"""Writes the seed corpora under Fuzz/Corpus/<target>/ (committed). Run with the project's venv after
`Tests/Interop/gen_stubs.sh DIR`:  .venv/bin/python Fuzz/seed_corpus.py DIR

Every seed is a meaningful input: valid documents, tokens, framed and compressed messages, one encoding of every
request message with every field set, and client connections (preface, SETTINGS, HEADERS, DATA) for real calls."""
import base64
import gzip
import hashlib
import json
import os
import shutil
import struct
import sys
import zlib

sys.path.insert(0, sys.argv[1])
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate  # noqa: E402
import h2.config  # noqa: E402
import h2.connection  # noqa: E402
from google.protobuf import descriptor_pool, message_factory  # noqa: E402
from google.protobuf.descriptor import FieldDescriptor  # noqa: E402
import sbproto.grpc.health.v1.health_pb2  # noqa: E402,F401
import sbproto.grpc.reflection.v1.reflection_pb2  # noqa: E402,F401
import sbproto.grpc.reflection.v1alpha.reflection_pb2  # noqa: E402,F401
import sbproto.grpc.testing.messages_pb2 as messages  # noqa: E402
import sbproto.grpc.testing.empty_pb2  # noqa: E402,F401
import sbproto.switchboard.common.v1.change_pb2  # noqa: E402,F401
import sbproto.switchboard.contacts.v1.contacts_pb2  # noqa: E402,F401

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Corpus")


def write(target, seeds):
    folder = os.path.join(CORPUS, target)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    for seed in seeds:
        # Named by content, as libFuzzer names what it adds.
        with open(os.path.join(folder, hashlib.sha1(seed).hexdigest()), "wb") as f:
            f.write(seed)


# JSON reader --------------------------------------------------------------------------------------------------------
json_seeds = [
    b'null', b'true', b'false', b'0', b'-0.5e-3', b'123456789012345678901234567890', b'1E400', b'""',
    b'"plain"', b'"esc \\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00"', b'[]', b'{}', b' [1, 2.5, "x", null] ',
    b'{"a": {"b": [true, false, {"c": null}]}, "n": -12.75e+2, "s": "caf\xc3\xa9"}',
    json.dumps({"event": "contact.created", "tenant": "t1", "id": "5f1c1c8e-7b1a-4a57-9f0e-1d6f4f0b8a11",
                "fields": {"vip": True, "score": 9.5, "tags": ["a", "b"]}}).encode(),
    b'[' * 40 + b']' * 40,
]
write("FuzzJSON", json_seeds)


# Page tokens ----------------------------------------------------------------------------------------------------------
def page_token(key, uuid, fingerprint):
    raw = json.dumps({"cursor": {"key": key, "id": uuid}, "fingerprint": fingerprint}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=")


write("FuzzPageToken", [
    page_token("1700000000000000", "5F1C1C8E-7B1A-4A57-9F0E-1D6F4F0B8A11", "1x2y3z"),
    page_token("Smith", "00000000-0000-0000-0000-000000000000", "abc"),
    page_token("", "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", ""),
    base64.urlsafe_b64encode(b'{"cursor":{"key":"k","id":"not-a-uuid"},"fingerprint":"f"}').rstrip(b"="),
    b"", b"not base64!", b"e30",
])


# Deframer -------------------------------------------------------------------------------------------------------------
def frame(payload, compressed=False):
    return struct.pack(">BI", 1 if compressed else 0, len(payload)) + payload


def deflate(payload):
    return zlib.compress(payload)


def gz(payload):
    return gzip.compress(payload, mtime=0)


hello = messages.SimpleRequest(response_size=10, payload=messages.Payload(body=b"hello" * 20)).SerializeToString()
# Byte 0: encoding index (identity 0, gzip 1, deflate 2) + 3 for the 300-byte limit; byte 1: piece size - 1.
write("FuzzDeframer", [
    bytes([0, 255]) + frame(hello) + frame(b""),
    bytes([0, 0]) + frame(hello)[:7],
    bytes([1, 16]) + frame(gz(hello), True) + frame(hello),
    bytes([2, 3]) + frame(deflate(hello), True) + frame(deflate(b""), True),
    bytes([4, 255]) + frame(gz(b"\0" * 100_000), True),
    bytes([5, 255]) + frame(deflate(b"a" * 5000), True),
    bytes([3, 255]) + frame(b"x" * 301),
    bytes([0, 255]) + bytes([2, 0, 0, 0, 1, 0]),
])


# Request messages -----------------------------------------------------------------------------------------------------
pool = descriptor_pool.Default()


def filled(descriptor, depth=0):
    """A message with every field set to a non-default value (one member of each oneof, nesting to depth 3)."""
    message = message_factory.GetMessageClass(descriptor)()
    seen_oneofs = set()
    for field in descriptor.fields:
        if field.containing_oneof is not None:
            if field.containing_oneof.name in seen_oneofs:
                continue
            seen_oneofs.add(field.containing_oneof.name)
        if field.type in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
            if depth >= 3:
                continue
            if field.message_type.GetOptions().map_entry:
                value_field = field.message_type.fields_by_name["value"]
                for key in ("k1", "k2") if field.message_type.fields_by_name["key"].type == FieldDescriptor.TYPE_STRING else (1, 2):
                    if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                        getattr(message, field.name)[key].CopyFrom(filled(value_field.message_type, depth + 1))
                    else:
                        getattr(message, field.name)[key] = scalar(value_field)
            elif field.is_repeated:
                for _ in range(2):
                    getattr(message, field.name).add().CopyFrom(filled(field.message_type, depth + 1))
            else:
                getattr(message, field.name).CopyFrom(filled(field.message_type, depth + 1))
        elif field.is_repeated:
            getattr(message, field.name).extend([scalar(field), scalar(field)])
        else:
            setattr(message, field.name, scalar(field))
    return message


def scalar(field):
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        return "sample-" + field.name
    if t == FieldDescriptor.TYPE_BYTES:
        return b"\x00\x01bytes"
    if t == FieldDescriptor.TYPE_BOOL:
        return True
    if t == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values[-1].number
    if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        return 2.5
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32,
             FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return -7
    return 7


proto_seeds = []
for index, (_, full_name, _) in enumerate(generate.request_types()):
    descriptor = pool.FindMessageTypeByName(full_name)
    proto_seeds.append(bytes([index]) + b"")
    proto_seeds.append(bytes([index]) + filled(descriptor).SerializeToString())
# The nesting the wire allows and protoc-c follows: a Struct in a contact, 30 levels of lists.
contacts = sys.modules["sbproto.switchboard.contacts.v1.contacts_pb2"]
create_index = [n for _, n, _ in generate.request_types()].index("switchboard.contacts.v1.CreateContactRequest")
request = contacts.CreateContactRequest(request_id="r1")
request.contact.name.given = "Ada"
value = request.contact.custom_fields.fields["deep"]
for _ in range(30):
    value = value.list_value.values.add()
value.string_value = "bottom"
proto_seeds.append(bytes([create_index]) + request.SerializeToString())
write("FuzzProtoDecode", proto_seeds)


# HTTP/2 connections ---------------------------------------------------------------------------------------------------
def connection(calls, extra=None):
    """A client connection's bytes: preface, SETTINGS, then each call's HEADERS and DATA frames."""
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding=None))
    conn.initiate_connection()
    for path, bodies, headers, end in calls:
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [
            (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
            ("content-type", "application/grpc"), ("te", "trailers"),
            ("grpc-accept-encoding", "identity, deflate, gzip"), ("user-agent", "grpc-python/1.85.1"),
        ] + headers)
        for i, body in enumerate(bodies):
            conn.send_data(stream, body, end_stream=end and i == len(bodies) - 1)
        if not bodies and end:
            conn.end_stream(stream)
    if extra:
        extra(conn)
    return conn.data_to_send()


T = "/grpc.testing.TestService/"
health = sys.modules["sbproto.grpc.health.v1.health_pb2"]
check = frame(health.HealthCheckRequest(service="").SerializeToString())
unary = frame(messages.SimpleRequest(response_size=8, payload=messages.Payload(body=b"ping")).SerializeToString())
out_req = messages.StreamingOutputCallRequest(response_parameters=[
    messages.ResponseParameters(size=4), messages.ResponseParameters(size=16, compressed=messages.BoolValue(value=True))])
in_req = messages.StreamingInputCallRequest(payload=messages.Payload(body=b"x" * 64))
write("FuzzHTTP2Server", [
    connection([("/grpc.health.v1.Health/Check", [check], [], True)]),
    connection([("/grpc.health.v1.Health/Watch", [check], [("grpc-timeout", "5S")], True)]),
    connection([(T + "EmptyCall", [frame(b"")], [("x-grpc-test-echo-initial", "hi"),
                                                  ("x-grpc-test-echo-trailing-bin", "AAEC")], True)]),
    connection([(T + "UnaryCall", [unary], [("grpc-timeout", "200m")], True),
                (T + "UnaryCall", [frame(gz(unary[5:]), True)], [("grpc-encoding", "gzip")], True)]),
    connection([(T + "StreamingOutputCall", [frame(out_req.SerializeToString())], [], True)]),
    connection([(T + "StreamingInputCall", [frame(in_req.SerializeToString())] * 3, [], True)]),
    connection([(T + "FullDuplexCall", [frame(deflate(out_req.SerializeToString()), True)],
                 [("grpc-encoding", "deflate")], False)]),
    connection([(T + "HalfDuplexCall", [frame(out_req.SerializeToString()) * 2], [], True)]),
    connection([(T + "UnimplementedCall", [frame(b"")], [], True), ("/no.Such/Method", [frame(b"")], [], True)]),
    connection([(T + "UnaryCall", [unary[:9]], [], True)]),
    connection([(T + "FullDuplexCall", [frame(out_req.SerializeToString())], [], False)],
               lambda c: (c.ping(b"12345678"), c.reset_stream(1), c.close_connection())),
    connection([], lambda c: c.ping(b"abcdefgh")),
    b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
])
