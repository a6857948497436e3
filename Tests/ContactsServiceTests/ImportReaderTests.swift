import Foundation
import SwitchboardProtos
import SwitchboardServiceKit
import Testing

@testable import ContactsService

/// The import readers, pure: CSV (RFC 4180), vCard 3.0/4.0 and JSON lines, fed in chunks of every size, and hostile
/// input that must neither trap, hang nor grow memory.
@Suite("Import readers")
struct ImportReaderTests {
    /// Reads `input` in chunks of `size` bytes (every split point is a chunk boundary at size 1).
    static func read<R: ContactRecordReader>(_ reader: R, _ input: [UInt8], chunk size: Int = 1 << 20) -> (R, [SourceRecord]) {
        var reader = reader
        var records: [SourceRecord] = []
        var index = 0
        while index < input.count {
            let end = min(input.count, index + size)
            records += reader.read(Array(input[index..<end]))
            index = end
        }
        records += reader.finish()
        return (reader, records)
    }

    static func cells(_ records: [SourceRecord]) -> [[String]] {
        records.map { record in
            if case .cells(let cells) = record.content { return cells }
            return ["<unreadable>"]
        }
    }

    static func reason(_ record: SourceRecord) -> String? {
        if case .unreadable(let violation) = record.content { return violation.reason }
        return nil
    }

    static let csv = Array(
        "\u{FEFF}name.given,name.family,notes\r\nAda,Lovelace,\"first, programmer\"\r\n\r\n\"Grace\",\"Hop\"\"per\",\"line one\r\nline two\"\nAlan,Turing,\n\"\",x,y"
            .utf8)

