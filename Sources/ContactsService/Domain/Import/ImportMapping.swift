import SwitchboardProtos
import SwitchboardServiceKit

/// A contact field an import can fill from a source value.
public enum ImportTarget: Sendable, Hashable {
    /// A part of the name.
    case given, family, middle, prefix, suffix, display
    /// Email addresses: `;`-separated, each `address` or `label:address` (escapes as in `ListCell`); the label, when
    /// given, is the target's.
    case emails(label: String?)
    /// Phone numbers, likewise.
    case phones(label: String?)
    /// Tags, `;`-separated (`\;` is a `;` inside a tag).
    case tags
    /// PERSON or COMPANY.
    case type
    /// LEAD, PROSPECT, CUSTOMER or INACTIVE.
    case status
    /// The owning user.
    case owner
    /// A part of a postal address a row gives: the first (`address.<part>`), or the second to the tenth
    /// (`address2.<part>` … `address10.<part>`, as a CSV export writes a contact's further addresses).
    case address(AddressPart, number: Int = 1)
    /// A custom field by key, read as its definition's type.
    case custom(String)
    /// The source is read and dropped.
    case ignore

    /// The parts of a postal address.
    public enum AddressPart: String, Sendable, Hashable, CaseIterable {
        case label, lines, locality, administrativeArea = "administrative_area", postalCode = "postal_code", regionCode = "region_code"
    }

    /// The target a mapping names (see `ImportFieldMapping.target`), or nil.
    public static func parse(_ text: String) -> ImportTarget? {
        switch text {
        case "": return .ignore
        case "name.given": return .given
        case "name.family": return .family
        case "name.middle": return .middle
        case "name.prefix": return .prefix
        case "name.suffix": return .suffix
        case "name.display": return .display
        case "emails": return .emails(label: nil)
        case "phones": return .phones(label: nil)
        case "tags": return .tags
        case "type": return .type
        case "status": return .status
        case "owner_id": return .owner
        default: break
        }
        if text.hasPrefix("email:"), case let label = String(text.dropFirst(6)), ContactRules.labelLimit.allows(label) {
            return .emails(label: label)
        }
        if text.hasPrefix("phone:"), case let label = String(text.dropFirst(6)), ContactRules.labelLimit.allows(label) {
            return .phones(label: label)
        }
        if text.hasPrefix("address"), let dot = text.firstIndex(of: "."), let part = AddressPart(rawValue: String(text[text.index(after: dot)...])) {
            let digits = text[text.index(text.startIndex, offsetBy: 7)..<dot]
            if digits.isEmpty { return .address(part) }
            // "address2" … "address10", no sign or leading zero: one spelling per target.
            if digits.first != "0", digits.allSatisfy({ ("0"..."9").contains($0) }), let number = Int(digits),
                (2...ContactRules.maxAddresses).contains(number)
            {
                return .address(part, number: number)
            }
            return nil
        }
        if text.hasPrefix("custom_fields."), case let key = String(text.dropFirst(14)), ContactRules.isValidFieldKey(key) { return .custom(key) }
        return nil
    }

    /// The target's name, as a mapping writes it.
    public var name: String {
        switch self {
        case .given: return "name.given"
        case .family: return "name.family"
        case .middle: return "name.middle"
        case .prefix: return "name.prefix"
        case .suffix: return "name.suffix"
        case .display: return "name.display"
        case .emails(let label): return label.map { "email:\($0)" } ?? "emails"
        case .phones(let label): return label.map { "phone:\($0)" } ?? "phones"
        case .tags: return "tags"
        case .type: return "type"
        case .status: return "status"
        case .owner: return "owner_id"
        case .address(let part, let number): return number == 1 ? "address.\(part.rawValue)" : "address\(number).\(part.rawValue)"
        case .custom(let key): return "custom_fields.\(key)"
        case .ignore: return ""
        }
    }

    /// The CSV columns an export writes (before one column per custom field), which an import maps without a mapping.
    public static let csvColumns: [ImportTarget] =
        [
            .given, .family, .middle, .prefix, .suffix, .display, .emails(label: nil), .phones(label: nil), .type, .status, .tags, .owner,
        ] + AddressPart.allCases.map { .address($0) }
}

