"""Calls the organization service with the stock Python gRPC client (grpcio), from stubs generated from Protos/.

    organization_client.py --port N --token JWT
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
from sbproto.switchboard.organization.v1 import organization_pb2 as pb, organization_pb2_grpc as pb_grpc  # noqa: E402


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
        stub = pb_grpc.OrganizationServiceStub(channel)
        request_id = str(uuid.uuid4())
        organization = pb.Organization(name="Northwind", domains=["Northwind.example"], size=pb.SIZE_BAND_51_TO_200,
                                       annual_revenue=types_pb2.Money(currency_code="usd", units=10))
        root = stub.CreateOrganization(pb.CreateOrganizationRequest(organization=organization, request_id=request_id),
                                       metadata=metadata)
        if root.domains != ["northwind.example"] or root.annual_revenue.currency_code != "USD" or not root.etag:
            fail(f"unexpected create response {root}")
        again = stub.CreateOrganization(pb.CreateOrganizationRequest(organization=organization, request_id=request_id),
                                        metadata=metadata)
        if again.id != root.id:
            fail("a retried create made a second organization")
        child = stub.CreateOrganization(pb.CreateOrganizationRequest(
            organization=pb.Organization(name="Northwind Labs", parent_id=root.id)), metadata=metadata)
        if stub.GetOrganization(pb.GetOrganizationRequest(id=root.id), metadata=metadata) != root:
            fail("get differs from create")

        # The tree is a server stream; a cycle is FAILED_PRECONDITION.
        nodes = list(stub.StreamOrganizationTree(pb.StreamOrganizationTreeRequest(id=root.id), metadata=metadata, timeout=5))
        if [(n.organization.id, n.depth, list(n.path)) for n in nodes] != [(root.id, 0, [root.id]),
                                                                            (child.id, 1, [root.id, child.id])]:
            fail(f"tree {nodes}")
        ancestors = stub.ListAncestors(pb.ListAncestorsRequest(id=child.id), metadata=metadata)
        if [a.id for a in ancestors.ancestors] != [root.id]:
            fail(f"ancestors {ancestors}")
        expect_code(lambda: stub.UpdateOrganization(pb.UpdateOrganizationRequest(
            organization=pb.Organization(id=root.id, parent_id=child.id),
            update_mask=field_mask_pb2.FieldMask(paths=["parent_id"])), metadata=metadata), grpc.StatusCode.FAILED_PRECONDITION)

        # Field violations a stock client can decode from grpc-status-details-bin.
        e = expect_code(lambda: stub.CreateOrganization(pb.CreateOrganizationRequest(
            organization=pb.Organization(domains=["not a domain"])), metadata=metadata), grpc.StatusCode.INVALID_ARGUMENT)
        status = status_pb2.Status.FromString(dict(e.trailing_metadata()).get("grpc-status-details-bin"))
        bad = error_details_pb2.BadRequest()
        bad.ParseFromString(status.details[0].value)
        fields = {v.field for v in bad.field_violations}
        if fields != {"organization.name", "organization.domains[0]"}:
            fail(f"field violations {fields}")
        expect_code(lambda: stub.CreateOrganization(pb.CreateOrganizationRequest(
            organization=pb.Organization(name="Clash", domains=["northwind.example"])), metadata=metadata),
            grpc.StatusCode.ALREADY_EXISTS)
        expect_code(lambda: stub.GetOrganization(pb.GetOrganizationRequest(id=str(uuid.uuid4())), metadata=metadata),
                    grpc.StatusCode.NOT_FOUND)
        expect_code(lambda: stub.ListOrganizations(pb.ListOrganizationsRequest()), grpc.StatusCode.UNAUTHENTICATED)

        listed = stub.ListOrganizations(pb.ListOrganizationsRequest(page=types_pb2.PageRequest(page_size=1)), metadata=metadata)
        if [o.id for o in listed.organizations] != [root.id] or not listed.page.next_page_token:
            fail(f"first page {listed}")

        unit = stub.CreateUnit(pb.CreateUnitRequest(unit=pb.Unit(organization_id=root.id, name="Sales")), metadata=metadata)
        units = stub.ListUnits(pb.ListUnitsRequest(organization_id=root.id), metadata=metadata)
        if [u.id for u in units.units] != [unit.id] or unit.kind != pb.UNIT_KIND_DEPARTMENT:
            fail(f"units {units}")

        group = stub.CreateGroup(pb.CreateGroupRequest(group=pb.Group(name="VIP")), metadata=metadata)
        added = stub.AddGroupMembers(pb.AddGroupMembersRequest(group_id=group.id, contact_ids=["x", str(uuid.uuid4())]),
                                     metadata=metadata)
        if [r.outcome for r in added.results] != [pb.GroupMemberResult.OUTCOME_INVALID_ID,
                                                  pb.GroupMemberResult.OUTCOME_CONTACT_NOT_FOUND]:
            fail(f"bulk results {added}")
        expect_code(lambda: stub.CreateMembership(pb.CreateMembershipRequest(
            membership=pb.Membership(contact_id=str(uuid.uuid4()), organization_id=root.id)), metadata=metadata),
            grpc.StatusCode.NOT_FOUND)

        events = stub.WatchChanges(change_pb2.WatchChangesRequest(from_sequence=0), metadata=metadata, timeout=5)
        kinds = []
        for event in events:
            kinds.append((event.resource_type, event.kind))
            if len(kinds) == 2:
                events.cancel()
                break
        if kinds != [("switchboard.organization.v1.Organization", change_pb2.CHANGE_KIND_CREATED)] * 2:
            fail(f"changes {kinds}")
    print("PASS organization_client")
    return 0


if __name__ == "__main__":
    sys.exit(main())
