import Foundation
import SwitchboardProtos
import SwitchboardRPC
import Testing

/// People in a real contacts service (a ``ServiceHarness`` of `ContactsService`), for the tests of services that ask it
/// about the contacts a write names.
extension ServiceHarness {
    private var contactsStub: Switchboard_Contacts_V1_ContactsService_Client {
        Switchboard_Contacts_V1_ContactsService_Client(client: RPCClient(transport: channel))
    }

    /// Creates a person named `given` in `tenant`; returns its id.
    public func person(_ tenant: String, _ given: String) async throws -> String {
        var name = Switchboard_Contacts_V1_PersonName()
        name.given = given
        var contact = Switchboard_Contacts_V1_Contact()
        contact.name = name
        var request = Switchboard_Contacts_V1_CreateContactRequest()
        request.contact = contact
        return try await contactsStub.createContact(request, options: try await options(tenant: tenant)).id
    }

    /// Soft-deletes contact `id` of `tenant`.
    public func deleteContact(_ tenant: String, _ id: String) async throws {
        var request = Switchboard_Contacts_V1_DeleteContactRequest()
        request.id = id
        _ = try await contactsStub.deleteContact(request, options: try await options(tenant: tenant))
    }
}

/// The contact ids a NOT_FOUND of the contact check names in its `google.rpc.ResourceInfo` details, when its message
/// names `field`; records an issue (and returns none) for any other error.
public func missingContacts(_ error: RPCError?, field: String, sourceLocation: SourceLocation = #_sourceLocation) -> [String] {
    guard let error, error.code == .notFound, error.message.contains("\(field): contact") else {
        Issue.record("expected NOT_FOUND naming \(field), got \(String(describing: error))", sourceLocation: sourceLocation)
        return []
    }
    let infos = (error.statusDetails?.details ?? []).compactMap { try? $0.unpack(Google_Rpc_ResourceInfo.self) }
    #expect(
        infos.allSatisfy { $0.resourceType == "switchboard.contacts.v1.Contact" && $0.description.contains("not a live contact") },
        sourceLocation: sourceLocation)
    return infos.map(\.resourceName)
}
