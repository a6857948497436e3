import SwitchboardPostgres
import SwitchboardServiceKit
import SwitchboardServiceKitTestSupport
import Testing

/// What erasure's whole-token pattern (`ChangeFeed.tokenPattern`) finds in stored JSON text, evaluated by PostgreSQL as
/// `ChangeFeed.redact` evaluates it.
@Suite("Erasure: whole-token matching in stored payloads")
struct RedactionMatchTests {
    @Test("an address or number matches as itself and in free text, not inside a longer one")
    func tokens() async throws {
        let cases: [(text: String, needle: String, matches: Bool)] = [
            (#"{"address":"ann@x.io"}"#, "ann@x.io", true),
            (#"{"address":"joann@x.io"}"#, "ann@x.io", false),
            (#"{"address":"ann@x.io.uk"}"#, "ann@x.io", false),
            (#"{"body":"reach me at ann@x.io."}"#, "ann@x.io", true),
            (#"{"body":"reach me at ann@x.io, thanks"}"#, "ann@x.io", true),
            (#"{"body":"Hi,\nann@x.io"}"#, "ann@x.io", true),
            (#"{"body":"Hi,\u0007ann@x.io"}"#, "ann@x.io", true),
            (#"{"address":"ANN@X.IO"}"#, "Ann@x.io", true),
            (#"{"e164":"+49301234567"}"#, "+49301234567", true),
            (#"{"e164":"+493012345678"}"#, "+49301234567", false),
            (#"{"number":"0049301234567"}"#, "49301234567", false),
            (#"{"ids":["5f0c3a52-6f1e-4c39-9d0b-2f1f0b6a9b10"]}"#, "5f0c3a52-6f1e-4c39-9d0b-2f1f0b6a9b10", true),
            (#"{"name":"a.b+c(d)@x.io"}"#, "a.b+c(d)@x.io", true),
            (#"{"name":"aXb+c(d)@x.io"}"#, "a.b+c(d)@x.io", false),
        ]
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: adminConninfo, maxConnections: 1))
        defer { pool.close() }
        for c in cases {
            let row = try await pool.query(
                "SELECT strpos(lower($1), lower($2)) > 0 AND lower($1) ~ lower($3) AS m",
                [.text(c.text), .text(c.needle), .text(ChangeFeed.tokenPattern(c.needle))]
            ).first
            #expect(try row?.bool("m") == c.matches, "\(c.needle) in \(c.text)")
        }
    }
}
