import FoundationEssentials

/// Validation and normalisation of contact data, field definitions and update paths. Pure: no I/O.
public enum ContactRules {
    static let maxEmails = 20, maxPhones = 20, maxAddresses = 10, maxTags = 50, maxTagLength = 64, maxTextLength = 500

    /// Validates and normalises contact data (lower-cases and de-duplicates tags, normalises phones to E.164,
    /// makes exactly one email and one phone primary).
    /// - Parameters:
    ///   - data: the data, changed in place.
    ///   - definitions: the tenant's field definitions.
    ///   - prefix: the request field holding the data, e.g. `contact`.
    ///   - requireAllRequiredFields: on create, required custom fields must be present.
    /// - Throws: ``ContactsError/invalid(_:)`` listing every violation.
    public static func validate(
        _ data: inout ContactData, definitions: [FieldDefinition], prefix: String = "contact", requireAllRequiredFields: Bool
    ) throws {
        var violations: [Violation] = []
        let n = data.name
        if n.given.isEmpty, n.family.isEmpty, n.display.isEmpty {
            violations.append(Violation("\(prefix).name", "needs at least one of given, family or display", reason: "REQUIRED"))
        }
        for (field, value) in [("given", n.given), ("family", n.family), ("middle", n.middle), ("prefix", n.prefix), ("suffix", n.suffix), ("display", n.display)]
        where value.count > maxTextLength {
            violations.append(Violation("\(prefix).name.\(field)", "must be at most \(maxTextLength) characters", reason: "TOO_LONG"))
        }

        if data.emails.count > maxEmails {
            violations.append(Violation("\(prefix).emails", "at most \(maxEmails) addresses", reason: "TOO_MANY"))
        }
        var seenEmails = Set<String>()
        for (i, email) in data.emails.enumerated() {
            let address = email.address.trimmingSpaces
            data.emails[i].address = address
            if !isValidEmail(address) {
                violations.append(Violation("\(prefix).emails[\(i)].address", "\"\(address)\" is not an email address", reason: "INVALID_FORMAT"))
            } else if !seenEmails.insert(address.lowercased()).inserted {
                violations.append(Violation("\(prefix).emails[\(i)].address", "\(address) appears twice", reason: "DUPLICATE"))
            }
        }
        let primaryEmails = data.emails.filter(\.primary).count
        if primaryEmails > 1 {
            violations.append(Violation("\(prefix).emails", "only one email may be primary", reason: "MULTIPLE_PRIMARY"))
        } else if primaryEmails == 0, !data.emails.isEmpty {
            data.emails[0].primary = true
        }

        if data.phones.count > maxPhones {
            violations.append(Violation("\(prefix).phones", "at most \(maxPhones) numbers", reason: "TOO_MANY"))
        }
        for (i, phone) in data.phones.enumerated() {
            if let e164 = normalizePhone(phone.number) {
                data.phones[i].e164 = e164
            } else {
                violations.append(Violation(
                    "\(prefix).phones[\(i)].number",
                    "\"\(phone.number)\" is not an international phone number (+ country code, 8 to 15 digits)", reason: "INVALID_FORMAT"))
            }
        }
        let primaryPhones = data.phones.filter(\.primary).count
        if primaryPhones > 1 {
            violations.append(Violation("\(prefix).phones", "only one phone may be primary", reason: "MULTIPLE_PRIMARY"))
        } else if primaryPhones == 0, !data.phones.isEmpty {
            data.phones[0].primary = true
        }

        if data.addresses.count > maxAddresses {
            violations.append(Violation("\(prefix).addresses", "at most \(maxAddresses) addresses", reason: "TOO_MANY"))
        }
        for (i, address) in data.addresses.enumerated() where !address.regionCode.isEmpty {
            if address.regionCode.count != 2 || !address.regionCode.allSatisfy({ $0.isASCII && $0.isLetter }) {
                violations.append(Violation("\(prefix).addresses[\(i)].region_code", "must be an ISO 3166-1 alpha-2 code", reason: "INVALID_FORMAT"))
            } else {
                data.addresses[i].regionCode = address.regionCode.uppercased()
            }
        }

        var tags: [String] = []
        for (i, tag) in data.tags.enumerated() {
            let t = tag.trimmingSpaces.lowercased()
            if t.isEmpty || t.count > maxTagLength {
                violations.append(Violation("\(prefix).tags[\(i)]", "must be 1 to \(maxTagLength) characters", reason: "INVALID_FORMAT"))
            } else if !tags.contains(t) {
                tags.append(t)
            }
        }
        if tags.count > maxTags { violations.append(Violation("\(prefix).tags", "at most \(maxTags) tags", reason: "TOO_MANY")) }
        data.tags = tags

        violations += customFieldViolations(data.customFields, definitions: definitions, prefix: "\(prefix).custom_fields",
                                            requireAll: requireAllRequiredFields)
        if !violations.isEmpty { throw ContactsError.invalid(violations) }
    }

