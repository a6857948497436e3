import SwitchboardPostgres
import Testing

/// Which database errors count as an outage (retry, UNAVAILABLE) and which are the caller's or the code's.
@Suite("PostgreSQL error classes")
struct PostgresErrorTests {
    @Test("class 08 and administrator shutdowns are connection failures; 08P01 (a malformed message: a bug) is not")
    func connectionFailures() {
        for state in ["08000", "08003", "08006", "57P01", "57P02", "57P03"] {
            #expect(PostgresError(kind: .server, sqlState: state, message: "x").isConnectionFailure, "\(state)")
        }
        #expect(PostgresError(kind: .connection, message: "refused").isConnectionFailure)
        for state in ["08P01", "42703", "23505", "57014"] {
            #expect(!PostgresError(kind: .server, sqlState: state, message: "x").isConnectionFailure, "\(state)")
        }
    }
}
