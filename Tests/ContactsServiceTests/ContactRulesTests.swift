import Foundation
import SwitchboardProtos
import SwitchboardRuntime
import SwitchboardServiceKit
import Testing

@testable import ContactsService

/// Pure validation: byte limits, the size estimate and wire timestamps.
@Suite("Contact rules and limits")
struct ContactRulesTests {
    /// Data at the bound of every field.
    static func largestContact() -> ContactData {
        let chars = { (n: Int) in String(repeating: "€", count: n) }  // three bytes each
        var data = ContactData()
        data.name.given = chars(500)
        data.name.family = chars(500)
        data.name.middle = chars(500)
        data.emails = (0..<20).map { EmailAddress(address: "user\($0)@" + String(repeating: "d", count: 230) + ".com", label: chars(100)) }
        data.phones = (0..<20).map { PhoneNumber(number: "+49 30 1234567\($0 % 10)", label: chars(100)) }
        data.addresses = (0..<10).map { _ in
            var a = PostalAddress()
            a.label = chars(100)
            a.lines = Array(repeating: chars(200), count: 10)
            a.locality = chars(200)
            a.administrativeArea = chars(200)
            a.postalCode = chars(21)
            a.regionCode = "de"
            return a
        }
        data.tags = (0..<50).map { "\($0)" + String(repeating: "t", count: 60) }
        data.ownerID = String(repeating: "o", count: 256)
        data.customFields = Dictionary(uniqueKeysWithValues: (0..<100).map { ("field_\($0)", JSON.string(chars(2000))) })
        return data
    }

    @Test("the size estimate bounds the Contact message and the change event's Struct")
    func estimateIsAnUpperBound() throws {
        for data in [Self.largestContact(), ContactData()] {
            var record = ContactRecord(
                id: UUID(), data: data, version: Int64.max, createdAt: Date(), createdBy: String(repeating: "u", count: 256),
                updatedAt: Date(), updatedBy: String(repeating: "u", count: 256), deletedAt: Date())
            record.data.phones = record.data.phones.map {
                var p = $0
                p.e164 = ContactRules.normalizePhone(p.number) ?? ""
                return p
            }
            let estimate = ContactRules.estimatedSize(record.data)
            #expect(ContactsMapping.proto(record).serializedBytes().count <= estimate)
            // The change event's payload: the Contact's proto3 JSON, carried as a Struct.
            let event = try Google_Protobuf_Struct(protoJSONText: try ContactsMapping.proto(record).protoJSONText()).serializedBytes().count
            #expect(event <= estimate)
        }
        // And the largest contact the field bounds allow is far over the default total.
        #expect(ContactRules.estimatedSize(Self.largestContact()) > ContactRules.defaultMaxContactBytes)
    }

