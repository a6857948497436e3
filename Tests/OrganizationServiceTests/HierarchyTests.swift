import Foundation
import OrganizationService
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// The organization hierarchy: cycles refused and nothing changed, the tree stream, ancestors, moves of whole
/// subtrees, and the delete and undelete rules that keep every live organization under a live parent.
@Suite("Organization hierarchy", .serialized)
final class HierarchyTests {
    let harness: OrganizationHarness
    init() async throws { harness = try await OrganizationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    /// root → a → a1 → a11; root → b; and their ids.
    private func sampleTree(
        _ client: OrgClient
    ) async throws -> (root: Organization, a: Organization, a1: Organization, a11: Organization, b: Organization) {
        let root = try await client.create("Root")
        let b = try await client.create("Bravo", parent: root.id)
        let a = try await client.create("Alpha", parent: root.id)
        let a1 = try await client.create("Alpha One", parent: a.id)
        let a11 = try await client.create("Alpha One One", parent: a1.id)
        return (root, a, a1, a11, b)
    }

    @Test("a parent change that would make a cycle is FAILED_PRECONDITION and changes nothing")
    func cycles() async throws {
        let client = try await harness.client(tenant: tenant())
        let t = try await sampleTree(client)
        let before = try await client.tree(t.root.id).map { $0.organization?.etag ?? "" }
        // Itself, its child, a deeper descendant.
        for parent in [t.a.id, t.a1.id, t.a11.id] {
            let error = await rpcError { _ = try await client.move(t.a.id, under: parent) }
            #expect(error?.code == .failedPrecondition, "\(parent)")
        }
        // The root under a leaf of its own tree.
        #expect(await code { _ = try await client.move(t.root.id, under: t.b.id) } == .failedPrecondition)
        // A combined update with a cycle changes none of its other fields either.
        #expect(
            await code {
                _ = try await client.update(t.a.id, paths: ["name", "parent_id"]) {
                    $0.name = "Renamed"
                    $0.parentId = t.a11.id
                }
            } == .failedPrecondition)
        #expect(try await client.get(t.a.id).name == "Alpha")
        #expect(try await client.tree(t.root.id).map { $0.organization?.etag ?? "" } == before)
        // A parent that does not exist, or is deleted, is NOT_FOUND.
        #expect(await code { _ = try await client.move(t.a.id, under: UUID().uuidString) } == .notFound)
        let gone = try await client.create("Gone")
        _ = try await client.delete(gone.id)
        #expect(await code { _ = try await client.move(t.a.id, under: gone.id) } == .notFound)
        #expect(await code { _ = try await client.create("Orphan", parent: gone.id) } == .notFound)
    }

    @Test("the tree streams depth-first in name order with depth and path, to a depth limit")
    func tree() async throws {
        let client = try await harness.client(tenant: tenant())
        let t = try await sampleTree(client)
        let nodes = try await client.tree(t.root.id)
        #expect(nodes.map { $0.organization?.name ?? "" } == ["Root", "Alpha", "Alpha One", "Alpha One One", "Bravo"])
        #expect(nodes.map(\.depth) == [0, 1, 2, 3, 1])
        #expect(nodes[3].path == [t.root.id, t.a.id, t.a1.id, t.a11.id])
        #expect(nodes[4].path == [t.root.id, t.b.id])
        #expect(try await client.tree(t.root.id, maxDepth: 1).map(\.depth) == [0, 1, 1])
        #expect(try await client.tree(t.a1.id).map { $0.organization?.id ?? "" } == [t.a1.id, t.a11.id])
        #expect(fields(await rpcError { _ = try await client.tree(t.root.id, maxDepth: 65) }) == ["max_depth"])
        #expect(fields(await rpcError { _ = try await client.tree(t.root.id, maxDepth: -1) }) == ["max_depth"])
        #expect(fields(await rpcError { _ = try await client.tree("") }) == ["id"])
        #expect(await code { _ = try await client.tree(UUID().uuidString) } == .notFound)
    }

    @Test("a tree larger than one read batch streams whole, every node after its parent")
    func wideTree() async throws {
        let client = try await harness.client(tenant: tenant())
        let root = try await client.create("Wide")
        // 300 children: more than one batch of 256 rows.
        var request = Switchboard_Organization_V1_CreateOrganizationRequest()
        for i in 0..<300 {
            var o = Organization()
            o.name = String(format: "Child %03d", i)
            o.parentId = root.id
            request.organization = o
            _ = try await client.stub.createOrganization(request, options: client.options)
        }
        let nodes = try await client.tree(root.id)
        #expect(nodes.count == 301)
        #expect(nodes.dropFirst().map { $0.organization?.name ?? "" } == (0..<300).map { String(format: "Child %03d", $0) })
    }

