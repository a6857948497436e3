import FoundationEssentials
import SwitchboardServiceKit

/// How two contacts become one and how a merge is taken back, pure (no I/O).
///
/// The winner keeps every value it has. From the loser it gains what it lacks: email addresses (compared without case),
/// phone numbers (by E.164 form, or as written without one), postal addresses and tags it does not have, all
/// non-primary; custom fields it has no value for; name parts that are empty in it. What it gained is kept in the merge
/// log, so an unmerge takes back exactly that, where it is still as the merge left it.
public enum MergeRules {
    /// The winner's data with the loser's added, what was added (a contact's values: only those the merge added), and
    /// the top-level fields that changed (for the change event).
    public static func combine(winner: ContactData, loser: ContactData) -> (data: ContactData, added: ContactData, changed: [String]) {
        var data = winner, added = ContactData()
        var changed: [String] = []

        let parts: [WritableKeyPath<PersonName, String>] = [\.given, \.family, \.middle, \.prefix, \.suffix, \.display]
        for part in parts where data.name[keyPath: part].isEmpty && !loser.name[keyPath: part].isEmpty {
            data.name[keyPath: part] = loser.name[keyPath: part]
            added.name[keyPath: part] = loser.name[keyPath: part]
        }
        if added.name != PersonName() { changed.append("name") }

        let emails = Set(winner.emails.map { $0.address.lowercased() })
        for email in loser.emails where !emails.contains(email.address.lowercased()) {
            var copy = email
            copy.primary = false
            data.emails.append(copy)
            added.emails.append(copy)
        }
        if !added.emails.isEmpty { changed.append("emails") }

        let phones = Set(winner.phones.map(phoneKey))
        for phone in loser.phones where !phones.contains(phoneKey(phone)) {
            var copy = phone
            copy.primary = false
            data.phones.append(copy)
            added.phones.append(copy)
        }
        if !added.phones.isEmpty { changed.append("phones") }

        for address in loser.addresses where !winner.addresses.contains(address) {
            data.addresses.append(address)
            added.addresses.append(address)
        }
        if !added.addresses.isEmpty { changed.append("addresses") }

        let tags = Set(winner.tags)
        for tag in loser.tags where !tags.contains(tag) {
            data.tags.append(tag)
            added.tags.append(tag)
        }
        if !added.tags.isEmpty { changed.append("tags") }

        for (key, value) in loser.customFields.sorted(by: { $0.key < $1.key }) where winner.customFields[key] == nil {
            data.customFields[key] = value
            added.customFields[key] = value
        }
        if !added.customFields.isEmpty { changed.append("custom_fields") }
        return (data, added, changed)
    }

    /// The former winner's data without what a merge `added` that is still there unchanged, and the fields that changed.
    public static func strip(_ winner: ContactData, added: ContactData) -> (data: ContactData, changed: [String]) {
        var data = winner
        var changed: [String] = []
        let parts: [WritableKeyPath<PersonName, String>] = [\.given, \.family, \.middle, \.prefix, \.suffix, \.display]
        for part in parts where !added.name[keyPath: part].isEmpty && data.name[keyPath: part] == added.name[keyPath: part] {
            data.name[keyPath: part] = ""
        }
        // A contact keeps a name: parts its users left as the only ones stay.
        if data.name.effectiveDisplay.isEmpty { data.name = winner.name }
        if data.name != winner.name { changed.append("name") }
        // Addresses and numbers go back with the contact they came from, whatever their label or flag now; if the primary
        // one goes, the first left becomes primary.
        let emails = Set(added.emails.map { $0.address.lowercased() })
        data.emails.removeAll { emails.contains($0.address.lowercased()) }
        if !data.emails.isEmpty, !data.emails.contains(where: \.primary) { data.emails[0].primary = true }
        if data.emails != winner.emails { changed.append("emails") }
        let phones = Set(added.phones.map(phoneKey))
        data.phones.removeAll { phones.contains(phoneKey($0)) }
        if !data.phones.isEmpty, !data.phones.contains(where: \.primary) { data.phones[0].primary = true }
        if data.phones != winner.phones { changed.append("phones") }
        data.addresses.removeAll { added.addresses.contains($0) }
        if data.addresses != winner.addresses { changed.append("addresses") }
        let tags = Set(added.tags)
        data.tags.removeAll { tags.contains($0) }
        if data.tags != winner.tags { changed.append("tags") }
        for (key, value) in added.customFields where data.customFields[key] == value {
            data.customFields[key] = nil
        }
        if data.customFields != winner.customFields { changed.append("custom_fields") }
        return (data, changed)
    }

    /// What makes two phone numbers the same number.
    static func phoneKey(_ phone: PhoneNumber) -> String {
        phone.e164.isEmpty ? phone.number : phone.e164
    }
}
