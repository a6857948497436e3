import FoundationEssentials
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardServiceKit

/// Protobuf ⇄ domain conversions for the organization service.
enum OrganizationMapping {
    typealias Proto = Switchboard_Organization_V1_Organization

    static func size(_ band: Switchboard_Organization_V1_SizeBand) -> SizeBand? {
        switch band {
        case .sizeBand1To10: return .oneToTen
        case .sizeBand11To50: return .elevenToFifty
        case .sizeBand51To200: return .fiftyOneTo200
        case .sizeBand201To1000: return .twoHundredOneTo1000
        case .sizeBand1001To5000: return .thousandOneTo5000
        case .sizeBand5001OrMore: return .over5000
        default: return nil
        }
    }

    static func proto(_ band: SizeBand?) -> Switchboard_Organization_V1_SizeBand {
        guard let band else { return .unspecified }
        return Switchboard_Organization_V1_SizeBand(protoValue: Int32(band.rawValue))
    }

    static func unitKind(_ kind: Switchboard_Organization_V1_UnitKind) -> UnitKind? {
        switch kind {
        case .department: return .department
        case .team: return .team
        case .other: return .other
        default: return nil
        }
    }

    static func fieldType(_ type: Switchboard_Organization_V1_FieldDefinition.FieldType) -> CustomFieldType? {
        switch type {
        case .string: return .string
        case .number: return .number
        case .bool: return .bool
        case .date: return .date
        case .enum: return .enumeration
        default: return nil
        }
    }

    /// An id a request names: nil when empty, a violation when malformed.
    static func optionalID(_ text: String, field: String, violations: inout [Violation]) -> UUID? {
        guard !text.isEmpty else { return nil }
        guard let id = UUID(text: text) else {
            violations.append(Violation(field, "\(CustomFieldRules.excerpt(text)) is not an id (UUID)", reason: "INVALID_FORMAT"))
            return nil
        }
        return id
    }

    /// An id a request must name.
    static func requiredID(_ text: String, field: String) throws -> UUID {
        guard let id = UUID(text: text) else {
            throw OrganizationError.invalid([
                Violation(
                    field, text.isEmpty ? "is required" : "\(CustomFieldRules.excerpt(text)) is not an id (UUID)",
                    reason: text.isEmpty ? "REQUIRED" : "INVALID_FORMAT")
            ])
        }
        return id
    }

    /// Domain data from a request's organization.
    static func data(_ o: Proto, prefix: String) throws -> OrganizationData {
        var data = OrganizationData()
        var violations: [Violation] = []
        data.name = o.name
        data.domains = o.domains
        data.industry = o.industry
        if let band = size(o.size) {
            data.size = band
        } else if o.size != .unspecified {
            violations.append(Violation("\(prefix).size", "is not a size band"))
        }
        if let money = o.annualRevenue {
            data.annualRevenue = Money(currencyCode: money.currencyCode, units: money.units, nanos: money.nanos)
        }
        data.addresses = o.addresses.map { a in
            var address = PostalAddress()
            address.label = a.label
            address.lines = a.addressLines
            address.locality = a.locality
            address.administrativeArea = a.administrativeArea
            address.postalCode = a.postalCode
            address.regionCode = a.regionCode
            return address
        }
        data.tags = o.tags
        data.ownerID = o.ownerId
        data.parentID = optionalID(o.parentId, field: "\(prefix).parent_id", violations: &violations)
        switch CustomFieldRules.values(o.customFields, prefix: "\(prefix).custom_fields") {
        case .success(let values): data.customFields = values
        case .failure(let error): violations += error.violations
        }
        if !violations.isEmpty { throw OrganizationError.invalid(violations) }
        return data
    }

    static func audit(
        createdAt: Date, createdBy: String, updatedAt: Date, updatedBy: String, deletedAt: Date?
    ) -> Switchboard_Common_V1_AuditStamps {
        var audit = Switchboard_Common_V1_AuditStamps()
        audit.createTime = createdAt
        audit.createdBy = createdBy
        audit.updateTime = updatedAt
        audit.updatedBy = updatedBy
        audit.deleteTime = deletedAt
        return audit
    }

    static func proto(_ record: OrganizationRecord) -> Proto {
        var o = Proto()
        let d = record.data
        o.id = record.id.lowercaseText
        o.name = d.name
        o.domains = d.domains
        o.industry = d.industry
        o.size = proto(d.size)
        if let money = d.annualRevenue {
            var m = Switchboard_Common_V1_Money()
            m.currencyCode = money.currencyCode
            m.units = money.units
            m.nanos = money.nanos
            o.annualRevenue = m
        }
        o.addresses = d.addresses.map { a in
            var p = Switchboard_Common_V1_PostalAddress()
            p.label = a.label
            p.addressLines = a.lines
            p.locality = a.locality
            p.administrativeArea = a.administrativeArea
            p.postalCode = a.postalCode
            p.regionCode = a.regionCode
            return p
        }
        o.tags = d.tags
        o.ownerId = d.ownerID
        o.customFields = CustomFieldRules.protoStruct(d.customFields)
        o.parentId = d.parentID?.lowercaseText ?? ""
        o.audit = audit(
            createdAt: record.createdAt, createdBy: record.createdBy, updatedAt: record.updatedAt, updatedBy: record.updatedBy,
            deletedAt: record.deletedAt)
        o.etag = record.etag
        return o
    }

    static func proto(_ node: TreeNode) -> Switchboard_Organization_V1_OrganizationTreeNode {
        var n = Switchboard_Organization_V1_OrganizationTreeNode()
        n.organization = proto(node.record)
        n.depth = Int32(clamping: node.depth)
        n.path = node.path.map(\.lowercaseText)
        return n
    }

    static func proto(_ d: CustomFieldDefinition) -> Switchboard_Organization_V1_FieldDefinition {
        var p = Switchboard_Organization_V1_FieldDefinition()
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

    static func proto(_ record: UnitRecord) -> Switchboard_Organization_V1_Unit {
        var u = Switchboard_Organization_V1_Unit()
        u.id = record.id.lowercaseText
        u.organizationId = record.data.organizationID.lowercaseText
        u.parentUnitId = record.data.parentUnitID?.lowercaseText ?? ""
        u.name = record.data.name
        u.kind = Switchboard_Organization_V1_UnitKind(protoValue: Int32(record.data.kind.rawValue))
        u.audit = audit(
            createdAt: record.createdAt, createdBy: record.createdBy, updatedAt: record.updatedAt, updatedBy: record.updatedBy,
            deletedAt: record.deletedAt)
        u.etag = record.etag
        return u
    }
}