/// A row as an import read it: the contact data and which fields the row gave (an update takes only those).
public struct ImportedContact: Sendable, Hashable {
    /// The data (defaults where the row gave nothing).
    public var data = ContactData()
    /// The fields the row gave: `name.given`… `name.display`, `emails`, `phones`, `addresses`, `tags`, `type`,
    /// `status`, `owner_id`, `custom_fields.<key>`.
    public var givenFields: Set<String> = []

    /// Creates an empty row.
    public init() {}

    /// Creates a row from data and the fields it gives.
    public init(data: ContactData, givenFields: Set<String>) {
        self.data = data
        self.givenFields = givenFields
    }
}

/// Turns records into contacts: a format's defaults, the caller's mapping, the tenant's custom field types. Pure.
public struct ImportMapper: Sendable {
    /// The file format.
    public enum Format: Sendable, Hashable { case csv, vcard, jsonLines }

    let format: Format
    /// Source → targets, as the caller gave them (a source may feed several targets).
    let rules: [String: [ImportTarget]]
    let definitions: [String: FieldDefinition]
    /// JSON lines without a mapping: a line is a Contact in proto3 JSON, read by the handlers (which know protobuf).
    let contactJSON: (@Sendable (JSON) -> Result<ImportedContact, ContactsError>)?
    /// CSV: each column's targets, once the header is known.
    private(set) var columns: [[ImportTarget]] = []
    /// CSV: the header's columns no target takes.
    public private(set) var ignoredColumns: [String] = []

    /// Checks a mapping and builds the mapper.
    /// - Parameters:
    ///   - format: the file format.
    ///   - mapping: (source, target) pairs as the request gives them.
    ///   - definitions: the tenant's custom field definitions (a mapping to an undefined or retired field is refused).
    ///   - contactJSON: reads a JSON line as a Contact (JSON lines without a mapping).
    /// - Throws: ``ContactsError/invalid(_:)`` naming `options.mapping[i]…`.
    public init(
        format: Format, mapping: [(source: String, target: String)], definitions: [FieldDefinition],
        contactJSON: (@Sendable (JSON) -> Result<ImportedContact, ContactsError>)? = nil
    ) throws {
        let byKey = Dictionary(definitions.map { ($0.key, $0) }, uniquingKeysWith: { a, _ in a })
        self.format = format
        self.definitions = byKey
        self.contactJSON = contactJSON
        var violations: [Violation] = []
        var rules: [String: [ImportTarget]] = [:]
        if mapping.count > 500 {
            violations.append(Violation("options.mapping", "at most 500 mappings", reason: "TOO_MANY"))
        }
        for (i, rule) in mapping.prefix(500).enumerated() {
            guard !rule.source.isEmpty, rule.source.utf8.count <= 256 else {
                violations.append(Violation("options.mapping[\(i)].source", "must be 1 to 256 bytes", reason: "INVALID"))
                continue
            }
            guard let target = ImportTarget.parse(rule.target) else {
                violations.append(
                    Violation(
                        "options.mapping[\(i)].target", "\(ContactRules.excerpt(rule.target)) is not a contact field an import fills",
                        reason: "INVALID"))
                continue
            }
            if case .custom(let key) = target {
                guard let definition = byKey[key], !definition.retired else {
                    violations.append(
                        Violation("options.mapping[\(i)].target", "custom field \(key) is not defined (or retired)", reason: "UNKNOWN_FIELD"))
                    continue
                }
            }
            let source = format == .vcard ? rule.source.uppercased() : rule.source
            rules[source, default: []].append(target)
        }
        if !violations.isEmpty { throw ContactsError.invalid(violations) }
        self.rules = rules
    }

    /// Whether the caller gave a mapping (otherwise the format's defaults apply).
    public var isExplicit: Bool { !rules.isEmpty }

    /// CSV: learns the header and resolves each column's targets: the caller's mapping, or the columns an export writes
    /// (plus `email`, `phone` and `custom_fields.<key>` of defined fields).
    /// - Parameter header: the column names.
    public mutating func setHeader(_ header: [String]) {
        columns = header.map { name in
            if isExplicit { return rules[name] ?? [] }
            if let target = ImportTarget.parse(name), target != .ignore {
                if case .custom(let key) = target, definitions[key] == nil { return [] }
                return [target]
            }
            switch name.lowercased() {
            case "email", "e-mail": return [.emails(label: nil)]
            case "phone", "telephone": return [.phones(label: nil)]
            case "first name", "first_name", "given name": return [.given]
            case "last name", "last_name", "family name", "surname": return [.family]
            default: return []
            }
        }
        ignoredColumns = zip(header, columns).filter { $0.1.isEmpty }.map(\.0)
    }