    @Test("ancestors are listed parent first; moving a subtree keeps every descendant's ancestry right")
    func moves() async throws {
        let client = try await harness.client(tenant: tenant())
        let t = try await sampleTree(client)
        #expect(try await client.ancestors(t.a11.id) == [t.a1.id, t.a.id, t.root.id])
        #expect(try await client.ancestors(t.root.id).isEmpty)
        // Move a (with a1 and a11) under b.
        let moved = try await client.move(t.a.id, under: t.b.id)
        #expect(moved.parentId == t.b.id)
        #expect(try await client.ancestors(t.a11.id) == [t.a1.id, t.a.id, t.b.id, t.root.id])
        let nodes = try await client.tree(t.root.id)
        #expect(nodes.map { $0.organization?.name ?? "" } == ["Root", "Bravo", "Alpha", "Alpha One", "Alpha One One"])
        #expect(nodes.last?.path == [t.root.id, t.b.id, t.a.id, t.a1.id, t.a11.id])
        // Detach a1 to the top level.
        _ = try await client.move(t.a1.id, under: "")
        #expect(try await client.ancestors(t.a11.id) == [t.a1.id])
        #expect(try await client.list { $0.topLevelOnly = true }.organizations.map(\.id) == [t.a1.id, t.root.id])
        // Now b may go under a11 (no longer its descendant).
        _ = try await client.move(t.b.id, under: t.a11.id)
        #expect(try await client.ancestors(t.a.id) == [t.b.id, t.a11.id, t.a1.id])
    }

    @Test("deleting an organization with live children is refused; undelete under a deleted parent is refused")
    func deleteRules() async throws {
        let client = try await harness.client(tenant: tenant())
        let t = try await sampleTree(client)
        #expect(await code { _ = try await client.delete(t.a1.id) } == .failedPrecondition)
        _ = try await client.delete(t.a11.id)
        _ = try await client.delete(t.a1.id)
        #expect(try await client.tree(t.a.id).count == 1)
        #expect(await code { _ = try await client.undelete(t.a11.id) } == .failedPrecondition)
        _ = try await client.undelete(t.a1.id)
        _ = try await client.undelete(t.a11.id)
        #expect(try await client.tree(t.a.id).count == 3)
    }

    @Test("the hierarchy is at most 64 levels deep: a create or a move past it is FAILED_PRECONDITION")
    func depthLimit() async throws {
        let client = try await harness.client(tenant: tenant())
        var chain: [Organization] = [try await client.create("Level 0")]
        for level in 1...64 { chain.append(try await client.create("Level \(level)", parent: chain.last!.id)) }
        #expect(await code { _ = try await client.create("Level 65", parent: chain.last!.id) } == .failedPrecondition)
        // A two-level subtree fits under level 62 but not under level 63.
        let top = try await client.create("Subtree")
        _ = try await client.create("Subtree child", parent: top.id)
        #expect(await code { _ = try await client.move(top.id, under: chain[63].id) } == .failedPrecondition)
        _ = try await client.move(top.id, under: chain[62].id)
        #expect(try await client.tree(chain[0].id).count == 67)
        #expect(try await client.ancestors(chain.last!.id).count == 64)
    }

    @Test("concurrent opposite moves never make a cycle: the hierarchy lock makes the second one see the first")
    func concurrentMoves() async throws {
        let client = try await harness.client(tenant: tenant())
        for round in 0..<10 {
            let x = try await client.create("X\(round)")
            let y = try await client.create("Y\(round)")
            async let first = rpcError { _ = try await client.move(x.id, under: y.id) }
            async let second = rpcError { _ = try await client.move(y.id, under: x.id) }
            let outcomes = [await first, await second]
            #expect(outcomes.filter { $0 == nil }.count == 1, "round \(round): \(outcomes)")
            #expect(outcomes.compactMap { $0?.code } == [.failedPrecondition], "round \(round)")
            let parents = [try await client.get(x.id).parentId, try await client.get(y.id).parentId]
            #expect(parents.filter(\.isEmpty).count == 1, "round \(round): a cycle \(parents)")
        }
    }

    @Test("parent changes are recorded as UPDATED with parent_id among the changed fields")
    func moveEvents() async throws {
        let client = try await harness.client(tenant: tenant())
        let parent = try await client.create("Parent")
        let child = try await client.create("Child")
        _ = try await client.move(child.id, under: parent.id)
        let stub = client.stub, options = client.options
        let events = try await stub.watchChanges(Switchboard_Common_V1_WatchChangesRequest(), options: options) { events in
            var seen: [Switchboard_Common_V1_ChangeEvent] = []
            for try await event in events {
                seen.append(event)
                if seen.count == 3 { break }
            }
            return seen
        }
        #expect(events[2].kind == .updated)
        #expect(events[2].changedFields == ["parent_id"])
        #expect(try Organization(protoJSONText: try #require(events[2].resource).protoJSONText()).parentId == parent.id)
    }
}
