import Foundation
import OrganizationService
import SwitchboardProtos
import SwitchboardServiceKit
import SwitchboardTestSupport
import Testing

/// The pure rules: no database, no server.
@Suite("Organization rules")
struct OrganizationRulesTests {
    @Test("domains: host names of two or more labels, lower-case letters, digits and inner hyphens")
    func domains() {
        for good in ["example.com", "a.b.c.example", "xn--bcher-kva.example", "my-company.de", "1password.com"] {
            #expect(OrganizationRules.isValidDomain(good), "\(good)")
        }
        for bad in [
            "example", "Example.com", "-x.com", "x-.com", "a..b", ".com", "com.", "exa mple.com", "10.0.0.1",
            String(repeating: "a", count: 64) + ".com",
        ] {
            #expect(!OrganizationRules.isValidDomain(bad), "\(bad)")
        }
    }

    @Test("validation normalises and names every bad field")
    func validate() throws {
        var data = OrganizationData()
        data.name = "  Acme  "
        data.domains = ["ACME.com ", "acme.io"]
        data.tags = ["B2B", "b2b", "  x "]
        data.industry = " Software "
        data.annualRevenue = Money(currencyCode: "usd", units: -3, nanos: -5)
        try OrganizationRules.validate(&data, definitions: [], requireAllRequiredFields: true)
        #expect(data.name == "Acme")
        #expect(data.domains == ["acme.com", "acme.io"])
        #expect(data.tags == ["b2b", "x"])
        #expect(data.industry == "software")
        #expect(data.annualRevenue?.currencyCode == "USD")

        var bad = OrganizationData()
        bad.name = "Tab\u{7}Bell"
        bad.domains = Array(repeating: "a.com", count: 21)
        bad.annualRevenue = Money(currencyCode: "EU", units: 1, nanos: 1_000_000_000)
        #expect(
            throws: OrganizationError.invalid([
                Violation("organization.name", "must not contain control characters", reason: "INVALID_FORMAT"),
                Violation("organization.domains", "at most 20 domains", reason: "TOO_MANY"),
                Violation("organization.annual_revenue.currency_code", "must be an ISO 4217 code such as EUR", reason: "INVALID_FORMAT"),
                Violation("organization.annual_revenue.nanos", "must be from -999,999,999 to 999,999,999", reason: "OUT_OF_RANGE"),
            ])
        ) {
            try OrganizationRules.validate(&bad, definitions: [], requireAllRequiredFields: true)
        }
    }

    @Test("a move under itself or a descendant is a cycle; a move past the depth limit is too deep")
    func moves() throws {
        let (a, b, c) = (UUID(), UUID(), UUID())
        // b's ancestry: b, a (b is a's child). Moving a under b is a cycle; moving c under b is fine.
        #expect(throws: OrganizationError.self) { try OrganizationRules.checkMove(id: a, newParentAncestry: [b, a], subtreeHeight: 0) }
        #expect(throws: OrganizationError.self) { try OrganizationRules.checkMove(id: a, newParentAncestry: [a], subtreeHeight: 0) }
        try OrganizationRules.checkMove(id: c, newParentAncestry: [b, a], subtreeHeight: 3)
        try OrganizationRules.checkMove(id: c, newParentAncestry: [], subtreeHeight: 100)
        // A parent at depth 62 (63 in its ancestry) takes a subtree one level high; at depth 63 it does not.
        let ancestry62 = (0...62).map { _ in UUID() }
        try OrganizationRules.checkMove(id: c, newParentAncestry: ancestry62, subtreeHeight: 1)
        #expect(throws: OrganizationError.tooDeep(limit: 64)) {
            try OrganizationRules.checkMove(id: c, newParentAncestry: ancestry62 + [UUID()], subtreeHeight: 1)
        }
    }

    @Test("update paths: known ones apply, unknown ones are named, an empty mask is refused")
    func paths() throws {
        var target = OrganizationData()
        target.name = "Old"
        var source = OrganizationData()
        source.name = "New"
        source.customFields = ["tier": .string("gold")]
        let parent = UUID()
        source.parentID = parent
        #expect(try OrganizationRules.apply(paths: ["name", "parent_id", "custom_fields.tier"], from: source, to: &target).count == 3)
        #expect(target.name == "New")
        #expect(target.parentID == parent)
        #expect(target.customFields == ["tier": .string("gold")])
        #expect(throws: OrganizationError.self) { try OrganizationRules.apply(paths: ["id"], from: source, to: &target) }
        #expect(throws: OrganizationError.self) { try OrganizationRules.apply(paths: [], from: source, to: &target) }
    }

    @Test("custom field values are checked against typed definitions; definitions against their own rules")
    func customFields() {
        let definitions = [
            CustomFieldDefinition(key: "founded", displayName: "Founded", type: .date, required: true),
            CustomFieldDefinition(key: "public", displayName: "Public", type: .bool),
            CustomFieldDefinition(key: "old", displayName: "Old", type: .string, retired: true),
        ]
        let violations = CustomFieldRules.violations(
            of: ["founded": .string("2023-02-29"), "public": .string("yes"), "old": .string("x"), "nope": .null],
            definitions: definitions, prefix: "o", requireAll: true)
        #expect(violations.map(\.field) == ["o.founded", "o.nope", "o.old", "o.public"])
        #expect(CustomFieldRules.violations(of: [:], definitions: definitions, prefix: "o", requireAll: true).map(\.field) == ["o.founded"])
        #expect(CustomFieldRules.violations(of: ["founded": .string("2024-02-29")], definitions: definitions, prefix: "o", requireAll: true).isEmpty)
        #expect(
            CustomFieldRules.violations(of: CustomFieldDefinition(key: "9x", displayName: " ", type: .enumeration)).map(\.field)
                == ["definition.key", "definition.display_name", "definition.allowed_values"])
    }

    @Test("bulk results: invalid ids, repeats and the store's findings, in request order")
    func bulkResults() {
        let (a, b, c) = (UUID(), UUID(), UUID())
        let change = GroupBulkChange(live: [a, b], changed: [a])
        let results = change.results(for: [a.uuidString, "x", b.uuidString, a.uuidString, c.uuidString], adding: true)
        #expect(results.map(\.outcome) == [.added, .invalidID, .unchanged, .unchanged, .contactNotFound])
        #expect(results.map(\.contactID)[1] == "x")
        #expect(change.results(for: [a.uuidString], adding: false).map(\.outcome) == [.removed])
    }

    @Test("membership validation: defined live roles only, once each; ISO dates with the end not before the start")
    func membershipRules() throws {
        let roles = [
            MembershipRole(key: "ceo", displayName: "CEO", maxPerOrganization: 1), MembershipRole(key: "old", displayName: "Old", retired: true),
        ]
        var data = MembershipData(contactID: UUID(), organizationID: UUID())
        data.title = "  Chief  "
        data.roles = ["ceo"]
        data.startDate = "2024-02-29"
        data.endDate = "2024-02-29"
        try MembershipRules.validate(&data, roles: roles)
        #expect(data.title == "Chief")
        data.roles = ["ceo", "ceo", "old", "nope"]
        data.endDate = "2024-02-28"
        #expect(throws: OrganizationError.self) { try MembershipRules.validate(&data, roles: roles) }
        do {
            try MembershipRules.validate(&data, roles: roles)
        } catch OrganizationError.invalid(let violations) {
            #expect(violations.map(\.field) == ["membership.roles[1]", "membership.roles[2]", "membership.roles[3]"])
        }
        data.roles = []
        do {
            try MembershipRules.validate(&data, roles: roles)
            Issue.record("an end before the start was accepted")
        } catch OrganizationError.invalid(let violations) {
            #expect(violations.map(\.field) == ["membership.end_date"])
        }
        #expect(throws: OrganizationError.self) { try MembershipRules.validate(MembershipRole(key: "x", displayName: "X", maxPerOrganization: -1)) }
    }

    @Test("the stream limiter admits its limit at once, half of it per tenant, refuses the next with RESOURCE_EXHAUSTED's error, and frees places")
    func streamLimiter() async throws {
        let limiter = StreamLimiter(limit: 4, what: "organization tree streams")
        #expect(limiter.perTenantLimit == 2)
        let (entered, enteredContinuation) = AsyncStream<Void>.makeStream()
        let (release, releaseContinuation) = AsyncStream<Void>.makeStream()
        // Tenant a takes its two places, then tenant b its two: the server's four.
        let holders = ["a", "a", "b", "b"].map { tenant in
            Task {
                try await limiter.run(tenant: tenant) {
                    enteredContinuation.yield()
                    for await _ in release { break }
                }
            }
        }
        var count = 0
        for await _ in entered {
            count += 1
            if count == 4 { break }
        }
        #expect(limiter.active == 4)
        await #expect(throws: TooManyStreams(limit: 4, what: "organization tree streams")) { try await limiter.run(tenant: "c") {} }
        for _ in 0..<4 { releaseContinuation.yield() }
        releaseContinuation.finish()
        for holder in holders { try await holder.value }
        #expect(limiter.active == 0)
        // One tenant alone still gets only its half.
        let (held, heldContinuation) = AsyncStream<Void>.makeStream()
        let (free, freeContinuation) = AsyncStream<Void>.makeStream()
        let two = (0..<2).map { _ in
            Task {
                try await limiter.run(tenant: "a") {
                    heldContinuation.yield()
                    for await _ in free { break }
                }
            }
        }
        count = 0
        for await _ in held {
            count += 1
            if count == 2 { break }
        }
        await #expect(throws: TooManyStreams(limit: 2, what: "organization tree streams")) { try await limiter.run(tenant: "a") {} }
        try await limiter.run(tenant: "b") {}
        for _ in 0..<2 { freeContinuation.yield() }
        freeContinuation.finish()
        for holder in two { try await holder.value }
        #expect(limiter.active == 0)
    }
}
