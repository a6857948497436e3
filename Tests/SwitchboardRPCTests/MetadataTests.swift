import SwitchboardRPC
import Testing

@Suite("Metadata")
struct MetadataTests {
    @Test("binary values accept padded and unpadded base64, and comma-folded values")
    func binaryValues() throws {
        var metadata = Metadata()
        try metadata.addWire("q6ur", forKey: "x-a-bin")
        try metadata.addWire("AQ==", forKey: "X-B-Bin")
        try metadata.addWire("AQ", forKey: "x-b-bin")
        try metadata.addWire("AQI, AwQ=", forKey: "x-c-bin")
        #expect(metadata[binaryValues: "x-a-bin"] == [[0xAB, 0xAB, 0xAB]])
        #expect(metadata[binaryValues: "x-b-bin"] == [[1], [1]])
        #expect(metadata[binaryValues: "x-c-bin"] == [[1, 2], [3, 4]])
    }

    @Test("invalid base64 in a -bin header is an error")
    func invalidBinary() {
        var metadata = Metadata()
        #expect(throws: RPCError.self) { try metadata.addWire("not*base64", forKey: "x-bin") }
        #expect(throws: RPCError.self) { try metadata.addWire("A", forKey: "x-bin") }
    }

    @Test("wire form encodes binary without padding and keeps order and repeats")
    func wireForm() {
        var metadata: Metadata = ["a": "1"]
        metadata.addBinary([0xFF], forKey: "k-bin")
        metadata.addString("2", forKey: "A")
        #expect(metadata.wireHeaders.map(\.name) == ["a", "k-bin", "a"])
        #expect(metadata.wireHeaders.map(\.value) == ["1", "/w", "2"])
        #expect(metadata[stringValues: "a"] == ["1", "2"])
        metadata.removeAll("a")
        #expect(metadata.count == 1)
    }

    @Test("base64 round-trips every length", arguments: 0..<20)
    func base64RoundTrip(length: Int) {
        let bytes = (0..<length).map { UInt8(($0 * 37 + 11) % 256) }
        #expect(Base64.decode(Base64.encode(bytes, padded: true)) == bytes)
        #expect(Base64.decode(Base64.encode(bytes, padded: false)) == bytes)
    }

    @Test("reserved headers are recognised")
    func reserved() {
        #expect(Metadata.isReserved(":path"))
        #expect(Metadata.isReserved("grpc-timeout"))
        #expect(Metadata.isReserved("content-type"))
        #expect(!Metadata.isReserved("authorization"))
        #expect(!Metadata.isReserved("x-grpc-test-echo-initial"))
    }
}
