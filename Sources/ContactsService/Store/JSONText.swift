import SwitchboardProtos

/// Reads and writes the JSON of the contact's jsonb columns with the one JSON type (Foundation's `JSONDecoder` was 6%
/// of GetContact's CPU, and its encoder a second JSON model beside ours). Keys are the domain's property names.
enum JSONText {
    static func parse(_ text: String) throws -> JSON { try JSON.parse(text) }

    // Written directly, keys in the order JSON.object's text sorts them (building JSON values first hashed and sorted
    // every key of every address and phone: most of an import's JSON work besides the change events).
    static func emails(_ emails: [EmailAddress]) -> String {
        var out = "["
        for (i, email) in emails.enumerated() {
            out += i > 0 ? ",{\"address\":" : "{\"address\":"
            JSON.quote(email.address, into: &out)
            out += ",\"label\":"
            JSON.quote(email.label, into: &out)
            out += email.primary ? ",\"primary\":true}" : ",\"primary\":false}"
        }
        return out + "]"
    }

    static func phones(_ phones: [PhoneNumber]) -> String {
        var out = "["
        for (i, phone) in phones.enumerated() {
            out += i > 0 ? ",{\"e164\":" : "{\"e164\":"
            JSON.quote(phone.e164, into: &out)
            out += ",\"label\":"
            JSON.quote(phone.label, into: &out)
            out += ",\"number\":"
            JSON.quote(phone.number, into: &out)
            out += phone.primary ? ",\"primary\":true}" : ",\"primary\":false}"
        }
        return out + "]"
    }

    static func addresses(_ addresses: [PostalAddress]) -> String {
        var out = "["
        for (i, address) in addresses.enumerated() {
            out += i > 0 ? ",{\"administrativeArea\":" : "{\"administrativeArea\":"
            JSON.quote(address.administrativeArea, into: &out)
            out += ",\"label\":"
            JSON.quote(address.label, into: &out)
            out += ",\"lines\":["
            for (j, line) in address.lines.enumerated() {
                if j > 0 { out += "," }
                JSON.quote(line, into: &out)
            }
            out += "],\"locality\":"
            JSON.quote(address.locality, into: &out)
            out += ",\"postalCode\":"
            JSON.quote(address.postalCode, into: &out)
            out += ",\"regionCode\":"
            JSON.quote(address.regionCode, into: &out)
            out += "}"
        }
        return out + "]"
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
