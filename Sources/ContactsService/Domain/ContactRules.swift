import FoundationEssentials
import SwitchboardProtos
import SwitchboardServiceKit

/// A bound on one string a client sets: Characters (what a person counts) and UTF-8 bytes (what storage, indexes
/// and messages count; one Character can be megabytes of combining marks).
public struct TextLimit: Sendable, Hashable {
    /// Most Characters.
    public var characters: Int
    /// Most UTF-8 bytes.
    public var bytes: Int

    /// Creates a limit.
    public init(characters: Int, bytes: Int) {
        self.characters = characters
        self.bytes = bytes
    }

    /// Whether `text` is within both bounds. Bytes first: they are O(1) to count and bound the Character count's work.
    public func allows(_ text: String) -> Bool { text.utf8.count <= bytes && text.count <= characters }

    /// `at most 500 characters (2000 bytes of UTF-8)`.
    public var description: String { "must be at most \(characters) characters (\(bytes) bytes of UTF-8)" }
}

/// Validation and normalisation of contact data, field definitions and update paths. Pure: no I/O.
///
/// Every string and list a client can set has a bound here, and a contact as a whole has a size bound
/// (``validate(_:definitions:prefix:requireAllRequiredFields:maxContactBytes:)``), so no stored contact can make a
/// response (a page, a change event) outgrow the message limit.
public enum ContactRules {
    static let maxEmails = 20, maxPhones = 20, maxAddresses = 10, maxAddressLines = 10, maxTags = 50, maxCustomFields = 100
    /// Name parts. The byte bound also keeps `family_name` under PostgreSQL's btree entry limit (~2700 bytes).
    static let nameLimit = TextLimit(characters: 500, bytes: 2000)
    /// Email, phone and address labels ("work", "home").
    static let labelLimit = TextLimit(characters: 100, bytes: 400)
    /// A phone number as entered.
    static let phoneNumberLimit = TextLimit(characters: 64, bytes: 64)
    /// One address line, the locality and the administrative area.
    static let addressTextLimit = TextLimit(characters: 200, bytes: 800)
    static let postalCodeLimit = TextLimit(characters: 32, bytes: 64)
    static let tagLimit = TextLimit(characters: 64, bytes: 256)
    /// An owner is a user id (a token's subject); indexed, so bounded well under the btree entry limit.
    static let ownerIDLimit = TextLimit(characters: 256, bytes: 256)
    /// A custom field's string value.
    static let customStringLimit = TextLimit(characters: 2000, bytes: 8000)
    static let maxCustomFieldKeyBytes = 64
    /// Paths in one update mask: every updatable field, and then some custom fields by key.
    static let maxUpdatePaths = 128
    /// Deepest `custom_fields` value accepted from a request (no field type takes lists or objects at all; this
    /// bounds the work of reading one before refusing it).
    public static let maxCustomFieldDepth = 32
    /// A field definition's display name and each allowed value.
    static let displayNameLimit = TextLimit(characters: 200, bytes: 800)
    static let allowedValueLimit = TextLimit(characters: 100, bytes: 200)
    static let maxAllowedValues = 50
    /// Field definitions of a tenant, retired ones included (each is at most about 11 KB, so all of them fit one
    /// `ListFieldDefinitions` response, and every create and update reads them).
    public static let maxFieldDefinitions = 200
    /// The default bound on a contact's size (``estimatedSize(_:)``): a sixteenth of the 4 MiB message limit, so a
    /// page or change event holding contacts stays far below it.
    public static let defaultMaxContactBytes = 256 * 1024

