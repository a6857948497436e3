import SwitchboardProtos

/// The type of a tenant-defined custom field.
public enum CustomFieldType: Int, Sendable, Hashable {
    /// Text.
    case string = 1
    /// A finite number.
    case number = 2
    /// true or false.
    case bool = 3
    /// A `YYYY-MM-DD` string.
    case date = 4
    /// One of the definition's allowed values.
    case enumeration = 5
}

/// A tenant's definition of a custom field on some resource.
public struct CustomFieldDefinition: Sendable, Hashable {
    /// Lower-case letters, digits and `_`, starting with a letter, at most 64 bytes.
    public var key: String
    /// What people see.
    public var displayName: String
    /// The values it takes.
    public var type: CustomFieldType
    /// The values an enumeration takes.
    public var allowedValues: [String]
    /// Whether a new resource must have a value.
    public var required: Bool
    /// Retired fields accept no values and are not required.
    public var retired: Bool

    /// Creates a definition.
    public init(
        key: String, displayName: String, type: CustomFieldType, allowedValues: [String] = [], required: Bool = false, retired: Bool = false
    ) {
        self.key = key
        self.displayName = displayName
        self.type = type
        self.allowedValues = allowedValues
        self.required = required
        self.retired = retired
    }
}

/// Typed custom fields, as every service with tenant-defined fields checks them: the definitions' own rules, the
/// values against their definitions, and the bounded conversion of a request's `google.protobuf.Value`. Pure: no I/O.
public enum CustomFieldRules {
    /// Most values on one resource.
    public static let maxValues = 100
    /// Most definitions of one tenant (retired ones included), so all of them fit one response.
    public static let maxDefinitions = 200
    /// Longest key, in bytes.
    public static let maxKeyBytes = 64
    /// Deepest value accepted from a request (no field type takes lists or objects; this bounds reading one).
    public static let maxDepth = 32
    /// Longest string value: characters and UTF-8 bytes.
    public static let maxStringCharacters = 2000, maxStringBytes = 8000
    /// Longest display name and allowed value: characters and UTF-8 bytes.
    static let maxDisplayNameCharacters = 200, maxDisplayNameBytes = 800, maxAllowedValueCharacters = 100, maxAllowedValueBytes = 200
    /// Most allowed values of an enumeration.
    public static let maxAllowedValues = 50

