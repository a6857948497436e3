import Foundation
import OrganizationService
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// The organization RPCs over real HTTP/2 against a real PostgreSQL, as the service's own (RLS-bound) role.
@Suite("Organization service", .serialized)
final class OrganizationServiceTests {
    let harness: OrganizationHarness
    init() async throws { harness = try await OrganizationHarness.start() }
    deinit {
        let h = harness
        Task { await h.stop() }
    }

    @Test("create, get, batch get, update with etag, delete, undelete")
    func lifecycle() async throws {
        let client = try await harness.client(tenant: tenant())
        let created = try await client.create(
            "  Acme Corp ", domains: ["Acme.COM", " acme.io"], tags: ["B2B", "b2b", " Enterprise "], industry: "Software"
        ) {
            $0.size = .sizeBand51To200
            var money = Switchboard_Common_V1_Money()
            money.currencyCode = "eur"
            money.units = 1_500_000
            money.nanos = 500_000_000
            $0.annualRevenue = money
            var address = Switchboard_Common_V1_PostalAddress()
            address.addressLines = ["Main St 1"]
            address.regionCode = "de"
            $0.addresses = [address]
        }
        #expect(created.name == "Acme Corp")
        #expect(created.domains == ["acme.com", "acme.io"])
        #expect(created.tags == ["b2b", "enterprise"])
        #expect(created.industry == "software")
        #expect(created.size == .sizeBand51To200)
        #expect(created.annualRevenue?.currencyCode == "EUR")
        #expect(created.annualRevenue?.units == 1_500_000)
        #expect(created.addresses.first?.regionCode == "DE")
        #expect(created.ownerId == "user-1")
        #expect(created.parentId.isEmpty)
        #expect(created.etag == "\"1\"")
        #expect(try await client.get(created.id) == created)

        var batch = Switchboard_Organization_V1_BatchGetOrganizationsRequest()
        let unknown = UUID().uuidString.lowercased()
        batch.ids = [unknown, created.id]
        let found = try await client.stub.batchGetOrganizations(batch, options: client.options)
        #expect(found.organizations.map(\.id) == [created.id])
        #expect(found.missingIds == [unknown])

        let updated = try await client.update(created.id, paths: ["name", "size"], etag: created.etag) {
            $0.name = "Acme Holding"
            $0.size = .sizeBand201To1000
        }
        #expect(updated.name == "Acme Holding")
        #expect(updated.size == .sizeBand201To1000)
        #expect(updated.domains == created.domains)
        #expect(updated.etag == "\"2\"")

        let deleted = try await client.delete(created.id, etag: updated.etag)
        #expect(deleted.audit?.deleteTime != nil)
        #expect(await code { _ = try await client.get(created.id) } == .notFound)
        #expect(try await client.get(created.id, includeDeleted: true).id == created.id)
        #expect(try await client.list().organizations.isEmpty)
        #expect(try await client.list { $0.includeDeleted = true }.organizations.map(\.id) == [created.id])
        let restored = try await client.undelete(created.id)
        #expect(restored.audit?.deleteTime == nil)
        #expect(try await client.list().organizations.map(\.id) == [created.id])
        #expect(await code { _ = try await client.undelete(created.id) } == .notFound)
    }