    /// The contact a record gives, or the violations that keep it from being one (the record's own, or its values').
    /// - Parameter record: the record.
    /// - Returns: the contact with the fields it gives, or why not.
    public func contact(from record: SourceRecord) -> Result<ImportedContact, ContactsError> {
        var builder = Builder(definitions: definitions)
        switch record.content {
        case .unreadable(let violation):
            return .failure(.invalid([violation]))
        case .cells(let cells):
            // Text past the last column has no column to go to: dropped, the contact would silently lose it (a field
            // too many, an unquoted comma). Empty fields past it hold nothing and pass; a row with fewer fields than
            // columns leaves the rest empty.
            if cells.count > columns.count, let extra = cells[columns.count...].firstIndex(where: { !$0.isEmpty }) {
                return .failure(
                    .invalid([
                        Violation(
                            "row",
                            "the record has \(cells.count) fields and the file \(columns.count) columns (its header's, or the first record's "
                                + "without one): field \(extra + 1) holds text no column takes (an unquoted delimiter?)", reason: "TOO_MANY")
                    ]))
            }
            for (i, cell) in cells.enumerated() where i < columns.count && !cell.isEmpty {
                for target in columns[i] { builder.apply(target, cell, source: "column \(i + 1)") }
            }
        case .fields(let fields):
            builder.vcard(fields, rules: rules)
        case .json(let json):
            if !isExplicit, let contactJSON { return contactJSON(json) }
            var values: [(String, String)] = []
            Self.flatten(json, path: "", into: &values)
            for (path, value) in values {
                for target in rules[path] ?? [] { builder.apply(target, value, source: "key \(ContactRules.excerpt(path, maxBytes: 48))") }
            }
        }
        return builder.result()
    }

    /// The scalar values of a JSON value by dotted path; arrays give one value per element under their own path.
    static func flatten(_ json: JSON, path: String, into values: inout [(String, String)]) {
        switch json {
        case .null: break
        case .string(let s): values.append((path, s))
        case .bool(let b): values.append((path, b ? "true" : "false"))
        case .number(let n): values.append((path, n.description))
        case .array(let a): for element in a { flatten(element, path: path, into: &values) }
        case .object(let o):
            for (key, value) in o.sorted(by: { $0.key < $1.key }) { flatten(value, path: path.isEmpty ? key : "\(path).\(key)", into: &values) }
        }
    }
}

/// Builds one contact from values and targets, collecting violations.
struct Builder {
    let definitions: [String: FieldDefinition]
    var row = ImportedContact()
    var violations: [Violation] = []
    /// The CSV's postal addresses by number (1 for `address.*`), in the order of their numbers at the end.
    var addresses: [Int: PostalAddress] = [:]

    init(definitions: [String: FieldDefinition]) { self.definitions = definitions }

    private mutating func give(_ field: String) { row.givenFields.insert(field) }

