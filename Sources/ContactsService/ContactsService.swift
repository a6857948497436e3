import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime

/// The contacts service as the runtime runs it: schema, migrations, RPCs and the role each RPC needs.
public enum ContactsService {
    /// The runtime description.
    public static var description: ServiceDescription {
        typealias M = Switchboard_Contacts_V1_ContactsService.Method
        return ServiceDescription(
            name: "contacts", schema: "contacts", migrations: EmbeddedMigrations.all,
            grpcServices: [Switchboard_Contacts_V1_ContactsService.serviceName],
            requiredRoles: [
                M.createContact: .user, M.updateContact: .user, M.deleteContact: .user, M.undeleteContact: .user,
                M.getContact: .readOnly, M.batchGetContacts: .readOnly, M.listContacts: .readOnly, M.watchChanges: .readOnly,
                M.listFieldDefinitions: .readOnly, M.defineField: .admin, M.retireField: .admin,
            ],
            makeServices: { [ContactsHandler(dependencies: $0)] })
    }
}
