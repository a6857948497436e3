import SwitchboardProtos
import SwitchboardRuntime

/// Reads the JSON text PostgreSQL returns for the contact's jsonb columns (Foundation's `JSONDecoder` was 6% of
/// GetContact's CPU; `JSON.parse` is the runtime's strict parser).
enum JSONText {
    static func parse(_ text: String) throws -> JSONValue { JSONValue(try JSON.parse(text)) }
}

extension JSONValue {
    init(_ json: JSON) {
        switch json {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .number(let n): self = .number(n.double)
        case .string(let s): self = .string(s)
        case .array(let a): self = .array(a.map(JSONValue.init))
        case .object(let o): self = .object(o.mapValues(JSONValue.init))
        }
    }
}

extension JSONValue {
    fileprivate subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    fileprivate var stringValue: String {
        if case .string(let s) = self { return s }
        return ""
    }

    fileprivate var boolValue: Bool {
        if case .bool(let b) = self { return b }
        return false
    }

    fileprivate var elements: [JSONValue] {
        if case .array(let a) = self { return a }
        return []
    }
}

/// The jsonb columns' shapes (written by the store's `JSONEncoder`, keyed by property name).
extension JSONText {
    static func emails(_ text: String) throws -> [EmailAddress] {
        if text == "[]" { return [] }
        return try parse(text).elements.map {
            EmailAddress(address: $0["address"]?.stringValue ?? "", label: $0["label"]?.stringValue ?? "",
                         primary: $0["primary"]?.boolValue ?? false)
        }
    }

    static func phones(_ text: String) throws -> [PhoneNumber] {
        if text == "[]" { return [] }
        return try parse(text).elements.map {
            PhoneNumber(number: $0["number"]?.stringValue ?? "", label: $0["label"]?.stringValue ?? "",
                        primary: $0["primary"]?.boolValue ?? false, e164: $0["e164"]?.stringValue ?? "")
        }
    }

    static func addresses(_ text: String) throws -> [PostalAddress] {
        if text == "[]" { return [] }
        return try parse(text).elements.map { element in
            var address = PostalAddress()
            address.label = element["label"]?.stringValue ?? ""
            address.lines = element["lines"]?.elements.map(\.stringValue) ?? []
            address.locality = element["locality"]?.stringValue ?? ""
            address.administrativeArea = element["administrativeArea"]?.stringValue ?? ""
            address.postalCode = element["postalCode"]?.stringValue ?? ""
            address.regionCode = element["regionCode"]?.stringValue ?? ""
            return address
        }
    }

    static func object(_ text: String) throws -> [String: JSONValue] {
        if text == "{}" { return [:] }
        guard case .object(let object) = try parse(text) else { throw JSON.SyntaxError(offset: 0) }
        return object
    }
}