    /// Lower-case ASCII letters, digits and `_`, starting with a letter, at most 64 bytes.
    public static func isValidKey(_ key: String) -> Bool {
        let bytes = key.utf8
        guard let first = bytes.first, bytes.count <= maxKeyBytes, (97...122).contains(first) else { return false }
        return bytes.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == UInt8(ascii: "_") }
    }

    /// A proleptic Gregorian `YYYY-MM-DD` from 0001-01-01 to 9999-12-31.
    public static func isValidDate(_ s: String) -> Bool {
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        guard s.utf8.count == 10, parts.count == 3, parts[0].utf8.count == 4, parts[1].utf8.count == 2, parts[2].utf8.count == 2,
            s.utf8.allSatisfy({ (48...57).contains($0) || $0 == UInt8(ascii: "-") }),
            let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (1...9999).contains(y), (1...12).contains(m)
        else { return false }
        let days = [31, (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return (1...days[m - 1]).contains(d)
    }

    /// A client's text for an error message: at most `maxBytes` bytes of it (whole Unicode scalars), quoted, with `…`
    /// when cut, so an error never echoes megabytes back.
    public static func excerpt(_ text: String, maxBytes: Int = 64) -> String {
        var out = String.UnicodeScalarView()
        var bytes = 0
        for scalar in text.unicodeScalars {
            bytes += UTF8.width(scalar)
            if bytes > maxBytes { return "\"" + String(out) + "…\"" }
            out.append(scalar)
        }
        return "\"" + String(out) + "\""
    }

    /// A key for a violation's field path: as given when it could be a key, cut otherwise.
    public static func fieldKey(_ key: String) -> String {
        key.utf8.count <= maxKeyBytes ? key : String(excerpt(key, maxBytes: maxKeyBytes).dropFirst().dropLast())
    }

    private static func fits(_ s: String, characters: Int, bytes: Int) -> Bool { s.utf8.count <= bytes && s.count <= characters }

    /// The violations of a definition (empty when it is valid).
    /// - Parameters:
    ///   - definition: the definition.
    ///   - prefix: the request field holding it, e.g. `definition`.
    public static func violations(of definition: CustomFieldDefinition, prefix: String = "definition") -> [Violation] {
        var violations: [Violation] = []
        if !isValidKey(definition.key) {
            violations.append(
                Violation(
                    "\(prefix).key", "must be lower-case letters, digits and _, start with a letter, at most 64 characters", reason: "INVALID_FORMAT")
            )
        }
        let name = definition.displayName
        if !fits(name, characters: maxDisplayNameCharacters, bytes: maxDisplayNameBytes) || name.allSatisfy(\.isWhitespace) {
            violations.append(
                Violation(
                    "\(prefix).display_name", "must be 1 to \(maxDisplayNameCharacters) characters (\(maxDisplayNameBytes) bytes of UTF-8)",
                    reason: "REQUIRED"))
        }
        if definition.type == .enumeration {
            if definition.allowedValues.count > maxAllowedValues {
                violations.append(Violation("\(prefix).allowed_values", "at most \(maxAllowedValues) values", reason: "TOO_MANY"))
            } else if definition.allowedValues.isEmpty || Set(definition.allowedValues).count != definition.allowedValues.count {
                violations.append(Violation("\(prefix).allowed_values", "an enum field needs distinct allowed values", reason: "REQUIRED"))
            } else {
                for (i, value) in definition.allowedValues.enumerated()
                where !fits(value, characters: maxAllowedValueCharacters, bytes: maxAllowedValueBytes) {
                    violations.append(
                        Violation(
                            "\(prefix).allowed_values[\(i)]",
                            "must be at most \(maxAllowedValueCharacters) characters (\(maxAllowedValueBytes) bytes of UTF-8)", reason: "TOO_LONG"))
                }
            }
        } else if !definition.allowedValues.isEmpty {
            violations.append(Violation("\(prefix).allowed_values", "only enum fields have allowed values", reason: "INVALID"))
        }
        return violations
    }

    /// The violations of a resource's values against the tenant's definitions.
    /// - Parameters:
    ///   - values: the values by key.
    ///   - definitions: the tenant's definitions, retired ones included.
    ///   - prefix: the request field holding the values, e.g. `organization.custom_fields`.
    ///   - requireAll: whether every required (live) field must have a value (on create).
    ///   - stored: on an update, the resource's values before it; a value left as it was is not checked again, so a
    ///     field retired (or an enum's value dropped) since it was set does not block every other change.
    public static func violations(
        of values: [String: JSON], definitions: [CustomFieldDefinition], prefix: String, requireAll: Bool, stored: [String: JSON] = [:]
    ) -> [Violation] {
        guard values.count <= maxValues else { return [Violation(prefix, "at most \(maxValues) fields", reason: "TOO_MANY")] }
        var violations: [Violation] = []
        let byKey = Dictionary(definitions.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
        for (key, value) in values.sorted(by: { $0.key < $1.key }) where stored[key] != value {
            guard key.utf8.count <= maxKeyBytes, let definition = byKey[key] else {
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
            case (.string, .string(let s)): ok = fits(s, characters: maxStringCharacters, bytes: maxStringBytes)
            case (.number, .number(let n)): ok = n.double.isFinite
            case (.bool, .bool): ok = true
            case (.date, .string(let s)): ok = isValidDate(s)
            case (.enumeration, .string(let s)): ok = definition.allowedValues.contains(s)
            default: ok = false
            }
            if !ok {
                let expected: String
                switch definition.type {
                case .string: expected = "a string of at most \(maxStringCharacters) characters (\(maxStringBytes) bytes of UTF-8)"
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

    /// A request's values as JSON, each nested at most ``maxDepth`` deep.
    /// - Parameters:
    ///   - fields: the request's `google.protobuf.Struct`, if any.
    ///   - prefix: its field path, e.g. `organization.custom_fields`.
    /// - Returns: the values, or the violations (too many values, values nested too deep).
    public static func values(_ fields: Google_Protobuf_Struct?, prefix: String) -> Result<[String: JSON], InvalidRequest> {
        guard let fields else { return .success([:]) }
        // Counted before reading: the rules would refuse more anyway, and reading costs with every value.
        guard fields.fields.count <= maxValues else {
            return .failure(InvalidRequest(prefix, "at most \(maxValues) fields", reason: "TOO_MANY"))
        }
        var values: [String: JSON] = [:]
        var violations: [Violation] = []
        for (key, value) in fields.fields {
            if let converted = json(value, depth: 1) {
                values[key] = converted
            } else {
                violations.append(
                    Violation("\(prefix).\(fieldKey(key))", "nests lists and objects more than \(maxDepth) deep", reason: "TOO_DEEP"))
            }
        }
        return violations.isEmpty ? .success(values) : .failure(InvalidRequest(violations))
    }

    /// A request's value as JSON, or nil when lists and objects nest deeper than ``maxDepth``.
    static func json(_ value: Google_Protobuf_Value, depth: Int) -> JSON? {
        switch value.kind {
        case .nullValue, nil: return .null
        case .numberValue(let n): return .number(JSON.Number(n))
        case .stringValue(let s): return .string(s)
        case .boolValue(let b): return .bool(b)
        case .structValue(let s):
            guard depth < maxDepth else { return nil }
            var object: [String: JSON] = [:]
            for (key, element) in s.fields {
                guard let converted = json(element, depth: depth + 1) else { return nil }
                object[key] = converted
            }
            return .object(object)
        case .listValue(let l):
            guard depth < maxDepth else { return nil }
            var array: [JSON] = []
            for element in l.values {
                guard let converted = json(element, depth: depth + 1) else { return nil }
                array.append(converted)
            }
            return .array(array)
        }
    }

    /// Stored values as a `google.protobuf.Struct`.
    public static func protoStruct(_ values: [String: JSON]) -> Google_Protobuf_Struct {
        var s = Google_Protobuf_Struct()
        s.fields = values.mapValues(protoValue)
        return s
    }

    static func protoValue(_ json: JSON) -> Google_Protobuf_Value {
        var v = Google_Protobuf_Value()
        switch json {
        case .null: v.kind = .nullValue(.nullValue)
        case .bool(let b): v.kind = .boolValue(b)
        case .number(let n): v.kind = .numberValue(n.double)
        case .string(let s): v.kind = .stringValue(s)
        case .array(let a):
            var list = Google_Protobuf_ListValue()
            list.values = a.map(protoValue)
            v.kind = .listValue(list)
        case .object(let o):
            v.kind = .structValue(protoStruct(o))
        }
        return v
    }
}
