import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit

extension CommunicationHandler {
    /// The `GetContactPreferences` RPC (see `communication.proto`).
    public func getContactPreferences(
        request: Switchboard_Communication_V1_GetContactPreferencesRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_ContactPreferences {
        let contact = try InteractionMapping.requiredID(request.contactId, field: "contact_id")
        return PreferencesMapping.proto(try await preferences.get(contactID: contact, actor: try context.actor()))
    }

    /// The `UpdateContactPreferences` RPC (see `communication.proto`).
    public func updateContactPreferences(
        request: Switchboard_Communication_V1_UpdateContactPreferencesRequest, context: ServerContext
    ) async throws -> Switchboard_Communication_V1_ContactPreferences {
        guard let stated = request.preferences else {
            throw CommunicationError.invalid([Violation("preferences", "is required", reason: "REQUIRED")])
        }
        let contact = try InteractionMapping.requiredID(stated.contactId, field: "preferences.contact_id")
        let paths = request.updateMask?.paths ?? []
        let data = try PreferencesMapping.data(stated)
        guard request.etag.utf8.count <= Self.maxETagBytes else {
            throw CommunicationError.invalid([Violation("etag", "must be at most \(Self.maxETagBytes) bytes", reason: "TOO_LONG")])
        }
        let write = try IdempotentWrite(
            request: request, requestID: request.requestId, method: Methods.updateContactPreferences,
            response: { (r: PreferencesRecord) in PreferencesMapping.proto(r) })
        // Asking not to be contacted is never refused (as a consent withdrawal is not): it must hold should a deleted or
        // merged-away contact come back.
        if !(data.doNotContact && (paths.isEmpty || paths.contains("do_not_contact"))) {
            let named = [ContactReference(field: "preferences.contact_id", id: contact)]
            if let replay = try await references.check(named, for: write, context: context) { return replay }
        }
        return try write.response(
            try await preferences.update(
                contactID: contact, from: data, paths: paths, etag: request.etag, actor: try context.actor(), write: write.options))
    }
}
