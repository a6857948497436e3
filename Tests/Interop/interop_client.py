"""gRPC interop test cases, run by the stock Python client (grpcio) against a Switchboard server.

Follows gRPC's interop test descriptions (doc/interop-test-descriptions.md). Usage:
    interop_client.py --port N --test_case NAME     (or --test_case all)
Exits non-zero, with the reason on stderr, when a case fails.
"""
import argparse
import os
import sys
import threading
import time

STUBS = os.environ.get("SWITCHBOARD_INTEROP_STUBS")
if STUBS:
    sys.path.insert(0, STUBS)

import grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from grpc_reflection.v1alpha import reflection_pb2 as ralpha, reflection_pb2_grpc as ralpha_grpc  # noqa: E402
from google.protobuf import descriptor_pb2  # noqa: E402

from sbproto.grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc  # noqa: E402
from sbproto.grpc.reflection.v1 import reflection_pb2 as rv1, reflection_pb2_grpc as rv1_grpc  # noqa: E402


class CaseFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise CaseFailed(message)


def payload(size):
    return messages_pb2.Payload(body=b"\x00" * size)


def expect_error(fn, code, message=None):
    try:
        fn()
    except grpc.RpcError as e:
        check(e.code() == code, f"expected {code}, got {e.code()} ({e.details()!r})")
        if message is not None:
            check(e.details() == message, f"expected message {message!r}, got {e.details()!r}")
        return e
    raise CaseFailed(f"expected {code}, the call succeeded")


def empty_unary(stub, channel):
    r = stub.EmptyCall(empty_pb2.Empty())
    check(r == empty_pb2.Empty(), "response is not empty")


def large_unary(stub, channel):
    r = stub.UnaryCall(messages_pb2.SimpleRequest(response_size=314159, payload=payload(271828)))
    check(len(r.payload.body) == 314159, f"payload size {len(r.payload.body)}")
    check(r.payload.body == b"\x00" * 314159, "payload is not all zeros")


def client_compressed_unary(stub, channel):
    # Probe: the server must reject an uncompressed message it was told to expect compressed.
    expect_error(lambda: stub.UnaryCall(messages_pb2.SimpleRequest(
        response_size=314159, payload=payload(271828),
        expect_compressed=messages_pb2.BoolValue(value=True))), grpc.StatusCode.INVALID_ARGUMENT)
    r = stub.UnaryCall(messages_pb2.SimpleRequest(
        response_size=314159, payload=payload(271828), expect_compressed=messages_pb2.BoolValue(value=True)),
        compression=grpc.Compression.Gzip)
    check(len(r.payload.body) == 314159, "compressed request: wrong response size")
    r = stub.UnaryCall(messages_pb2.SimpleRequest(
        response_size=314159, payload=payload(271828), expect_compressed=messages_pb2.BoolValue(value=False)))
    check(len(r.payload.body) == 314159, "uncompressed request: wrong response size")


def server_compressed_unary(stub, channel):
    for compressed in (True, False):
        r = stub.UnaryCall(messages_pb2.SimpleRequest(
            response_size=314159, payload=payload(271828),
            response_compressed=messages_pb2.BoolValue(value=compressed)))
        check(len(r.payload.body) == 314159, f"response_compressed={compressed}: wrong size")


def client_streaming(stub, channel, compression=None):
    sizes = [27182, 8, 1828, 45904]
    r = stub.StreamingInputCall(
        iter([messages_pb2.StreamingInputCallRequest(payload=payload(s)) for s in sizes]), compression=compression)
    check(r.aggregated_payload_size == 74922, f"aggregated size {r.aggregated_payload_size}")


def client_compressed_streaming(stub, channel):
    r = stub.StreamingInputCall(iter([
        messages_pb2.StreamingInputCallRequest(payload=payload(27182), expect_compressed=messages_pb2.BoolValue(value=True)),
        messages_pb2.StreamingInputCallRequest(payload=payload(45904)),
    ]), compression=grpc.Compression.Gzip)
    check(r.aggregated_payload_size == 73086, f"aggregated size {r.aggregated_payload_size}")


def server_streaming(stub, channel):
    sizes = [31415, 9, 2653, 58979]
    responses = list(stub.StreamingOutputCall(messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=s) for s in sizes])))
    check([len(r.payload.body) for r in responses] == sizes, f"sizes {[len(r.payload.body) for r in responses]}")


def server_compressed_streaming(stub, channel):
    responses = list(stub.StreamingOutputCall(messages_pb2.StreamingOutputCallRequest(response_parameters=[
        messages_pb2.ResponseParameters(size=31415, compressed=messages_pb2.BoolValue(value=True)),
        messages_pb2.ResponseParameters(size=92653, compressed=messages_pb2.BoolValue(value=False)),
    ])))
    check([len(r.payload.body) for r in responses] == [31415, 92653], "wrong sizes")