    @Test("invalid input is INVALID_ARGUMENT naming each field, and stores nothing")
    func validation() async throws {
        let client = try await harness.client(tenant: tenant())
        let error = await rpcError {
            _ = try await client.create(" ", parent: "nope", domains: ["not a domain", "ok.example"], tags: [""]) {
                $0.size = .init(protoValue: 42)
                var money = Switchboard_Common_V1_Money()
                money.currencyCode = "euro"
                money.units = 5
                money.nanos = -1
                $0.annualRevenue = money
            }
        }
        #expect(error?.code == .invalidArgument)
        #expect(fields(error) == ["organization.size", "organization.parent_id"])
        let second = await rpcError {
            _ = try await client.create(" ", domains: ["not a domain", "ok.example", "OK.example"], tags: [""]) {
                var money = Switchboard_Common_V1_Money()
                money.currencyCode = "euro"
                money.units = 5
                money.nanos = -1
                $0.annualRevenue = money
            }
        }
        #expect(
            fields(second) == [
                "organization.name", "organization.domains[0]", "organization.domains[2]", "organization.tags[0]",
                "organization.annual_revenue.currency_code", "organization.annual_revenue.nanos",
            ])
        #expect(await code { _ = try await client.stub.createOrganization(.init(), options: client.options) } == .invalidArgument)
        #expect(fields(await rpcError { _ = try await client.get("not-a-uuid") }) == ["id"])
        #expect(await code { _ = try await client.get(UUID().uuidString) } == .notFound)
        let created = try await client.create("Valid")
        let badMask = await rpcError { _ = try await client.update(created.id, paths: ["name", "id"]) { $0.name = "X" } }
        #expect(fields(badMask) == ["update_mask.paths[1]"])
        #expect(fields(await rpcError { _ = try await client.update(created.id, paths: []) { _ in } }) == ["update_mask"])
        #expect(fields(await rpcError { _ = try await client.list { $0.domain = "bad domain" } }) == ["domain"])
        #expect(fields(await rpcError { _ = try await client.list(pageSize: -1) }) == ["page.page_size"])
        #expect(fields(await rpcError { _ = try await client.list(token: "garbage") }) == ["page.page_token"])
        #expect(try await client.list().organizations.map(\.id) == [created.id])
    }

    @Test("a domain already used by a live organization of the tenant is ALREADY_EXISTS naming the field and the holder")
    func uniqueDomains() async throws {
        let client = try await harness.client(tenant: tenant())
        let first = try await client.create("First", domains: ["first.example"])
        let error = await rpcError { _ = try await client.create("Second", domains: ["FIRST.example"]) }
        #expect(error?.code == .alreadyExists)
        #expect(error?.message.contains("organization.domains") == true)
        #expect(error?.message.contains(first.id) == true)
        let second = try await client.create("Second", domains: ["second.example"])
        #expect(await code { _ = try await client.update(second.id, paths: ["domains"]) { $0.domains = ["first.example"] } } == .alreadyExists)
        // A deleted organization frees its domains; undeleting it then clashes.
        _ = try await client.delete(first.id)
        _ = try await client.update(second.id, paths: ["domains"]) { $0.domains = ["first.example"] }
        #expect(await code { _ = try await client.undelete(first.id) } == .alreadyExists)
        // Another tenant may use the same domain.
        let other = try await harness.client(tenant: tenant())
        #expect(try await other.create("Elsewhere", domains: ["first.example"]).domains == ["first.example"])
        #expect(try await client.list { $0.domain = "first.example" }.organizations.map(\.id) == [second.id])
    }

    @Test("organizations claiming the same domains in opposite orders at once: one wins, the others are ALREADY_EXISTS, none fails")
    func domainRace() async throws {
        let client = try await harness.client(tenant: tenant())
        for round in 0..<5 {
            let (a, b, c) = ("a\(round).example", "b\(round).example", "c\(round).example")
            let orders = [[a, b, c], [c, b, a], [b, a, c], [c, a, b]]
            let codes = await withTaskGroup(of: StatusCode?.self) { group in
                for (i, domains) in orders.enumerated() {
                    group.addTask { await code { _ = try await client.create("Racer \(round)-\(i)", domains: domains) } }
                }
                var codes: [StatusCode?] = []
                for await code in group { codes.append(code) }
                return codes
            }
            #expect(codes.filter { $0 == nil }.count == 1, "round \(round): \(codes)")
            #expect(codes.compactMap { $0 }.allSatisfy { $0 == .alreadyExists }, "round \(round): \(codes)")
        }
    }

    @Test("an update that leaves the domains alone keeps them reserved; one that changes them frees the old ones")
    func domainsOnlyWhenChanged() async throws {
        let client = try await harness.client(tenant: tenant())
        let first = try await client.create("Keeper", domains: ["keep.example", "drop.example"])
        _ = try await client.update(first.id, paths: ["tags"]) { $0.tags = ["t"] }
        #expect(await code { _ = try await client.create("Taker", domains: ["keep.example"]) } == .alreadyExists)
        _ = try await client.update(first.id, paths: ["domains"]) { $0.domains = ["keep.example"] }
        #expect(try await client.create("Taker", domains: ["drop.example"]).domains == ["drop.example"])
    }

    @Test("a retried mutation with the same request id returns the first response and changes nothing")
    func idempotency() async throws {
        let client = try await harness.client(tenant: tenant())
        let requestID = UUID().uuidString
        let first = try await client.create("Once", domains: ["once.example"], requestID: requestID)
        #expect(try await client.create("Once", domains: ["once.example"], requestID: requestID) == first)
        #expect(try await client.list().organizations.count == 1)
        let updateID = UUID().uuidString
        let updated = try await client.update(first.id, paths: ["tags"], etag: first.etag, requestID: updateID) { $0.tags = ["x"] }
        #expect(try await client.update(first.id, paths: ["tags"], etag: first.etag, requestID: updateID) { $0.tags = ["x"] } == updated)
        #expect(try await client.get(first.id).etag == updated.etag)
        let deleteID = UUID().uuidString
        let deleted = try await client.delete(first.id, requestID: deleteID)
        #expect(try await client.delete(first.id, requestID: deleteID) == deleted)
        // The create's request id, sent with another method.
        let reused = await rpcError { _ = try await client.update(first.id, paths: ["tags"], requestID: requestID) { $0.tags = ["y"] } }
        #expect(fields(reused) == ["request_id"])
    }

    @Test("a stale etag is ABORTED and the newer data survives")
    func etagConflict() async throws {
        let client = try await harness.client(tenant: tenant())
        let created = try await client.create("Versioned")
        _ = try await client.update(created.id, paths: ["tags"], etag: created.etag) { $0.tags = ["first"] }
        #expect(await code { _ = try await client.update(created.id, paths: ["tags"], etag: created.etag) { $0.tags = ["second"] } } == .aborted)
        #expect(await code { _ = try await client.delete(created.id, etag: created.etag) } == .aborted)
        #expect(try await client.get(created.id).tags == ["first"])
    }

    @Test("list filters by parent, top level, industry, size, tag, name prefix and domain, in name order with keyset pages")
    func listFilters() async throws {
        let client = try await harness.client(tenant: tenant())
        let parent = try await client.create("Zeta Group", industry: "finance")
        let a = try await client.create("alpha", parent: parent.id, tags: ["vip"], industry: "Software") { $0.size = .sizeBand1To10 }
        let b = try await client.create("Alphabet", parent: parent.id, domains: ["abc.xyz"], industry: "software")
        let c = try await client.create("Beta", tags: ["vip"]) { $0.size = .sizeBand1To10 }
        #expect(try await client.list().organizations.map(\.name) == ["alpha", "Alphabet", "Beta", "Zeta Group"])
        #expect(try await client.list { $0.parentId = parent.id }.organizations.map(\.id) == [a.id, b.id])
        #expect(try await client.list { $0.topLevelOnly = true }.organizations.map(\.id) == [c.id, parent.id])
        #expect(try await client.list { $0.industry = "SOFTWARE" }.organizations.map(\.id) == [a.id, b.id])
        #expect(try await client.list { $0.size = .sizeBand1To10 }.organizations.map(\.id) == [a.id, c.id])
        #expect(try await client.list { $0.tag = "VIP" }.organizations.map(\.id) == [a.id, c.id])
        #expect(try await client.list { $0.namePrefix = "ALPHA" }.organizations.map(\.id) == [a.id, b.id])
        #expect(try await client.list { $0.namePrefix = "alphab" }.organizations.map(\.id) == [b.id])
        #expect(try await client.list { $0.domain = "abc.xyz" }.organizations.map(\.id) == [b.id])
        #expect(
            fields(
                await rpcError {
                    _ = try await client.list {
                        $0.topLevelOnly = true
                        $0.parentId = parent.id
                    }
                }) == ["top_level_only"])

        // Pages: every row once while rows are inserted; a token is bound to its filters.
        var seen: [String] = []
        var token = ""
        var pages = 0
        repeat {
            let page = try await client.list(pageSize: 3, token: token)
            seen += page.organizations.map(\.id)
            token = page.page?.nextPageToken ?? ""
            pages += 1
            _ = try await client.create("Zz concurrent \(pages)")
        } while !token.isEmpty && pages < 20
        #expect(Set(seen).count == seen.count)
        #expect(Set([parent.id, a.id, b.id, c.id]).isSubset(of: Set(seen)))
        let filtered = try await client.list(pageSize: 1) { $0.tag = "vip" }
        let tokenForFilter = try #require(filtered.page?.nextPageToken)
        #expect(await code { _ = try await client.list(pageSize: 1, token: tokenForFilter) } == .invalidArgument)
        #expect(try await client.list(pageSize: 1, token: tokenForFilter) { $0.tag = "vip" }.organizations.map(\.id) == [c.id])
    }

    @Test("custom fields: admins define them, values are type-checked, required ones enforced, retired ones refused")
    func customFields() async throws {
        let t = tenant()
        let admin = try await harness.client(tenant: t, roles: [.admin])
        let user = try await harness.client(tenant: t)
        var define = Switchboard_Organization_V1_DefineFieldRequest()
        var definition = Switchboard_Organization_V1_FieldDefinition()
        definition.key = "tier"
        definition.displayName = "Tier"
        definition.type = .enum
        definition.allowedValues = ["gold", "silver"]
        definition.required = true
        define.definition = definition
        #expect(await code { _ = try await user.stub.defineField(define, options: user.options) } == .permissionDenied)
        _ = try await admin.stub.defineField(define, options: admin.options)
        #expect(await code { _ = try await admin.stub.defineField(define, options: admin.options) } == .alreadyExists)
        var badDefinition = define
        badDefinition.definition?.key = "Bad Key"
        #expect(fields(await rpcError { _ = try await admin.stub.defineField(badDefinition, options: admin.options) }) == ["definition.key"])

        #expect(fields(await rpcError { _ = try await user.create("No tier") }) == ["organization.custom_fields.tier"])
        let bad = await rpcError {
            _ = try await user.create("Bad") {
                var s = Google_Protobuf_Struct()
                s.fields = ["tier": string("bronze"), "unknown": number(1)]
                $0.customFields = s
            }
        }
        #expect(fields(bad) == ["organization.custom_fields.tier", "organization.custom_fields.unknown"])
        let ok = try await user.create("Gold") {
            var s = Google_Protobuf_Struct()
            s.fields = ["tier": string("gold")]
            $0.customFields = s
        }
        #expect(ok.customFields?.fields["tier"] == string("gold"))
        let listed = try await user.stub.listFieldDefinitions(.init(), options: user.options)
        #expect(listed.definitions.map(\.key) == ["tier"])

        var retire = Switchboard_Organization_V1_RetireFieldRequest()
        retire.key = "tier"
        #expect(try await admin.stub.retireField(retire, options: admin.options).retired)
        #expect(try await user.create("No tier any more").id.isEmpty == false)
        // An organization holding a value of the retired field keeps it, and its other fields still change.
        let renamed = try await user.update(ok.id, paths: ["industry"]) { $0.industry = "retail" }
        #expect(renamed.industry == "retail" && renamed.customFields?.fields["tier"] == string("gold"))
        let changed = await rpcError {
            _ = try await user.update(ok.id, paths: ["custom_fields.tier"]) {
                var s = Google_Protobuf_Struct()
                s.fields = ["tier": string("silver")]
                $0.customFields = s
            }
        }
        #expect(fields(changed) == ["organization.custom_fields.tier"])
        retire.key = "missing"
        #expect(await code { _ = try await admin.stub.retireField(retire, options: admin.options) } == .notFound)
    }

    @Test("tenant B can neither read, list, change, delete, move under nor watch tenant A's organizations")
    func isolation() async throws {
        let a = try await harness.client(tenant: tenant())
        let b = try await harness.client(tenant: tenant())
        let organization = try await a.create("Private", domains: ["private.example"])
        let unit = try await a.createUnit("Sales", organization: organization.id)
        #expect(await code { _ = try await b.get(organization.id) } == .notFound)
        #expect(try await b.list().organizations.isEmpty)
        #expect(try await b.list { $0.domain = "private.example" }.organizations.isEmpty)
        #expect(await code { _ = try await b.update(organization.id, paths: ["tags"]) { $0.tags = ["stolen"] } } == .notFound)
        #expect(await code { _ = try await b.delete(organization.id) } == .notFound)
        #expect(await code { _ = try await b.undelete(organization.id) } == .notFound)
        #expect(await code { _ = try await b.create("Child", parent: organization.id) } == .notFound)
        #expect(await code { _ = try await b.tree(organization.id) } == .notFound)
        #expect(await code { _ = try await b.ancestors(organization.id) } == .notFound)
        #expect(await code { _ = try await b.getUnit(unit.id) } == .notFound)
        #expect(await code { _ = try await b.createUnit("Mine", organization: organization.id) } == .notFound)
        #expect(await code { _ = try await b.listUnits(organization.id) } == .notFound)
        #expect(await code { _ = try await b.updateUnit(unit.id, paths: ["name"]) { $0.name = "x" } } == .notFound)
        #expect(await code { _ = try await b.deleteUnit(unit.id) } == .notFound)
        var batch = Switchboard_Organization_V1_BatchGetOrganizationsRequest()
        batch.ids = [organization.id]
        #expect(try await b.stub.batchGetOrganizations(batch, options: b.options).missingIds == [organization.id])
        #expect(try await b.stub.listFieldDefinitions(.init(), options: b.options).definitions.isEmpty)
        // The same domain is free in tenant B.
        #expect(try await b.create("Mine", domains: ["private.example"]).domains == ["private.example"])
        let stub = b.stub, options = b.options
        let events = try await stub.watchChanges(Switchboard_Common_V1_WatchChangesRequest(), options: options) { events in
            var kinds: [String] = []
            for try await event in events {
                kinds.append(event.resourceId)
                if kinds.count == 1 { break }
            }
            return kinds
        }
        #expect(events.count == 1)
        #expect(events.first != organization.id)
        #expect(try await a.get(organization.id).tags.isEmpty)
    }

    @Test("row-level security stops a query that forgets its tenant filter, on every table")
    func rowLevelSecurity() async throws {
        let tenantA = "rls-a-" + UUID().uuidString.prefix(6)
        let a = try await harness.client(tenant: tenantA)
        let organization = try await a.create("Seen only by A", domains: ["rls.example"], requestID: UUID().uuidString)
        _ = try await a.createUnit("Unit", organization: organization.id)
        // A row of tenant A in every other table, written as A (the policies' WITH CHECK admits them).
        try await harness.pool.transaction(settings: ["app.tenant_id": tenantA]) { c in
            let (tenant, person, org, group) = (
                PostgresValue.text(tenantA), PostgresValue.uuid(UUID()), PostgresValue.text(organization.id), PostgresValue.uuid(UUID())
            )
            try await c.query(
                "INSERT INTO organization.field_definitions (tenant_id, key, display_name, field_type) VALUES ($1, 'tier', 'Tier', 1)", [tenant])
            try await c.query("INSERT INTO organization.contacts (tenant_id, contact_id) VALUES ($1, $2)", [tenant, person])
            try await c.query("INSERT INTO organization.membership_roles (tenant_id, key, display_name) VALUES ($1, 'ceo', 'CEO')", [tenant])
            try await c.query(
                """
                INSERT INTO organization.memberships (tenant_id, id, contact_id, organization_id, created_at, created_by, updated_at, updated_by)
                VALUES ($1, gen_random_uuid(), $2, $3::uuid, now(), 'x', now(), 'x')
                """, [tenant, person, org])
            try await c.query(
                "INSERT INTO organization.groups (tenant_id, id, name, name_key, created_at, created_by, updated_at, updated_by) VALUES ($1, $2, 'G', 'g', now(), 'x', now(), 'x')",
                [tenant, group])
            try await c.query(
                "INSERT INTO organization.group_members (tenant_id, group_id, contact_id, added_by) VALUES ($1, $2, $3, 'x')",
                [tenant, group, person])
            try await c.query(
                "INSERT INTO organization.merge_moves (tenant_id, loser, winner, kind, row_id, action) VALUES ($1, $2, $2, 'group_member', $3, 'repointed')",
                [tenant, person, group])
            try await c.query(
                """
                INSERT INTO organization.feed_dead_letters (tenant_id, feed, sequence, resource_type, resource_id, reason, event)
                VALUES ($1, 'contacts', 1, 'switchboard.contacts.v1.Contact', 'x', 'test', '\\x00'::bytea)
                """, [tenant])
        }
        let tables = [
            "organizations", "organization_domains", "units", "field_definitions", "contacts", "membership_roles", "memberships", "groups",
            "group_members", "merge_moves", "feed_dead_letters", "changes", "change_sequences", "idempotency_keys",
        ]
        // Every table of the schema is either listed here or the service's own bookkeeping (no tenant data), so a new
        // table cannot be added without this test covering it.
        let all = try await harness.pool.query(
            "SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = 'organization' ORDER BY 1"
        ).rows.map { try $0.string("name") }
        #expect(Set(all) == Set(tables + ["feed_cursors", "kit_migrations", "schema_migrations"]))
        for table in tables {
            let owned = try await harness.pool.transaction(settings: ["app.tenant_id": tenantA]) { c in
                try await c.query("SELECT count(*) AS n FROM organization.\(table)").first!.int("n")
            }
            #expect(owned > 0, "\(table): the test wrote no row of tenant A there")
            let seen = try await harness.pool.transaction(settings: ["app.tenant_id": "rls-b"]) { c in
                try await c.query("SELECT count(*) AS n FROM organization.\(table)").first!.int("n")
            }
            #expect(seen == 0, "\(table)")
            #expect(try await harness.pool.query("SELECT count(*) AS n FROM organization.\(table)").first!.int("n") == 0, "\(table)")
        }
        await #expect(throws: PostgresError.self) {
            try await harness.pool.transaction(settings: ["app.tenant_id": "rls-b"]) { c in
                try await c.query(
                    """
                    INSERT INTO organization.organizations (tenant_id, id, name, name_key, owner_id, created_at, created_by, updated_at, updated_by)
                    VALUES ('someone-else', gen_random_uuid(), 'x', 'x', 'x', now(), 'x', now(), 'x')
                    """)
            }
        }
        let role = try await harness.pool.query("SELECT rolbypassrls, rolsuper FROM pg_roles WHERE rolname = current_user").first!
        #expect(try role.bool("rolbypassrls") == false)
        #expect(try role.bool("rolsuper") == false)
        let forced = try await harness.pool.query(
            """
            SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'organization' AND c.relkind = 'r' AND c.relname <> ALL(ARRAY['schema_migrations', 'kit_migrations', 'feed_cursors'])
              AND NOT (c.relrowsecurity AND c.relforcerowsecurity)
            """
        ).first!.int("n")
        #expect(forced == 0, "a tenant table without forced row-level security")
    }

    @Test("auth: no token is UNAUTHENTICATED; read-only reads only; definitions need admin; a service identity gets nothing")
    func authMatrix() async throws {
        let t = tenant()
        let anonymous = OrgClient(stub: OrganizationStub(client: RPCClient(transport: harness.channel)), options: CallOptions())
        #expect(await code { _ = try await anonymous.list() } == .unauthenticated)
        let writer = try await harness.client(tenant: t)
        let organization = try await writer.create("Readable")
        let reader = try await harness.client(tenant: t, roles: [.readOnly])
        #expect(try await reader.get(organization.id).id == organization.id)
        #expect(try await reader.list().organizations.count == 1)
        #expect(try await reader.tree(organization.id).count == 1)
        #expect(try await reader.ancestors(organization.id).isEmpty)
        #expect(try await reader.listUnits(organization.id).units.isEmpty)
        #expect(await code { _ = try await reader.create("Nope") } == .permissionDenied)
        #expect(await code { _ = try await reader.update(organization.id, paths: ["name"]) { $0.name = "x" } } == .permissionDenied)
        #expect(await code { _ = try await reader.delete(organization.id) } == .permissionDenied)
        #expect(await code { _ = try await reader.undelete(organization.id) } == .permissionDenied)
        #expect(await code { _ = try await reader.createUnit("Nope", organization: organization.id) } == .permissionDenied)
        var retire = Switchboard_Organization_V1_RetireFieldRequest()
        retire.key = "x"
        #expect(await code { _ = try await writer.stub.retireField(retire, options: writer.options) } == .permissionDenied)
        let manager = try await harness.client(tenant: t, roles: [.manager])
        #expect(try await manager.create("Managed").name == "Managed")
        let service = try await harness.client(tenant: "", token: try await ServiceHarness.serviceToken())
        #expect(await code { _ = try await service.list() } == .permissionDenied)
    }

    @Test("WatchChanges replays history, then streams live changes; payloads are the Organization's proto3 JSON")
    func watchChanges() async throws {
        let client = try await harness.client(tenant: tenant())
        let first = try await client.create("Watched")
        let stub = client.stub, options = client.options
        let events = Task {
            try await stub.watchChanges(Switchboard_Common_V1_WatchChangesRequest(), options: options) { events in
                var seen: [Switchboard_Common_V1_ChangeEvent] = []
                for try await event in events {
                    seen.append(event)
                    if seen.count == 5 { break }
                }
                return seen
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        _ = try await client.update(first.id, paths: ["tags"]) { $0.tags = ["live"] }
        let unit = try await client.createUnit("Unit", organization: first.id)
        _ = try await client.deleteUnit(unit.id)
        _ = try await client.delete(first.id)
        let seen = try await events.value
        #expect(seen.map(\.sequence) == [1, 2, 3, 4, 5])
        #expect(seen.map(\.kind) == [.created, .updated, .created, .deleted, .deleted])
        #expect(
            seen.map(\.resourceType) == [
                "switchboard.organization.v1.Organization", "switchboard.organization.v1.Organization", "switchboard.organization.v1.Unit",
                "switchboard.organization.v1.Unit", "switchboard.organization.v1.Organization",
            ])
        #expect(seen[1].changedFields == ["tags"])
        let published = try Organization(protoJSONText: try #require(seen[1].resource).protoJSONText())
        #expect(published.id == first.id)
        #expect(published.tags == ["live"])
        #expect(published.etag == "\"2\"")
        let publishedUnit = try Switchboard_Organization_V1_Unit(protoJSONText: try #require(seen[2].resource).protoJSONText())
        #expect(publishedUnit.organizationId == first.id)
    }

    @Test("a stock grpcio client calls the organization RPCs from stubs generated from Protos/")
    func grpcioClient() async throws {
        let token = try await ServiceHarness.token(tenant: tenant(), roles: [.user])
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("organization-grpcio-\(UUID()).log").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let status = await spawnAndWait(
            [
                pythonPath, repositoryRoot.appendingPathComponent("Tests/Interop/organization_client.py").path,
                "--port", String(harness.service.port), "--token", token,
            ],
            environment: ["SWITCHBOARD_INTEROP_STUBS": interopStubsPath], outputPath: output)
        let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        #expect(status == 0, "\(log)")
        #expect(log.contains("PASS organization_client"), "\(log)")
    }
}
