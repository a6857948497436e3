import FoundationEssentials
import SwitchboardProtos
import SwitchboardServiceKit

/// A bound on one string a client sets: Characters (what a person counts) and UTF-8 bytes (what storage, indexes and
/// messages count).
public struct TextBound: Sendable, Hashable {
    /// Most Characters.
    public var characters: Int
    /// Most UTF-8 bytes.
    public var bytes: Int

    /// Whether `text` is within both bounds (bytes first: O(1), and they bound the Character count's work).
    public func allows(_ text: String) -> Bool { text.utf8.count <= bytes && text.count <= characters }

    /// What the bound says, for a violation.
    public var description: String { "must be at most \(characters) characters (\(bytes) bytes of UTF-8)" }
}

/// Validation and normalisation of organizations, units and update paths. Pure: no I/O.
///
/// Every string and list a client sets has a bound here, and an organization as a whole has a size bound, so no
/// stored organization can make a response (a page, a change event) outgrow the message limit.
public enum OrganizationRules {
    static let maxDomains = 20, maxAddresses = 10, maxAddressLines = 10, maxTags = 50
    /// Names of organizations and units; the byte bound keeps the name index's entries small.
    static let nameBound = TextBound(characters: 500, bytes: 2000)
    static let industryBound = TextBound(characters: 100, bytes: 400)
    static let labelBound = TextBound(characters: 100, bytes: 400)
    static let addressTextBound = TextBound(characters: 200, bytes: 800)
    static let postalCodeBound = TextBound(characters: 32, bytes: 64)
    static let tagBound = TextBound(characters: 64, bytes: 256)
    static let ownerIDBound = TextBound(characters: 256, bytes: 256)
    /// Paths in one update mask.
    static let maxUpdatePaths = 128
    /// The deepest an organization may sit below its top-level ancestor (the top is depth 0): bounds every walk of
    /// the hierarchy, and is the tree stream's largest `max_depth`.
    public static let maxHierarchyDepth = 64
    /// The same for units inside an organization.
    public static let maxUnitDepth = 16
    /// The largest organization (``estimatedSize(_:)``): a sixteenth of the 4 MiB message limit.
    public static let maxOrganizationBytes = 256 * 1024

