import SwitchboardProtos

/// The JSON of the organization's jsonb columns (addresses, custom fields), written and read with the one JSON type.
/// Keys are the domain's property names.
enum ColumnJSON {
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

    static func addresses(_ text: String) throws -> [PostalAddress] {
        if text == "[]" { return [] }
        guard case .array(let elements) = try JSON.parse(text) else { return [] }
        return elements.map { element in
            func string(_ key: String) -> String {
                if case .object(let o) = element, case .string(let s)? = o[key] { return s }
                return ""
            }
            var address = PostalAddress()
            address.label = string("label")
            if case .object(let o) = element, case .array(let lines)? = o["lines"] {
                address.lines = lines.map { if case .string(let s) = $0 { return s } else { return "" } }
            }
            address.locality = string("locality")
            address.administrativeArea = string("administrativeArea")
            address.postalCode = string("postalCode")
            address.regionCode = string("regionCode")
            return address
        }
    }

    static func object(_ object: [String: JSON]) -> String { JSON.object(object).text }

    static func object(_ text: String) throws -> [String: JSON] {
        if text == "{}" { return [:] }
        guard case .object(let object) = try JSON.parse(text) else { throw JSON.SyntaxError(offset: 0) }
        return object
    }
}