    /// Validates and normalises contact data (lower-cases and de-duplicates tags, normalises phones to E.164,
    /// makes exactly one email and one phone primary).
    /// - Parameters:
    ///   - data: the data, changed in place.
    ///   - definitions: the tenant's field definitions.
    ///   - prefix: the request field holding the data, e.g. `contact`.
    ///   - requireAllRequiredFields: on create, required custom fields must be present.
    ///   - maxContactBytes: the most ``estimatedSize(_:)`` may be.
    ///   - storedFields: on an update, the contact's custom fields before it; a value left as it was is not checked
    ///     again, so a field retired (or an enum's value dropped) since it was set does not block every other change.
    /// - Throws: ``ContactsError/invalid(_:)`` listing every violation.
    public static func validate(
        _ data: inout ContactData, definitions: [FieldDefinition], prefix: String = "contact", requireAllRequiredFields: Bool,
        maxContactBytes: Int = defaultMaxContactBytes, storedFields: [String: JSON] = [:]
    ) throws {
        var violations: [Violation] = []
        func check(_ text: String, _ limit: TextLimit, _ field: String) {
            if !limit.allows(text) { violations.append(Violation(field, limit.description, reason: "TOO_LONG")) }
        }
        // Two primaries is an error; none makes the first one primary.
        func makeOnePrimary<Item>(_ items: inout [Item], _ primary: WritableKeyPath<Item, Bool>, _ field: String, _ what: String) {
            let primaries = items.filter { $0[keyPath: primary] }.count
            if primaries > 1 {
                violations.append(Violation(field, "only one \(what) may be primary", reason: "MULTIPLE_PRIMARY"))
            } else if primaries == 0, !items.isEmpty {
                items[0][keyPath: primary] = true
            }
        }
        // Lists over their bound are reported once, without looking at their elements: a request of a million
        // elements must not cost a million checks, nor answer with a million violations.
        func countAllowed(_ count: Int, _ max: Int, _ field: String, _ what: String) -> Bool {
            guard count > max else { return true }
            violations.append(Violation(field, "at most \(max) \(what)", reason: "TOO_MANY"))
            return false
        }
        let n = data.name
        if n.given.isEmpty, n.family.isEmpty, n.display.isEmpty {
            violations.append(Violation("\(prefix).name", "needs at least one of given, family or display", reason: "REQUIRED"))
        }
        for (field, value) in [
            ("given", n.given), ("family", n.family), ("middle", n.middle), ("prefix", n.prefix),
            ("suffix", n.suffix), ("display", n.display),
        ] {
            check(value, nameLimit, "\(prefix).name.\(field)")
        }

        if countAllowed(data.emails.count, maxEmails, "\(prefix).emails", "addresses") {
            var seenEmails = Set<String>()
            for (i, email) in data.emails.enumerated() {
                let address = email.address.trimmingSpaces
                data.emails[i].address = address
                if !isValidEmail(address) {
                    violations.append(
                        Violation(
                            "\(prefix).emails[\(i)].address", "\(excerpt(address)) is not an email address", reason: "INVALID_FORMAT"))
                } else if !seenEmails.insert(address.lowercased()).inserted {
                    violations.append(Violation("\(prefix).emails[\(i)].address", "\(excerpt(address)) appears twice", reason: "DUPLICATE"))
                }
                check(email.label, labelLimit, "\(prefix).emails[\(i)].label")
            }
            makeOnePrimary(&data.emails, \.primary, "\(prefix).emails", "email")
        }

        if countAllowed(data.phones.count, maxPhones, "\(prefix).phones", "numbers") {
            for (i, phone) in data.phones.enumerated() {
                if !phoneNumberLimit.allows(phone.number) {
                    violations.append(Violation("\(prefix).phones[\(i)].number", phoneNumberLimit.description, reason: "TOO_LONG"))
                } else if let e164 = normalizePhone(phone.number) {
                    data.phones[i].e164 = e164
                } else {
                    violations.append(
                        Violation(
                            "\(prefix).phones[\(i)].number",
                            "\(excerpt(phone.number)) is not an international phone number (+ country code, 8 to 15 digits)", reason: "INVALID_FORMAT"
                        ))
                }
                check(phone.label, labelLimit, "\(prefix).phones[\(i)].label")
            }
            makeOnePrimary(&data.phones, \.primary, "\(prefix).phones", "phone")
        }

        if countAllowed(data.addresses.count, maxAddresses, "\(prefix).addresses", "addresses") {
            for (i, address) in data.addresses.enumerated() {
                let field = "\(prefix).addresses[\(i)]"
                check(address.label, labelLimit, "\(field).label")
                if countAllowed(address.lines.count, maxAddressLines, "\(field).address_lines", "lines") {
                    for (j, line) in address.lines.enumerated() { check(line, addressTextLimit, "\(field).address_lines[\(j)]") }
                }
                check(address.locality, addressTextLimit, "\(field).locality")
                check(address.administrativeArea, addressTextLimit, "\(field).administrative_area")
                check(address.postalCode, postalCodeLimit, "\(field).postal_code")
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
                // Bytes before trimming and lower-casing, whose work grows with the text.
                let t = tag.utf8.count <= tagLimit.bytes ? tag.trimmingSpaces.lowercased() : tag
                if t.isEmpty || !tagLimit.allows(t) {
                    violations.append(
                        Violation(
                            "\(prefix).tags[\(i)]", "must be 1 to \(tagLimit.characters) characters (\(tagLimit.bytes) bytes of UTF-8)",
                            reason: "INVALID_FORMAT"))
                } else if !tags.contains(t) {
                    tags.append(t)
                }
            }
            data.tags = tags
        }

        check(data.ownerID, ownerIDLimit, "\(prefix).owner_id")

        if countAllowed(data.customFields.count, maxCustomFields, "\(prefix).custom_fields", "fields") {
            violations += customFieldViolations(
                data.customFields, definitions: definitions, prefix: "\(prefix).custom_fields",
                requireAll: requireAllRequiredFields, stored: storedFields)
        }
        // The whole only once its parts are known to be bounded (and only then is the estimate cheap).
        if violations.isEmpty, estimatedSize(data) > maxContactBytes {
            violations.append(
                Violation(
                    prefix, "is \(estimatedSize(data)) bytes; a contact may be at most \(maxContactBytes) bytes", reason: "TOO_LARGE"))
        }
        if !violations.isEmpty { throw ContactsError.invalid(violations) }
    }

