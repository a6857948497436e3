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
        guard let parsed = text.withUTF8({ UUID(utf8: $0) }) else { return nil }
        self = parsed
    }

    /// Parses the canonical form from its UTF-8 bytes (a column's value as libpq holds it), allocating nothing.
    init?(utf8 s: UnsafeBufferPointer<UInt8>) {
        guard s.count == 36, s[8] == UInt8(ascii: "-"), s[13] == UInt8(ascii: "-"), s[18] == UInt8(ascii: "-"),
            s[23] == UInt8(ascii: "-")
        else { return nil }
        var value: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let parsed = withUnsafeMutableBytes(of: &value) { bytes -> Bool in
            var i = 0
            for j in 0..<16 {
                if i == 8 || i == 13 || i == 18 || i == 23 { i += 1 }
                guard let high = Self.nibble(s[i]), let low = Self.nibble(s[i + 1]) else { return false }
                bytes[j] = high << 4 | low
                i += 2
            }
            return true
        }
        guard parsed else { return nil }
        self.init(uuid: value)
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