def ping_pong(stub, channel):
    requests = [(31415, 27182), (9, 8), (2653, 1828), (58979, 45904)]
    queue = []
    cond = threading.Condition()

    def gen():
        for resp_size, req_size in requests:
            with cond:
                queue.append(1)
            yield messages_pb2.StreamingOutputCallRequest(
                response_parameters=[messages_pb2.ResponseParameters(size=resp_size)], payload=payload(req_size))
            with cond:
                cond.wait_for(lambda: not queue, timeout=10)

    call = stub.FullDuplexCall(gen())
    for (resp_size, _), response in zip(requests, call):
        check(len(response.payload.body) == resp_size, f"size {len(response.payload.body)} != {resp_size}")
        with cond:
            queue.clear()
            cond.notify_all()


def empty_stream(stub, channel):
    responses = list(stub.FullDuplexCall(iter([])))
    check(responses == [], "expected no responses")


def timeout_on_sleeping_server(stub, channel):
    never = threading.Event()

    def requests():
        yield messages_pb2.StreamingOutputCallRequest(payload=payload(27182))
        never.wait(5)  # keep the request stream open, as the interop description requires

    def call():
        list(stub.FullDuplexCall(requests(), timeout=0.001))
    expect_error(call, grpc.StatusCode.DEADLINE_EXCEEDED)
    never.set()
    # A server-side deadline: the handler sleeps longer than the caller waits.
    def slow():
        list(stub.StreamingOutputCall(messages_pb2.StreamingOutputCallRequest(
            response_parameters=[messages_pb2.ResponseParameters(size=1, interval_us=2_000_000)]), timeout=0.2))
    expect_error(slow, grpc.StatusCode.DEADLINE_EXCEEDED)


def cancel_after_begin(stub, channel):
    def gen():
        time.sleep(10)
        yield messages_pb2.StreamingInputCallRequest()
    future = stub.StreamingInputCall.future(gen())
    time.sleep(0.05)
    future.cancel()
    check(future.cancelled(), "the call was not cancelled")


def cancel_after_first_response(stub, channel):
    stop = threading.Event()

    def gen():
        yield messages_pb2.StreamingOutputCallRequest(
            response_parameters=[messages_pb2.ResponseParameters(size=31415)], payload=payload(27182))
        stop.wait(10)

    call = stub.FullDuplexCall(gen())
    first = next(call)
    check(len(first.payload.body) == 31415, "wrong first response")
    call.cancel()
    stop.set()
    try:
        next(call)
        raise CaseFailed("stream continued after cancel")
    except grpc.RpcError as e:
        check(e.code() == grpc.StatusCode.CANCELLED, f"expected CANCELLED, got {e.code()}")


def custom_metadata(stub, channel):
    initial = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
    trailing = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")
    metadata = (initial, trailing)
    _, call = stub.UnaryCall.with_call(
        messages_pb2.SimpleRequest(response_size=314159, payload=payload(271828)), metadata=metadata)
    check(initial in call.initial_metadata(), f"initial metadata {call.initial_metadata()}")
    check(trailing in call.trailing_metadata(), f"trailing metadata {call.trailing_metadata()}")
    call = stub.FullDuplexCall(iter([messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=314159)], payload=payload(271828))]),
        metadata=metadata)
    responses = list(call)
    check(len(responses) == 1, "expected one response")
    check(initial in call.initial_metadata(), "duplex initial metadata")
    check(trailing in call.trailing_metadata(), "duplex trailing metadata")


def status_code_and_message(stub, channel):
    message = "test status message"
    status = messages_pb2.EchoStatus(code=2, message=message)
    expect_error(lambda: stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status)),
                 grpc.StatusCode.UNKNOWN, message)
    expect_error(lambda: list(stub.FullDuplexCall(iter([messages_pb2.StreamingOutputCallRequest(
        response_status=status)]))), grpc.StatusCode.UNKNOWN, message)


def special_status_message(stub, channel):
    message = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
    expect_error(lambda: stub.UnaryCall(messages_pb2.SimpleRequest(
        response_status=messages_pb2.EchoStatus(code=2, message=message))), grpc.StatusCode.UNKNOWN, message)


def unimplemented_method(stub, channel):
    expect_error(lambda: stub.UnimplementedCall(empty_pb2.Empty()), grpc.StatusCode.UNIMPLEMENTED)


def unimplemented_service(stub, channel):
    other = test_pb2_grpc.UnimplementedServiceStub(channel)
    expect_error(lambda: other.UnimplementedCall(empty_pb2.Empty()), grpc.StatusCode.UNIMPLEMENTED)


def max_message_size(stub, channel):
    # 4 MiB default limit on the server: a larger request is refused, not buffered.
    expect_error(lambda: stub.UnaryCall(messages_pb2.SimpleRequest(payload=payload(5 * 1024 * 1024))),
                 grpc.StatusCode.RESOURCE_EXHAUSTED)
    stub.EmptyCall(empty_pb2.Empty())  # the connection survives