    /// An upper bound on the bytes a contact with this data takes in each of its messages: the `Contact` (with id,
    /// audit stamps and etag) and the `google.protobuf.Struct` of its change event. Every string counts its UTF-8
    /// bytes plus a fixed allowance for its field tag, length, map entry, `Value` wrapper and JSON key.
    /// - Parameter data: the data.
    /// - Returns: the bound in bytes.
    public static func estimatedSize(_ data: ContactData) -> Int {
        // Per value: field tag, length prefix, the Struct map entry and Value wrapper, and the JSON key it has in
        // the change event (the longest, "administrativeArea", is 18 bytes).
        let perValue = 48
        func text(_ s: String) -> Int { s.utf8.count + perValue }
        var size = 1024  // id, etag, type, status, audit stamps and the change event's envelope.
        let n = data.name
        size += [n.given, n.family, n.middle, n.prefix, n.suffix, n.display, n.effectiveDisplay].reduce(0) { $0 + text($1) }
        size += data.emails.reduce(0) { $0 + perValue + text($1.address) + text($1.label) + perValue }
        size += data.phones.reduce(0) { $0 + perValue + text($1.number) + text($1.label) + text($1.e164) + perValue }
        size += data.addresses.reduce(0) { total, a in
            total + perValue + text(a.label) + a.lines.reduce(perValue) { $0 + text($1) } + text(a.locality)
                + text(a.administrativeArea) + text(a.postalCode) + text(a.regionCode)
        }
        size += data.tags.reduce(perValue) { $0 + text($1) }
        size += text(data.ownerID)
        func json(_ value: JSON) -> Int {
            switch value {
            case .null, .bool: return perValue
            // A double's shortest JSON text is at most 24 bytes.
            case .number: return perValue + 24
            case .string(let s): return text(s)
            case .array(let a): return a.reduce(perValue) { $0 + json($1) }
            case .object(let o): return o.reduce(perValue) { $0 + text($1.key) + json($1.value) }
            }
        }
        size += data.customFields.reduce(perValue) { $0 + text($1.key) + json($1.value) }
        return size
    }

    /// The instants a timestamp filter may name: those of google.protobuf.Timestamp, 0001-01-01T00:00:00Z through
    /// 9999-12-31T23:59:59.999999999Z. The exact check is on the wire (``Google_Protobuf_Timestamp/isValid``, which
    /// turns an invalid one into a date outside this range); as a `Double` the last valid nanosecond rounds up to
    /// 10000-01-01T00:00:00Z, so the upper bound admits that instant.
    public static let validTimestampSeconds: ClosedRange<Double> = -62_135_596_800...253_402_300_800

    /// The violation of a timestamp a client gave, if any.
    public static func timestampViolation(_ date: Date?, field: String) -> Violation? {
        guard let date, !validTimestampSeconds.contains(date.timeIntervalSince1970) else { return nil }
        return Violation(
            field, "must be from 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z with nanos from 0 to 999,999,999",
            reason: "OUT_OF_RANGE")
    }

    /// A client's text for an error message: at most 64 bytes of it (whole Unicode scalars), quoted, with `…` when
    /// cut, so an error never echoes megabytes back.
    static func excerpt(_ text: String, maxBytes: Int = 64) -> String {
        var out = String.UnicodeScalarView()
        var bytes = 0
        for scalar in text.unicodeScalars {
            bytes += UTF8.width(scalar)
            if bytes > maxBytes { return "\"" + String(out) + "…\"" }
            out.append(scalar)
        }
        return "\"" + String(out) + "\""
    }

