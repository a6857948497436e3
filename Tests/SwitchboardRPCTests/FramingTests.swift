import NIOCore
import SwitchboardHTTP2
import SwitchboardRPC
import Testing

@Suite("gRPC message framing")
struct FramingTests {
    private func framed(_ payloads: [[UInt8]], compressed: Bool = false) -> ByteBuffer {
        var out = ByteBuffer()
        for p in payloads { GRPCFraming.frame(ByteBuffer(bytes: p), compressed: compressed, into: &out) }
        return out
    }

    @Test("messages split at every byte boundary are reassembled")
    func splitAnywhere() throws {
        let bytes = Array(framed([[1, 2, 3], [], Array(repeating: 7, count: 300)]).readableBytesView)
        for cut in 0...bytes.count {
            var deframer = GRPCMessageDeframer(maxMessageSize: 1024)
            var messages: [[UInt8]] = []
            for part in [bytes[..<cut], bytes[cut...]] {
                deframer.append(ByteBuffer(bytes: part))
                while let m = try deframer.next() { messages.append(Array(m.payload.readableBytesView)) }
            }
            #expect(messages == [[1, 2, 3], [], Array(repeating: 7, count: 300)])
            #expect(!deframer.hasPartialMessage)
        }
    }

    @Test("a message above the limit is refused from its prefix, before its bytes arrive")
    func tooLarge() {
        var deframer = GRPCMessageDeframer(maxMessageSize: 10)
        var prefix = ByteBuffer()
        prefix.writeInteger(UInt8(0))
        prefix.writeInteger(UInt32(11))
        deframer.append(prefix)
        #expect(throws: RPCError(code: .resourceExhausted, message: "message of 11 bytes exceeds the limit of 10 bytes")) {
            try deframer.next()
        }
    }

    @Test("an unknown flag byte is an error")
    func badFlag() {
        var deframer = GRPCMessageDeframer(maxMessageSize: 10)
        deframer.append(ByteBuffer(bytes: [2, 0, 0, 0, 0]))
        #expect(throws: RPCError.self) { try deframer.next() }
    }

    @Test("gzip and deflate round-trip and respect the decompressed-size limit", arguments: [MessageEncoding.gzip, .deflate])
    func compression(encoding: MessageEncoding) throws {
        let payload = ByteBuffer(bytes: Array(repeating: 0x41, count: 100_000))
        let compressed = try encoding.compress(payload)
        #expect(compressed.readableBytes < 1000)
        #expect(try encoding.decompress(compressed, maxSize: 200_000) == payload)
        #expect(throws: RPCError.self) { try encoding.decompress(compressed, maxSize: 50_000) }
        #expect(throws: RPCError.self) { try encoding.decompress(ByteBuffer(bytes: [1, 2, 3, 4]), maxSize: 1000) }
    }

    @Test("grpc-accept-encoding lists are parsed")
    func acceptEncoding() {
        #expect(MessageEncoding.parseAccept("identity, deflate, gzip") == [.identity, .deflate, .gzip])
        #expect(MessageEncoding.parseAccept("br,snappy") == [])
        #expect(MessageEncoding.parseAccept(nil) == [])
    }

    @Test("decompression never returns more than the limit, whatever the compressed size (FuzzDeframer's find)")
    func decompressionLimitIsExact() throws {
        // The fuzzer's reproducer: 11 bytes of zlib that expand past a 300-byte limit.
        let found = ByteBuffer(bytes: [0x78, 0x9C, 0x13, 0x4A, 0xC9, 0xA7, 0x32, 0x1A, 0x01, 0x00, 0x01])
        do {
            let out = try MessageEncoding.deflate.decompress(found, maxSize: 300)
            #expect(out.readableBytes <= 300)
        } catch let error as RPCError {
            #expect(error.code == .resourceExhausted || error.code == .internal)
        }
        for encoding in [MessageEncoding.gzip, .deflate] {
            for size in stride(from: 301, through: 2_000, by: 7) {
                let compressed = try encoding.compress(ByteBuffer(repeating: 0x61, count: size))
                do {
                    let out = try encoding.decompress(compressed, maxSize: 300)
                    Issue.record("\(encoding) of \(size) bytes decompressed to \(out.readableBytes) under a 300-byte limit")
                } catch let error as RPCError {
                    #expect(error.code == .resourceExhausted)
                }
            }
            let exact = try encoding.compress(ByteBuffer(repeating: 0x61, count: 300))
            #expect(try encoding.decompress(exact, maxSize: 300).readableBytes == 300)
        }
    }
}
