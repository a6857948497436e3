import Foundation
import OrganizationService
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// Units: nested departments and teams inside one organization.
@Suite("Organization units", .serialized)
final class UnitTests {
    let harness: OrganizationHarness
    init() async throws { harness = try await OrganizationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    @Test("create nested units, get, list by parent, update with etag, delete and undelete")
    func lifecycle() async throws {
        let client = try await harness.client(tenant: tenant())
        let organization = try await client.create("Acme")
        let sales = try await client.createUnit(" Sales ", organization: organization.id)
        #expect(sales.name == "Sales")
        #expect(sales.kind == .department)
        let emea = try await client.createUnit("EMEA Team", organization: organization.id, parent: sales.id, kind: .team)
        #expect(emea.parentUnitId == sales.id)
        #expect(try await client.getUnit(emea.id) == emea)
        #expect(try await client.listUnits(organization.id).units.map(\.name) == ["EMEA Team", "Sales"])
        #expect(try await client.listUnits(organization.id, parent: sales.id).units.map(\.id) == [emea.id])
        let first = try await client.listUnits(organization.id, pageSize: 1)
        #expect(first.units.map(\.id) == [emea.id])
        let second = try await client.listUnits(organization.id, pageSize: 1, token: first.page?.nextPageToken ?? "")
        #expect(second.units.map(\.id) == [sales.id])
        #expect(second.page?.nextPageToken.isEmpty == true)

        let renamed = try await client.updateUnit(emea.id, paths: ["name"], etag: emea.etag) { $0.name = "EMEA" }
        #expect(renamed.name == "EMEA")
        #expect(renamed.organizationId == organization.id)
        #expect(await code { _ = try await client.updateUnit(emea.id, paths: ["name"], etag: emea.etag) { $0.name = "Stale" } } == .aborted)
        #expect(await code { _ = try await client.deleteUnit(sales.id) } == .failedPrecondition)
        _ = try await client.deleteUnit(emea.id)
        #expect(await code { _ = try await client.getUnit(emea.id) } == .notFound)
        #expect(try await client.getUnit(emea.id, includeDeleted: true).id == emea.id)
        _ = try await client.deleteUnit(sales.id)
        #expect(await code { _ = try await client.undeleteUnit(emea.id) } == .failedPrecondition)
        _ = try await client.undeleteUnit(sales.id)
        _ = try await client.undeleteUnit(emea.id)
        #expect(try await client.listUnits(organization.id).units.count == 2)
    }

    @Test("unit parents stay inside their organization and never make a cycle")
    func hierarchy() async throws {
        let client = try await harness.client(tenant: tenant())
        let organization = try await client.create("Acme")
        let other = try await client.create("Other")
        let top = try await client.createUnit("Top", organization: organization.id)
        let middle = try await client.createUnit("Middle", organization: organization.id, parent: top.id)
        let bottom = try await client.createUnit("Bottom", organization: organization.id, parent: middle.id)
        let foreign = try await client.createUnit("Foreign", organization: other.id)
        // The parent exists, in another organization: INVALID_ARGUMENT naming it, not NOT_FOUND.
        let cross = await rpcError { _ = try await client.createUnit("Cross", organization: organization.id, parent: foreign.id) }
        #expect(cross?.code == .invalidArgument && cross?.fieldViolations.map(\.field) == ["unit.parent_unit_id"], "\(String(describing: cross))")
        let crossMove = await rpcError { _ = try await client.updateUnit(top.id, paths: ["parent_unit_id"]) { $0.parentUnitId = foreign.id } }
        #expect(crossMove?.code == .invalidArgument && crossMove?.fieldViolations.map(\.field) == ["unit.parent_unit_id"])
        #expect(
            await code { _ = try await client.createUnit("Lost", organization: organization.id, parent: UUID().uuidString.lowercased()) } == .notFound
        )
        for parent in [top.id, middle.id, bottom.id] {
            #expect(
                await code { _ = try await client.updateUnit(top.id, paths: ["parent_unit_id"]) { $0.parentUnitId = parent } } == .failedPrecondition)
        }
        #expect(try await client.getUnit(top.id).parentUnitId.isEmpty)
        let moved = try await client.updateUnit(bottom.id, paths: ["parent_unit_id"]) { $0.parentUnitId = top.id }
        #expect(moved.parentUnitId == top.id)
        _ = try await client.updateUnit(middle.id, paths: ["parent_unit_id"]) { $0.parentUnitId = bottom.id }
        #expect(try await client.listUnits(organization.id, parent: bottom.id).units.map(\.id) == [middle.id])
    }

    @Test("invalid units are INVALID_ARGUMENT naming the fields; a unknown or deleted organization is NOT_FOUND")
    func validation() async throws {
        let client = try await harness.client(tenant: tenant())
        let organization = try await client.create("Acme")
        #expect(fields(await rpcError { _ = try await client.createUnit("", organization: "") }) == ["unit.organization_id"])
        #expect(fields(await rpcError { _ = try await client.createUnit("", organization: organization.id) }) == ["unit.name"])
        #expect(
            fields(await rpcError { _ = try await client.createUnit("X", organization: "bad", parent: "bad", kind: .init(protoValue: 9)) })
                == ["unit.organization_id", "unit.parent_unit_id", "unit.kind"])
        #expect(await code { _ = try await client.createUnit("X", organization: UUID().uuidString) } == .notFound)
        let unit = try await client.createUnit("Unit", organization: organization.id)
        #expect(fields(await rpcError { _ = try await client.updateUnit(unit.id, paths: ["organization_id"]) { _ in } }) == ["update_mask.paths[0]"])
        #expect(fields(await rpcError { _ = try await client.updateUnit(unit.id, paths: ["kind"]) { _ in } }) == ["unit.kind"])
        #expect(fields(await rpcError { _ = try await client.listUnits("") }) == ["organization_id"])
        let gone = try await client.create("Gone")
        _ = try await client.delete(gone.id)
        #expect(await code { _ = try await client.createUnit("X", organization: gone.id) } == .notFound)
        #expect(await code { _ = try await client.listUnits(gone.id) } == .notFound)
    }

    @Test("a retried unit create with the same request id returns the first unit")
    func idempotency() async throws {
        let client = try await harness.client(tenant: tenant())
        let organization = try await client.create("Acme")
        let requestID = UUID().uuidString
        let first = try await client.createUnit("Once", organization: organization.id, requestID: requestID)
        #expect(try await client.createUnit("Once", organization: organization.id, requestID: requestID) == first)
        #expect(try await client.listUnits(organization.id).units.count == 1)
    }
}