    @Test("the size settings: defaults, values read from the environment, and out-of-range values naming the variable")
    func settings() throws {
        #expect(try ContactsService.limits([:]) == ContactsLimits())
        let read = try ContactsService.limits(["SWITCHBOARD_CONTACTS_MAX_CONTACT_BYTES": "8192", "SWITCHBOARD_CONTACTS_PAGE_BYTES": "65536"])
        #expect(read.maxContactBytes == 8192)
        #expect(read.pageBytes == 65536)
        #expect(throws: ConfigurationError.self) { try ContactsService.limits(["SWITCHBOARD_CONTACTS_PAGE_BYTES": "4194304"]) }
        #expect(try ContactsService.limits(["SWITCHBOARD_CONTACTS_BATCH_BYTES": "65536"]).maxBatchBytes == 65536)
        #expect(throws: ConfigurationError.self) { try ContactsService.limits(["SWITCHBOARD_CONTACTS_BATCH_BYTES": "4194304"]) }
        #expect(throws: ConfigurationError.self) { try ContactsService.limits(["SWITCHBOARD_CONTACTS_MAX_CONTACT_BYTES": "x"]) }
        #expect(try ContactsService.limits(["SWITCHBOARD_CONTACTS_FACET_SEARCHES_AT_ONCE": "2"]).facetSearchesAtOnce == 2)
        for bad in ["0", "201", "-1"] {
            #expect(throws: ConfigurationError.self) { try ContactsService.limits(["SWITCHBOARD_CONTACTS_FACET_SEARCHES_AT_ONCE": bad]) }
        }
        // The contact bound is the one validation applies.
        var data = ContactData()
        data.name.given = String(repeating: "a", count: 500)
        data.customFields = [:]
        #expect(
            throws: ContactsError.invalid([
                Violation(
                    "contact", "is \(ContactRules.estimatedSize(data)) bytes; a contact may be at most 1024 bytes", reason: "TOO_LARGE")
            ])
        ) {
            try ContactRules.validate(&data, definitions: [], requireAllRequiredFields: false, maxContactBytes: 1024)
        }
    }

    @Test("an ASCII address is judged byte by byte exactly as a character at a time; trimming keeps or copies alike")
    func asciiEmailFastPath() {
        let local = ["a", "x", "a", ".", "é", ",", " ", "\t", "\u{1C}", String(repeating: "l", count: 64), "-", "_"]
        let domain = ["a.b", "x.y", "a", "x", ".", ".", "..", "é", "<", "\r\n", "\u{7F}", "@", "-", "_", "a-b.c"]
        var generator = SystemRandomNumberGenerator()
        var valid = 0
        for _ in 0..<20_000 {
            let at = ["@", "@", "@", "@", "", "@@"].randomElement(using: &generator)!
            let address =
                (0..<Int.random(in: 0...3, using: &generator)).map { _ in local.randomElement(using: &generator)! }.joined() + at
                + (0..<Int.random(in: 0...4, using: &generator)).map { _ in domain.randomElement(using: &generator)! }.joined()
            let fast = ContactRules.isValidEmail(address)
            #expect(fast == ContactRules.isValidEmailByCharacter(address), "\(address.debugDescription)")
            if fast { valid += 1 }
        }
        #expect(valid > 200)
        #expect(ContactRules.isValidEmail("ada@example.org") && !ContactRules.isValidEmail("ada@example..org"))
        for good in ["a.b@x.example", "a_b-c+d@mail-1.x.example", "zoë@bücher.example", "o'brien@x.example"] {
            #expect(ContactRules.isValidEmail(good), "\(good)")
        }
        for bad in ["a..b@x.example", ".a@x.example", "a.@x.example", "a@-x.example", "a@x-.example", "a@x_y.example", "a@x.example-"] {
            #expect(!ContactRules.isValidEmail(bad) && !ContactRules.isValidEmailByCharacter(bad), "\(bad)")
        }
        #expect(!ContactRules.isValidEmail(String(repeating: "l", count: 65) + "@example.org"))
        for text in ["x", " x", "x\t", "\u{A0}x\u{3000}", "é", "", "  ", "a b"] {
            let scalars = text.unicodeScalars
            let isSpace = { (s: Unicode.Scalar) in s == "\t" || s.properties.generalCategory == .spaceSeparator }
            let expected = scalars.firstIndex { !isSpace($0) }.map { String(scalars[$0...scalars.lastIndex { !isSpace($0) }!]) } ?? ""
            #expect(text.trimmingSpaces == expected, "\(text.debugDescription)")
        }
    }

    @Test("limits count UTF-8 bytes as well as Characters")
    func byteLimits() {
        let oneCharacter = "e" + String(repeating: "\u{301}", count: 5000)
        #expect(oneCharacter.count == 1)
        #expect(!ContactRules.nameLimit.allows(oneCharacter))
        #expect(ContactRules.nameLimit.allows(String(repeating: "€", count: 500)))
        #expect(!ContactRules.nameLimit.allows(String(repeating: "€", count: 501)))
        #expect(!ContactRules.isValidEmail(String(repeating: "é", count: 40) + "@example.com"))  // 80-byte local part
        #expect(ContactRules.isValidEmail(String(repeating: "é", count: 32) + "@example.com"))
        #expect(ContactRules.excerpt(String(repeating: "x", count: 1_000_000)).utf8.count < 80)
        #expect(ContactRules.excerpt(oneCharacter).utf8.count < 80)
    }

    @Test("wire timestamps outside the Timestamp range become a date every range check refuses")
    func wireTimestamps() {
        func timestamp(_ seconds: Int64, _ nanos: Int32) -> Google_Protobuf_Timestamp {
            var t = Google_Protobuf_Timestamp()
            t.seconds = seconds
            t.nanos = nanos
            return t
        }
        let invalid = [
            timestamp(0, -1), timestamp(0, 1_000_000_000), timestamp(253_402_300_800, 0), timestamp(-62_135_596_801, 999_999_999),
            timestamp(.max, .max), timestamp(.min, .min),
        ]
        for t in invalid {
            #expect(t.date == Google_Protobuf_Timestamp.invalidDate, "\(t.seconds) \(t.nanos)")
            #expect(ContactRules.timestampViolation(t.date, field: "created_after")?.field == "created_after")
        }
        for t in [timestamp(253_402_300_799, 999_999_999), timestamp(-62_135_596_800, 0), timestamp(0, 0)] {
            #expect(ContactRules.timestampViolation(t.date, field: "created_after") == nil, "\(t.seconds) \(t.nanos)")
        }
        // Encoding a date back never traps, whatever the date.
        #expect(Google_Protobuf_Timestamp(date: Date(timeIntervalSince1970: .infinity)).seconds == .max)
        #expect(Google_Protobuf_Timestamp(date: Date(timeIntervalSince1970: -.infinity)).seconds == .min)
        #expect(Google_Protobuf_Timestamp(date: Date(timeIntervalSince1970: .nan)).seconds == 0)
        #expect(Google_Protobuf_Timestamp(date: Date(timeIntervalSince1970: 0x1p63)).seconds == .max)
        #expect(Google_Protobuf_Timestamp(date: Date(timeIntervalSince1970: -0x1p63)).seconds == .min)
        #expect(Google_Protobuf_Timestamp(date: Date(timeIntervalSince1970: 1.5)).nanos == 500_000_000)
    }

    @Test("custom field values nested deeper than the bound are refused while reading, naming the field")
    func customFieldDepth() {
        var value = Google_Protobuf_Value()
        value.kind = .stringValue("leaf")
        for _ in 0..<ContactRules.maxCustomFieldDepth {
            var list = Google_Protobuf_ListValue()
            list.values = [value]
            var outer = Google_Protobuf_Value()
            outer.kind = .listValue(list)
            value = outer
        }
        var contact = Switchboard_Contacts_V1_Contact()
        var fields = Google_Protobuf_Struct()
        fields.fields = ["deep": value]
        contact.customFields = fields
        #expect(
            throws: ContactsError.invalid([
                Violation(
                    "contact.custom_fields.deep", "nests lists and objects more than \(ContactRules.maxCustomFieldDepth) deep", reason: "TOO_DEEP")
            ])
        ) {
            _ = try ContactsMapping.data(contact, prefix: "contact")
        }
    }
}
