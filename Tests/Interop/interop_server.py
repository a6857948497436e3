"""A stock gRPC server for our interop client: Python grpcio serving grpc.testing.TestService as gRPC's interop test
descriptions require (doc/interop-test-descriptions.md, "Server"), so that `interop-client` (our GRPCChannel and
RPCClient) is checked against another implementation, plaintext or TLS.

    interop_server.py --port N [--tls CERT KEY]
Prints "listening <port>" once serving (port 0 picks one); stops on SIGTERM.
"""
import argparse
import os
import signal
import sys
import threading
import time
from concurrent import futures

STUBS = os.environ.get("SWITCHBOARD_INTEROP_STUBS")
if STUBS:
    sys.path.insert(0, STUBS)

import grpc  # noqa: E402
from sbproto.grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc  # noqa: E402


def echo_metadata(context):
    metadata = dict(context.invocation_metadata())
    initial = metadata.get("x-grpc-test-echo-initial")
    if initial is not None:
        context.send_initial_metadata((("x-grpc-test-echo-initial", initial),))
    trailing = metadata.get("x-grpc-test-echo-trailing-bin")
    if trailing is not None:
        context.set_trailing_metadata((("x-grpc-test-echo-trailing-bin", trailing),))


def payload(size):
    return messages_pb2.Payload(body=b"\0" * size)


def maybe_fail(request, context):
    if request.HasField("response_status") and request.response_status.code != 0:
        context.abort(grpc.StatusCode(_code(request.response_status.code)), request.response_status.message)


def _code(number):
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code.value
    return grpc.StatusCode.UNKNOWN.value


class TestService(test_pb2_grpc.TestServiceServicer):
    def EmptyCall(self, request, context):
        echo_metadata(context)
        return empty_pb2.Empty()

    def UnaryCall(self, request, context):
        echo_metadata(context)
        maybe_fail(request, context)
        return messages_pb2.SimpleResponse(payload=payload(request.response_size))

    def StreamingOutputCall(self, request, context):
        echo_metadata(context)
        for parameters in request.response_parameters:
            if parameters.interval_us:
                time.sleep(parameters.interval_us / 1e6)
            yield messages_pb2.StreamingOutputCallResponse(payload=payload(parameters.size))
        maybe_fail(request, context)

    def StreamingInputCall(self, request_iterator, context):
        echo_metadata(context)
        total = sum(len(r.payload.body) for r in request_iterator)
        return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)

    def FullDuplexCall(self, request_iterator, context):
        echo_metadata(context)
        for request in request_iterator:
            maybe_fail(request, context)
            for parameters in request.response_parameters:
                if parameters.interval_us:
                    time.sleep(parameters.interval_us / 1e6)
                yield messages_pb2.StreamingOutputCallResponse(payload=payload(parameters.size))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    test_pb2_grpc.add_TestServiceServicer_to_server(TestService(), server)
    address = f"127.0.0.1:{args.port}"
    if args.tls:
        with open(args.tls[0], "rb") as cert, open(args.tls[1], "rb") as key:
            credentials = grpc.ssl_server_credentials(((key.read(), cert.read()),))
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    server.start()
    print(f"listening {port}", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    server.stop(1).wait()


if __name__ == "__main__":
    main()
