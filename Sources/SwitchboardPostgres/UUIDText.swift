import FoundationEssentials

extension UUID {
    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// The canonical lower-case form (`8-4-4-4-12` hex digits). Every read converts ids to and from text; on Linux
    /// `uuidString` formats with `sprintf` and `init(uuidString:)` parses with `sscanf`, both visible in profiles.
    public var lowercaseText: String {
        var out = [UInt8]()
        out.reserveCapacity(36)
        withUnsafeBytes(of: uuid) { bytes in
            for (i, byte) in bytes.enumerated() {
                if i == 4 || i == 6 || i == 8 || i == 10 { out.append(UInt8(ascii: "-")) }
                out.append(Self.hexDigits[Int(byte >> 4)])
                out.append(Self.hexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses the canonical `8-4-4-4-12` form in either case, like `init(uuidString:)`; nil for anything else.
    public init?(text: String) {
        var text = text
        let parsed: uuid_t? = text.withUTF8 { s -> uuid_t? in
            guard s.count == 36 else { return nil }
            var bytes = [UInt8](repeating: 0, count: 16)
            var j = 0
            var i = 0
            while i < 36 {
                if i == 8 || i == 13 || i == 18 || i == 23 {
                    guard s[i] == UInt8(ascii: "-") else { return nil }
                    i += 1
                    continue
                }
                guard let high = Self.nibble(s[i]), let low = Self.nibble(s[i + 1]) else { return nil }
                bytes[j] = high << 4 | low
                j += 1
                i += 2
            }
            return (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8], bytes[9],
                bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
            )
        }
        guard let parsed else { return nil }
        self.init(uuid: parsed)
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }
}
