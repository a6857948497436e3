import FoundationEssentials
import SwitchboardProtos
import SwitchboardServiceKit

/// The fields an export writes (`ExportContactsRequest.fields`).
public struct ExportFields: Sendable, Hashable {
    /// The top-level fields: id, name, emails, phones, addresses, type, status, tags, owner_id, custom_fields, audit.
    public var fields: Set<String>
    /// Only these custom fields (`custom_fields.<key>`), when not all of them.
    public var customKeys: Set<String>?

    /// Every field.
    public static let all = ExportFields(
        fields: ["id", "name", "emails", "phones", "addresses", "type", "status", "tags", "owner_id", "custom_fields", "audit"], customKeys: nil)

    /// Creates a selection.
    public init(fields: Set<String>, customKeys: Set<String>?) {
        self.fields = fields
        self.customKeys = customKeys
    }

    /// The selection a request names, or the violations of the names it does not know.
    /// - Parameter names: the requested names (empty: every field).
    /// - Throws: ``ContactsError/invalid(_:)`` naming `fields[i]`.
    public static func parse(_ names: [String]) throws -> ExportFields {
        guard !names.isEmpty else { return .all }
        var selection = ExportFields(fields: [], customKeys: nil)
        var keys: Set<String> = []
        var violations: [Violation] = []
        for (i, name) in names.prefix(200).enumerated() {
            if ExportFields.all.fields.contains(name) {
                selection.fields.insert(name)
            } else if name.hasPrefix("custom_fields."), ContactRules.isValidFieldKey(String(name.dropFirst(14))) {
                keys.insert(String(name.dropFirst(14)))
            } else {
                violations.append(
                    Violation("fields[\(i)]", "\(ContactRules.excerpt(name)) is not a contact field an export writes", reason: "INVALID"))
            }
        }
        if names.count > 200 { violations.append(Violation("fields", "at most 200 fields", reason: "TOO_MANY")) }
        if !violations.isEmpty { throw ContactsError.invalid(violations) }
        if !keys.isEmpty, !selection.fields.contains("custom_fields") {
            selection.fields.insert("custom_fields")
            selection.customKeys = keys
        }
        return selection
    }

    /// Whether a custom field is written.
    public func includes(customKey key: String) -> Bool {
        fields.contains("custom_fields") && (customKeys?.contains(key) ?? true)
    }
}

/// Writes contacts as RFC 4180 CSV (CRLF line ends, fields quoted where needed) with a header row an import maps
/// without a mapping: `id`, `name.given` … `owner_id`, `address.*` (the first postal address), one
/// `custom_fields.<key>` column per custom field, then `address2.*` … for further addresses (as many groups as the
/// writer is told a contact may have). Lists are `;`-separated; a labelled email or phone is
/// `label:value`, the primary one first; a `;` in an item, or a `:` in a label, is escaped with a backslash
/// (`ListCell`). Pure.
public struct ContactCSVWriter: Sendable {
    private let columns: [Column]
    private let spreadsheetSafe: Bool

    private enum Column {
        case id
        case target(ImportTarget)
    }

    /// Creates a writer.
    /// - Parameters:
    ///   - fields: what to write.
    ///   - customKeys: the tenant's custom field keys (each written field gets a column).
    ///   - addresses: how many postal addresses a contact may have here: the first goes to `address.*`, the second
    ///     to `address2.*` and so on (at least the first's columns are written).
    ///   - spreadsheetSafe: write the cells a spreadsheet would run as formulas as text (``SpreadsheetSafety``).
    public init(fields: ExportFields, customKeys: [String], addresses: Int = 1, spreadsheetSafe: Bool = false) {
        self.spreadsheetSafe = spreadsheetSafe
        var columns: [Column] = []
        if fields.fields.contains("id") { columns.append(.id) }
        for target in ImportTarget.csvColumns {
            let field: String
            switch target {
            case .given, .family, .middle, .prefix, .suffix, .display: field = "name"
            case .emails: field = "emails"
            case .phones: field = "phones"
            case .address: field = "addresses"
            case .type: field = "type"
            case .status: field = "status"
            case .tags: field = "tags"
            case .owner: field = "owner_id"
            case .custom, .ignore: continue
            }
            if fields.fields.contains(field) { columns.append(.target(target)) }
        }
        for key in customKeys.sorted() where fields.includes(customKey: key) { columns.append(.target(.custom(key))) }
        // Last, so that the other columns keep their places whether or not some contact has a second address.
        let groups = min(addresses, ContactRules.maxAddresses)
        if fields.fields.contains("addresses"), groups >= 2 {
            for number in 2...groups { columns += ImportTarget.AddressPart.allCases.map { .target(.address($0, number: number)) } }
        }
        self.columns = columns
    }

