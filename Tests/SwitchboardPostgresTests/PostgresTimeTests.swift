import Foundation
import SwitchboardPostgres
import Testing

/// `timestamptz` parameters: every `Date` binds without trapping, and PostgreSQL reads the instant we meant.
@Suite("Timestamps bound to PostgreSQL")
struct PostgresTimeTests {
    @Test("dates far outside any calendar bind as ±infinity or NULL instead of trapping (Double → Int64)")
    func extremeDatesAreTotal() async throws {
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 1))
        defer { pool.close() }
        let cases: [(Double, String?)] = [
            (1e13, "infinity"),  // ListContacts created_after.seconds = 10^13 trapped here.
            (-0x1p62, "-infinity"),  // updated_before.seconds = -2^62
            (.greatestFiniteMagnitude, "infinity"), (-.greatestFiniteMagnitude, "-infinity"),
            (.infinity, "infinity"), (-.infinity, "-infinity"), (.nan, nil),
            (9_224_318_015_999.999_999, "infinity"),  // rounds up to PostgreSQL's first unrepresentable microsecond
            (9_224_318_015_999, "294276-12-31 23:59:59+00"),
            (-210_866_803_200, "4714-11-24 00:00:00+00 BC"), (-210_866_803_200.5, "-infinity"),
        ]
        for (seconds, expected) in cases {
            let row = try await pool.query("SELECT $1::timestamptz::text AS v", [.timestamp(Date(timeIntervalSince1970: seconds))]).first!
            #expect(try row.optionalString("v") == expected, "\(seconds)")
        }
    }

    @Test("the first and last instants of google.protobuf.Timestamp, and years before 1 and after 9999, round-trip")
    func calendarEdgesRoundTrip() async throws {
        let pool = PostgresPool(configuration: PostgresPoolConfiguration(conninfo: testConninfo, maxConnections: 1))
        defer { pool.close() }
        let cases: [(Double, String)] = [
            (-62_135_596_800, "0001-01-01 00:00:00+00"),
            (-62_135_596_800.25, "0001-12-31 23:59:59.75+00 BC"),  // ISO year 0 is 1 BC
            (253_402_300_799.5, "9999-12-31 23:59:59.5+00"),
            (253_402_300_800, "10000-01-01 00:00:00+00"),
            (1_700_000_000.123456, "2023-11-14 22:13:20.123456+00"),
            (-0.5, "1969-12-31 23:59:59.5+00"),
            // PostgreSQL's first and last instants (read back by our own calendar arithmetic, not the C library's).
            (-210_866_803_200, "4714-11-24 00:00:00+00 BC"), (9_224_318_015_999, "294276-12-31 23:59:59+00"),
            (951_782_400, "2000-02-29 00:00:00+00"), (-2_203_891_200, "1900-03-01 00:00:00+00"),
        ]
        for (seconds, text) in cases {
            let date = Date(timeIntervalSince1970: seconds)
            let row = try await pool.query("SELECT $1::timestamptz::text AS t, $1::timestamptz AS v", [.timestamp(date)]).first!
            #expect(try row.string("t") == text, "\(seconds)")
            #expect(try row.date("v") == date, "\(seconds) read back")
        }
    }
}
