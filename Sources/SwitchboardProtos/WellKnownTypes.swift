import FoundationEssentials

extension Google_Protobuf_Timestamp {
    /// Creates a timestamp from a date, rounded to the microsecond.
    ///
    /// `Date` is a `Double` of seconds, exact to roughly a tenth of a microsecond today, so finer digits would be
    /// noise; microseconds are also what PostgreSQL stores. A timestamp with microsecond precision survives
    /// Timestamp → Date → Timestamp unchanged.
    /// - Parameter date: the date.
    public init(date: Date) {
        self.init()
        let interval = date.timeIntervalSince1970
        var secs = interval.rounded(.down)
        var nanos = ((interval - secs) * 1e6).rounded() * 1000
        if nanos >= 1e9 {
            secs += 1
            nanos -= 1e9
        }
        self.seconds = Int64(secs)
        self.nanos = Int32(nanos)
    }

    /// The timestamp as a date.
    public var date: Date { Date(timeIntervalSince1970: Double(seconds) + Double(nanos) / 1e9) }
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
