import FoundationEssentials

extension Google_Protobuf_Timestamp {
    /// The seconds google.protobuf.Timestamp allows: 0001-01-01T00:00:00Z through 9999-12-31T23:59:59Z.
    public static let validSeconds: ClosedRange<Int64> = -62_135_596_800...253_402_300_799
    /// The nanos google.protobuf.Timestamp allows.
    public static let validNanos: ClosedRange<Int32> = 0...999_999_999
    /// What ``date`` is for a timestamp outside the allowed range: a date every range check refuses (a `Date`
    /// cannot say "invalid"). Decoding refuses such timestamps before any date is made (the wire scan names the
    /// field), so this is for one built in code.
    public static let invalidDate = Date(timeIntervalSince1970: -.infinity)
    /// The latest date a timestamp becomes: a `Double` near year 10000 is exact to about 30 µs, so the last instants of
    /// 9999-12-31 would round up into year 10000, which no Timestamp can hold when the date is written back.
    public static let latestDate = Date(timeIntervalSince1970: (253_402_300_800 as Double).nextDown)

    /// Whether the seconds and nanos are within the range the Timestamp type defines.
    public var isValid: Bool { Self.validSeconds.contains(seconds) && Self.validNanos.contains(nanos) }

    /// Creates a timestamp from a date, rounded to the microsecond.
    ///
    /// `Date` is a `Double` of seconds, exact to roughly a tenth of a microsecond today, so finer digits would be
    /// noise; microseconds are also what PostgreSQL stores. A timestamp with microsecond precision survives
    /// Timestamp → Date → Timestamp unchanged. Total: a date beyond Int64 seconds (or infinite) saturates, and NaN
    /// is the epoch.
    /// - Parameter date: the date.
    public init(date: Date) {
        self.init()
        let interval = date.timeIntervalSince1970
        if interval.isNaN { return }
        var secs = interval.rounded(.down)
        var nanos = ((interval - secs) * 1e6).rounded() * 1000
        if !nanos.isFinite { nanos = 0 }
        if nanos >= 1e9 {
            secs += 1
            nanos -= 1e9
        }
        // 2^63 is the first Double past Int64.max; -2^63 is Int64.min itself.
        if secs >= 0x1p63 {
            self.seconds = .max
        } else if secs < -0x1p63 {
            self.seconds = .min
        } else {
            self.seconds = Int64(exactly: secs) ?? 0
        }
        self.nanos = Int32(exactly: nanos) ?? 0
    }

    /// The timestamp as a date, or ``invalidDate`` when it is outside the range the type defines (which a
    /// handler reports as INVALID_ARGUMENT naming the field).
    public var date: Date {
        guard isValid else { return Self.invalidDate }
        return min(Date(timeIntervalSince1970: Double(seconds) + Double(nanos) / 1e9), Self.latestDate)
    }
}

extension Google_Protobuf_Duration {
    /// Creates a protobuf duration from a Swift duration (nanosecond precision).
    /// - Parameter duration: the duration.
    public init(duration: Swift.Duration) {
        self.init()
        let (secs, atto) = duration.components
        self.seconds = secs
        self.nanos = Int32(atto / 1_000_000_000)
    }

    /// The duration as a Swift duration.
    public var duration: Swift.Duration { .seconds(seconds) + .nanoseconds(Int64(nanos)) }
}

extension Google_Protobuf_FieldMask {
    /// Creates a field mask.
    /// - Parameter paths: the field paths, e.g. `["name.given", "emails"]`.
    public init(paths: [String]) {
        self.init()
        self.paths = paths
    }
}
