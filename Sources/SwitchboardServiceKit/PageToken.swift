import SwitchboardRPC

/// An opaque keyset page token: where the previous page ended (the last row's sort key and id, as text) and a
/// fingerprint of the filters and order it was issued for, so a token cannot be replayed against another query.
///
/// Wire form: base64url without padding of `version (1) · fingerprint (8, big-endian) · for each cursor part: length
/// (varint) · UTF-8 bytes`. Tokens are not signed: every decoded part is client input, and each service checks the
/// cursor's values before they reach SQL.
public struct PageToken: Sendable, Hashable {
    /// The last row's key parts, e.g. `[sortKey, id]`.
    public var cursor: [String]
    /// The fingerprint of the query the token belongs to.
    public var fingerprint: UInt64

    /// Longest token accepted, in bytes of text.
    public static let maxTokenBytes = 4096
    /// Most cursor parts.
    public static let maxParts = 8
    private static let version: UInt8 = 1

    /// Creates a token.
    public init(cursor: [String], fingerprint: UInt64) {
        self.cursor = cursor
        self.fingerprint = fingerprint
    }

    /// The token text.
    public var encoded: String {
        var bytes: [UInt8] = [Self.version]
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: fingerprint >> UInt64(shift))) }
        for part in cursor {
            var length = part.utf8.count
            while length >= 0x80 {
                bytes.append(UInt8(length & 0x7F) | 0x80)
                length >>= 7
            }
            bytes.append(UInt8(length))
            bytes.append(contentsOf: part.utf8)
        }
        return String(Base64.encode(bytes, padded: false).map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
    }

    /// Decodes token text; nil for anything this codec did not issue (wrong alphabet, version, length or UTF-8).
    public static func decode(_ token: String) -> PageToken? {
        guard !token.isEmpty, token.utf8.count <= maxTokenBytes,
            token.utf8.allSatisfy({ $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "/") && $0 != UInt8(ascii: "=") }),
            let bytes = Base64.decode(String(token.map { $0 == "-" ? "+" : $0 == "_" ? "/" : $0 })),
            bytes.count >= 9, bytes[0] == version
        else { return nil }
        var fingerprint: UInt64 = 0
        for byte in bytes[1..<9] { fingerprint = fingerprint << 8 | UInt64(byte) }
        var cursor: [String] = []
        var i = 9
        while i < bytes.count {
            guard cursor.count < maxParts else { return nil }
            var length = 0
            var shift = 0
            while true {
                guard i < bytes.count, shift <= 21 else { return nil }
                let byte = bytes[i]
                i += 1
                length |= Int(byte & 0x7F) << shift
                if byte & 0x80 == 0 { break }
                shift += 7
            }
            guard length <= bytes.count - i else { return nil }
            let slice = bytes[i..<i + length]
            guard let part = String(validating: slice, as: UTF8.self) else { return nil }
            cursor.append(part)
            i += length
        }
        return PageToken(cursor: cursor, fingerprint: fingerprint)
    }

    /// A fingerprint of a query's filters and order (FNV-1a over the parts, separated so `["ab", "c"]` and
    /// `["a", "bc"]` differ).
    public static func fingerprint(_ parts: [String]) -> UInt64 { TextFingerprint.of(parts) }

    /// Resumes a list from a request's token: nil for the first page, the cursor for a later one.
    /// - Parameters:
    ///   - token: the request's token text (empty for the first page).
    ///   - fingerprint: the fingerprint of the request's query.
    ///   - parts: how many cursor parts the service issues.
    ///   - field: the token's field path for errors, e.g. `page.page_token`.
    /// - Throws: ``InvalidRequest`` naming the field for a token not issued by this codec, with another number of
    ///   parts, or issued for other filters.
    public static func resume(_ token: String, fingerprint: UInt64, parts: Int, field: String = "page.page_token") throws -> [String]? {
        guard !token.isEmpty else { return nil }
        guard let decoded = decode(token), decoded.cursor.count == parts else {
            throw InvalidRequest(field, "is not a token this service issued", reason: "INVALID_FORMAT")
        }
        guard decoded.fingerprint == fingerprint else {
            throw InvalidRequest(field, "was issued for different filters or order", reason: "MISMATCH")
        }
        return decoded.cursor
    }
}
