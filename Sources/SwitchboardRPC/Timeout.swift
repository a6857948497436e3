/// The `grpc-timeout` header: a positive integer of at most 8 digits and a unit (H, M, S, m, u, n).
public enum GRPCTimeout {
    /// Parses a `grpc-timeout` value.
    /// - Parameter value: the header value, e.g. `5S`, `5010m`, `100n`.
    /// - Returns: the duration, or nil when the value is malformed.
    public static func parse(_ value: String) -> Duration? {
        let utf8 = Array(value.utf8)
        guard utf8.count >= 2, utf8.count <= 9 else { return nil }
        var amount: Int64 = 0
        for c in utf8.dropLast() {
            guard c >= 48, c <= 57 else { return nil }
            amount = amount * 10 + Int64(c - 48)
        }
        switch utf8.last! {
        case UInt8(ascii: "H"): return .seconds(amount * 3600)
        case UInt8(ascii: "M"): return .seconds(amount * 60)
        case UInt8(ascii: "S"): return .seconds(amount)
        case UInt8(ascii: "m"): return .milliseconds(amount)
        case UInt8(ascii: "u"): return .microseconds(amount)
        case UInt8(ascii: "n"): return .nanoseconds(amount)
        default: return nil
        }
    }

    /// Encodes a duration in the finest unit that fits in 8 digits, rounding up so a peer never sees a
    /// shorter deadline than the caller's.
    /// - Parameter duration: the timeout; negative values are sent as `0n`.
    /// - Returns: the header value.
    public static func encode(_ duration: Duration) -> String {
        let (seconds, attoseconds) = duration.components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return "0n" }
        let nanos = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        let max: Int64 = 99_999_999
        if !nanos.overflow {
            let total = nanos.partialValue + (attoseconds + 999_999_999) / 1_000_000_000
            if total <= max { return "\(total)n" }
            let micros = (total + 999) / 1000
            if micros <= max { return "\(micros)u" }
            let millis = (total + 999_999) / 1_000_000
            if millis <= max { return "\(millis)m" }
        }
        let secs = seconds + (attoseconds > 0 ? 1 : 0)
        if secs <= max { return "\(secs)S" }
        let minutes = (secs + 59) / 60
        if minutes <= max { return "\(minutes)M" }
        return "\(min((minutes + 59) / 60, max))H"
    }
}