    mutating func apply(_ target: ImportTarget, _ text: String, source: String) {
        let value = text.trimmingSpaces
        guard !value.isEmpty else { return }
        switch target {
        case .ignore: return
        case .given:
            row.data.name.given = value
            give("name.given")
        case .family:
            row.data.name.family = value
            give("name.family")
        case .middle:
            row.data.name.middle = value
            give("name.middle")
        case .prefix:
            row.data.name.prefix = value
            give("name.prefix")
        case .suffix:
            row.data.name.suffix = value
            give("name.suffix")
        case .display:
            row.data.name.display = value
            give("name.display")
        case .emails(let label):
            for item in ListCell.items(value) {
                // `label:address`: a colon before the `@` ends a label (":address" gives an address with a colon, no label).
                // A label holds no `@` unless the address after it does ("me@work:a@example.com").
                if let (itemLabel, address) = ListCell.labelled(item, isLabel: { label, rest in !label.contains("@") || rest.contains("@") }) {
                    row.data.emails.append(EmailAddress(address: address, label: label ?? itemLabel))
                } else {
                    row.data.emails.append(EmailAddress(address: ListCell.unescaped(item), label: label ?? ""))
                }
            }
            give("emails")
        case .phones(let label):
            for item in ListCell.items(value) {
                if let (itemLabel, number) = ListCell.labelled(item) {
                    row.data.phones.append(PhoneNumber(number: number, label: label ?? itemLabel))
                } else {
                    row.data.phones.append(PhoneNumber(number: ListCell.unescaped(item), label: label ?? ""))
                }
            }
            give("phones")
        case .tags:
            row.data.tags += ListCell.items(value).map { ListCell.unescaped($0) }
            give("tags")
        case .type:
            switch Self.enumName(value, prefix: "CONTACT_TYPE_") {
            case "PERSON": row.data.kind = .person
            case "COMPANY": row.data.kind = .company
            default:
                violations.append(
                    Violation("contact.type", "\(source): \(ContactRules.excerpt(value)) is not PERSON or COMPANY", reason: "INVALID_VALUE"))
            }
            give("type")
        case .status:
            switch Self.enumName(value, prefix: "CONTACT_STATUS_") {
            case "LEAD": row.data.status = .lead
            case "PROSPECT": row.data.status = .prospect
            case "CUSTOMER": row.data.status = .customer
            case "INACTIVE": row.data.status = .inactive
            default:
                violations.append(
                    Violation(
                        "contact.status", "\(source): \(ContactRules.excerpt(value)) is not LEAD, PROSPECT, CUSTOMER or INACTIVE",
                        reason: "INVALID_VALUE"))
            }
            give("status")
        case .owner:
            row.data.ownerID = value
            give("owner_id")
        case .address(let part, let number):
            var address = addresses[number] ?? PostalAddress()
            switch part {
            case .label: address.label = value
            case .lines: address.lines += ListCell.items(value).map { ListCell.unescaped($0) }
            case .locality: address.locality = value
            case .administrativeArea: address.administrativeArea = value
            case .postalCode: address.postalCode = value
            case .regionCode: address.regionCode = value
            }
            addresses[number] = address
        case .custom(let key):
            give("custom_fields.\(key)")
            guard let definition = definitions[key] else {
                // Only a CSV header or a vCard property without a mapping can name an undefined field: validation reports it.
                row.data.customFields[key] = .string(value)
                return
            }
            switch definition.type {
            case .string, .enumeration, .date: row.data.customFields[key] = .string(value)
            case .number:
                if let n = Double(value), n.isFinite {
                    row.data.customFields[key] = .number(n)
                } else {
                    violations.append(
                        Violation(
                            "contact.custom_fields.\(key)", "\(source): \(ContactRules.excerpt(value)) is not a number", reason: "INVALID_VALUE"))
                }
            case .bool:
                switch value.lowercased() {
                case "true", "yes", "y", "1": row.data.customFields[key] = .bool(true)
                case "false", "no", "n", "0": row.data.customFields[key] = .bool(false)
                default:
                    violations.append(
                        Violation(
                            "contact.custom_fields.\(key)", "\(source): \(ContactRules.excerpt(value)) is not true or false", reason: "INVALID_VALUE")
                    )
                }
            }
        }
    }

    /// `person`, `Person`, `CONTACT_TYPE_PERSON` → `PERSON`.
    static func enumName(_ value: String, prefix: String) -> String {
        let upper = value.uppercased()
        return upper.hasPrefix(prefix) ? String(upper.dropFirst(prefix.count)) : upper
    }

