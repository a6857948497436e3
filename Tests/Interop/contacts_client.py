"""Calls the contacts service with the stock Python gRPC client (grpcio), from stubs generated from Protos/.

    contacts_client.py --port N --token JWT
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
from sbproto.switchboard.common.v1 import change_pb2, types_pb2  # noqa: E402
from sbproto.switchboard.contacts.v1 import contacts_pb2 as pb, contacts_pb2_grpc as pb_grpc  # noqa: E402


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    metadata = (("authorization", f"Bearer {args.token}"),)
    with grpc.insecure_channel(f"127.0.0.1:{args.port}") as channel:
        stub = pb_grpc.ContactsServiceStub(channel)
        request_id = str(uuid.uuid4())
        contact = pb.Contact(name=pb.PersonName(given="Katherine", family="Johnson"),
                             emails=[pb.Email(address="kj@example.com")], phones=[pb.Phone(number="+1 757 555 0100")],
                             tags=["NASA"])
        created = stub.CreateContact(pb.CreateContactRequest(contact=contact, request_id=request_id), metadata=metadata)
        if created.phones[0].e164 != "+17575550100" or created.tags != ["nasa"] or not created.etag:
            fail(f"unexpected create response {created}")
        again = stub.CreateContact(pb.CreateContactRequest(contact=contact, request_id=request_id), metadata=metadata)
        if again.id != created.id:
            fail("a retried create made a second contact")
        got = stub.GetContact(pb.GetContactRequest(id=created.id), metadata=metadata)
        if got != created:
            fail("get differs from create")
        updated = stub.UpdateContact(pb.UpdateContactRequest(
            contact=pb.Contact(id=created.id, status=pb.CONTACT_STATUS_CUSTOMER),
            update_mask=field_mask_pb2.FieldMask(paths=["status"]), etag=created.etag), metadata=metadata)
        if updated.status != pb.CONTACT_STATUS_CUSTOMER or updated.etag == created.etag:
            fail("update did not apply")
        listed = stub.ListContacts(pb.ListContactsRequest(page=types_pb2.PageRequest(page_size=10)), metadata=metadata)
        if [c.id for c in listed.contacts] != [created.id]:
            fail(f"list returned {[c.id for c in listed.contacts]}")

        # Errors: the right codes, and field violations a stock client can decode from grpc-status-details-bin.
        try:
            stub.CreateContact(pb.CreateContactRequest(contact=pb.Contact(emails=[pb.Email(address="nope")])), metadata=metadata)
            fail("invalid contact accepted")
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
                fail(f"expected INVALID_ARGUMENT, got {e.code()}")
            details = dict(e.trailing_metadata()).get("grpc-status-details-bin")
            status = status_pb2.Status.FromString(details)
            bad = error_details_pb2.BadRequest()
            status.details[0].Unpack(bad) if hasattr(status.details[0], "Unpack") else bad.ParseFromString(status.details[0].value)
            fields = {v.field for v in bad.field_violations}
            if not {"contact.name", "contact.emails[0].address"} <= fields:
                fail(f"field violations {fields}")
        for call, code in [
            (lambda: stub.UpdateContact(pb.UpdateContactRequest(contact=pb.Contact(id=created.id, tags=["x"]),
                                                               update_mask=field_mask_pb2.FieldMask(paths=["tags"]),
                                                               etag=created.etag), metadata=metadata), grpc.StatusCode.ABORTED),
            (lambda: stub.GetContact(pb.GetContactRequest(id=str(uuid.uuid4())), metadata=metadata), grpc.StatusCode.NOT_FOUND),
            (lambda: stub.ListContacts(pb.ListContactsRequest()), grpc.StatusCode.UNAUTHENTICATED),
        ]:
            try:
                call()
                fail(f"expected {code}")
            except grpc.RpcError as e:
                if e.code() != code:
                    fail(f"expected {code}, got {e.code()}: {e.details()}")

        # The change feed: replay from the start.
        events = stub.WatchChanges(change_pb2.WatchChangesRequest(from_sequence=0), metadata=metadata, timeout=5)
        kinds = []
        for event in events:
            kinds.append(event.kind)
            if len(kinds) == 2:
                events.cancel()
                break
        if kinds != [change_pb2.CHANGE_KIND_CREATED, change_pb2.CHANGE_KIND_UPDATED]:
            fail(f"change kinds {kinds}")
    print("PASS contacts_client")
    return 0


if __name__ == "__main__":
    sys.exit(main())
