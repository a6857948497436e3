import NIOCore
import SwitchboardRPC

/// protoc-c's unpack and our bridge on arbitrary bytes, for every request message of every service (the table in
/// `Generated/RequestMessages.swift`): byte 0 picks the message type, the rest is the message.
///
/// Decoding goes through `decodeMessage`, as the router does, so every check made before protoc-c sees the bytes is
/// part of what is fuzzed. A message that decodes must encode to bytes that decode again, to the same size.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProtoDecode(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard size >= 1, let data else { return 0 }
    let entry = requestMessages[Int(data[0]) % requestMessages.count]
    let bytes = ByteBuffer(bytes: UnsafeBufferPointer(start: data + 1, count: size - 1))
    guard let message = try? entry.decode(bytes) else { return 0 }
    var encoded = ByteBuffer()
    message.encode(into: &encoded)
    let again: any ProtoMessage
    do {
        again = try entry.decode(encoded)
    } catch {
        fatalError("\(entry.name): our own encoding does not decode: \(error)")
    }
    var reencoded = ByteBuffer()
    again.encode(into: &reencoded)
    precondition(reencoded.readableBytes == encoded.readableBytes, "\(entry.name): encoding changed size on a round trip")
    return 0
}