    static func customFieldViolations(
        _ values: [String: JSON], definitions: [FieldDefinition], prefix: String, requireAll: Bool, stored: [String: JSON] = [:]
    ) -> [Violation] {
        var violations: [Violation] = []
        let byKey = Dictionary(definitions.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        for (key, value) in values.sorted(by: { $0.key < $1.key }) where stored[key] != value {
            guard key.utf8.count <= maxCustomFieldKeyBytes, let definition = byKey[key] else {
                violations.append(Violation("\(prefix).\(fieldKey(key))", "is not a defined custom field", reason: "UNKNOWN_FIELD"))
                continue
            }
            if definition.retired, value != .null {
                violations.append(Violation("\(prefix).\(key)", "is retired and accepts no values", reason: "RETIRED_FIELD"))
                continue
            }
            let ok: Bool
            switch (definition.type, value) {
            case (_, .null): ok = !definition.required
            case (.string, .string(let s)): ok = customStringLimit.allows(s)
            case (.number, .number(let n)): ok = n.double.isFinite
            case (.bool, .bool): ok = true
            case (.date, .string(let s)): ok = isValidDate(s)
            case (.enumeration, .string(let s)): ok = definition.allowedValues.contains(s)
            default: ok = false
            }
            if !ok {
                let expected: String
                switch definition.type {
                case .string: expected = "a string of at most \(customStringLimit.characters) characters (\(customStringLimit.bytes) bytes of UTF-8)"
                case .number: expected = "a finite number"
                case .bool: expected = "true or false"
                case .date: expected = "a date as YYYY-MM-DD"
                case .enumeration:
                    let more = definition.allowedValues.count > 10 ? ", …" : ""
                    expected = "one of \(definition.allowedValues.prefix(10).joined(separator: ", "))\(more)"
                }
                violations.append(Violation("\(prefix).\(key)", "must be \(expected)", reason: "INVALID_VALUE"))
            }
        }
        if requireAll {
            for definition in definitions where definition.required && !definition.retired {
                if values[definition.key] == nil || values[definition.key] == .null {
                    violations.append(Violation("\(prefix).\(definition.key)", "is required", reason: "REQUIRED"))
                }
            }
        }
        return violations
    }

    /// A custom field key for a violation's field path: as given when it could be a key, cut otherwise.
    static func fieldKey(_ key: String) -> String {
        key.utf8.count <= maxCustomFieldKeyBytes ? key : String(excerpt(key, maxBytes: maxCustomFieldKeyBytes).dropFirst().dropLast())
    }

    /// A pragmatic address check: one `@`; a non-empty local part of at most 64 bytes whose dots separate non-empty
    /// parts (RFC 5321's dot-atom: no `.a@`, `a.@` or `a..b@`); a dotted domain of non-empty labels that neither begin
    /// nor end with `-` and hold no `_` (host names' letters, digits and hyphens, or any other script's letters for an
    /// internationalised name); no spaces, commas or angle brackets.
    public static func isValidEmail(_ s: String) -> Bool {
        // RFC 5321 bounds octets: 64 for the local part, 254 for the address.
        guard s.utf8.count <= 254 else { return false }
        // ASCII (nearly every address) is checked byte by byte: the same rules, without grapheme breaking and
        // Unicode property lookups per character (6 % of an import's CPU in the service).
        if let valid = s.utf8.withContiguousStorageIfAvailable(isValidASCIIEmail), let valid { return valid }
        return isValidEmailByCharacter(s)
    }

    /// ``isValidEmail(_:)`` of an address's UTF-8 bytes when they are all ASCII (then each character is one byte, and
    /// its whitespace is tab to carriage return and space); nil otherwise.
    static func isValidASCIIEmail(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool? {
        var at: Int?
        var valid = true
        for (i, byte) in bytes.enumerated() {
            if byte >= 0x80 { return nil }
            switch byte {
            case UInt8(ascii: "@"):
                if at != nil { valid = false }
                at = i
            case 9...13, UInt8(ascii: " "), UInt8(ascii: ","), UInt8(ascii: "<"), UInt8(ascii: ">"):
                valid = false
            default:
                break
            }
        }
        guard valid, let at, at > 0, at <= 64 else { return false }
        let local = UnsafeBufferPointer(rebasing: bytes[..<at])
        let domain = UnsafeBufferPointer(rebasing: bytes[(at + 1)...])
        let dot = UInt8(ascii: "."), hyphen = UInt8(ascii: "-")
        guard local.first != dot, local.last != dot, !zip(local, local.dropFirst()).contains(where: { $0 == dot && $1 == dot }) else {
            return false
        }
        guard domain.contains(dot), !domain.contains(UInt8(ascii: "_")) else { return false }
        let labels = domain.split(separator: dot, omittingEmptySubsequences: false)
        return labels.allSatisfy { !$0.isEmpty && $0.first != hyphen && $0.last != hyphen }
    }

    /// ``isValidEmail(_:)`` for any text, a character at a time.
    static func isValidEmailByCharacter(_ s: String) -> Bool {
        guard s.utf8.count <= 254 else { return false }
        let parts = s.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].utf8.count <= 64 else { return false }
        let local = parts[0], domain = parts[1]
        guard !local.hasPrefix("."), !local.hasSuffix("."), !local.contains("..") else { return false }
        guard domain.contains("."), !domain.contains("_") else { return false }
        let labels = domain.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.allSatisfy({ !$0.isEmpty && !$0.hasPrefix("-") && !$0.hasSuffix("-") }) else { return false }
        return !s.contains { $0.isWhitespace || $0 == "," || $0 == "<" || $0 == ">" }
    }

    /// `+49 (30) 123-4567` → `+49301234567`; `0049…` → `+49…`; `+49 (0)30 1234567` → `+49301234567` (a bracketed
    /// zero is the trunk prefix dialled only at home, left out from abroad). Nil unless it has a country code and 8-15
    /// digits.
    public static func normalizePhone(_ s: String) -> String? {
        var text = s.trimmingSpaces
        if text.hasPrefix("00") { text = "+" + text.dropFirst(2) }
        guard text.hasPrefix("+") else { return nil }
        if text.contains("(0)") { text = text.replacing("(0)", with: "") }
        var digits = ""
        for c in text.dropFirst() {
            if c.isASCII, c.isNumber { digits.append(c) } else if " -.()/".contains(c) { continue } else { return nil }
        }
        guard (8...15).contains(digits.count), digits.first != "0" else { return nil }
        return "+" + digits
    }

    /// The violations of a list's or a search's time filters: each bound outside what a Timestamp holds
    /// (``timestampViolation(_:field:)``); then, when all four are valid, a range whose end is not after its start
    /// (`<name>_after` ≥ `<name>_before`). Both bounds are exclusive, so such a range could only ever match nothing: a
    /// mistake (swapped bounds) worth naming, on its `_before` field.
    public static func timeFilterViolations(createdAfter: Date?, createdBefore: Date?, updatedAfter: Date?, updatedBefore: Date?) -> [Violation] {
        let bounds = [
            (createdAfter, "created_after"), (createdBefore, "created_before"), (updatedAfter, "updated_after"), (updatedBefore, "updated_before"),
        ]
        let invalid = bounds.compactMap { timestampViolation($0.0, field: $0.1) }
        guard invalid.isEmpty else { return invalid }
        return [(createdAfter, createdBefore, "created"), (updatedAfter, updatedBefore, "updated")].compactMap { after, before, name in
            guard let after, let before, after >= before else { return nil }
            return Violation("\(name)_before", "must be later than \(name)_after (both bounds are exclusive)", reason: "INVALID_RANGE")
        }
    }

    static func isValidDate(_ s: String) -> Bool {
        let parts = s.split(separator: "-")
        guard s.count == 10, parts.count == 3, let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]),
            (1...9999).contains(y), (1...12).contains(m)
        else { return false }
        let days = [31, (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return (1...days[m - 1]).contains(d)
    }

    /// Lower-case ASCII letters, digits and `_`, starting with a letter, at most 64 bytes.
    public static func isValidFieldKey(_ key: String) -> Bool {
        let bytes = key.utf8
        guard let first = bytes.first, bytes.count <= maxCustomFieldKeyBytes, (97...122).contains(first) else { return false }
        return bytes.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == UInt8(ascii: "_") }
    }

