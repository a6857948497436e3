import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardProtos
import SwitchboardServiceKit

/// The contacts feed's events (`switchboard.common.v1.ChangeEvent` of `switchboard.contacts.v1.Contact`) as the
/// communication service applies them. The resource is the Contact's proto3 JSON (unknown fields ignored).
enum ContactsFeedMapping {
    static let contactType = "switchboard.contacts.v1.Contact"

    /// What to do with an event.
    enum Outcome: Equatable {
        /// Apply it.
        case apply(ContactEvent)
        /// Not followed (another type or kind).
        case ignore
        /// A Contact event that cannot be applied: set aside, never retried for ever.
        case reject(String)
    }

    static func outcome(_ event: Switchboard_Common_V1_ChangeEvent) -> Outcome {
        guard event.resourceType == contactType else { return .ignore }
        guard let id = UUID(text: event.resourceId) else { return .reject("resource_id is not a UUID") }
        guard !event.tenantId.isEmpty else { return .reject("tenant_id is empty") }
        switch event.kind {
        case .created, .updated, .undeleted, .deleted:
            if event.kind == .deleted { return .apply(ContactEvent(tenantID: event.tenantId, contactID: id, kind: .deleted)) }
            let contact: Switchboard_Contacts_V1_Contact
            do {
                contact = try event.resource(as: Switchboard_Contacts_V1_Contact.self)
            } catch {
                return .reject("the Contact payload does not decode: \(error)")
            }
            if contact.audit?.deleteTime != nil { return .apply(ContactEvent(tenantID: event.tenantId, contactID: id, kind: .deleted)) }
            let (emails, phones) = Self.directoryAddresses(contact)
            return .apply(
                ContactEvent(
                    tenantID: event.tenantId, contactID: id, kind: .addresses(emails: emails, phones: phones), fields: Self.fields(contact)))
        case .merged:
            guard let winner = event.relatedIds.first.flatMap(UUID.init(text:)) else {
                return .reject("a MERGED event needs the winner's id in related_ids[0]")
            }
            guard winner != id else { return .reject("related_ids[0] is the contact itself") }
            return .apply(ContactEvent(tenantID: event.tenantId, contactID: id, kind: .merged(winner: winner)))
        case .unmerged:
            guard let formerWinner = event.relatedIds.first.flatMap(UUID.init(text:)) else {
                return .reject("an UNMERGED event needs the former winner's id in related_ids[0]")
            }
            guard formerWinner != id else { return .reject("related_ids[0] is the contact itself") }
            // The restored contact, when the event carries it: its addresses come back to the directory with it.
            var emails: [String]?, phones: [String]?
            var fields: [String: String]?
            if event.resource != nil {
                let contact: Switchboard_Contacts_V1_Contact
                do {
                    contact = try event.resource(as: Switchboard_Contacts_V1_Contact.self)
                } catch {
                    return .reject("the Contact payload does not decode: \(error)")
                }
                let deleted = contact.audit?.deleteTime != nil
                (emails, phones) = deleted ? ([], []) : Self.directoryAddresses(contact)
                fields = deleted ? [:] : Self.fields(contact)
            }
            return .apply(
                ContactEvent(
                    tenantID: event.tenantId, contactID: id, kind: .unmerged(formerWinner: formerWinner, emails: emails, phones: phones),
                    fields: fields))
        case .erased:
            return .apply(ContactEvent(tenantID: event.tenantId, contactID: id, kind: .erased(request: event.relatedIds.first ?? "")))
        default:
            return .ignore
        }
    }

    /// The erasure receipt's payload: the proto3 JSON of `switchboard.communication.v1.ErasureReceipt`.
    @Sendable static func receiptJSON(_ receipt: ErasureReceiptData) throws -> String {
        var r = Switchboard_Communication_V1_ErasureReceipt()
        r.contactId = receipt.contactID.lowercaseText
        r.erasureRequestId = receipt.erasureRequestID
        r.interactionsRedacted = Int32(clamping: receipt.interactionsRedacted)
        r.sendsRedacted = Int32(clamping: receipt.sendsRedacted)
        r.addressesSuppressed = Int32(clamping: receipt.addressesSuppressed)
        r.changesRedacted = Int32(clamping: receipt.changesRedacted)
        r.storedResponsesRemoved = Int32(clamping: receipt.storedResponsesRemoved)
        r.consentEntriesDeleted = Int32(clamping: receipt.consentEntriesDeleted)
        r.preferencesDeleted = Int32(clamping: receipt.preferencesDeleted)
        return try r.protoJSONText()
    }

    /// A contact's fields for templates: its name parts (`contact.name.given`, `.family`, `.middle`, `.prefix`,
    /// `.suffix`, `.display`: the stated display name, else given and family names joined), its first e-mail address and
    /// phone number as the directory ranks them (`contact.email`, `contact.phone`), and each custom field holding a
    /// string, number or boolean (`custom.<key>`). Empty values and names longer than a placeholder may be are left out.
    static func fields(_ contact: Switchboard_Contacts_V1_Contact) -> [String: String] {
        var fields: [String: String] = [:]
        func put(_ name: String, _ value: String) {
            guard !value.isEmpty, name.utf8.count <= TemplateRules.maxVariableLength, value.utf8.count <= TemplateRules.maxValueBytes else {
                return
            }
            fields[name] = value
        }
        let name = contact.name ?? Switchboard_Contacts_V1_PersonName()
        put("contact.name.given", name.given)
        put("contact.name.family", name.family)
        put("contact.name.middle", name.middle)
        put("contact.name.prefix", name.prefix)
        put("contact.name.suffix", name.suffix)
        put("contact.name.display", name.display.isEmpty ? [name.given, name.family].filter { !$0.isEmpty }.joined(separator: " ") : name.display)
        let (emails, phones) = directoryAddresses(contact)
        put("contact.email", emails.first ?? "")
        put("contact.phone", phones.first ?? "")
        for (key, value) in contact.customFields?.fields ?? [:] {
            // Only keys a placeholder can name: a custom key is letters, digits and underscores in the contacts service.
            guard TemplateScanner.isName("custom." + key) else { continue }
            switch value.kind {
            case .stringValue(let text): put("custom." + key, text)
            case .boolValue(let flag): put("custom." + key, flag ? "true" : "false")
            case .numberValue(let number) where number.isFinite:
                put("custom." + key, number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : String(number))
            default: continue
            }
        }
        return fields
    }

    /// A contact's addresses for the directory, primary first: the directory ranks them in this order, and a campaign
    /// writes to the first. Phones by their E.164 form where the contact has one.
    static func directoryAddresses(_ contact: Switchboard_Contacts_V1_Contact) -> (emails: [String], phones: [String]) {
        let emails = (contact.emails.filter(\.primary) + contact.emails.filter { !$0.primary }).map(\.address)
        let phones = (contact.phones.filter(\.primary) + contact.phones.filter { !$0.primary }).map { $0.e164.isEmpty ? $0.number : $0.e164 }
        return (emails, phones)
    }
}