    /// Validates and normalises organization data: trims and checks the name, lower-cases and checks domains,
    /// industry and tags (de-duplicating tags), upper-cases region and currency codes, checks money and custom fields.
    /// - Parameters:
    ///   - data: the data, changed in place.
    ///   - definitions: the tenant's organization field definitions.
    ///   - prefix: the request field holding the data.
    ///   - requireAllRequiredFields: on create, required custom fields must have values.
    ///   - storedFields: on an update, the organization's custom fields before it; a value left as it was is not checked
    ///     again, so a field retired (or an enum's value dropped) since it was set does not block every other change.
    /// - Throws: ``OrganizationError/invalid(_:)`` listing every violation.
    public static func validate(
        _ data: inout OrganizationData, definitions: [CustomFieldDefinition], prefix: String = "organization", requireAllRequiredFields: Bool,
        storedFields: [String: JSON] = [:]
    ) throws {
        var violations: [Violation] = []
        func check(_ text: String, _ bound: TextBound, _ field: String) {
            if !bound.allows(text) { violations.append(Violation(field, bound.description, reason: "TOO_LONG")) }
        }
        func countAllowed(_ count: Int, _ max: Int, _ field: String, _ what: String) -> Bool {
            guard count > max else { return true }
            violations.append(Violation(field, "at most \(max) \(what)", reason: "TOO_MANY"))
            return false
        }
        if let violation = nameViolation(&data.name, field: "\(prefix).name") { violations.append(violation) }

        if countAllowed(data.domains.count, maxDomains, "\(prefix).domains", "domains") {
            var seen = Set<String>()
            for (i, domain) in data.domains.enumerated() {
                let normalized = domain.utf8.count <= 253 ? domain.trimmingSpaces.lowercased() : domain
                if !isValidDomain(normalized) {
                    violations.append(
                        Violation(
                            "\(prefix).domains[\(i)]", "\(CustomFieldRules.excerpt(domain)) is not an internet domain such as example.com",
                            reason: "INVALID_FORMAT"))
                } else if !seen.insert(normalized).inserted {
                    violations.append(Violation("\(prefix).domains[\(i)]", "\(CustomFieldRules.excerpt(domain)) appears twice", reason: "DUPLICATE"))
                } else {
                    data.domains[i] = normalized
                }
            }
        }

        check(data.industry, industryBound, "\(prefix).industry")
        if industryBound.allows(data.industry) { data.industry = data.industry.trimmingSpaces.lowercased() }

        if let money = data.annualRevenue {
            let field = "\(prefix).annual_revenue"
            let code = money.currencyCode.uppercased()
            if code.utf8.count != 3 || !code.utf8.allSatisfy({ (65...90).contains($0) }) {
                violations.append(Violation("\(field).currency_code", "must be an ISO 4217 code such as EUR", reason: "INVALID_FORMAT"))
            } else {
                data.annualRevenue?.currencyCode = code
            }
            if !(-999_999_999...999_999_999).contains(money.nanos) {
                violations.append(Violation("\(field).nanos", "must be from -999,999,999 to 999,999,999", reason: "OUT_OF_RANGE"))
            } else if (money.units > 0 && money.nanos < 0) || (money.units < 0 && money.nanos > 0) {
                violations.append(Violation("\(field).nanos", "must have the sign of units", reason: "INVALID"))
            }
        }

        if countAllowed(data.addresses.count, maxAddresses, "\(prefix).addresses", "addresses") {
            for (i, address) in data.addresses.enumerated() {
                let field = "\(prefix).addresses[\(i)]"
                check(address.label, labelBound, "\(field).label")
                if countAllowed(address.lines.count, maxAddressLines, "\(field).address_lines", "lines") {
                    for (j, line) in address.lines.enumerated() { check(line, addressTextBound, "\(field).address_lines[\(j)]") }
                }
                check(address.locality, addressTextBound, "\(field).locality")
                check(address.administrativeArea, addressTextBound, "\(field).administrative_area")
                check(address.postalCode, postalCodeBound, "\(field).postal_code")
                guard !address.regionCode.isEmpty else { continue }
                if address.regionCode.utf8.count != 2 || !address.regionCode.utf8.allSatisfy({ (65...90).contains($0) || (97...122).contains($0) }) {
                    violations.append(Violation("\(field).region_code", "must be an ISO 3166-1 alpha-2 code", reason: "INVALID_FORMAT"))
                } else {
                    data.addresses[i].regionCode = address.regionCode.uppercased()
                }
            }
        }

        if countAllowed(data.tags.count, maxTags, "\(prefix).tags", "tags") {
            var tags: [String] = []
            for (i, tag) in data.tags.enumerated() {
                let t = tag.utf8.count <= tagBound.bytes ? tag.trimmingSpaces.lowercased() : tag
                if t.isEmpty || !tagBound.allows(t) {
                    violations.append(
                        Violation(
                            "\(prefix).tags[\(i)]", "must be 1 to \(tagBound.characters) characters (\(tagBound.bytes) bytes of UTF-8)",
                            reason: "INVALID_FORMAT"))
                } else if !tags.contains(t) {
                    tags.append(t)
                }
            }
            data.tags = tags
        }

        check(data.ownerID, ownerIDBound, "\(prefix).owner_id")
        violations += CustomFieldRules.violations(
            of: data.customFields, definitions: definitions, prefix: "\(prefix).custom_fields", requireAll: requireAllRequiredFields,
            stored: storedFields)
        if violations.isEmpty, estimatedSize(data) > maxOrganizationBytes {
            violations.append(
                Violation(
                    prefix, "is \(estimatedSize(data)) bytes; an organization may be at most \(maxOrganizationBytes) bytes", reason: "TOO_LARGE"))
        }
        if !violations.isEmpty { throw OrganizationError.invalid(violations) }
    }

