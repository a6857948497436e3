import CommunicationService
import Foundation
import NIOCore
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit
import Testing

/// The pure interaction rules: bounds, NUL bytes, normalisation, update masks, search words and page sizes.
@Suite("Communication service: interaction rules")
struct InteractionRulesTests {
    let now = Date(timeIntervalSince1970: 1_760_000_000)

    private func violations(_ body: () throws -> Void) -> Set<String> {
        do {
            try body()
            return []
        } catch CommunicationError.invalid(let violations) {
            return Set(violations.map(\.field))
        } catch {
            return ["unexpected: \(error)"]
        }
    }

    @Test("NUL bytes are refused in every text field, since PostgreSQL text cannot hold them")
    func nulBytes() {
        var data = InteractionData(kind: .email)
        data.subject = "a\u{0}"
        data.body = "b\u{0}c"
        data.outcome = "\u{0}"
        data.ownerID = "u\u{0}"
        data.addresses = ["x\u{0}@example.com"]
        #expect(
            violations { try InteractionRules.validate(&data, now: now) } == [
                "interaction.subject", "interaction.body", "interaction.outcome", "interaction.owner_id", "interaction.addresses[0]",
            ])
        #expect(violations { _ = try InteractionRules.searchWords("a\u{0}b") } == ["query"])
    }

    @Test("each bound admits its limit and refuses one more")
    func bounds() throws {
        var ok = InteractionData(kind: .call)
        ok.subject = String(repeating: "s", count: InteractionRules.maxSubjectBytes)
        ok.body = String(repeating: "b", count: InteractionRules.maxBodyBytes)
        ok.outcome = String(repeating: "o", count: InteractionRules.maxOutcomeBytes)
        ok.ownerID = String(repeating: "u", count: InteractionRules.maxOwnerIDBytes)
        ok.contactIDs = (0..<InteractionRules.maxContacts).map { _ in UUID() }
        ok.addresses = (0..<InteractionRules.maxAddresses).map { "a\($0)@x.io" }
        ok.durationSeconds = InteractionRules.maxDurationSeconds
        ok.occurredAt = now.addingTimeInterval(InteractionRules.maxFutureSeconds)
        ok.followUpAt = InteractionRules.earliest
        try InteractionRules.validate(&ok, now: now)

        var over = ok
        over.subject += "s"
        over.body += "b"
        over.outcome += "o"
        over.ownerID += "u"
        over.contactIDs.append(UUID())
        over.addresses.append("extra@x.io")
        over.durationSeconds += 1
        over.occurredAt = now.addingTimeInterval(InteractionRules.maxFutureSeconds + 1)
        over.followUpAt = InteractionRules.earliest.addingTimeInterval(-1)
        #expect(
            violations { try InteractionRules.validate(&over, now: now) } == [
                "interaction.subject", "interaction.body", "interaction.outcome", "interaction.owner_id", "interaction.contact_ids",
                "interaction.addresses", "interaction.duration_seconds", "interaction.occurred_at", "interaction.follow_up_at",
            ])
        var negative = InteractionData(kind: .call)
        negative.durationSeconds = -1
        #expect(violations { try InteractionRules.validate(&negative, now: now) } == ["interaction.duration_seconds"])
        // Multi-byte text is bounded in bytes, not characters.
        var wide = InteractionData(kind: .email)
        wide.subject = String(repeating: "é", count: 500)
        #expect(violations { try InteractionRules.validate(&wide, now: now) } == ["interaction.subject"])
    }

    @Test("contacts and addresses are deduplicated (addresses trimmed, case-insensitively) in the order given")
    func normalisation() throws {
        let a = UUID(), b = UUID()
        var data = InteractionData(kind: .email)
        data.contactIDs = [a, b, a]
        data.addresses = [" X@Example.com ", "x@example.com", "+1 555"]
        try InteractionRules.validate(&data, now: now)
        #expect(data.contactIDs == [a, b])
        #expect(data.addresses == ["X@Example.com", "+1 555"])
    }

    @Test("update masks: known paths apply, unknown ones are named, empty and oversized masks are refused")
    func masks() throws {
        var target = InteractionData(kind: .email)
        var source = InteractionData(kind: .call)
        source.subject = "new"
        source.body = "ignored"
        #expect(try InteractionRules.apply(paths: ["subject", "kind", "subject"], from: source, to: &target) == ["subject", "kind"])
        #expect(target.subject == "new" && target.kind == .call && target.body.isEmpty)
        #expect(violations { _ = try InteractionRules.apply(paths: ["subject", "id"], from: source, to: &target) } == ["update_mask.paths[1]"])
        #expect(violations { _ = try InteractionRules.apply(paths: [], from: source, to: &target) } == ["update_mask"])
        #expect(
            violations { _ = try InteractionRules.apply(paths: Array(repeating: "body", count: 33), from: source, to: &target) } == [
                "update_mask.paths"
            ])
        for path in InteractionRules.updatablePaths { _ = try InteractionRules.apply(paths: [path], from: source, to: &target) }
    }

    @Test("search words: split on white space, 1 to 16 words, at most 256 bytes")
    func searchWords() throws {
        #expect(try InteractionRules.searchWords("  renewal\tpricing\n") == ["renewal", "pricing"])
        #expect(violations { _ = try InteractionRules.searchWords(" ") } == ["query"])
        #expect(violations { _ = try InteractionRules.searchWords(String(repeating: "a", count: 257)) } == ["query"])
        #expect(try InteractionRules.searchWords((0..<16).map { "w\($0)" }.joined(separator: " ")).count == 16)
        #expect(violations { _ = try InteractionRules.searchWords((0..<17).map { "w\($0)" }.joined(separator: " ")) } == ["query"])
    }

    @Test("page sizes: 0 is the default, large sizes are capped, negative ones refused")
    func pageSizes() throws {
        #expect(try InteractionRules.pageLimit(0) == InteractionRules.defaultPageSize)
        #expect(try InteractionRules.pageLimit(1_000_000) == InteractionRules.maxPageSize)
        #expect(try InteractionRules.pageLimit(7) == 7)
        #expect(violations { _ = try InteractionRules.pageLimit(-1) } == ["page.page_size"])
    }

    @Test("visibility: tenant interactions are seen by all, private ones by the owner and admins")
    func visibility() {
        var data = InteractionData(kind: .email)
        data.ownerID = "owner"
        data.visibility = .private
        let record = InteractionRecord(
            id: UUID(), data: data, version: 1, createdAt: now, createdBy: "owner", updatedAt: now, updatedBy: "owner", deletedAt: nil)
        let tenant = "t"
        #expect(Viewer(actor: Actor(tenantID: tenant, userID: "owner"), isAdmin: false).canSee(record))
        #expect(!Viewer(actor: Actor(tenantID: tenant, userID: "other"), isAdmin: false).canSee(record))
        #expect(Viewer(actor: Actor(tenantID: tenant, userID: "boss"), isAdmin: true).canSee(record))
        var shared = record
        shared.data.visibility = .tenant
        #expect(Viewer(actor: Actor(tenantID: tenant, userID: "other"), isAdmin: false).canSee(shared))
    }
}

