"""Calls the analytics service with the stock Python gRPC client (grpcio), from stubs generated from Protos/.

    analytics_client.py --port N --token JWT   (a manager's token)
Exits non-zero with the reason on stderr when the service misbehaves.
"""
import argparse
import os
import sys
import uuid

sys.path.insert(0, os.environ.get("SWITCHBOARD_INTEROP_STUBS", ""))

import grpc  # noqa: E402

from sbproto.google.rpc import error_details_pb2, status_pb2  # noqa: E402
from sbproto.switchboard.common.v1 import change_pb2  # noqa: E402
from sbproto.switchboard.analytics.v1 import analytics_pb2 as pb, analytics_pb2_grpc as pb_grpc  # noqa: E402


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def violations(call):
    try:
        call()
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
            fail(f"expected INVALID_ARGUMENT, got {e.code()}: {e.details()}")
        status = status_pb2.Status.FromString(dict(e.trailing_metadata()).get("grpc-status-details-bin"))
        bad = error_details_pb2.BadRequest()
        status.details[0].Unpack(bad)
        return {v.field for v in bad.field_violations}
    fail("expected INVALID_ARGUMENT")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    metadata = (("authorization", f"Bearer {args.token}"),)
    with grpc.insecure_channel(f"127.0.0.1:{args.port}") as channel:
        stub = pb_grpc.AnalyticsServiceStub(channel)
        default = stub.GetScoringModel(pb.GetScoringModelRequest(), metadata=metadata)
        if default.version != 0 or default.half_life_days != 30:
            fail(f"default model {default}")
        model = pb.ScoringModel(weights=[pb.KindWeight(kind="call", weight=3)], half_life_days=14)
        request_id = str(uuid.uuid4())
        stored = stub.SetScoringModel(pb.SetScoringModelRequest(model=model, request_id=request_id), metadata=metadata)
        again = stub.SetScoringModel(pb.SetScoringModelRequest(model=model, request_id=request_id), metadata=metadata)
        if stored.version != 1 or again != stored:
            fail(f"model {stored} then {again}")

        contact = str(uuid.uuid4())
        metrics = stub.GetContactMetrics(pb.GetContactMetricsRequest(contact_id=contact), metadata=metadata)
        if metrics.contact_id != contact or metrics.interactions != 0:
            fail(f"metrics {metrics}")
        score = stub.GetEngagementScore(pb.GetEngagementScoreRequest(contact_id=contact), metadata=metadata)
        if score.score != 0 or score.model_version != 1 or not score.HasField("as_of"):
            fail(f"score {score}")
        page = stub.GetTimeline(pb.GetTimelineRequest(subject_type=pb.SUBJECT_TYPE_CONTACT, subject_id=contact), metadata=metadata)
        if page.entries:
            fail(f"timeline {page}")

        fields = violations(lambda: stub.GetTimeline(pb.GetTimelineRequest(subject_id="nope"), metadata=metadata))
        if fields != {"subject_type"}:
            fail(f"field violations {fields}")
        fields = violations(lambda: stub.CreateReport(
            pb.CreateReportRequest(report=pb.ReportDefinition(name="r", columns=["salary"])), metadata=metadata))
        if fields != {"report.columns[0]"}:
            fail(f"field violations {fields}")

        report = stub.CreateReport(pb.CreateReportRequest(
            report=pb.ReportDefinition(name="All", columns=["contact_id", "custom.tier"])), metadata=metadata)
        rows = list(stub.RunReport(pb.RunReportRequest(report_id=report.id), metadata=metadata, timeout=10))
        if len(rows) != 1 or not rows[0].header or list(rows[0].values) != ["contact_id", "custom.tier"]:
            fail(f"rows {rows}")
        csv = b"".join(c.data for c in stub.ExportReport(pb.ExportReportRequest(report_id=report.id), metadata=metadata, timeout=10))
        if csv != b"contact_id,custom.tier\r\n":
            fail(f"csv {csv!r}")

        try:
            stub.GetTimeline(pb.GetTimelineRequest())
            fail("expected UNAUTHENTICATED")
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.UNAUTHENTICATED:
                fail(f"expected UNAUTHENTICATED, got {e.code()}")

        # Analytics' own feed: the model change, then the report.
        events = stub.WatchChanges(change_pb2.WatchChangesRequest(from_sequence=0), metadata=metadata, timeout=5)
        types = []
        for event in events:
            types.append(event.resource_type)
            if len(types) == 2:
                events.cancel()
                break
        if types != ["switchboard.analytics.v1.ScoringModel", "switchboard.analytics.v1.ReportDefinition"]:
            fail(f"change types {types}")
    print("PASS analytics_client")


if __name__ == "__main__":
    main()
