import ContactsService
import Foundation
import Logging
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport
import Testing

/// Change events stored before the kit held the contact as Swift's JSONEncoder wrote it; migration 004 rewrites them
/// into the Contact's proto3 JSON (the contract), leaving events already in that shape alone.
@Suite("Legacy change payloads", .serialized)
struct LegacyPayloadMigrationTests {
    @Test("migration 004 turns the old Swift-encoder shape into the Contact's proto3 JSON, for every tenant")
    func legacyRowsRewritten() async throws {
        let database = "sb_test_" + UUID().uuidString.prefix(8).lowercased()
        let admin = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: adminConninfo, maxConnections: 1))
        try await admin.withConnection { c in
            try await c.executeScript("CREATE DATABASE \(database)")
            try await c.query("SELECT pg_advisory_lock(7424242)", prepared: false)
            try await c.executeScript(
                try String(contentsOf: repositoryRoot.appendingPathComponent("services/contacts/provision.sql"), encoding: .utf8)
                    .replacingOccurrences(of: ":\"DBNAME\"", with: database))
            try await c.query("SELECT pg_advisory_unlock(7424242)", prepared: false)
        }
        admin.close()
        let dbAdmin = adminConninfo.replacingOccurrences(of: "dbname=postgres", with: "dbname=\(database)")
        let service = PostgresPool(
            configuration: PostgresPoolConfiguration(
                conninfo: dbAdmin.replacingOccurrences(of: "user=postgres", with: "user=contacts_service"), maxConnections: 2))
        let owner = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: dbAdmin, maxConnections: 1))
        defer {
            service.close()
            owner.close()
        }
        // The schema as the service left it before the kit: migrations 001-003, and events in the old shape.
        let description = ContactsService.description
        try await MigrationRunner(schema: "contacts", migrations: Array(description.migrations.prefix(3))).migrate(service)
        let plain = #"""
            {"id": "A480FBF1-5F59-4F86-B577-3D17342B92E7", "data": {"kind": 1, "name": {"given": "Ada", "family": "Lovelace", "middle": "", "prefix": "", "suffix": "", "display": ""}, "tags": [], "emails": [], "phones": [], "status": 1, "ownerID": "user-1", "addresses": [], "customFields": {}}, "version": 1, "createdAt": 818019043.491497, "createdBy": "user-1", "updatedAt": 818019043.491497, "updatedBy": "user-1"}
            """#
        let rich = #"""
            {"id": "0000AAAA-5F59-4F86-B577-3D17342B92E7", "data": {"kind": 2, "name": {"given": "", "family": "", "middle": "", "prefix": "", "suffix": "", "display": "Acme Ltd"}, "tags": ["vip", "b2b"], "emails": [{"address": "a@acme.test", "label": "work", "primary": true}, {"address": "b@acme.test", "label": "", "primary": false}], "phones": [{"number": "+44 20 7946 0000", "label": "", "primary": false, "e164": "+442079460000"}], "status": 3, "ownerID": "owner-9", "addresses": [{"label": "hq", "lines": ["1 Road"], "locality": "London", "administrativeArea": "", "postalCode": "N1", "regionCode": "GB"}], "customFields": {"tier": "gold", "seats": 12}}, "version": 7, "createdAt": 818019043.0, "createdBy": "u1", "updatedAt": 818019050.25, "updatedBy": "u2", "deletedAt": 818019050.25}
            """#
        try await owner.query(
            """
            INSERT INTO contacts.changes (tenant_id, sequence, resource_type, resource_id, kind, resource, actor_id)
            VALUES ('t1', 1, 'switchboard.contacts.v1.Contact', 'a480fbf1-5f59-4f86-b577-3d17342b92e7', 1, $1::jsonb, 'user-1'),
                   ('t2', 1, 'switchboard.contacts.v1.Contact', '0000aaaa-5f59-4f86-b577-3d17342b92e7', 3, $2::jsonb, 'u2'),
                   ('t2', 2, 'switchboard.contacts.v1.Contact', 'x', 1, '{"id": "x", "etag": "\\"1\\""}'::jsonb, 'u2')
            """, [.text(plain), .text(rich)])

        try await ServiceRunner.migrate(description, pool: service, logger: Logger(label: "test"))

        let rows = try await owner.query("SELECT tenant_id, sequence, resource::text AS r FROM contacts.changes ORDER BY tenant_id, sequence")
        let payloads = try rows.rows.map { try JSON.parse(try $0.string("r")) }
        #expect(
            payloads[0]
                == (try JSON.parse(
                    #"""
                    {"id": "a480fbf1-5f59-4f86-b577-3d17342b92e7", "name": {"given": "Ada", "family": "Lovelace", "display": "Ada Lovelace"},
                     "type": "CONTACT_TYPE_PERSON", "status": "CONTACT_STATUS_LEAD", "ownerId": "user-1", "customFields": {},
                     "audit": {"createTime": "2026-12-03T19:30:43.491497Z", "createdBy": "user-1", "updateTime": "2026-12-03T19:30:43.491497Z",
                               "updatedBy": "user-1"},
                     "etag": "\"1\""}
                    """#)))
        #expect(
            payloads[1]
                == (try JSON.parse(
                    #"""
                    {"id": "0000aaaa-5f59-4f86-b577-3d17342b92e7", "name": {"display": "Acme Ltd"},
                     "emails": [{"address": "a@acme.test", "label": "work", "primary": true}, {"address": "b@acme.test"}],
                     "phones": [{"number": "+44 20 7946 0000", "e164": "+442079460000"}],
                     "addresses": [{"label": "hq", "addressLines": ["1 Road"], "locality": "London", "postalCode": "N1", "regionCode": "GB"}],
                     "type": "CONTACT_TYPE_COMPANY", "status": "CONTACT_STATUS_CUSTOMER", "tags": ["vip", "b2b"], "ownerId": "owner-9",
                     "customFields": {"tier": "gold", "seats": 12}, "etag": "\"7\"",
                     "audit": {"createTime": "2026-12-03T19:30:43Z", "createdBy": "u1", "updateTime": "2026-12-03T19:30:50.250Z",
                               "updatedBy": "u2", "deleteTime": "2026-12-03T19:30:50.250Z"}}
                    """#)))
        // Already in the new shape: untouched.
        #expect(payloads[2] == (try JSON.parse(#"{"id": "x", "etag": "\"1\""}"#)))
        // Row-level security is forced again afterwards.
        let forced = try await owner.query("SELECT relforcerowsecurity FROM pg_class WHERE oid = 'contacts.changes'::regclass").first
        #expect(try forced?.bool("relforcerowsecurity") == true)
    }
}
