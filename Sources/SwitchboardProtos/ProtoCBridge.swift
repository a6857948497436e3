// The bridge between generated Swift value types and protoc-c's C structs: the only hand-written code that reads
// or writes protoc-c message memory. Generated types call it; nothing outside this module sees a C type.
//
// Layout facts relied on (protobuf-c 1.4): a message starts with `ProtobufCMessage`; the descriptor's `fields`
// are sorted by field number; each field has `offset` (the value) and `quantifier_offset` (the `n_` count of a
// repeated field, or the `_case` of a oneof member); strings are NUL-terminated `char *`, bytes are
// `ProtobufCBinaryData`, bools are `protobuf_c_boolean` (int), enums are int-sized.
internal import CProtobufC
internal import CSwitchboardProtos
import FoundationEssentials
import Glibc
import NIOCore
import SwitchboardRPC

/// A generated message that can be converted to and from its protoc-c struct.
protocol _CBridgedMessage: ProtoMessage {
    /// protoc-c's descriptor for the message.
    static var _cDescriptor: UnsafePointer<ProtobufCMessageDescriptor> { get }
    /// Reads every field out of an unpacked C struct.
    init(_cReader: _CMessageReader)
    /// Writes every field into a freshly initialised C struct.
    func _write(to writer: _CMessageWriter)
}

/// Finds a message's descriptor through its generated `__init` function, which stores it in `base.descriptor`.
func _descriptor<T>(of initFunction: (UnsafeMutablePointer<T>?) -> Void) -> UnsafePointer<ProtobufCMessageDescriptor> {
    let storage = UnsafeMutablePointer<T>.allocate(capacity: 1)
    defer { storage.deallocate() }
    initFunction(storage)
    return UnsafeRawPointer(storage).load(as: ProtobufCMessage.self).descriptor
}

/// Boxes a message stored in a field of a type it (transitively) contains, which a struct cannot hold inline.
final class _ProtoBox<Value: ProtoMessage>: Equatable, @unchecked Sendable {
    // Immutable after init, so sharing between threads is safe.
    let value: Value
    init(_ value: Value) { self.value = value }
    static func == (lhs: _ProtoBox, rhs: _ProtoBox) -> Bool { lhs.value == rhs.value }
}

func _decodeMessage<M: _CBridgedMessage>(_ type: M.Type, from bytes: ByteBuffer) throws -> M {
    // protoc-c allocates the unpacked tree through an arena whose first chunk is on the stack, so a typical
    // request decodes without touching malloc and is released in one go.
    try _withArena { arena in
        var allocator = ProtobufCAllocator(
            alloc: { data, size in Unmanaged<_CArena>.fromOpaque(data!).takeUnretainedValue().allocate(size) },
            free: { _, _ in },
            allocator_data: Unmanaged.passUnretained(arena).toOpaque())
        let unpacked = try bytes.withUnsafeReadableBytes { raw -> UnsafeMutablePointer<ProtobufCMessage>? in
            // protobuf-c wants a non-null pointer even for an empty message.
            var empty: UInt8 = 0
            guard let base = raw.baseAddress, raw.count > 0 else {
                return protobuf_c_message_unpack(M._cDescriptor, &allocator, 0, &empty)
            }
            try _scanWire(M._cDescriptor, raw, limits: .process)
            return protobuf_c_message_unpack(M._cDescriptor, &allocator, raw.count, base.assumingMemoryBound(to: UInt8.self))
        }
        guard let unpacked else { throw ProtoDecodingError(messageName: M.protoMessageName) }
        return M(_cReader: _CMessageReader(UnsafeRawPointer(unpacked)))
    }
}