    @Test("CSV: BOM, header, quotes, doubled quotes, embedded CRLF, blank lines, LF and a last record without a line end, split anywhere")
    func csvRecords() {
        for size in [1, 2, 3, 7, 64, 1 << 20] {
            let (reader, records) = Self.read(CSVReader(), Self.csv, chunk: size)
            #expect(reader.header == ["name.given", "name.family", "notes"], "chunk \(size)")
            #expect(
                Self.cells(records) == [
                    ["Ada", "Lovelace", "first, programmer"], ["Grace", "Hop\"per", "line one\r\nline two"], ["Alan", "Turing", ""], ["", "x", "y"],
                ], "chunk \(size)")
            #expect(records.map(\.row) == [1, 2, 3, 4])
            #expect(records.last?.endOffset == Self.csv.count)
        }
    }

    @Test("CSV: another delimiter, no header (columns named 1, 2, …), a lone CR ends a record")
    func csvOptions() {
        let (reader, records) = Self.read(CSVReader(delimiter: UInt8(ascii: ";"), hasHeader: false), Array("a;b\rc;\"d;e\"\r\n".utf8))
        #expect(reader.header == ["1", "2"])
        #expect(Self.cells(records) == [["a", "b"], ["c", "d;e"]])
    }

    @Test("CSV: an unterminated quote makes the last record unreadable; text after a closing quote makes its record unreadable and the next is read")
    func csvMalformed() {
        let (_, open) = Self.read(CSVReader(), Array("a,b\n1,\"never closed\n2,3\n".utf8))
        #expect(open.count == 1)
        #expect(Self.reason(open[0]) == "MALFORMED")
        let (_, after) = Self.read(CSVReader(), Array("a,b\n\"x\"y,1\nok,2\n".utf8))
        #expect(after.count == 2)
        #expect(Self.reason(after[0]) == "MALFORMED")
        #expect(Self.cells([after[1]]) == [["ok", "2"]])
    }

    @Test("CSV: a record past the byte bound, one with too many fields, invalid UTF-8 and NUL are unreadable rows; the rows after them are read")
    func csvBounds() {
        var limits = ImportLimits()
        limits.maxRecordBytes = 100
        limits.maxFields = 5
        let input =
            Array("a,b\n".utf8) + Array(repeating: UInt8(ascii: "x"), count: 10_000) + Array("\n1,2\n1,2,3,4,5,6\n".utf8) + [0xFF, 0xFE]
            + Array(",ok\nnul\u{0},1\n3,4\n".utf8)
        let (_, records) = Self.read(CSVReader(limits: limits), input, chunk: 333)
        #expect(records.map(Self.reason) == ["TOO_LONG", nil, "TOO_MANY", "INVALID_ENCODING", "INVALID_ENCODING", nil])
        #expect(Self.cells([records[1], records[5]]) == [["1", "2"], ["3", "4"]])
    }

    @Test("CSV: a header past the line bound is reported as the header (row 0)")
    func csvHeaderTooLong() {
        var limits = ImportLimits()
        limits.maxLineBytes = 256
        let (_, records) = Self.read(CSVReader(limits: limits), Array((String(repeating: "h,", count: 200) + "\n1\n").utf8))
        #expect(records.first?.row == 0)
        #expect(records.first.flatMap(Self.reason) == "TOO_LONG")
    }

    @Test("CSV: hostile input (megabytes of quotes, of delimiters, of line ends) ends in bounded records without trapping")
    func csvHostile() {
        var limits = ImportLimits()
        limits.maxRecordBytes = 1024
        for input in [
            [UInt8](repeating: 0x22, count: 3 << 20), [UInt8](repeating: 0x2C, count: 3 << 20), [UInt8](repeating: 0x0A, count: 3 << 20),
            [UInt8](repeating: 0x0D, count: 1 << 20), (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7919) },
        ] {
            let (_, records) = Self.read(CSVReader(limits: limits), input, chunk: 65_536)
            for record in records {
                if case .cells(let cells) = record.content { #expect(cells.reduce(0) { $0 + $1.utf8.count } <= 1024) }
            }
        }
    }

    @Test("every import bound is a setting: read from the environment, refused out of its range")
    func settings() throws {
        let limits = try ContactsService.limits([
            "SWITCHBOARD_CONTACTS_IMPORT_MAX_RECORD_BYTES": "2048", "SWITCHBOARD_CONTACTS_IMPORT_MAX_LINE_BYTES": "512",
            "SWITCHBOARD_CONTACTS_IMPORT_MAX_FIELDS": "20", "SWITCHBOARD_CONTACTS_IMPORT_MAX_ROWS": "7",
            "SWITCHBOARD_CONTACTS_IMPORT_BATCH_ROWS": "3", "SWITCHBOARD_CONTACTS_IMPORT_MAX_BYTES_WITHOUT_ROW": "65536",
        ]).importLimits
        #expect(limits.maxRecordBytes == 2048 && limits.maxLineBytes == 512 && limits.maxFields == 20 && limits.maxRows == 7 && limits.batchRows == 3)
        #expect(limits.maxBytesWithoutRow == 65536)
        #expect(try ContactsService.limits([:]).importLimits == ImportLimits())
        for (name, value) in [
            ("SWITCHBOARD_CONTACTS_IMPORT_MAX_RECORD_BYTES", "10"), ("SWITCHBOARD_CONTACTS_IMPORT_MAX_LINE_BYTES", "99999999"),
            ("SWITCHBOARD_CONTACTS_IMPORT_MAX_FIELDS", "0"), ("SWITCHBOARD_CONTACTS_IMPORT_MAX_ROWS", "-1"),
            ("SWITCHBOARD_CONTACTS_IMPORT_BATCH_ROWS", "many"), ("SWITCHBOARD_CONTACTS_IMPORT_MAX_BYTES_WITHOUT_ROW", "1000"),
        ] {
            #expect(throws: (any Error).self, "\(name)=\(value)") { _ = try ContactsService.limits([name: value]) }
        }
    }

    static let vcard3 = Array(
        """
        BEGIN:VCARD\r
        VERSION:3.0\r
        N:Lovelace;Ada;Augusta;Lady;\r
        FN:Ada Lovelace\r
        EMAIL;TYPE=INTERNET,WORK,pref:ada@example.com\r
        TEL;TYPE="cell,voice":+44 20 7946 0018\r
        ADR;TYPE=home:;;12 St James\\nSquare;London;;SW1Y 4JH;GB\r
        CATEGORIES:math,poetry\\, early\r
        TITLE:Countess\r
        NOTE:Wrote the first program\\; an algorithm for th\r
         e Analytical Engine\r
        item1.X-ACCOUNT:ada-1815\r
        END:VCARD\r
        BEGIN:VCARD
        VERSION:4.0
        KIND:org
        FN:Analytical Engines Ltd
        ORG:Analytical Engines Ltd;Research
        EMAIL;PREF=1:info@engines.example
        END:VCARD

        """.utf8)

    static func fields(_ record: SourceRecord) -> [SourceField] {
        if case .fields(let fields) = record.content { return fields }
        return []
    }

    @Test("vCard: 3.0 and 4.0 cards, folding across chunks, escapes, quoted parameters, groups, structured and list values")
    func vcardCards() {
        for size in [1, 5, 75, 1 << 20] {
            let (_, records) = Self.read(VCardReader(), Self.vcard3, chunk: size)
            #expect(records.count == 2, "chunk \(size)")
            let ada = Self.fields(records[0])
            #expect(ada.first { $0.key == "N" }?.components == ["Lovelace", "Ada", "Augusta", "Lady", ""])
            #expect(ada.first { $0.key == "EMAIL" }?.parameterValues("TYPE") == ["INTERNET", "WORK", "PREF"])
            #expect(ada.first { $0.key == "TEL" }?.parameterValues("TYPE") == ["CELL", "VOICE"])
            #expect(ada.first { $0.key == "ADR" }?.components == ["", "", "12 St James\nSquare", "London", "", "SW1Y 4JH", "GB"])
            #expect(ada.first { $0.key == "CATEGORIES" }?.components == ["math", "poetry, early"])
            #expect(ada.first { $0.key == "NOTE" }?.value == "Wrote the first program; an algorithm for the Analytical Engine", "chunk \(size)")
            #expect(ada.first { $0.key == "X-ACCOUNT" }?.value == "ada-1815")
            let engines = Self.fields(records[1])
            #expect(engines.first { $0.key == "KIND" }?.value == "org")
            #expect(engines.first { $0.key == "ORG" }?.components == ["Analytical Engines Ltd", "Research"])
        }
    }

    @Test("vCard: a photo, logo, sound or key of any size is skipped, not held against the card's bounds; the rest of the card is read")
    func vcardBinaryProperties() {
        // A phone's export: a 200 KB photo as base64, folded at 75 octets, between the properties that matter.
        let base64 = String(repeating: "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=", count: 6_000)
        var folded = "PHOTO;ENCODING=b;TYPE=JPEG:"
        var rest = Substring(base64)
        folded += rest.prefix(48)
        rest = rest.dropFirst(48)
        while !rest.isEmpty {
            folded += "\r\n " + rest.prefix(74)
            rest = rest.dropFirst(74)
        }
        let card =
            "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Grace Hopper\r\n\(folded)\r\nEMAIL:grace@example.com\r\n"
            + "item1.LOGO:data:image/png;base64,\(String(repeating: "A", count: 70_000))\r\nKEY:\(String(repeating: "k", count: 20_000))\r\n"
            + "NOTE:after the photo\r\nEND:VCARD\r\n"
        // A card bound under the photo's folds and line ends (about 8.7 KB of them): they must not count either.
        var limits = ImportLimits()
        limits.maxRecordBytes = 4096
        for size in [7, 4096, 1 << 20] {
            let (_, records) = Self.read(VCardReader(limits: limits), Array(card.utf8), chunk: size)
            #expect(records.count == 1 && records.first.flatMap(Self.reason) == nil, "chunk \(size): \(records.first.flatMap(Self.reason) ?? "")")
            let fields = Self.fields(records[0])
            #expect(fields.map(\.key) == ["VERSION", "FN", "EMAIL", "NOTE"], "chunk \(size)")
            #expect(fields.first { $0.key == "NOTE" }?.value == "after the photo")
        }
        // Any other property that long still makes the card unreadable (it would be imported, cut).
        let note = "BEGIN:VCARD\r\nFN:x\r\nNOTE:\(String(repeating: "n", count: 20_000))\r\nEND:VCARD\r\n"
        #expect(Self.read(VCardReader(), Array(note.utf8)).1.map(Self.reason) == ["TOO_LONG"])
    }

    @Test("vCard: version 2.1, quoted-printable and other character sets make their card unreadable, saying why; 3.0 and 4.0 read")
    func vcardUnsupported() {
        let cards = [
            "BEGIN:VCARD\r\nVERSION:2.1\r\nN:Test;Emile\r\nEND:VCARD\r\n",
            "BEGIN:VCARD\r\nVERSION:3.0\r\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=C3=89mile;Test;;;\r\nEND:VCARD\r\n",
            "BEGIN:VCARD\r\nVERSION:3.0\r\nFN;CHARSET=ISO-8859-1:Emile\r\nEND:VCARD\r\n",
            "BEGIN:VCARD\r\nVERSION:4.0\r\nFN;CHARSET=utf-8:Émile\r\nEND:VCARD\r\n",
            "BEGIN:VCARD\r\nVERSION:3.0\r\nPHOTO;ENCODING=b;TYPE=JPEG:AAAA\r\nFN:Émile\r\nEND:VCARD\r\n",
        ]
        let (_, records) = Self.read(VCardReader(), Array(cards.joined().utf8))
        #expect(records.map(Self.reason) == ["UNSUPPORTED", "UNSUPPORTED", "UNSUPPORTED", nil, nil])
        if case .unreadable(let violation) = records[1].content {
            #expect(violation.description.contains("QUOTED-PRINTABLE encoding"), "\(violation)")
        }
        if case .unreadable(let violation) = records[0].content { #expect(violation.description.contains("version 2.1"), "\(violation)") }
    }

    @Test("vCard: a card inside a card, a card not ended, a line past the bound and invalid UTF-8 are unreadable; deep nesting is only counted")
    func vcardHostile() {
        var limits = ImportLimits()
        limits.maxLineBytes = 300
        let nested = "BEGIN:VCARD\nBEGIN:VCARD\nFN:x\nEND:VCARD\nEND:VCARD\nBEGIN:VCARD\nFN:ok\nEND:VCARD\n"
        let (_, a) = Self.read(VCardReader(limits: limits), Array(nested.utf8))
        #expect(a.map(Self.reason) == ["MALFORMED", nil])
        let long = "BEGIN:VCARD\nNOTE:" + String(repeating: "n", count: 100_000) + "\nEND:VCARD\n"
        let (_, b) = Self.read(VCardReader(limits: limits), Array(long.utf8), chunk: 4096)
        #expect(b.map(Self.reason) == ["TOO_LONG"])
        let (_, c) = Self.read(VCardReader(limits: limits), Array("BEGIN:VCARD\nFN:".utf8) + [0xC3, 0x28] + Array("\nEND:VCARD\n".utf8))
        #expect(c.map(Self.reason) == ["INVALID_ENCODING"])
        let (_, d) = Self.read(VCardReader(limits: limits), Array("BEGIN:VCARD\nFN:unended\n".utf8))
        #expect(d.map(Self.reason) == ["MALFORMED"])
        let deep = Array(String(repeating: "BEGIN:VCARD\r\n", count: 200_000).utf8)
        let (_, e) = Self.read(VCardReader(limits: limits), deep, chunk: 65_536)
        #expect(e.map(Self.reason) == ["MALFORMED"])
        // A card with a huge number of folded continuation lines is one long line: bounded, not stored.
        let folded = Array(("BEGIN:VCARD\nNOTE:a" + String(repeating: "\n b", count: 300_000) + "\nEND:VCARD\n").utf8)
        let (_, f) = Self.read(VCardReader(limits: limits), folded, chunk: 65_536)
        #expect(f.map(Self.reason) == ["TOO_LONG"])
    }

    @Test("JSON lines: objects, CRLF, blank lines; not JSON, not an object, too long, too deep, too many values and invalid UTF-8 are unreadable")
    func jsonLines() {
        var limits = ImportLimits()
        limits.maxRecordBytes = 2000
        limits.maxFields = 20
        let input =
            Array("{\"a\":1}\r\n\n{\"b\":[1,2]}\nnot json\n[1]\n".utf8) + Array(repeating: UInt8(ascii: " "), count: 5000) + Array("\n".utf8)
            + Array(String(repeating: "[", count: 1500).utf8) + Array("\n{\"many\":[".utf8)
            + Array((0..<50).map(String.init).joined(separator: ",").utf8)
            + Array("]}\n{\"x\":\"".utf8) + [0xFF] + Array("\"}\n{\"last\":true}".utf8)
        for size in [1, 9, 1 << 20] {
            let (_, records) = Self.read(JSONLinesReader(limits: limits), input, chunk: size)
            #expect(
                records.map(Self.reason) == [nil, nil, "MALFORMED", "MALFORMED", "TOO_LONG", "MALFORMED", "TOO_MANY", "INVALID_ENCODING", nil],
                "chunk \(size)")
            #expect(records.map(\.row) == Array(1...9))
        }
    }
}
