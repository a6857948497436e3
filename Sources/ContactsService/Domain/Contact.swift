import FoundationEssentials
import SwitchboardServiceKit

/// A JSON value (custom field values).
public enum JSONValue: Sendable, Hashable, Codable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let n): try c.encode(n)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}

/// A person's or company's name.
public struct PersonName: Sendable, Hashable, Codable {
    public var given = "", family = "", middle = "", prefix = "", suffix = "", display = ""
    public init() {}
    /// The display name, or one built from the parts.
    public var effectiveDisplay: String {
        if !display.isEmpty { return display }
        return [prefix, given, middle, family, suffix].filter { !$0.isEmpty }.joined(separator: " ")
    }
}

/// An email address of a contact.
public struct EmailAddress: Sendable, Hashable, Codable {
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
public struct PhoneNumber: Sendable, Hashable, Codable {
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
public struct PostalAddress: Sendable, Hashable, Codable {
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
public struct ContactData: Sendable, Hashable, Codable {
    public var name = PersonName()
    public var emails: [EmailAddress] = []
    public var phones: [PhoneNumber] = []
    public var addresses: [PostalAddress] = []
    public var kind: ContactKind = .person
    public var status: ContactStatus = .lead
    public var tags: [String] = []
    public var ownerID = ""
    public var customFields: [String: JSONValue] = [:]
    public init() {}
}

/// A stored contact.
public struct ContactRecord: Sendable, Hashable, Codable {
    public var id: UUID
    public var data: ContactData
    /// Incremented by every change; the etag is derived from it.
    public var version: Int64
    public var createdAt: Date
    public var createdBy: String
    public var updatedAt: Date
    public var updatedBy: String
    public var deletedAt: Date?

    /// The etag clients pass back for conditional updates.
    public var etag: String { "\"\(version)\"" }
}

/// The type of a custom field.
public enum FieldType: Int, Sendable, Hashable, Codable {
    case string = 1, number = 2, bool = 3, date = 4, enumeration = 5
}

/// A tenant's custom field definition.
public struct FieldDefinition: Sendable, Hashable, Codable {
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
}
