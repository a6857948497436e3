"""Calls the communication service with the stock Python gRPC client (grpcio), from stubs generated from Protos/.

    communication_client.py --port N --token JWT
Exits non-zero with the reason on stderr when the service misbehaves.
"""
import argparse
import os
import sys
import uuid

sys.path.insert(0, os.environ.get("SWITCHBOARD_INTEROP_STUBS", ""))

import grpc  # noqa: E402
from google.protobuf import field_mask_pb2  # noqa: E402

from sbproto.google.rpc import error_details_pb2, status_pb2  # noqa: E402
from sbproto.switchboard.common.v1 import types_pb2  # noqa: E402
from sbproto.switchboard.communication.v1 import communication_pb2 as pb, communication_pb2_grpc as pb_grpc  # noqa: E402


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def expect_code(call, code):
    try:
        call()
    except grpc.RpcError as e:
        if e.code() != code:
            fail(f"expected {code}, got {e.code()}: {e.details()}")
        return e
    fail(f"expected {code}")


def violations(error):
    """The field names of the google.rpc.BadRequest in an error's grpc-status-details-bin."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad = error_details_pb2.BadRequest()
                    detail.Unpack(bad)
                    return [v.field for v in bad.field_violations]
    return []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    metadata = (("authorization", f"Bearer {args.token}"),)
    with grpc.insecure_channel(f"127.0.0.1:{args.port}") as channel:
        stub = pb_grpc.CommunicationServiceStub(channel)
        contact = str(uuid.uuid4())
        request_id = str(uuid.uuid4())
        interaction = pb.Interaction(kind=pb.INTERACTION_KIND_CALL, direction=pb.DIRECTION_OUTBOUND, contact_ids=[contact],
                                     subject="Intro call", body="notes", duration_seconds=300)
        logged = stub.LogInteraction(pb.LogInteractionRequest(interaction=interaction, request_id=request_id), metadata=metadata)
        if logged.contact_ids != [contact] or logged.etag != '"1"' or not logged.id:
            fail(f"unexpected log response {logged}")
        again = stub.LogInteraction(pb.LogInteractionRequest(interaction=interaction, request_id=request_id), metadata=metadata)
        if again != logged:
            fail("a retried LogInteraction did not replay the first response")
        updated = stub.UpdateInteraction(
            pb.UpdateInteractionRequest(interaction=pb.Interaction(id=logged.id, outcome="connected"),
                                        update_mask=field_mask_pb2.FieldMask(paths=["outcome"]), etag=logged.etag),
            metadata=metadata)
        if updated.outcome != "connected" or updated.subject != "Intro call":
            fail(f"unexpected update response {updated}")
        page = stub.ListInteractions(pb.ListInteractionsRequest(contact_id=contact, page=types_pb2.PageRequest(page_size=10)),
                                     metadata=metadata)
        if [i.id for i in page.interactions] != [logged.id]:
            fail(f"unexpected list {page}")
        error = expect_code(lambda: stub.LogInteraction(pb.LogInteractionRequest(interaction=pb.Interaction(subject="x" * 999)),
                                                        metadata=metadata), grpc.StatusCode.INVALID_ARGUMENT)
        if set(violations(error)) != {"interaction.kind", "interaction.subject"} and violations(error) != ["interaction.kind"]:
            fail(f"unexpected violations {violations(error)}")
        # A NUL byte in a string is refused before decoding (protoc-c would cut the text at it), naming the field.
        error = expect_code(lambda: stub.LogInteraction(
            pb.LogInteractionRequest(interaction=pb.Interaction(kind=pb.INTERACTION_KIND_OTHER, subject="a\x00b")), metadata=metadata),
            grpc.StatusCode.INVALID_ARGUMENT)
        if "interaction.subject" not in (error.details() or ""):
            fail(f"the NUL refusal does not name the field: {error.details()}")
        decision = stub.CheckConsent(pb.CheckConsentRequest(contact_id=contact, channel=pb.CHANNEL_EMAIL, purpose="marketing"),
                                     metadata=metadata)
        if decision.allowed or decision.reason != pb.CheckConsentResponse.REASON_NO_CONSENT:
            fail(f"unexpected consent decision {decision}")
        error = expect_code(lambda: stub.SendMessage(pb.SendMessageRequest(send=pb.Send(contact_id=contact)), metadata=metadata),
                            grpc.StatusCode.INVALID_ARGUMENT)
        if "request_id" not in violations(error) and "send.channel" not in violations(error):
            fail(f"unexpected violations {violations(error)}")
        expect_code(lambda: stub.GetInteraction(pb.GetInteractionRequest(id=str(uuid.uuid4())), metadata=metadata),
                    grpc.StatusCode.NOT_FOUND)
        expect_code(lambda: stub.GetInteraction(pb.GetInteractionRequest(id=logged.id)), grpc.StatusCode.UNAUTHENTICATED)
    print("PASS communication_client")


if __name__ == "__main__":
    main()