    /// The header row, with its line end.
    public var header: String {
        line(
            columns.map { column in
                switch column {
                case .id: return "id"
                case .target(let target): return target.name
                }
            })
    }

    /// One contact's row, with its line end.
    public func row(_ record: ContactRecord) -> String {
        let d = record.data
        return line(
            columns.map { column in
                switch column {
                case .id: return record.id.lowercaseText
                case .target(let target):
                    switch target {
                    case .given: return d.name.given
                    case .family: return d.name.family
                    case .middle: return d.name.middle
                    case .prefix: return d.name.prefix
                    case .suffix: return d.name.suffix
                    case .display: return d.name.display
                    case .emails:
                        return Self.primaryFirst(d.emails, \.primary).map { Self.labelled($0.label, $0.address) }.joined(separator: "; ")
                    case .phones:
                        return Self.primaryFirst(d.phones, \.primary).map { Self.labelled($0.label, $0.number) }.joined(separator: "; ")
                    case .tags: return d.tags.map { ListCell.escaped($0) }.joined(separator: "; ")
                    case .type: return d.kind == .company ? "COMPANY" : "PERSON"
                    case .status: return Self.statusName(d.status)
                    case .owner: return d.ownerID
                    case .address(let part, let number):
                        guard number <= d.addresses.count else { return "" }
                        let a = d.addresses[number - 1]
                        switch part {
                        case .label: return a.label
                        case .lines: return a.lines.map { ListCell.escaped($0) }.joined(separator: "; ")
                        case .locality: return a.locality
                        case .administrativeArea: return a.administrativeArea
                        case .postalCode: return a.postalCode
                        case .regionCode: return a.regionCode
                        }
                    case .custom(let key): return d.customFields[key].map(Self.text) ?? ""
                    case .ignore: return ""
                    }
                }
            })
    }

    /// An email or phone item: `label:value`, or the value alone when it has no label and no colon (a colon would read
    /// as the end of a label, so such a value gets an empty one).
    static func labelled(_ label: String, _ value: String) -> String {
        label.isEmpty && !value.contains(":") ? ListCell.escaped(value) : "\(ListCell.escaped(label, colons: true)):\(ListCell.escaped(value))"
    }

    static func primaryFirst<T>(_ items: [T], _ primary: KeyPath<T, Bool>) -> [T] {
        items.filter { $0[keyPath: primary] } + items.filter { !$0[keyPath: primary] }
    }

    static func statusName(_ status: ContactStatus) -> String {
        switch status {
        case .lead: return "LEAD"
        case .prospect: return "PROSPECT"
        case .customer: return "CUSTOMER"
        case .inactive: return "INACTIVE"
        }
    }

    /// A custom value as text: strings as they are, numbers and booleans as JSON writes them.
    static func text(_ value: JSON) -> String {
        if case .string(let s) = value { return s }
        if case .null = value { return "" }
        return value.text
    }

    private func line(_ cells: [String]) -> String { CSV.line(cells, spreadsheetSafe: spreadsheetSafe) }
}

/// Writes contacts as vCard 3.0 or 4.0: N, FN, EMAIL, TEL, ADR, CATEGORIES, KIND (4.0) or X-ABSHOWAS (3.0), ORG for
/// companies, UID, and X-SWITCHBOARD-STATUS, -OWNER and -FIELD;KEY=<key> for what vCard has no property for; text
/// escaped, lines folded at 75 octets, CRLF line ends. Pure.
public struct VCardWriter: Sendable {
    /// 3 or 4.
    public let version: Int
    let fields: ExportFields

    /// Creates a writer.
    /// - Parameters:
    ///   - version: 3 or 4.
    ///   - fields: what to write (N and FN always: vCard requires them).
    public init(version: Int, fields: ExportFields) {
        self.version = version
        self.fields = fields
    }