    static func customFieldViolations(
        _ values: [String: JSONValue], definitions: [FieldDefinition], prefix: String, requireAll: Bool
    ) -> [Violation] {
        var violations: [Violation] = []
        let byKey = Dictionary(uniqueKeysWithValues: definitions.map { ($0.key, $0) })
        for (key, value) in values.sorted(by: { $0.key < $1.key }) {
            guard let definition = byKey[key] else {
                violations.append(Violation("\(prefix).\(key)", "is not a defined custom field", reason: "UNKNOWN_FIELD"))
                continue
            }
            if definition.retired, value != .null {
                violations.append(Violation("\(prefix).\(key)", "is retired and accepts no values", reason: "RETIRED_FIELD"))
                continue
            }
            let ok: Bool
            switch (definition.type, value) {
            case (_, .null): ok = !definition.required
            case (.string, .string(let s)): ok = s.count <= 2000
            case (.number, .number(let n)): ok = n.isFinite
            case (.bool, .bool): ok = true
            case (.date, .string(let s)): ok = isValidDate(s)
            case (.enumeration, .string(let s)): ok = definition.allowedValues.contains(s)
            default: ok = false
            }
            if !ok {
                let expected: String
                switch definition.type {
                case .string: expected = "a string of at most 2000 characters"
                case .number: expected = "a finite number"
                case .bool: expected = "true or false"
                case .date: expected = "a date as YYYY-MM-DD"
                case .enumeration: expected = "one of \(definition.allowedValues.joined(separator: ", "))"
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

    /// A pragmatic address check: one `@`, a non-empty local part, a dotted domain, no spaces.
    public static func isValidEmail(_ s: String) -> Bool {
        let parts = s.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].count <= 64, s.count <= 254 else { return false }
        let domain = parts[1]
        guard domain.contains("."), !domain.hasPrefix("."), !domain.hasSuffix("."), !domain.contains("..") else { return false }
        return !s.contains { $0.isWhitespace || $0 == "," || $0 == "<" || $0 == ">" }
    }

    /// `+49 (30) 123-4567` → `+49301234567`; `0049…` → `+49…`. Nil unless it has a country code and 8-15 digits.
    public static func normalizePhone(_ s: String) -> String? {
        var text = s.trimmingSpaces
        if text.hasPrefix("00") { text = "+" + text.dropFirst(2) }
        guard text.hasPrefix("+") else { return nil }
        var digits = ""
        for c in text.dropFirst() {
            if c.isASCII, c.isNumber { digits.append(c) }
            else if " -.()/".contains(c) { continue }
            else { return nil }
        }
        guard (8...15).contains(digits.count), digits.first != "0" else { return nil }
        return "+" + digits
    }

    static func isValidDate(_ s: String) -> Bool {
        let parts = s.split(separator: "-")
        guard s.count == 10, parts.count == 3, let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]),
              (1...9999).contains(y), (1...12).contains(m) else { return false }
        let days = [31, (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return (1...days[m - 1]).contains(d)
    }

    /// Validates a custom field definition.
    public static func validate(_ definition: FieldDefinition, prefix: String = "definition") throws {
        var violations: [Violation] = []
        let key = definition.key
        let validKey = !key.isEmpty && key.count <= 64 && key.first!.isLowercase && key.first!.isASCII
            && key.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "_" }
        if !validKey {
            violations.append(Violation("\(prefix).key", "must be lower-case letters, digits and _, start with a letter, at most 64 characters", reason: "INVALID_FORMAT"))
        }
        if definition.displayName.trimmingSpaces.isEmpty || definition.displayName.count > 200 {
            violations.append(Violation("\(prefix).display_name", "must be 1 to 200 characters", reason: "REQUIRED"))
        }
        if definition.type == .enumeration {
            if definition.allowedValues.isEmpty || Set(definition.allowedValues).count != definition.allowedValues.count {
                violations.append(Violation("\(prefix).allowed_values", "an enum field needs distinct allowed values", reason: "REQUIRED"))
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
                if path.hasPrefix("custom_fields."), path.count > "custom_fields.".count {
                    let key = String(path.dropFirst("custom_fields.".count))
                    target.customFields[key] = source.customFields[key]
                    if target.customFields[key] == .null { target.customFields[key] = nil }
                } else {
                    violations.append(Violation("update_mask.paths[\(i)]", "\"\(path)\" is not an updatable field", reason: "UNKNOWN_FIELD"))
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
        func isSpace(_ scalar: Unicode.Scalar) -> Bool { scalar == "\t" || scalar.properties.generalCategory == .spaceSeparator }
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { !isSpace($0) }), let end = scalars.lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(scalars[start...end])
    }
}
