import SwitchboardRPC
import Testing

@testable import SwitchboardProtos

/// The arena that protoc-c's C structs live in while a message is encoded or decoded.
@Suite("protoc-c arena")
struct ProtoArenaTests {
    @Test("an encode's or decode's arena starts in its caller's stack frame, not on the heap")
    func firstChunkOnTheStack() throws {
        var local = 0
        let here = withUnsafeMutablePointer(to: &local) { UInt(bitPattern: $0) }
        let start = try #require(_withArena { $0.initialChunk.map { UInt(bitPattern: $0) } })
        // The same frame, give or take the calls between: a heap chunk is gigabytes or terabytes away.
        #expect(max(start, here) - min(start, here) < 64 << 10)
        #expect(MemoryLayout<_CArena.StackChunk>.size == 2048)
    }

    @Test("a message larger than the first chunk spills into the heap and still round-trips")
    func spills() throws {
        var contact = Switchboard_Contacts_V1_Contact()
        contact.id = "c-1"
        contact.tags = (0..<200).map { "tag-\($0)-" + String(repeating: "x", count: 20) }
        let decoded = try Switchboard_Contacts_V1_Contact(serializedBytes: contact.serializedBytes())
        #expect(decoded == contact)
    }
}
