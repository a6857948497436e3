import ContactsService
import Foundation
import JWTKit
import Logging
import SwitchboardBuiltins
import SwitchboardHTTP2
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import SwitchboardTestSupport

/// The contacts service in-process over real HTTP/2 on a fresh database, as the `contacts_service` role, assembled
/// as the executable assembles it (the kit's ``ServiceHarness``).
final class ContactsHarness: Sendable {
    let service: ServiceHarness
    var database: String { service.database }
    var serviceConninfo: String { service.serviceConninfo }
    var pool: PostgresPool { service.pool }
    var port: Int { service.port }
    var channel: GRPCChannel { service.channel }
    var health: HealthService { service.assembly.health }
    var monitor: DatabaseHealthMonitor { service.assembly.monitor }

    static func start(
        adminConninfo: String = adminConninfo, limits: ContactsLimits = ContactsLimits(), poolSize: Int? = nil
    ) async throws -> ContactsHarness {
        ContactsHarness(
            service: try await ServiceHarness.start(ContactsService.description(limits: limits), adminConninfo: adminConninfo, poolSize: poolSize))
    }

    private init(service: ServiceHarness) { self.service = service }

    func stop() async { await service.stop() }

    /// A typed client calling as `user` of `tenant` with `roles`.
    func client(tenant: String, user: String = "user-1", roles: [Role] = [.user], token given: String? = nil) async throws -> Client {
        let options = try await service.options(tenant: tenant, user: user, roles: roles, token: given)
        return Client(stub: Switchboard_Contacts_V1_ContactsService_Client(client: RPCClient(transport: channel)), options: options)
    }

    static func token(
        tenant: String, user: String = "user-1", roles: [Role], expires: Date = Date().addingTimeInterval(600), secret: String = testSecret
    ) async throws -> String {
        try await ServiceHarness.token(tenant: tenant, user: user, roles: roles, expires: expires, secret: secret)
    }
}

/// The typed client plus the call options carrying the token.
struct Client: Sendable {
    let stub: Switchboard_Contacts_V1_ContactsService_Client
    let options: CallOptions

    func create(
        given: String = "Ada", family: String = "Lovelace", emails: [String] = [], phones: [String] = [], requestID: String = "",
        custom: [String: Google_Protobuf_Value] = [:], tags: [String] = []
    ) async throws -> Switchboard_Contacts_V1_Contact {
        var request = Switchboard_Contacts_V1_CreateContactRequest()
        var contact = Switchboard_Contacts_V1_Contact()
        var name = Switchboard_Contacts_V1_PersonName()
        name.given = given
        name.family = family
        contact.name = name
        contact.emails = emails.map {
            var e = Switchboard_Contacts_V1_Email()
            e.address = $0
            return e
        }
        contact.phones = phones.map {
            var p = Switchboard_Contacts_V1_Phone()
            p.number = $0
            return p
        }
        contact.tags = tags
        if !custom.isEmpty {
            var s = Google_Protobuf_Struct()
            s.fields = custom
            contact.customFields = s
        }
        request.contact = contact
        request.requestId = requestID
        return try await stub.createContact(request, options: options)
    }

    func get(_ id: String, includeDeleted: Bool = false) async throws -> Switchboard_Contacts_V1_Contact {
        var request = Switchboard_Contacts_V1_GetContactRequest()
        request.id = id
        request.includeDeleted = includeDeleted
        return try await stub.getContact(request, options: options)
    }

    func list(
        pageSize: Int32 = 0, token: String = "", configure: (inout Switchboard_Contacts_V1_ListContactsRequest) -> Void = { _ in }
    )
        async throws -> Switchboard_Contacts_V1_ListContactsResponse
    {
        var request = Switchboard_Contacts_V1_ListContactsRequest()
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = pageSize
        page.pageToken = token
        request.page = page
        configure(&request)
        return try await stub.listContacts(request, options: options)
    }

    func update(
        _ id: String, paths: [String], etag: String = "", requestID: String = "",
        change: (inout Switchboard_Contacts_V1_Contact) -> Void
    ) async throws -> Switchboard_Contacts_V1_Contact {
        var request = Switchboard_Contacts_V1_UpdateContactRequest()
        var contact = Switchboard_Contacts_V1_Contact()
        contact.id = id
        change(&contact)
        request.contact = contact
        request.updateMask = Google_Protobuf_FieldMask(paths: paths)
        request.etag = etag
        request.requestId = requestID
        return try await stub.updateContact(request, options: options)
    }

    func delete(_ id: String, etag: String = "") async throws -> Switchboard_Contacts_V1_Contact {
        var request = Switchboard_Contacts_V1_DeleteContactRequest()
        request.id = id
        request.etag = etag
        return try await stub.deleteContact(request, options: options)
    }

    func undelete(_ id: String) async throws -> Switchboard_Contacts_V1_Contact {
        var request = Switchboard_Contacts_V1_UndeleteContactRequest()
        request.id = id
        return try await stub.undeleteContact(request, options: options)
    }
}

func rpcError(_ body: () async throws -> Void) async -> RPCError? {
    do {
        try await body()
        return nil
    } catch let error as RPCError {
        return error
    } catch {
        return RPCError(code: .unknown, message: "\(error)")
    }
}

func string(_ s: String) -> Google_Protobuf_Value {
    var v = Google_Protobuf_Value()
    v.kind = .stringValue(s)
    return v
}

func number(_ n: Double) -> Google_Protobuf_Value {
    var v = Google_Protobuf_Value()
    v.kind = .numberValue(n)
    return v
}
