import Foundation
import SwitchboardPostgres
import Testing

/// UUID text without Foundation's sprintf/sscanf: no I/O.
@Suite("UUID text")
struct UUIDTextTests {
    @Test("formats and parses like Foundation, in either case")
    func matchesFoundation() {
        for _ in 0..<200 {
            let id = UUID()
            #expect(id.lowercaseText == id.uuidString.lowercased())
            #expect(UUID(text: id.uuidString) == id)
            #expect(UUID(text: id.uuidString.lowercased()) == id)
        }
    }

    @Test(
        "rejects what is not the canonical form",
        arguments: [
            "", "0f8fad5b-d9cb-469f-a165-70867728950", "0f8fad5b-d9cb-469f-a165-70867728950ee", "0f8fad5bd9cb469fa16570867728950e",
            "0f8fad5b-d9cb-469f-a165_70867728950e", "0f8fad5b-d9cb-469f-a165-70867728950g", "{0f8fad5b-d9cb-469f-a165-70867728950e}",
            "0f8fad5b-d9cb-469f-a16-570867728950e",
        ])
    func rejects(_ text: String) {
        #expect(UUID(text: text) == nil)
        #expect(UUID(uuidString: text) == nil)
    }
}
