"""Calls the collaboration service with the stock Python gRPC client (grpcio), from stubs generated from Protos/.

    collaboration_client.py --port N --token JWT
Exits non-zero with the reason on stderr when the service misbehaves.
"""
import argparse
import hashlib
import os
import sys
import uuid

sys.path.insert(0, os.environ.get("SWITCHBOARD_INTEROP_STUBS", ""))

import grpc  # noqa: E402
from google.protobuf import field_mask_pb2  # noqa: E402

from sbproto.google.rpc import error_details_pb2, status_pb2  # noqa: E402
from sbproto.switchboard.collaboration.v1 import collaboration_pb2 as pb, collaboration_pb2_grpc as pb_grpc  # noqa: E402


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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    metadata = (("authorization", f"Bearer {args.token}"),)
    with grpc.insecure_channel(f"127.0.0.1:{args.port}") as channel:
        stub = pb_grpc.CollaborationServiceStub(channel)
        contact = pb.Subject(type=pb.SUBJECT_TYPE_CONTACT, id=str(uuid.uuid4()))
        request_id = str(uuid.uuid4())
        note = stub.CreateNote(pb.CreateNoteRequest(note=pb.Note(subjects=[contact], body="hello", visibility=pb.VISIBILITY_TENANT),
                                                    request_id=request_id), metadata=metadata)
        again = stub.CreateNote(pb.CreateNoteRequest(note=pb.Note(subjects=[contact], body="hello", visibility=pb.VISIBILITY_TENANT),
                                                     request_id=request_id), metadata=metadata)
        if again.id != note.id or note.etag != '"1"':
            fail(f"create {note} / retry {again}")
        updated = stub.UpdateNote(pb.UpdateNoteRequest(note=pb.Note(id=note.id, body="hello again"), etag=note.etag,
                                                       update_mask=field_mask_pb2.FieldMask(paths=["body"])), metadata=metadata)
        if updated.body != "hello again":
            fail(f"update {updated}")
        listed = stub.ListNotes(pb.ListNotesRequest(subject=contact), metadata=metadata)
        if [n.id for n in listed.notes] != [note.id]:
            fail(f"list {listed}")
        comment = stub.CreateComment(pb.CreateCommentRequest(comment=pb.Comment(note_id=note.id, body="+1")), metadata=metadata)
        if comment.note_id != note.id:
            fail(f"comment {comment}")

        e = expect_code(lambda: stub.CreateNote(pb.CreateNoteRequest(note=pb.Note()), metadata=metadata),
                        grpc.StatusCode.INVALID_ARGUMENT)
        status = status_pb2.Status.FromString(dict(e.trailing_metadata()).get("grpc-status-details-bin"))
        bad = error_details_pb2.BadRequest()
        bad.ParseFromString(status.details[0].value)
        if {v.field for v in bad.field_violations} != {"note.subjects", "note.body"}:
            fail(f"field violations {bad}")

        # A client stream up, a server stream down.
        content = os.urandom(700_000)
        def parts():
            yield pb.UploadFileRequest(metadata=pb.UploadFileMetadata(file=pb.File(
                name="a.bin", size_bytes=len(content), sha256=hashlib.sha256(content).hexdigest(), subjects=[contact])))
            for i in range(0, len(content), 65_536):
                yield pb.UploadFileRequest(chunk=content[i:i + 65_536])
        stored = stub.UploadFile(parts(), metadata=metadata, timeout=10)
        chunks = list(stub.DownloadFile(pb.DownloadFileRequest(id=stored.id), metadata=metadata, timeout=10))
        if chunks[0].file.id != stored.id or b"".join(c.data for c in chunks) != content:
            fail("download differs from upload")

        announcement = stub.CreateNotification(pb.CreateNotificationRequest(notification=pb.Notification(
            user_ids=["user-1"], title="hi")), metadata=metadata)
        stream = stub.SubscribeNotifications(pb.SubscribeNotificationsRequest(after_id=0), metadata=metadata, timeout=5)
        first = next(stream)
        stream.cancel()
        if first.id != announcement.id or first.title != "hi":
            fail(f"stream {first}")
    print("PASS collaboration_client")
    return 0


if __name__ == "__main__":
    sys.exit(main())
