import NIOCore
import SwitchboardHTTP2

/// The request-side deframer with decompression, as the server runs it on a stream's DATA.
///
/// Input: byte 0 picks the stream's `grpc-encoding` (identity, gzip, deflate) and the size limit (the server's
/// default 4 MiB, or 300 bytes so that oversized and decompression-bomb paths are reached with small inputs);
/// byte 1 picks how the rest is cut into DATA-sized pieces; the rest is the stream's bytes. Messages come out at
/// most at the limit, or the stream ends with an error.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDeframer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard size >= 2, let data else { return 0 }
    let encodings = MessageEncoding.allCases
    let encoding = encodings[Int(data[0]) % encodings.count]
    let limit = (data[0] / UInt8(encodings.count)) % 2 == 0 ? 4 * 1024 * 1024 : 300
    let piece = Int(data[1]) + 1
    var deframer = GRPCMessageDeframer(maxMessageSize: limit)
    let stream = UnsafeRawBufferPointer(start: data + 2, count: size - 2)
    var offset = 0
    do {
        while offset < stream.count {
            let end = min(offset + piece, stream.count)
            deframer.append(UnsafeRawBufferPointer(rebasing: stream[offset..<end]))
            offset = end
            while let (payload, compressed) = try deframer.nextDecoded(encoding: encoding) {
                precondition(payload.readableBytes <= limit, "a message of \(payload.readableBytes) bytes passed the limit")
                precondition(!compressed || encoding != .identity, "a compressed message on an identity stream")
            }
        }
    } catch {
        // The stream ends with a status; nothing more is read from it.
    }
    return 0
}
