import FoundationEssentials
import SwitchboardProtos
import SwitchboardServiceKit

/// A person's or company's name.
public struct PersonName: Sendable, Hashable {
    public var given = "", family = "", middle = "", prefix = "", suffix = "", display = ""
    public init() {}
    /// The display name, or one built from the parts.
    public var effectiveDisplay: String {
        if !display.isEmpty { return display }
        return [prefix, given, middle, family, suffix].filter { !$0.isEmpty }.joined(separator: " ")
    }
}

/// An email address of a contact.
public struct EmailAddress: Sendable, Hashable {
    public var address: String
    public var label: String
    public var primary: Bool
    public init(address: String, label: String = "", primary: Bool = false) {
        self.address = address
        self.label = label
        self.primary = primary
    }
}

/// A phone number of a contact.
public struct PhoneNumber: Sendable, Hashable {
    public var number: String
    public var label: String
    public var primary: Bool
    /// Normalised E.164 form, set by validation.
    public var e164: String
    public init(number: String, label: String = "", primary: Bool = false, e164: String = "") {
        self.number = number
        self.label = label
        self.primary = primary
        self.e164 = e164
    }
}

/// A postal address.
public struct PostalAddress: Sendable, Hashable {
    public var label = "", lines: [String] = [], locality = "", administrativeArea = "", postalCode = "", regionCode = ""
    public init() {}
}

/// Person or company.
public enum ContactKind: Int, Sendable, Hashable, Codable, CaseIterable {
    case person = 1, company = 2
}

/// Where a contact stands.
public enum ContactStatus: Int, Sendable, Hashable, Codable, CaseIterable {
    case lead = 1, prospect = 2, customer = 3, inactive = 4
}

/// Everything about a contact that callers set.
public struct ContactData: Sendable, Hashable {
    public var name = PersonName()
    public var emails: [EmailAddress] = []
    public var phones: [PhoneNumber] = []
    public var addresses: [PostalAddress] = []
    public var kind: ContactKind = .person
    public var status: ContactStatus = .lead
    public var tags: [String] = []
    public var ownerID = ""
    /// Custom field values by key (JSON: the one JSON value type, shared with proto3 JSON and the jsonb columns).
    public var customFields: [String: JSON] = [:]
    public init() {}
}

/// A stored contact.
public struct ContactRecord: Sendable, Hashable {
    public var id: UUID
    public var data: ContactData
    /// Incremented by every change; the etag is derived from it.
    public var version: Int64
    public var createdAt: Date
    public var createdBy: String
    public var updatedAt: Date
    public var updatedBy: String
    public var deletedAt: Date?
    /// The contact this one was merged into (it is then deleted).
    public var mergedInto: UUID? = nil

    /// The etag clients pass back for conditional updates.
    public var etag: String { "\"\(version)\"" }
}

/// The type of a custom field.
public enum FieldType: Int, Sendable, Hashable {
    case string = 1, number = 2, bool = 3, date = 4, enumeration = 5
}

/// A tenant's custom field definition.
public struct FieldDefinition: Sendable, Hashable {
    public var key: String
    public var displayName: String
    public var type: FieldType
    public var allowedValues: [String]
    public var required: Bool
    public var retired: Bool
    public init(key: String, displayName: String, type: FieldType, allowedValues: [String] = [], required: Bool = false, retired: Bool = false) {
        self.key = key
        self.displayName = displayName
        self.type = type
        self.allowedValues = allowedValues
        self.required = required
        self.retired = retired
    }
}

/// What can go wrong in the contacts domain; handlers map each case to a gRPC status.
public enum ContactsError: Error, Sendable, Equatable {
    case invalid([Violation])
    case notFound(String)
    case emailTaken(email: String, existingContactID: UUID)
    case etagMismatch(current: String)
    case fieldExists(key: String)
    case fieldNotFound(key: String)
    /// The tenant has as many field definitions as it may.
    case tooManyFields(limit: Int)
    /// No saved search with this id that the caller may see.
    case savedSearchNotFound(String)
    /// No erasure with this id in the tenant.
    case erasureNotFound(String)
    /// The contact was merged into another (`into`): restoring or erasing it goes through its winner or UnmergeContact.
    case mergedAway(id: String, into: String, action: String)
    /// The contact is not merged: there is no merge to reverse.
    case notMerged(String)
    /// Another request changed what this one depends on while it ran: retry it.
    case concurrentChange(String)
    /// The merged contact would break a rule (its violations, from the contact's rules).
    case mergeRefused([Violation])
    /// The caller sees the saved search but may not delete it (neither its owner nor an admin).
    case notSavedSearchOwner(String)
    /// The caller owns as many saved searches as one may.
    case tooManySavedSearches(limit: Int)
    /// A search ran past its statement timeout.
    case searchTooExpensive(milliseconds: Int)
    /// A search with facets waited as long as a search may run for one of the places such searches run in at once.
    case searchesBusy(atOnce: Int, milliseconds: Int)
    /// A bulk change matched more contacts than it may change at once.
    case tooManyMatches(count: Int, limit: Int)
    /// An import id already used with other options (another format or mapping would number and read rows otherwise).
    case importOptionsChanged(importID: String)
    /// A row sent again under an import id is not the row the import wrote with that number: another input.
    case importInputChanged(importID: String, row: Int)
    /// A dry run's memory of what its rows would write passed its bound after `row`: the rows after it cannot be
    /// previewed exactly.
    case importPreviewFull(row: Int, maxBytes: Int)
    /// A CSV export met a contact with more postal addresses than its header has columns for: it gained them after the
    /// export counted them.
    case exportAddressesChanged(contactID: UUID)
    /// A contact a request names (at `field`) is not a live contact of the tenant.
    case contactNotFound(field: String, id: String)
    /// No relationship with this id in the tenant.
    case relationshipNotFound(String)
    /// The two contacts already have this relationship (or its inverse): the existing one's id.
    case relationshipExists(existing: UUID)
    /// The relationship changed since the caller read it (its current etag).
    case relationshipETagMismatch(current: String)
    /// The contact has as many relationships as one may.
    case tooManyRelationships(contact: String, limit: Int)
    /// The error of one item of an all-or-nothing batch (`item`: its path, `requests[3]`), which failed the whole
    /// batch: the status is the item's, the message says which item.
    indirect case inBatchItem(String, ContactsError)

    /// The error as the failure of an all-or-nothing batch's item `item`: violations already name their fields, and
    /// any other error is wrapped to name the item.
    func failingBatch(item: String) -> ContactsError {
        switch self {
        case .invalid: return prefixed(item)
        case .inBatchItem: return self
        default: return .inBatchItem(item, self)
        }
    }

    /// The error with its violations' fields under `prefix` (a batch item's path), where they are not already.
    func prefixed(_ prefix: String) -> ContactsError {
        guard case .invalid(let violations) = self else { return self }
        return .invalid(
            violations.map { v in v.field.hasPrefix(prefix) ? v : Violation("\(prefix).\(v.field)", v.description, reason: v.reason) })
    }
}