func _encodeMessage<M: _CBridgedMessage>(_ message: M, into buffer: inout ByteBuffer) {
    _withArena { arena in
        let root = arena.newMessage(M._cDescriptor)
        message._write(to: _CMessageWriter(root, arena: arena))
        let packed = root.assumingMemoryBound(to: ProtobufCMessage.self)
        let size = protobuf_c_message_get_packed_size(packed)
        guard size > 0 else { return }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            protobuf_c_message_pack(packed, out.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
    }
}

/// Runs `body` with an arena whose first chunk (``_CArena/StackChunk``) is in this call's stack frame.
func _withArena<R>(_ body: (_CArena) throws -> R) rethrows -> R {
    var stack = _CArena.StackChunk(repeating: 0)
    return try withUnsafeMutableBytes(of: &stack) { stack in
        let arena = _CArena(initial: stack)
        defer { arena.release() }
        return try body(arena)
    }
}

/// Bump allocator for the C struct tree of one encode or decode; everything is freed at once afterwards. The first
/// chunk is caller-provided stack memory; larger trees spill into malloc'd chunks.
final class _CArena {
    /// The first chunk: 2 KiB, a local value in the caller's frame. (`withUnsafeTemporaryAllocation` takes anything
    /// over 1 KiB from the heap on Linux: every encode and decode allocated its 2 KiB there, and a request of that size
    /// makes glibc consolidate its free lists first, on the event loop.)
    typealias StackChunk = InlineArray<256, UInt64>
    /// Where the first chunk starts, for a test that it is on the stack.
    let initialChunk: UnsafeMutableRawPointer?
    private var chunks: [UnsafeMutableRawPointer] = []
    private var current: UnsafeMutableRawPointer?
    private var remaining = 0
    private static let chunkSize = 16384

    init(initial: UnsafeMutableRawBufferPointer) {
        initialChunk = initial.baseAddress
        current = initial.baseAddress
        remaining = initial.count
    }

    func allocate(_ size: Int) -> UnsafeMutableRawPointer {
        let aligned = (max(size, 1) + 15) & ~15
        if aligned > remaining {
            let chunk = Swift.max(aligned, Self.chunkSize)
            // Small requests never get here: the stack chunk serves them.
            let p = malloc(chunk)!
            chunks.append(p)
            current = p
            remaining = chunk
        }
        let p = current!
        current = p + aligned
        remaining -= aligned
        return p
    }

    func newMessage(_ descriptor: UnsafePointer<ProtobufCMessageDescriptor>) -> UnsafeMutableRawPointer {
        let p = allocate(descriptor.pointee.sizeof_message)
        descriptor.pointee.message_init(p.assumingMemoryBound(to: ProtobufCMessage.self))
        return p
    }

    func copy(_ string: String) -> UnsafeMutablePointer<CChar> {
        var string = string
        return string.withUTF8 { utf8 in
            let p = allocate(utf8.count + 1).assumingMemoryBound(to: CChar.self)
            if let base = utf8.baseAddress { memcpy(p, base, utf8.count) }
            p[utf8.count] = 0
            return p
        }
    }

    func copy(_ bytes: [UInt8]) -> ProtobufCBinaryData {
        let p = allocate(bytes.count).assumingMemoryBound(to: UInt8.self)
        bytes.withUnsafeBufferPointer { if let base = $0.baseAddress { memcpy(p, base, bytes.count) } }
        return ProtobufCBinaryData(len: bytes.count, data: p)
    }

    func release() {
        for chunk in chunks { free(chunk) }
        chunks.removeAll()
    }
}

/// Reads fields of an unpacked protoc-c message by field index.
struct _CMessageReader {
    let base: UnsafeRawPointer
    // nil for a message without fields (protoc-c emits no field table for it).
    let fields: UnsafePointer<ProtobufCFieldDescriptor>?

    init(_ message: UnsafeRawPointer) {
        self.base = message
        self.fields = message.load(as: ProtobufCMessage.self).descriptor.pointee.fields
    }

    private func offset(_ i: Int) -> Int { Int(fields.unsafelyUnwrapped[i].offset) }
    private func count(_ i: Int) -> Int { base.load(fromByteOffset: Int(fields.unsafelyUnwrapped[i].quantifier_offset), as: Int.self) }

    func scalar<T: BitwiseCopyable>(_ i: Int) -> T { base.load(fromByteOffset: offset(i), as: T.self) }
    func bool(_ i: Int) -> Bool { base.load(fromByteOffset: offset(i), as: Int32.self) != 0 }
    func string(_ i: Int) -> String {
        guard let p = base.load(fromByteOffset: offset(i), as: UnsafePointer<CChar>?.self) else { return "" }
        return String(cString: p)
    }
    func bytes(_ i: Int) -> [UInt8] {
        Self.bytes(base.load(fromByteOffset: offset(i), as: ProtobufCBinaryData.self))
    }
    func enumeration<E: ProtoEnum>(_ i: Int) -> E { E(protoValue: base.load(fromByteOffset: offset(i), as: Int32.self)) }
    func message<M: _CBridgedMessage>(_ i: Int) -> M? {
        guard let p = base.load(fromByteOffset: offset(i), as: UnsafeRawPointer?.self) else { return nil }
        return M(_cReader: _CMessageReader(p))
    }
    func oneofCase(_ i: Int) -> Int32 { base.load(fromByteOffset: Int(fields.unsafelyUnwrapped[i].quantifier_offset), as: Int32.self) }

    private func array<T>(_ i: Int, _ transform: (UnsafeRawPointer, Int) -> T, stride: Int) -> [T] {
        let n = count(i)
        guard n > 0, let p = base.load(fromByteOffset: offset(i), as: UnsafeRawPointer?.self) else { return [] }
        var out: [T] = []
        out.reserveCapacity(n)
        for k in 0..<n { out.append(transform(p, k * stride)) }
        return out
    }

    func repeatedScalar<T>(_ i: Int) -> [T] {
        array(i, { $0.load(fromByteOffset: $1, as: T.self) }, stride: MemoryLayout<T>.stride)
    }
    func repeatedBool(_ i: Int) -> [Bool] {
        array(i, { $0.load(fromByteOffset: $1, as: Int32.self) != 0 }, stride: 4)
    }
    func repeatedEnumeration<E: ProtoEnum>(_ i: Int) -> [E] {
        array(i, { E(protoValue: $0.load(fromByteOffset: $1, as: Int32.self)) }, stride: 4)
    }
    func repeatedString(_ i: Int) -> [String] {
        array(
            i, { String(cString: $0.load(fromByteOffset: $1, as: UnsafePointer<CChar>.self)) },
            stride: MemoryLayout<UnsafeRawPointer>.stride)
    }
    func repeatedBytes(_ i: Int) -> [[UInt8]] {
        array(
            i, { Self.bytes($0.load(fromByteOffset: $1, as: ProtobufCBinaryData.self)) },
            stride: MemoryLayout<ProtobufCBinaryData>.stride)
    }
    func repeatedMessage<M: _CBridgedMessage>(_ i: Int) -> [M] {
        array(
            i, { M(_cReader: _CMessageReader($0.load(fromByteOffset: $1, as: UnsafeRawPointer.self))) },
            stride: MemoryLayout<UnsafeRawPointer>.stride)
    }
    func map<K: Hashable, V>(_ i: Int, key: (_CMessageReader) -> K, value: (_CMessageReader) -> V) -> [K: V] {
        let entries = array(
            i, { _CMessageReader($0.load(fromByteOffset: $1, as: UnsafeRawPointer.self)) },
            stride: MemoryLayout<UnsafeRawPointer>.stride)
        var out: [K: V] = [:]
        out.reserveCapacity(entries.count)
        // Later entries win, as the protobuf spec requires for duplicate keys.
        for entry in entries { out[key(entry)] = value(entry) }
        return out
    }

    private static func bytes(_ data: ProtobufCBinaryData) -> [UInt8] {
        guard data.len > 0, let p = data.data else { return [] }
        return Array(UnsafeBufferPointer(start: p, count: data.len))
    }
}

/// Writes fields into a protoc-c message allocated from an arena, by field index.
struct _CMessageWriter {
    let base: UnsafeMutableRawPointer
    // nil for a message without fields (protoc-c emits no field table for it).
    let fields: UnsafePointer<ProtobufCFieldDescriptor>?
    let arena: _CArena

    init(_ message: UnsafeMutableRawPointer, arena: _CArena) {
        self.base = message
        self.fields = message.load(as: ProtobufCMessage.self).descriptor.pointee.fields
        self.arena = arena
    }

    private func offset(_ i: Int) -> Int { Int(fields.unsafelyUnwrapped[i].offset) }
    private func setCount(_ i: Int, _ n: Int) {
        base.storeBytes(of: n, toByteOffset: Int(fields.unsafelyUnwrapped[i].quantifier_offset), as: Int.self)
    }

    func setScalar<T: BitwiseCopyable>(_ i: Int, _ v: T) { base.storeBytes(of: v, toByteOffset: offset(i), as: T.self) }
    func setBool(_ i: Int, _ v: Bool) { base.storeBytes(of: v ? 1 : 0, toByteOffset: offset(i), as: Int32.self) }
    func setString(_ i: Int, _ v: String) {
        // Empty strings keep the descriptor's default (protobuf_c_empty_string), which pack skips for proto3.
        guard !v.isEmpty else { return }
        base.storeBytes(of: UnsafePointer(arena.copy(v)), toByteOffset: offset(i), as: UnsafePointer<CChar>.self)
    }
    func setBytes(_ i: Int, _ v: [UInt8]) {
        guard !v.isEmpty else { return }
        base.storeBytes(of: arena.copy(v), toByteOffset: offset(i), as: ProtobufCBinaryData.self)
    }
    func setEnumeration<E: ProtoEnum>(_ i: Int, _ v: E) { base.storeBytes(of: v.protoValue, toByteOffset: offset(i), as: Int32.self) }
    func setMessage<M: _CBridgedMessage>(_ i: Int, _ v: M?) {
        guard let v else { return }
        base.storeBytes(of: UnsafeRawPointer(newMessage(i, v)), toByteOffset: offset(i), as: UnsafeRawPointer.self)
    }
    func setOneofCase(_ i: Int, _ number: Int32) {
        base.storeBytes(of: number, toByteOffset: Int(fields.unsafelyUnwrapped[i].quantifier_offset), as: Int32.self)
    }

    private func newMessage<M: _CBridgedMessage>(_ i: Int, _ v: M) -> UnsafeMutableRawPointer {
        let descriptor = fields.unsafelyUnwrapped[i].descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
        let p = arena.newMessage(descriptor)
        v._write(to: _CMessageWriter(p, arena: arena))
        return p
    }

    private func setArray(_ i: Int, count: Int, stride: Int, _ store: (UnsafeMutableRawPointer, Int) -> Void) -> Void? {
        guard count > 0 else { return nil }
        let p = arena.allocate(count * stride)
        for k in 0..<count { store(p + k * stride, k) }
        base.storeBytes(of: UnsafeRawPointer(p), toByteOffset: offset(i), as: UnsafeRawPointer.self)
        setCount(i, count)
        return ()
    }

    func setRepeatedScalar<T>(_ i: Int, _ v: [T]) {
        _ = setArray(i, count: v.count, stride: MemoryLayout<T>.stride) { $0.storeBytes(of: v[$1], as: T.self) }
    }
    func setRepeatedBool(_ i: Int, _ v: [Bool]) {
        _ = setArray(i, count: v.count, stride: 4) { $0.storeBytes(of: v[$1] ? 1 : 0, as: Int32.self) }
    }
    func setRepeatedEnumeration<E: ProtoEnum>(_ i: Int, _ v: [E]) {
        _ = setArray(i, count: v.count, stride: 4) { $0.storeBytes(of: v[$1].protoValue, as: Int32.self) }
    }
    func setRepeatedString(_ i: Int, _ v: [String]) {
        _ = setArray(i, count: v.count, stride: MemoryLayout<UnsafeRawPointer>.stride) {
            $0.storeBytes(of: UnsafeRawPointer(arena.copy(v[$1])), as: UnsafeRawPointer.self)
        }
    }
    func setRepeatedBytes(_ i: Int, _ v: [[UInt8]]) {
        _ = setArray(i, count: v.count, stride: MemoryLayout<ProtobufCBinaryData>.stride) {
            $0.storeBytes(of: arena.copy(v[$1]), as: ProtobufCBinaryData.self)
        }
    }
    func setRepeatedMessage<M: _CBridgedMessage>(_ i: Int, _ v: [M]) {
        _ = setArray(i, count: v.count, stride: MemoryLayout<UnsafeRawPointer>.stride) {
            $0.storeBytes(of: UnsafeRawPointer(newMessage(i, v[$1])), as: UnsafeRawPointer.self)
        }
    }
    func setMap<K, V>(
        _ i: Int, _ v: [K: V], key: (_CMessageWriter, K) -> Void, value: (_CMessageWriter, V) -> Void
    ) {
        let descriptor = fields.unsafelyUnwrapped[i].descriptor.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
        let entries = Array(v)
        _ = setArray(i, count: entries.count, stride: MemoryLayout<UnsafeRawPointer>.stride) {
            let entry = arena.newMessage(descriptor)
            let writer = _CMessageWriter(entry, arena: arena)
            key(writer, entries[$1].key)
            value(writer, entries[$1].value)
            $0.storeBytes(of: UnsafeRawPointer(entry), as: UnsafeRawPointer.self)
        }
    }
}
