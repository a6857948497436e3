/// A 64-bit FNV-1a over texts, each followed by the byte 0xFF (which UTF-8 never holds, so `["ab", "c"]` and
/// `["a", "bc"]` differ). The same texts give the same value in every process and release, unlike Swift's `Hasher`
/// (seeded per process): page tokens carry it, and an import's ledger keeps it for each row.
public struct TextFingerprint: Sendable, Hashable {
    /// The fingerprint of the texts added so far.
    public private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    /// An empty fingerprint.
    public init() {}

    /// Adds a text and its separator.
    public mutating func add(_ text: String) {
        for byte in text.utf8 { add(byte: byte) }
        add(byte: 0xFF)
    }

    private mutating func add(byte: UInt8) {
        value = (value ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
    }

    /// The fingerprint of these texts, in order.
    public static func of(_ texts: [String]) -> UInt64 {
        var fingerprint = TextFingerprint()
        for text in texts { fingerprint.add(text) }
        return fingerprint.value
    }
}
