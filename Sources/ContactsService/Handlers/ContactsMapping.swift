import FoundationEssentials
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRuntime
import SwitchboardServiceKit

/// Protobuf ⇄ domain conversions for the contacts service.
enum ContactsMapping {
    static func kind(_ type: Switchboard_Contacts_V1_ContactType) -> ContactKind? {
        switch type {
        case .person: return .person
        case .company: return .company
        default: return nil
        }
    }

    static func status(_ status: Switchboard_Contacts_V1_ContactStatus) -> ContactStatus? {
        switch status {
        case .lead: return .lead
        case .prospect: return .prospect
        case .customer: return .customer
        case .inactive: return .inactive
        default: return nil
        }
    }

    static func fieldType(_ type: Switchboard_Contacts_V1_FieldDefinition.FieldType) -> FieldType? {
        switch type {
        case .string: return .string
        case .number: return .number
        case .bool: return .bool
        case .date: return .date
        case .enum: return .enumeration
        default: return nil
        }
    }

    /// Domain data from a request's contact.
    static func data(_ contact: Switchboard_Contacts_V1_Contact, prefix: String) throws -> ContactData {
        var data = ContactData()
        var violations: [Violation] = []
        if let n = contact.name {
            data.name.given = n.given
            data.name.family = n.family
            data.name.middle = n.middle
            data.name.prefix = n.prefix
            data.name.suffix = n.suffix
            data.name.display = n.display
        }
        data.emails = contact.emails.map { EmailAddress(address: $0.address, label: $0.label, primary: $0.primary) }
        data.phones = contact.phones.map { PhoneNumber(number: $0.number, label: $0.label, primary: $0.primary) }
        data.addresses = contact.addresses.map { a in
            var address = PostalAddress()
            address.label = a.label
            address.lines = a.addressLines
            address.locality = a.locality
            address.administrativeArea = a.administrativeArea
            address.postalCode = a.postalCode
            address.regionCode = a.regionCode
            return address
        }
        // UNSPECIFIED keeps the domain default (PERSON, LEAD); an update that names the field rejects it earlier.
        if let k = kind(contact.type) {
            data.kind = k
        } else if contact.type != .unspecified {
            violations.append(Violation("\(prefix).type", "is not a contact type"))
        }
        if let s = status(contact.status) {
            data.status = s
        } else if contact.status != .unspecified {
            violations.append(Violation("\(prefix).status", "is not a contact status"))
        }
        data.tags = contact.tags
        data.ownerID = contact.ownerId
        if let fields = contact.customFields {
            // Counted before reading: the rules would refuse more anyway, and reading costs with every value.
            if fields.fields.count > ContactRules.maxCustomFields {
                violations.append(Violation("\(prefix).custom_fields", "at most \(ContactRules.maxCustomFields) fields", reason: "TOO_MANY"))
            } else {
                for (key, value) in fields.fields {
                    if let converted = json(value, depth: 1) {
                        data.customFields[key] = converted
                    } else {
                        violations.append(
                            Violation(
                                "\(prefix).custom_fields.\(ContactRules.fieldKey(key))",
                                "nests lists and objects more than \(ContactRules.maxCustomFieldDepth) deep", reason: "TOO_DEEP"))
                    }
                }
            }
        }
        if !violations.isEmpty { throw ContactsError.invalid(violations) }
        return data
    }

    /// A request's value as JSON, or nil when lists and objects nest deeper than
    /// ``ContactRules/maxCustomFieldDepth`` (the recursion is ours, so it is bounded here).
    static func json(_ value: Google_Protobuf_Value, depth: Int) -> JSON? {
        switch value.kind {
        case .nullValue, nil: return .null
        case .numberValue(let n): return .number(n)
        case .stringValue(let s): return .string(s)
        case .boolValue(let b): return .bool(b)
        case .structValue(let s):
            guard depth < ContactRules.maxCustomFieldDepth else { return nil }
            var object: [String: JSON] = [:]
            for (key, element) in s.fields {
                guard let converted = json(element, depth: depth + 1) else { return nil }
                object[key] = converted
            }
            return .object(object)
        case .listValue(let l):
            guard depth < ContactRules.maxCustomFieldDepth else { return nil }
            var array: [JSON] = []
            for element in l.values {
                guard let converted = json(element, depth: depth + 1) else { return nil }
                array.append(converted)
            }
            return .array(array)
        }
    }

    static func value(_ json: JSON) -> Google_Protobuf_Value {
        var v = Google_Protobuf_Value()
        switch json {
        case .null: v.kind = .nullValue(.nullValue)
        case .bool(let b): v.kind = .boolValue(b)
        case .number(let n): v.kind = .numberValue(n)
        case .string(let s): v.kind = .stringValue(s)
        case .array(let a):
            var list = Google_Protobuf_ListValue()
            list.values = a.map(value)
            v.kind = .listValue(list)
        case .object(let o):
            var s = Google_Protobuf_Struct()
            s.fields = o.mapValues(value)
            v.kind = .structValue(s)
        }
        return v
    }