    /// One contact's card.
    public func card(_ record: ContactRecord) -> String {
        let d = record.data
        var out = "BEGIN:VCARD\r\n"
        func add(_ name: String, _ parameters: [(String, String)] = [], _ value: String) {
            var line = name
            for (key, value) in parameters { line += ";\(key)=\(Self.parameter(value))" }
            line += ":" + value
            out += Self.folded(line)
        }
        add("VERSION", [], version == 3 ? "3.0" : "4.0")
        if fields.fields.contains("id") { add("UID", [], "urn:uuid:\(record.id.lowercaseText)") }
        if d.kind == .company, fields.fields.contains("type") {
            if version == 3 { add("X-ABSHOWAS", [], "COMPANY") } else { add("KIND", [], "org") }
        }
        add("N", [], [d.name.family, d.name.given, d.name.middle, d.name.prefix, d.name.suffix].map(Self.escaped).joined(separator: ";"))
        add("FN", [], Self.escaped(d.name.effectiveDisplay))
        if d.kind == .company, fields.fields.contains("type"), !d.name.effectiveDisplay.isEmpty {
            add("ORG", [], Self.escaped(d.name.effectiveDisplay))
        }
        func types(_ label: String, primary: Bool, extra: [String]) -> [(String, String)] {
            var parameters: [(String, String)] = []
            var values = extra
            if !label.isEmpty { values.append(label) }
            if primary, version == 3 { values.append("pref") }
            if !values.isEmpty { parameters.append(("TYPE", values.joined(separator: ","))) }
            if primary, version == 4 { parameters.append(("PREF", "1")) }
            return parameters
        }
        if fields.fields.contains("emails") {
            for e in d.emails { add("EMAIL", types(e.label, primary: e.primary, extra: version == 3 ? ["INTERNET"] : []), Self.escaped(e.address)) }
        }
        if fields.fields.contains("phones") {
            for p in d.phones { add("TEL", types(p.label, primary: p.primary, extra: []), Self.escaped(p.number)) }
        }
        if fields.fields.contains("addresses") {
            for a in d.addresses {
                let parts = ["", "", a.lines.joined(separator: "\n"), a.locality, a.administrativeArea, a.postalCode, a.regionCode]
                add("ADR", a.label.isEmpty ? [] : [("TYPE", a.label)], parts.map(Self.escaped).joined(separator: ";"))
            }
        }
        if fields.fields.contains("tags"), !d.tags.isEmpty { add("CATEGORIES", [], d.tags.map(Self.escaped).joined(separator: ",")) }
        if fields.fields.contains("status") { add("X-SWITCHBOARD-STATUS", [], ContactCSVWriter.statusName(d.status)) }
        if fields.fields.contains("owner_id") { add("X-SWITCHBOARD-OWNER", [], Self.escaped(d.ownerID)) }
        for (key, value) in d.customFields.sorted(by: { $0.key < $1.key }) where fields.includes(customKey: key) {
            add("X-SWITCHBOARD-FIELD", [("KEY", key)], Self.escaped(ContactCSVWriter.text(value)))
        }
        out += "END:VCARD\r\n"
        return out
    }

    /// Text value escaping: `\`, `,`, `;` and line breaks.
    static func escaped(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == 0x5C || $0 == 0x2C || $0 == 0x3B || $0 == 0x0A || $0 == 0x0D }) else { return text }
        var out = ""
        for c in text.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case ",": out += "\\,"
            case ";": out += "\\;"
            case "\n": out += "\\n"
            case "\r": continue
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// A parameter value: without quotes and line breaks (which it cannot hold), quoted when it holds `,` `;` or `:`.
    static func parameter(_ value: String) -> String {
        let clean = String(value.unicodeScalars.filter { $0 != "\"" && $0 != "\n" && $0 != "\r" }.map(Character.init))
        return clean.contains(where: { $0 == "," || $0 == ";" || $0 == ":" }) ? "\"\(clean)\"" : clean
    }

    /// A content line folded at 75 octets (never inside a UTF-8 sequence), with its CRLF.
    static func folded(_ line: String) -> String {
        let bytes = Array(line.utf8)
        guard bytes.count > 75 else { return line + "\r\n" }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 70 * 3 + 2)
        var width = 0
        var index = 0
        while index < bytes.count {
            let lead = bytes[index]
            // The whole UTF-8 sequence moves to the next line when it would not fit on this one.
            let length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
            let end = min(bytes.count, index + length)
            if width + (end - index) > 75 {
                out += [0x0D, 0x0A, 0x20]
                width = 1
            }
            out += bytes[index..<end]
            width += end - index
            index = end
        }
        out += [0x0D, 0x0A]
        return String(decoding: out, as: UTF8.self)
    }
}