    /// Validates a custom field definition.
    public static func validate(_ definition: FieldDefinition, prefix: String = "definition") throws {
        var violations: [Violation] = []
        let key = definition.key
        if !isValidFieldKey(key) {
            violations.append(
                Violation(
                    "\(prefix).key", "must be lower-case letters, digits and _, start with a letter, at most 64 characters", reason: "INVALID_FORMAT")
            )
        }
        if !displayNameLimit.allows(definition.displayName) || definition.displayName.trimmingSpaces.isEmpty {
            violations.append(
                Violation(
                    "\(prefix).display_name", "must be 1 to \(displayNameLimit.characters) characters (\(displayNameLimit.bytes) bytes of UTF-8)",
                    reason: "REQUIRED"))
        }
        if definition.type == .enumeration {
            if definition.allowedValues.count > maxAllowedValues {
                violations.append(Violation("\(prefix).allowed_values", "at most \(maxAllowedValues) values", reason: "TOO_MANY"))
            } else if definition.allowedValues.isEmpty || Set(definition.allowedValues).count != definition.allowedValues.count {
                violations.append(Violation("\(prefix).allowed_values", "an enum field needs distinct allowed values", reason: "REQUIRED"))
            } else {
                for (i, value) in definition.allowedValues.enumerated() where !allowedValueLimit.allows(value) {
                    violations.append(Violation("\(prefix).allowed_values[\(i)]", allowedValueLimit.description, reason: "TOO_LONG"))
                }
            }
        } else if !definition.allowedValues.isEmpty {
            violations.append(Violation("\(prefix).allowed_values", "only enum fields have allowed values", reason: "INVALID"))
        }
        if !violations.isEmpty { throw ContactsError.invalid(violations) }
    }