    static func proto(_ record: ContactRecord) -> Switchboard_Contacts_V1_Contact {
        var c = Switchboard_Contacts_V1_Contact()
        let d = record.data
        c.id = record.id.lowercaseText
        var name = Switchboard_Contacts_V1_PersonName()
        name.given = d.name.given
        name.family = d.name.family
        name.middle = d.name.middle
        name.prefix = d.name.prefix
        name.suffix = d.name.suffix
        name.display = d.name.effectiveDisplay
        c.name = name
        c.emails = d.emails.map { e in
            var p = Switchboard_Contacts_V1_Email()
            p.address = e.address
            p.label = e.label
            p.primary = e.primary
            return p
        }
        c.phones = d.phones.map { ph in
            var p = Switchboard_Contacts_V1_Phone()
            p.number = ph.number
            p.label = ph.label
            p.primary = ph.primary
            p.e164 = ph.e164
            return p
        }
        c.addresses = d.addresses.map { a in
            var p = Switchboard_Common_V1_PostalAddress()
            p.label = a.label
            p.addressLines = a.lines
            p.locality = a.locality
            p.administrativeArea = a.administrativeArea
            p.postalCode = a.postalCode
            p.regionCode = a.regionCode
            return p
        }
        c.type = d.kind == .person ? .person : .company
        switch d.status {
        case .lead: c.status = .lead
        case .prospect: c.status = .prospect
        case .customer: c.status = .customer
        case .inactive: c.status = .inactive
        }
        c.tags = d.tags
        c.ownerId = d.ownerID
        var fields = Google_Protobuf_Struct()
        fields.fields = d.customFields.mapValues(value)
        c.customFields = fields
        var audit = Switchboard_Common_V1_AuditStamps()
        audit.createTime = record.createdAt
        audit.createdBy = record.createdBy
        audit.updateTime = record.updatedAt
        audit.updatedBy = record.updatedBy
        audit.deleteTime = record.deletedAt
        c.audit = audit
        c.etag = record.etag
        c.mergedIntoId = record.mergedInto?.lowercaseText ?? ""
        return c
    }

    static func proto(_ d: FieldDefinition) -> Switchboard_Contacts_V1_FieldDefinition {
        var p = Switchboard_Contacts_V1_FieldDefinition()
        p.key = d.key
        p.displayName = d.displayName
        switch d.type {
        case .string: p.type = .string
        case .number: p.type = .number
        case .bool: p.type = .bool
        case .date: p.type = .date
        case .enumeration: p.type = .enum
        }
        p.allowedValues = d.allowedValues
        p.required = d.required
        p.retired = d.retired
        return p
    }

    static func proto(_ highlight: ContactHighlight) -> Switchboard_Contacts_V1_Highlight {
        var h = Switchboard_Contacts_V1_Highlight()
        h.field = highlight.field
        h.text = highlight.text
        h.matches = highlight.matches.map {
            var range = Switchboard_Contacts_V1_TextRange()
            range.start = Int32(clamping: $0.lowerBound)
            range.end = Int32(clamping: $0.upperBound)
            return range
        }
        return h
    }

    /// A facet value as a client reads it: statuses and types by their enum names, the rest as stored.
    static func facetValue(_ value: String, of facet: ContactSearch.FacetField?) -> String {
        switch facet {
        case .status?:
            switch Int(value).flatMap(ContactStatus.init(rawValue:)) {
            case .lead?: return "CONTACT_STATUS_LEAD"
            case .prospect?: return "CONTACT_STATUS_PROSPECT"
            case .customer?: return "CONTACT_STATUS_CUSTOMER"
            case .inactive?: return "CONTACT_STATUS_INACTIVE"
            case nil: return value
            }
        case .type?:
            switch Int(value).flatMap(ContactKind.init(rawValue:)) {
            case .person?: return "CONTACT_TYPE_PERSON"
            case .company?: return "CONTACT_TYPE_COMPANY"
            case nil: return value
            }
        default:
            return value
        }
    }

    static func proto(_ saved: SavedSearchRecord) -> Switchboard_Contacts_V1_SavedSearch {
        var p = Switchboard_Contacts_V1_SavedSearch()
        p.id = saved.id.lowercaseText
        p.name = saved.name
        p.shared = saved.shared
        p.ownerId = saved.ownerID
        // Stored by this service from a checked request: bytes that no longer decode are shown as no search.
        p.search = try? Switchboard_Contacts_V1_SearchContactsRequest(serializedBytes: saved.search)
        var audit = Switchboard_Common_V1_AuditStamps()
        audit.createTime = saved.createdAt
        audit.createdBy = saved.ownerID
        p.audit = audit
        return p
    }

    /// A relationship as the contract shows it.
    static func proto(_ record: RelationshipRecord) -> Switchboard_Contacts_V1_Relationship {
        var p = Switchboard_Contacts_V1_Relationship()
        p.id = record.id.lowercaseText
        p.contactId = record.contactID.lowercaseText
        p.relatedContactId = record.relatedID.lowercaseText
        p.type = Switchboard_Contacts_V1_RelationshipType(protoValue: Int32(record.kind.rawValue))
        p.strength = Int32(record.strength)
        p.note = record.note
        var audit = Switchboard_Common_V1_AuditStamps()
        audit.createTime = record.createdAt
        audit.createdBy = record.createdBy
        audit.updateTime = record.updatedAt
        audit.updatedBy = record.updatedBy
        p.audit = audit
        p.etag = record.etag
        return p
    }

    /// The relationship type, or nil for UNSPECIFIED and values this version does not know.
    static func relationshipKind(_ type: Switchboard_Contacts_V1_RelationshipType) -> RelationshipKind? {
        RelationshipKind(rawValue: Int(type.protoValue))
    }
}
