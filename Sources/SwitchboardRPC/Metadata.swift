/// Ordered key-value pairs carried as HTTP/2 headers and trailers.
///
/// Keys are lower-case. A key ending in `-bin` carries binary values (base64 on the wire, padded or not);
/// every other key carries printable ASCII. A key may appear more than once; order is kept.
public struct Metadata: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    /// One metadata value.
    public enum Value: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
        /// A string literal is a string value.
        public init(stringLiteral value: String) { self = .string(value) }

        /// A printable ASCII value (keys without `-bin`).
        case string(String)
        /// A binary value (keys ending in `-bin`).
        case binary([UInt8])

        /// The value as text: the string itself, or base64 for binary values.
        public var description: String {
            switch self {
            case .string(let s): return s
            case .binary(let b): return Base64.encode(b, padded: true)
            }
        }
    }

    /// A key and one of its values.
    public typealias Element = (key: String, value: Value)

    private var elements: [Element]

    /// Creates empty metadata.
    public init() { elements = [] }

    /// Creates metadata from string pairs.
    /// - Parameter elements: key-value pairs, in order.
    public init(dictionaryLiteral elements: (String, Value)...) {
        self.elements = elements.map { ($0.0.lowercased(), $0.1) }
    }

    /// The number of values.
    public var count: Int { elements.count }
    /// Whether there are no values.
    public var isEmpty: Bool { elements.isEmpty }

    /// Appends a string value.
    /// - Parameters:
    ///   - value: printable ASCII text.
    ///   - key: the key; lower-cased.
    public mutating func addString(_ value: String, forKey key: String) {
        elements.append((key.lowercased(), .string(value)))
    }

    /// Appends a binary value.
    /// - Parameters:
    ///   - value: the bytes.
    ///   - key: the key; should end in `-bin`.
    public mutating func addBinary(_ value: [UInt8], forKey key: String) {
        elements.append((key.lowercased(), .binary(value)))
    }

    /// Appends a value as received on the wire: decodes base64 for `-bin` keys.
    /// - Parameters:
    ///   - wireValue: the header value.
    ///   - key: the header name.
    /// - Throws: ``RPCError`` `INTERNAL` when a `-bin` value is not valid base64.
    public mutating func addWire(_ wireValue: String, forKey key: String) throws {
        let key = key.lowercased()
        if key.hasSuffix("-bin") {
            // Several binary values may be folded into one header separated by commas.
            for part in wireValue.split(separator: ",", omittingEmptySubsequences: false) {
                let trimmed = part.trimmingSpaces()
                guard let bytes = Base64.decode(trimmed) else {
                    throw RPCError(code: .internal, message: "metadata \(key) is not valid base64")
                }
                elements.append((key, .binary(bytes)))
            }
        } else {
            elements.append((key, .string(wireValue)))
        }
    }

    /// Replaces every value of a key with one string value.
    /// - Parameters:
    ///   - value: the new value.
    ///   - key: the key.
    public mutating func replaceOrAddString(_ value: String, forKey key: String) {
        removeAll(key)
        addString(value, forKey: key)
    }

    /// Removes every value of a key.
    /// - Parameter key: the key.
    public mutating func removeAll(_ key: String) {
        let key = key.lowercased()
        elements.removeAll { $0.key == key }
    }

    /// The string values of a key, in order.
    /// - Parameter key: the key.
    public subscript(stringValues key: String) -> [String] {
        let key = key.lowercased()
        return elements.compactMap { element in
            guard element.key == key, case .string(let s) = element.value else { return nil }
            return s
        }
    }

    /// The binary values of a key, in order.
    /// - Parameter key: the key.
    public subscript(binaryValues key: String) -> [[UInt8]] {
        let key = key.lowercased()
        return elements.compactMap { element in
            guard element.key == key, case .binary(let b) = element.value else { return nil }
            return b
        }
    }

    /// The first string value of a key.
    /// - Parameter key: the key.
    public func firstString(_ key: String) -> String? { self[stringValues: key].first }

    /// Iterates over the pairs in order.
    public func makeIterator() -> IndexingIterator<[Element]> { elements.makeIterator() }

    /// Appends every pair of another metadata.
    /// - Parameter other: the metadata to append.
    public mutating func add(contentsOf other: Metadata) { elements.append(contentsOf: other.elements) }

    /// The pairs as they go on the wire: binary values base64-encoded without padding.
    public var wireHeaders: [(name: String, value: String)] {
        elements.map { element in
            switch element.value {
            case .string(let s): return (element.key, s)
            case .binary(let b): return (element.key, Base64.encode(b, padded: false))
            }
        }
    }

    public static func == (lhs: Metadata, rhs: Metadata) -> Bool {
        lhs.elements.count == rhs.elements.count
            && zip(lhs.elements, rhs.elements).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for element in elements {
            hasher.combine(element.key)
            hasher.combine(element.value)
        }
    }

    /// Whether a header name is reserved by gRPC or HTTP/2 and must not be sent as application metadata.
    /// - Parameter name: a lower-case header name.
    /// - Returns: true for pseudo-headers, `grpc-*` transport headers, `content-type`, `te` and friends.
    public static func isReserved(_ name: String) -> Bool {
        if name.hasPrefix(":") { return true }
        switch name {
        case GRPCHeaderName.contentType, GRPCHeaderName.te, GRPCHeaderName.timeout, GRPCHeaderName.encoding,
            GRPCHeaderName.acceptEncoding, GRPCHeaderName.status, GRPCHeaderName.message, GRPCHeaderName.statusDetails,
            GRPCHeaderName.userAgent, "connection", "host", "transfer-encoding", "keep-alive", "upgrade",
            "proxy-connection", "content-length":
            return true
        default:
            return false
        }
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}
