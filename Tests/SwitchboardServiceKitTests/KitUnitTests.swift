import Foundation
import SwitchboardProtos
import SwitchboardRuntime
import SwitchboardServiceKit
import Testing

/// The kit's pure parts: database settings, request ids, page tokens, feed cursors.
@Suite("Service kit units")
struct KitUnitTests {
    @Test("a request's fingerprint is its content's: Struct entries in any order give the same one, any change another")
    func requestFingerprints() throws {
        // Dictionaries of the same entries iterate in different orders when their capacities differ, and so do
        // their binary encodings: the fingerprint must not follow them.
        func request(
            _ entries: [(String, String)], capacity: Int, given: String = "Ada", requestID: String = "r-1"
        )
            -> Switchboard_Contacts_V1_CreateContactRequest
        {
            var fields = [String: Google_Protobuf_Value](minimumCapacity: capacity)
            for (key, text) in entries {
                var value = Google_Protobuf_Value()
                value.kind = .stringValue(text)
                fields[key] = value
            }
            var custom = Google_Protobuf_Struct()
            custom.fields = fields
            var name = Switchboard_Contacts_V1_PersonName()
            name.given = given
            var contact = Switchboard_Contacts_V1_Contact()
            contact.name = name
            contact.customFields = custom
            var request = Switchboard_Contacts_V1_CreateContactRequest()
            request.contact = contact
            request.requestId = requestID
            return request
        }
        func fingerprint(_ request: Switchboard_Contacts_V1_CreateContactRequest) throws -> [UInt8] {
            try IdempotentWrite<Int, Switchboard_Contacts_V1_Contact>(
                request: request, requestID: request.requestId, method: Switchboard_Contacts_V1_ContactsService.Method.createContact,
                response: { _ in Switchboard_Contacts_V1_Contact() }
            ).options.fingerprint
        }
        let entries = (0..<24).map { ("field_\($0)", "value \($0)") }
        let small = request(entries, capacity: 0), large = request(entries.reversed(), capacity: 512)
        #expect(Array(small.contact!.customFields!.fields.keys) != Array(large.contact!.customFields!.fields.keys))
        #expect(try fingerprint(small).count == 32)
        #expect(try fingerprint(small) == fingerprint(large))
        #expect(try fingerprint(small) != fingerprint(request(entries, capacity: 0, given: "Bea")))
        var changed = entries
        changed[7].1 = "other"
        #expect(try fingerprint(small) != fingerprint(request(changed, capacity: 0)))
        // Without a request id nothing is kept, so nothing is computed.
        #expect(try fingerprint(request(entries, capacity: 0, requestID: "")).isEmpty)
    }

    @Test("database settings: per-service role in the default URL, ranges checked naming the variable")
    func databaseSettings() throws {
        let organization = try DatabaseConfiguration.load(service: .organization, [:])
        #expect(organization.url.contains("user=organization_service"))
        #expect(organization.probeTimeout == .seconds(2))
        #expect(organization.coalescedKeys == 64)
        #expect(try DatabaseConfiguration.load(service: .contacts, ["SWITCHBOARD_DB_COALESCED_KEYS": "1"]).coalescedKeys == 1)
        #expect(
            try DatabaseConfiguration.load(service: .contacts, ["SWITCHBOARD_DB_PROBE_TIMEOUT_SECONDS": "0.25"]).probeTimeout == .milliseconds(250))
        for (variable, value) in [
            ("SWITCHBOARD_DB_POOL_SIZE", "-9223372036854775809"), ("SWITCHBOARD_DB_POOL_SIZE", "0"),
            ("SWITCHBOARD_DB_PROBE_TIMEOUT_SECONDS", "nan"), ("SWITCHBOARD_CHANGE_RETENTION_DAYS", "99999"),
            ("SWITCHBOARD_DB_COALESCED_KEYS", "0"), ("SWITCHBOARD_DB_COALESCED_KEYS", "1001"),
        ] {
            do {
                _ = try DatabaseConfiguration.load(service: .contacts, [variable: value])
                Issue.record("\(variable)=\(value) was accepted")
            } catch let error as ConfigurationError {
                #expect(error.variable == variable)
            }
        }
    }

    @Test("request ids: at most 128 bytes of printable ASCII, else INVALID_ARGUMENT naming request_id")
    func requestIDs() throws {
        func check(_ id: String) -> String? {
            do {
                _ = try WriteOptions<Int>(requestID: id, method: "M", fingerprint: []) { _ in [] }
                return nil
            } catch let error as InvalidRequest {
                #expect(error.violations.first?.field == "request_id")
                return error.violations.first?.reason
            } catch {
                return "\(error)"
            }
        }
        #expect(check("") == nil)
        #expect(check(UUID().uuidString) == nil)
        #expect(check(String(repeating: "a", count: 128)) == nil)
        #expect(check(String(repeating: "a", count: 129)) == "TOO_LONG")
        #expect(check("é") == "INVALID_FORMAT")
        #expect(check("a\u{0}b") == "INVALID_FORMAT")
    }

    @Test("page tokens round-trip, and anything else is refused naming the field")
    func pageTokens() throws {
        let token = PageToken(
            cursor: ["1733212800000000", "6f1c1c3e-0000-4000-8000-000000000001", String(repeating: "é", count: 300)],
            fingerprint: 0xDEAD_BEEF_0123_4567)
        #expect(PageToken.decode(token.encoded) == token)
        #expect(!token.encoded.contains("=") && !token.encoded.contains("+") && !token.encoded.contains("/"))
        #expect(try PageToken.resume("", fingerprint: 1, parts: 2) == nil)
        #expect(try PageToken.resume(token.encoded, fingerprint: token.fingerprint, parts: 3) == token.cursor)
        for (text, fingerprint, reason) in [
            (token.encoded, token.fingerprint &+ 1, "MISMATCH"), ("not a token", token.fingerprint, "INVALID_FORMAT"),
            (String(repeating: "A", count: 100_000), token.fingerprint, "INVALID_FORMAT"), ("AA", token.fingerprint, "INVALID_FORMAT"),
        ] {
            #expect(
                throws: InvalidRequest([
                    Violation(
                        "page.page_token",
                        reason == "MISMATCH"
                            ? "was issued for different filters or order" : "is not a token this service issued", reason: reason)
                ])
            ) {
                try PageToken.resume(text, fingerprint: fingerprint, parts: 3)
            }
        }
        // A length prefix past the end, an over-long varint and invalid UTF-8 are refused, not trapped on.
        for bytes: [UInt8] in [
            [1, 0, 0, 0, 0, 0, 0, 0, 0, 200], [1, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
            [1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0xC3, 0x28],
        ] {
            let text = Data(bytes).base64EncodedString().replacingOccurrences(of: "=", with: "")
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            #expect(PageToken.decode(text) == nil)
        }
        #expect(PageToken.fingerprint(["ab", "c"]) != PageToken.fingerprint(["a", "bc"]))
    }

    @Test("feed cursors: text form, order, and refusal of anything else")
    func feedCursors() {
        #expect(FeedCursor("") == .start)
        #expect(FeedCursor("123.45") == FeedCursor(transaction: 123, position: 45))
        #expect(FeedCursor("123.45")!.description == "123.45")
        #expect(FeedCursor(transaction: 1, position: 9) < FeedCursor(transaction: 2, position: 1))
        for bad in ["x", "1.", ".1", "1.2.3", "-1.2", "1.-2", "18446744073709551616.1", String(repeating: "9", count: 100) + ".1"] {
            #expect(FeedCursor(bad) == nil, "\(bad)")
        }
    }
}
