import SwitchboardProtos
import Testing

@testable import ContactsService

@Suite("Contact columns as JSON text")
struct JSONTextTests {
    @Test("emails, phones and addresses are written as their JSON values' text, and read back whole")
    func writtenAsValues() throws {
        let awkward = ["", "plain", "quote\" back\\slash", "new\nline\ttab\u{1}", "zoë ☺ 日本"]
        for (i, text) in awkward.enumerated() {
            let emails = [EmailAddress(address: text, label: awkward[(i + 1) % awkward.count], primary: i % 2 == 0), EmailAddress(address: "b@c.d")]
            let phones = [PhoneNumber(number: text, label: "x", primary: true, e164: "+1555\(i)"), PhoneNumber(number: "", e164: text)]
            var address = PostalAddress()
            address.label = text
            address.lines = i == 0 ? [] : [text, "line 2"]
            address.locality = "Zürich"
            address.administrativeArea = text
            address.postalCode = "80\(i)"
            address.regionCode = "CH"
            for count in 0...2 {
                let e = Array(emails.prefix(count)), p = Array(phones.prefix(count)), a = Array(repeating: address, count: count)
                #expect(
                    JSONText.emails(e)
                        == JSON.array(e.map { .object(["address": .string($0.address), "label": .string($0.label), "primary": .bool($0.primary)]) })
                        .text)
                #expect(
                    JSONText.phones(p)
                        == JSON.array(
                            p.map {
                                .object([
                                    "number": .string($0.number), "label": .string($0.label), "primary": .bool($0.primary), "e164": .string($0.e164),
                                ])
                            }
                        ).text)
                #expect(
                    JSONText.addresses(a)
                        == JSON.array(
                            a.map {
                                .object([
                                    "label": .string($0.label), "lines": .array($0.lines.map(JSON.string)), "locality": .string($0.locality),
                                    "administrativeArea": .string($0.administrativeArea), "postalCode": .string($0.postalCode),
                                    "regionCode": .string($0.regionCode),
                                ])
                            }
                        ).text)
                #expect(try JSONText.emails(JSONText.emails(e)) == e)
                #expect(try JSONText.phones(JSONText.phones(p)) == p)
                #expect(try JSONText.addresses(JSONText.addresses(a)) == a)
            }
        }
    }
}