def undecodable_request(stub, channel):
    # Bytes that are not a SimpleRequest (a 5-byte field with 1 byte present) sent raw: INTERNAL, as grpc-go and
    # grpc-java answer a request they cannot deserialize, naming the type; the connection survives.
    raw = channel.unary_unary("/grpc.testing.TestService/UnaryCall")
    error = expect_error(lambda: raw(b"\x0a\x05\x61"), grpc.StatusCode.INTERNAL)
    check("grpc.testing.SimpleRequest" in (error.details() or ""), f"message {error.details()!r}")
    stub.EmptyCall(empty_pb2.Empty())


def health_check(stub, channel):
    health = health_pb2_grpc.HealthStub(channel)
    r = health.Check(health_pb2.HealthCheckRequest(service=""))
    check(r.status == health_pb2.HealthCheckResponse.SERVING, f"server status {r.status}")
    r = health.Check(health_pb2.HealthCheckRequest(service="grpc.testing.TestService"))
    check(r.status == health_pb2.HealthCheckResponse.SERVING, f"service status {r.status}")
    expect_error(lambda: health.Check(health_pb2.HealthCheckRequest(service="no.such.Service")),
                 grpc.StatusCode.NOT_FOUND)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
    first = next(watch)
    check(first.status == health_pb2.HealthCheckResponse.SERVING, "watch first status")
    watch.cancel()


def reflection(stub, channel):
    expected = {"grpc.testing.TestService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection"}
    # v1alpha, as older tools (and grpcio-reflection's descriptor database) use it.
    alpha = ralpha_grpc.ServerReflectionStub(channel)
    responses = list(alpha.ServerReflectionInfo(iter([ralpha.ServerReflectionRequest(list_services="")])))
    names = {s.name for s in responses[0].list_services_response.service}
    check(expected <= names, f"v1alpha services {names}")
    # v1: list, then describe the test service by symbol and check the descriptor parses.
    v1 = rv1_grpc.ServerReflectionStub(channel)
    responses = list(v1.ServerReflectionInfo(iter([
        rv1.ServerReflectionRequest(list_services=""),
        rv1.ServerReflectionRequest(file_containing_symbol="grpc.testing.TestService"),
        rv1.ServerReflectionRequest(file_by_filename="no/such.proto"),
    ])))
    check(len(responses) == 3, f"{len(responses)} responses")
    check(expected <= {s.name for s in responses[0].list_services_response.service}, "v1 services")
    files = [descriptor_pb2.FileDescriptorProto.FromString(b)
             for b in responses[1].file_descriptor_response.file_descriptor_proto]
    check(files and files[0].name == "grpc/testing/test.proto", f"files {[f.name for f in files]}")
    check({"grpc/testing/empty.proto", "grpc/testing/messages.proto"} <= {f.name for f in files}, "dependencies")
    methods = [m.name for m in files[0].service[0].method]
    check("UnaryCall" in methods and "FullDuplexCall" in methods, f"methods {methods}")
    check(responses[2].error_response.error_code == 5, "unknown file should be NOT_FOUND")
    # The full descriptor-database path grpcurl-style tools use.
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
    from google.protobuf.descriptor_pool import DescriptorPool
    pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    service = pool.FindServiceByName("grpc.testing.TestService")
    check(service.FindMethodByName("UnaryCall").input_type.full_name == "grpc.testing.SimpleRequest", "pool lookup")


CASES = [
    empty_unary, large_unary, client_compressed_unary, server_compressed_unary, client_streaming,
    client_compressed_streaming, server_streaming, server_compressed_streaming, ping_pong, empty_stream,
    timeout_on_sleeping_server, cancel_after_begin, cancel_after_first_response, custom_metadata,
    status_code_and_message, special_status_message, unimplemented_method, unimplemented_service,
    max_message_size, undecodable_request, health_check, reflection,
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--test_case", default="all")
    parser.add_argument("--tls_ca", help="PEM file to trust: connect with TLS (ALPN h2) instead of plaintext")
    args = parser.parse_args()
    cases = CASES if args.test_case == "all" else [c for c in CASES if c.__name__ == args.test_case]
    if not cases:
        print(f"unknown test case {args.test_case}", file=sys.stderr)
        return 2
    options = [("grpc.max_receive_message_length", 8 * 1024 * 1024),
               ("grpc.max_send_message_length", 8 * 1024 * 1024)]
    failed = 0
    if args.tls_ca:
        credentials = grpc.ssl_channel_credentials(root_certificates=open(args.tls_ca, "rb").read())
        channel = grpc.secure_channel(f"{args.host}:{args.port}", credentials, options=options)
    else:
        channel = grpc.insecure_channel(f"{args.host}:{args.port}", options=options)
    with channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        stub = test_pb2_grpc.TestServiceStub(channel)
        for case in cases:
            try:
                case(stub, channel)
                print(f"PASS {case.__name__}")
            except Exception as e:  # noqa: BLE001 - report every failure kind
                failed += 1
                print(f"FAIL {case.__name__}: {type(e).__name__}: {e}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
