import Foundation
import Testing

@testable import CommunicationService

/// The reader of contacts' one-column id export, pure: chunks split anywhere, CRLF or LF, nothing but ids accepted.
@Suite("Communication service: the saved-search id reader")
struct IDLineReaderTests {
    static let ids = (0..<5).map { _ in UUID() }
    static let csv = Array(("id\r\n" + ids.map { $0.uuidString.lowercased() + "\r\n" }.joined()).utf8)

    @Test("ids read the same whatever the chunk boundaries, with CRLF or LF, with or without a last line end")
    func chunks() throws {
        for size in [1, 2, 7, 37, 38, Self.csv.count] {
            var reader = IDLineReader()
            var at = 0
            while at < Self.csv.count {
                try reader.read(Array(Self.csv[at..<min(at + size, Self.csv.count)]))
                at += size
            }
            try reader.finish()
            #expect(reader.ids == Self.ids, "chunks of \(size)")
        }
        var lf = IDLineReader()
        try lf.read(Array(("id\n" + Self.ids.map { $0.uuidString.lowercased() }.joined(separator: "\n")).utf8))
        try lf.finish()
        #expect(lf.ids == Self.ids)
        var empty = IDLineReader()
        try empty.read(Array("id\r\n".utf8))
        try empty.finish()
        #expect(empty.ids.isEmpty)
    }

    @Test("a missing header, a line that is not an id, or an overlong line is refused")
    func malformed() {
        for text in ["\(UUID())\r\n", "id\r\nnot-an-id\r\n", "id,name\r\n", "id\r\n" + String(repeating: "a", count: 65)] {
            var reader = IDLineReader()
            #expect(throws: CommunicationError.self, "\(text.prefix(20))") {
                try reader.read(Array(text.utf8))
                try reader.finish()
            }
        }
    }
}