    /// A vCard's standard properties (N, FN, EMAIL, TEL, ADR, CATEGORIES, KIND, ORG, X-SWITCHBOARD-*), and any property
    /// the caller mapped (a mapping of a standard property replaces its standard reading).
    mutating func vcard(_ fields: [SourceField], rules: [String: [ImportTarget]]) {
        var formatted = ""
        var organization = ""
        var company = false
        for field in fields {
            if let targets = rules[field.key] {
                for target in targets { apply(target, field.value, source: "property \(field.key)") }
                continue
            }
            let types = field.parameterValues("TYPE")
            let preferred = types.contains("PREF") || !field.parameterValues("PREF").isEmpty
            func label(ignoring ignored: Set<String>) -> String {
                (types.first { !ignored.contains($0) } ?? "").lowercased()
            }
            switch field.key {
            case "N":
                let parts = field.components
                let targets: [ImportTarget] = [.family, .given, .middle, .prefix, .suffix]
                for (target, part) in zip(targets, parts) { apply(target, part, source: "property N") }
            case "FN":
                formatted = field.value.trimmingSpaces
            case "EMAIL":
                var address = field.value.trimmingSpaces
                if address.lowercased().hasPrefix("mailto:") { address = String(address.dropFirst(7)) }
                guard !address.isEmpty else { continue }
                row.data.emails.append(EmailAddress(address: address, label: label(ignoring: ["INTERNET", "PREF", "X400"]), primary: preferred))
                give("emails")
            case "TEL":
                var number = field.value.trimmingSpaces
                if number.lowercased().hasPrefix("tel:") { number = String(number.dropFirst(4)) }
                guard !number.isEmpty else { continue }
                row.data.phones.append(PhoneNumber(number: number, label: label(ignoring: ["VOICE", "PREF", "TEXT"]), primary: preferred))
                give("phones")
            case "ADR":
                var parts = field.components + Array(repeating: "", count: max(0, 7 - field.components.count))
                parts = parts.map { $0.trimmingSpaces }
                var postal = PostalAddress()
                postal.label = label(ignoring: ["PREF", "POSTAL", "PARCEL", "DOM", "INTL"])
                postal.lines = ([parts[0], parts[1]] + parts[2].split(separator: "\n").map(String.init)).map { $0.trimmingSpaces }.filter {
                    !$0.isEmpty
                }
                postal.locality = parts[3]
                postal.administrativeArea = parts[4]
                postal.postalCode = parts[5]
                let country = parts[6]
                if country.utf8.count == 2, country.allSatisfy({ $0.isASCII && $0.isLetter }) {
                    postal.regionCode = country.uppercased()
                } else if !country.isEmpty {
                    postal.lines.append(country)
                }
                if postal != PostalAddress() {
                    row.data.addresses.append(postal)
                    give("addresses")
                }
            case "CATEGORIES":
                row.data.tags += field.components.map { $0.trimmingSpaces }.filter { !$0.isEmpty }
                give("tags")
            case "KIND":
                let kind = field.value.trimmingSpaces.lowercased()
                if kind == "org" || kind == "organization" { company = true }
                give("type")
            case "X-ABSHOWAS":
                if field.value.trimmingSpaces.uppercased() == "COMPANY" { company = true }
            case "ORG":
                organization = (field.components.first ?? field.value).trimmingSpaces
            case "X-SWITCHBOARD-STATUS":
                apply(.status, field.value, source: "property X-SWITCHBOARD-STATUS")
            case "X-SWITCHBOARD-OWNER":
                apply(.owner, field.value, source: "property X-SWITCHBOARD-OWNER")
            case "X-SWITCHBOARD-FIELD":
                if let key = field.parameters.first(where: { $0.name == "KEY" })?.value, ContactRules.isValidFieldKey(key) {
                    apply(.custom(key), field.value, source: "property X-SWITCHBOARD-FIELD;KEY=\(key)")
                }
            default:
                continue
            }
        }
        if company {
            row.data.kind = .company
            give("type")
            if row.data.name.display.isEmpty, formatted.isEmpty, !organization.isEmpty { formatted = organization }
        }
        if !formatted.isEmpty, row.data.name.display.isEmpty { apply(.display, formatted, source: "property FN") }
    }

    /// The contact, or every violation its values had.
    mutating func result() -> Result<ImportedContact, ContactsError> {
        for number in addresses.keys.sorted() where addresses[number] != PostalAddress() {
            row.data.addresses.append(addresses[number]!)
            give("addresses")
        }
        // A display name that only repeats the parts is left derived (as the contact it was exported from had it).
        if !row.data.name.display.isEmpty {
            var derived = row.data.name
            derived.display = ""
            if derived.effectiveDisplay == row.data.name.display {
                row.data.name.display = ""
                row.givenFields.remove("name.display")
            }
        }
        if !violations.isEmpty { return .failure(.invalid(violations)) }
        return .success(row)
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String { String(self).trimmingSpaces }
}
