import SwitchboardRPC
import Testing

@Suite("grpc-timeout")
struct TimeoutTests {
    @Test(
        "parses every unit",
        arguments: [
            ("1H", Duration.seconds(3600)), ("2M", .seconds(120)), ("5S", .seconds(5)), ("5010m", .milliseconds(5010)),
            ("201m", .milliseconds(201)), ("7u", .microseconds(7)), ("100n", .nanoseconds(100)), ("99999999S", .seconds(99_999_999)),
        ])
    func parsesUnits(value: String, expected: Duration) {
        #expect(GRPCTimeout.parse(value) == expected)
    }

    @Test("rejects malformed values", arguments: ["", "S", "5", "5s", "-5S", "123456789S", "5 S", "1.5S", "5X"])
    func rejectsMalformed(value: String) {
        #expect(GRPCTimeout.parse(value) == nil)
    }

    @Test("encodes in at most 8 digits and never shortens the deadline")
    func encodes() {
        #expect(GRPCTimeout.encode(.nanoseconds(100)) == "100n")
        #expect(GRPCTimeout.encode(.seconds(1)) == "1000000u")
        #expect(GRPCTimeout.encode(.milliseconds(250)) == "250000u")
        #expect(GRPCTimeout.encode(.seconds(3600)) == "3600000m")
        #expect(GRPCTimeout.encode(.seconds(100_000_000)) == "1666667M")
        #expect(GRPCTimeout.encode(.seconds(-1)) == "0n")
        for duration in [Duration.milliseconds(1), .seconds(7), .seconds(86_400), .nanoseconds(123_456_789_123)] {
            let parsed = GRPCTimeout.parse(GRPCTimeout.encode(duration))!
            #expect(parsed >= duration)
            #expect(GRPCTimeout.encode(duration).count <= 9)
        }
    }
}