    /// Trims a name and checks it: required, bounded, no control characters (the tree's sort key separates names
    /// with U+0001).
    /// - Returns: the violation, if any.
    static func nameViolation(_ name: inout String, field: String) -> Violation? {
        guard nameBound.allows(name) else { return Violation(field, nameBound.description, reason: "TOO_LONG") }
        name = name.trimmingSpaces
        if name.isEmpty { return Violation(field, "is required", reason: "REQUIRED") }
        if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return Violation(field, "must not contain control characters", reason: "INVALID_FORMAT")
        }
        return nil
    }

    /// A host name of at least two labels: letters, digits and hyphens (not at either end of a label), labels of 1 to
    /// 63 bytes, at most 253 bytes; lower-case (IDNs in their `xn--` form).
    public static func isValidDomain(_ domain: String) -> Bool {
        guard (3...253).contains(domain.utf8.count) else { return false }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.count >= 2 else { return false }
        for label in labels {
            let bytes = label.utf8
            guard (1...63).contains(bytes.count), bytes.first != UInt8(ascii: "-"), bytes.last != UInt8(ascii: "-"),
                bytes.allSatisfy({ (97...122).contains($0) || (48...57).contains($0) || $0 == UInt8(ascii: "-") })
            else { return false }
        }
        // The top-level label is not all digits (that would be an IP address).
        return !labels.last!.utf8.allSatisfy { (48...57).contains($0) }
    }

    /// An upper bound on the bytes an organization takes in its messages (the `Organization`, and the Struct of its
    /// change event): every string's UTF-8 bytes plus a fixed allowance for tags, lengths and JSON keys.
    public static func estimatedSize(_ data: OrganizationData) -> Int {
        let perValue = 48
        func text(_ s: String) -> Int { s.utf8.count + perValue }
        var size = 1024 + text(data.name) + text(data.industry) + text(data.ownerID) + 3 * perValue
        size += data.domains.reduce(perValue) { $0 + text($1) }
        size += data.tags.reduce(perValue) { $0 + text($1) }
        size += data.addresses.reduce(perValue) { total, a in
            total + perValue + text(a.label) + a.lines.reduce(perValue) { $0 + text($1) } + text(a.locality)
                + text(a.administrativeArea) + text(a.postalCode) + text(a.regionCode)
        }
        func json(_ value: JSON) -> Int {
            switch value {
            case .null, .bool: return perValue
            case .number: return perValue + 24
            case .string(let s): return text(s)
            case .array(let a): return a.reduce(perValue) { $0 + json($1) }
            case .object(let o): return o.reduce(perValue) { $0 + text($1.key) + json($1.value) }
            }
        }
        size += data.customFields.reduce(perValue) { $0 + text($1.key) + json($1.value) }
        return size
    }

    /// The update paths callers may name.
    public static let updatablePaths: Set<String> = [
        "name", "domains", "industry", "size", "annual_revenue", "addresses", "tags", "owner_id", "parent_id", "custom_fields",
    ]

    /// Applies the paths of an update mask from `source` to `target`.
    /// - Returns: the paths applied.
    /// - Throws: ``OrganizationError/invalid(_:)`` naming `update_mask.paths[i]` for unknown paths.
    public static func apply(paths: [String], from source: OrganizationData, to target: inout OrganizationData) throws -> [String] {
        guard paths.count <= maxUpdatePaths else {
            throw OrganizationError.invalid([Violation("update_mask.paths", "at most \(maxUpdatePaths) paths", reason: "TOO_MANY")])
        }
        var violations: [Violation] = []
        if paths.isEmpty { violations.append(Violation("update_mask", "must name at least one field", reason: "REQUIRED")) }
        for (i, path) in paths.enumerated() {
            switch path {
            case "name": target.name = source.name
            case "domains": target.domains = source.domains
            case "industry": target.industry = source.industry
            case "size": target.size = source.size
            case "annual_revenue": target.annualRevenue = source.annualRevenue
            case "addresses": target.addresses = source.addresses
            case "tags": target.tags = source.tags
            case "owner_id": target.ownerID = source.ownerID
            case "parent_id": target.parentID = source.parentID
            case "custom_fields": target.customFields = source.customFields
            default:
                let key = path.hasPrefix("custom_fields.") ? String(path.utf8.dropFirst("custom_fields.".utf8.count)) ?? "" : ""
                if !key.isEmpty, key.utf8.count <= CustomFieldRules.maxKeyBytes {
                    target.customFields[key] = source.customFields[key]
                    if target.customFields[key] == .null { target.customFields[key] = nil }
                } else {
                    violations.append(
                        Violation("update_mask.paths[\(i)]", "\(CustomFieldRules.excerpt(path)) is not an updatable field", reason: "UNKNOWN_FIELD"))
                }
            }
        }
        if !violations.isEmpty { throw OrganizationError.invalid(violations) }
        return paths
    }

    /// Whether moving an organization under `newParent` keeps the hierarchy a forest within its depth bound.
    /// - Parameters:
    ///   - id: the organization that moves.
    ///   - newParentAncestry: the new parent and its ancestors, nearest first (the new parent at index 0).
    ///   - subtreeHeight: levels below the organization (0 for a leaf).
    /// - Throws: ``OrganizationError/cycle(kind:id:parentID:)`` when the organization is the new parent or one of its
    ///   ancestors; ``OrganizationError/tooDeep(limit:)`` when a descendant would sit deeper than `maxDepth`.
    public static func checkMove(
        kind: String = "organization", id: UUID, newParentAncestry: [UUID], subtreeHeight: Int, maxDepth: Int = maxHierarchyDepth
    ) throws {
        guard let parent = newParentAncestry.first else { return }
        if newParentAncestry.contains(id) {
            throw OrganizationError.cycle(kind: kind, id: id.uuidString.lowercased(), parentID: parent.uuidString.lowercased())
        }
        // The new parent sits at depth ancestry.count - 1; the organization one below it; its deepest descendant
        // subtreeHeight below that.
        if newParentAncestry.count + subtreeHeight > maxDepth { throw OrganizationError.tooDeep(limit: maxDepth) }
    }

    /// Validates and normalises unit data.
    public static func validate(_ data: inout UnitData, prefix: String = "unit") throws {
        if let violation = nameViolation(&data.name, field: "\(prefix).name") { throw OrganizationError.invalid([violation]) }
    }

    /// The unit update paths callers may name.
    public static let unitPaths: Set<String> = ["name", "kind", "parent_unit_id"]

    /// Applies a unit update mask.
    public static func apply(paths: [String], from source: UnitData, to target: inout UnitData) throws -> [String] {
        guard paths.count <= maxUpdatePaths else {
            throw OrganizationError.invalid([Violation("update_mask.paths", "at most \(maxUpdatePaths) paths", reason: "TOO_MANY")])
        }
        var violations: [Violation] = []
        if paths.isEmpty { violations.append(Violation("update_mask", "must name at least one field", reason: "REQUIRED")) }
        for (i, path) in paths.enumerated() {
            switch path {
            case "name": target.name = source.name
            case "kind": target.kind = source.kind
            case "parent_unit_id": target.parentUnitID = source.parentUnitID
            default:
                violations.append(
                    Violation("update_mask.paths[\(i)]", "\(CustomFieldRules.excerpt(path)) is not an updatable field", reason: "UNKNOWN_FIELD"))
            }
        }
        if !violations.isEmpty { throw OrganizationError.invalid(violations) }
        return paths
    }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    var trimmingSpaces: String {
        func isSpace(_ scalar: Unicode.Scalar) -> Bool { scalar == "\t" || scalar.properties.generalCategory == .spaceSeparator }
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { !isSpace($0) }), let end = scalars.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(scalars[start...end])
    }
}