    /// The update paths callers may name, and the request field they are reported under.
    public static let updatablePaths: Set<String> = [
        "name", "name.given", "name.family", "name.middle", "name.prefix", "name.suffix", "name.display", "emails",
        "phones", "addresses", "type", "status", "tags", "owner_id", "custom_fields",
    ]

    /// Applies the paths of an update mask from `source` to `target`.
    /// - Returns: the paths applied (normalised).
    /// - Throws: ``ContactsError/invalid(_:)`` naming `update_mask.paths[i]` for unknown paths.
    public static func apply(paths: [String], from source: ContactData, to target: inout ContactData) throws -> [String] {
        var violations: [Violation] = []
        if paths.isEmpty { violations.append(Violation("update_mask", "must name at least one field", reason: "REQUIRED")) }
        guard paths.count <= maxUpdatePaths else {
            throw ContactsError.invalid([Violation("update_mask.paths", "at most \(maxUpdatePaths) paths", reason: "TOO_MANY")])
        }
        for (i, path) in paths.enumerated() {
            switch path {
            case "name": target.name = source.name
            case "name.given": target.name.given = source.name.given
            case "name.family": target.name.family = source.name.family
            case "name.middle": target.name.middle = source.name.middle
            case "name.prefix": target.name.prefix = source.name.prefix
            case "name.suffix": target.name.suffix = source.name.suffix
            case "name.display": target.name.display = source.name.display
            case "emails": target.emails = source.emails
            case "phones": target.phones = source.phones
            case "addresses": target.addresses = source.addresses
            case "type": target.kind = source.kind
            case "status": target.status = source.status
            case "tags": target.tags = source.tags
            case "owner_id": target.ownerID = source.ownerID
            case "custom_fields": target.customFields = source.customFields
            default:
                let key = path.hasPrefix("custom_fields.") ? String(path.utf8.dropFirst("custom_fields.".utf8.count)) ?? "" : ""
                if !key.isEmpty, key.utf8.count <= maxCustomFieldKeyBytes {
                    target.customFields[key] = source.customFields[key]
                    if target.customFields[key] == .null { target.customFields[key] = nil }
                } else {
                    violations.append(Violation("update_mask.paths[\(i)]", "\(excerpt(path)) is not an updatable field", reason: "UNKNOWN_FIELD"))
                }
            }
        }
        if !violations.isEmpty { throw ContactsError.invalid(violations) }
        return paths
    }
}

extension String {
    /// Without leading and trailing spaces and tabs (Unicode space separators and U+0009, Foundation's
    /// `CharacterSet.whitespaces`).
    var trimmingSpaces: String {
        // Nothing to trim when the ends are ASCII other than space and tab (the common case, without a copy).
        if let first = utf8.first, let last = utf8.last, first < 0x80, last < 0x80, first != 0x20, first != 0x09, last != 0x20, last != 0x09 {
            return self
        }
        func isSpace(_ scalar: Unicode.Scalar) -> Bool { scalar == "\t" || scalar.properties.generalCategory == .spaceSeparator }
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { !isSpace($0) }), let end = scalars.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(scalars[start...end])
    }
}