/// NUL bytes on the wire: refused while decoding, before protoc-c could cut the text short.
@Suite("Communication service: NUL bytes on the wire")
struct WireNULTests {
    @Test("a string with a NUL byte, at any depth, is INVALID_ARGUMENT naming the field; bytes fields may hold NUL")
    func refused() throws {
        // LogInteractionRequest { interaction (1) { subject (8) = "a\0b" } }
        let subject: [UInt8] = [0x42, 3, 0x61, 0x00, 0x62]
        let request: [UInt8] = [0x0A, UInt8(subject.count)] + subject
        do {
            _ = try decodeMessage(Switchboard_Communication_V1_LogInteractionRequest.self, from: ByteBuffer(bytes: request))
            Issue.record("decoded")
        } catch let error as RPCError {
            #expect(error.code == .invalidArgument)
            #expect(error.message.contains("interaction.subject"), "\(error.message)")
        }
        // request_id (2) = "x\0"
        #expect(throws: RPCError.self) {
            _ = try decodeMessage(Switchboard_Communication_V1_LogInteractionRequest.self, from: ByteBuffer(bytes: [0x12, 2, 0x78, 0x00]))
        }
        let clean: [UInt8] = [0x0A, 5, 0x42, 3, 0x61, 0x62, 0x63]
        let decoded = try decodeMessage(Switchboard_Communication_V1_LogInteractionRequest.self, from: ByteBuffer(bytes: clean))
        #expect(decoded.interaction?.subject == "abc")
    }
}
