import SwitchboardProtos

/// Reads and writes the JSON of the contact's jsonb columns with the one JSON type (Foundation's `JSONDecoder` was 6%
/// of GetContact's CPU, and its encoder a second JSON model beside ours). Keys are the domain's property names.
enum JSONText {
    static func parse(_ text: String) throws -> JSON { try JSON.parse(text) }

    static func emails(_ emails: [EmailAddress]) -> String {
        JSON.array(emails.map { .object(["address": .string($0.address), "label": .string($0.label), "primary": .bool($0.primary)]) }).text
    }

    static func phones(_ phones: [PhoneNumber]) -> String {
        JSON.array(
            phones.map {
                .object(["number": .string($0.number), "label": .string($0.label), "primary": .bool($0.primary), "e164": .string($0.e164)])
            }
        ).text
    }

    static func addresses(_ addresses: [PostalAddress]) -> String {
        JSON.array(
            addresses.map {
                .object([
                    "label": .string($0.label), "lines": .array($0.lines.map(JSON.string)), "locality": .string($0.locality),
                    "administrativeArea": .string($0.administrativeArea), "postalCode": .string($0.postalCode),
                    "regionCode": .string($0.regionCode),
                ])
            }
        ).text
    }

    static func object(_ object: [String: JSON]) -> String { JSON.object(object).text }
}

extension JSON {
    fileprivate subscript(column key: String) -> JSON? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    fileprivate var columnString: String {
        if case .string(let s) = self { return s }
        return ""
    }

    fileprivate var columnBool: Bool {
        if case .bool(let b) = self { return b }
        return false
    }

    fileprivate var columnElements: [JSON] {
        if case .array(let a) = self { return a }
        return []
    }
}

/// The jsonb columns' shapes, as the writers above make them.
extension JSONText {
    static func emails(_ text: String) throws -> [EmailAddress] {
        if text == "[]" { return [] }
        return try parse(text).columnElements.map {
            EmailAddress(
                address: $0[column: "address"]?.columnString ?? "", label: $0[column: "label"]?.columnString ?? "",
                primary: $0[column: "primary"]?.columnBool ?? false)
        }
    }

    static func phones(_ text: String) throws -> [PhoneNumber] {
        if text == "[]" { return [] }
        return try parse(text).columnElements.map {
            PhoneNumber(
                number: $0[column: "number"]?.columnString ?? "", label: $0[column: "label"]?.columnString ?? "",
                primary: $0[column: "primary"]?.columnBool ?? false, e164: $0[column: "e164"]?.columnString ?? "")
        }
    }

    static func addresses(_ text: String) throws -> [PostalAddress] {
        if text == "[]" { return [] }
        return try parse(text).columnElements.map { element in
            var address = PostalAddress()
            address.label = element[column: "label"]?.columnString ?? ""
            address.lines = element[column: "lines"]?.columnElements.map(\.columnString) ?? []
            address.locality = element[column: "locality"]?.columnString ?? ""
            address.administrativeArea = element[column: "administrativeArea"]?.columnString ?? ""
            address.postalCode = element[column: "postalCode"]?.columnString ?? ""
            address.regionCode = element[column: "regionCode"]?.columnString ?? ""
            return address
        }
    }

    static func object(_ text: String) throws -> [String: JSON] {
        if text == "{}" { return [:] }
        guard case .object(let object) = try parse(text) else { throw JSON.SyntaxError(offset: 0) }
        return object
    }
}
