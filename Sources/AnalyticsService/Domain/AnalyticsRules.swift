import FoundationEssentials
import SwitchboardServiceKit

#if canImport(Glibc)
    import Glibc
#endif

/// The bounds on what a caller may ask for, from the service's settings.
public struct AnalyticsLimits: Sendable, Hashable {
    /// Largest timeline page (a larger page_size is capped to it).
    public var maxPageSize = 500
    /// Widest time range of statistics, funnels and rankings, in days.
    public var maxRangeDays = 366
    /// Largest ranking.
    public var maxTop = 100
    /// WatchTimeline streams open at once in the process, and per user.
    public var watchStreams = 1000, watchStreamsPerUser = 16
    /// Largest CSV chunk ExportReport sends.
    public var exportChunkBytes = 64 << 10
    /// Rows RunReport and ExportReport read per database round trip (never all rows at once).
    public var reportPageRows = 500
    /// Most reports, dashboards and alerts one tenant may keep.
    public var maxDefinitions = 1000

    /// The defaults.
    public init() {}
}

/// Pure rules: validation and the score's arithmetic.
public enum AnalyticsRules {
    /// Most timeline kinds or activity kinds in a filter.
    public static let maxFilterKinds = 16
    /// Longest name of a report, dashboard or alert.
    public static let maxNameBytes = 200
    /// Most report columns, filters, and dashboard widgets.
    public static let maxColumns = 64, maxFilters = 32, maxWidgets = 32
    /// Longest report schedule, hours (30 days).
    public static let maxScheduleHours = 720
    /// Most funnel stages.
    public static let maxStages = 8
    /// Half-life bounds, days.
    public static let halfLifeRange = 0.1...3650.0
    /// Weight bounds.
    public static let weightRange = -1000.0...1000.0
    /// The lifecycle stages (contact statuses) in funnel order.
    public static let stages = ["LEAD", "PROSPECT", "CUSTOMER", "INACTIVE"]

    /// A weight of one activity `age` seconds old under a half-life of `halfLifeDays`: 0.5 ^ (age / half-life); an
    /// activity in the future counts as now.
    public static func decay(ageSeconds: Double, halfLifeDays: Double) -> Double {
        pow(0.5, max(0, ageSeconds) / 86_400 / halfLifeDays)
    }

    /// Checks a scoring model.
    /// - Throws: ``InvalidRequest`` naming each bad field.
    public static func validate(_ model: ScoringModelValue, kinds: [String]) throws {
        var violations: [Violation] = []
        if !(halfLifeRange.contains(model.halfLifeDays)) {
            violations.append(Violation("model.half_life_days", "must be between 0.1 and 3650 days", reason: "OUT_OF_RANGE"))
        }
        var seen = Set<String>()
        for (i, kind) in kinds.enumerated() {
            if !ActivityKinds.all.contains(kind) {
                violations.append(
                    Violation("model.weights[\(i)].kind", "must be one of \(ActivityKinds.all.joined(separator: ", "))", reason: "UNKNOWN"))
            } else if !seen.insert(kind).inserted {
                violations.append(Violation("model.weights[\(i)].kind", "appears twice", reason: "DUPLICATE"))
            }
            if let weight = model.weights[kind], !(weightRange.contains(weight)) {
                violations.append(Violation("model.weights[\(i)].weight", "must be between -1000 and 1000", reason: "OUT_OF_RANGE"))
            }
        }
        if !violations.isEmpty { throw InvalidRequest(violations) }
    }

    /// Checks a time range: both ends present when `required`, start before end, at most `maxDays` apart.
    /// - Throws: ``InvalidRequest`` naming the field.
    public static func checkRange(_ start: Date?, _ end: Date?, required: Bool, maxDays: Int, prefix: String = "") throws {
        if required {
            guard start != nil else { throw InvalidRequest(prefix + "start_time", "is required", reason: "REQUIRED") }
            guard end != nil else { throw InvalidRequest(prefix + "end_time", "is required", reason: "REQUIRED") }
        }
        if let start, let end {
            guard start < end else { throw InvalidRequest(prefix + "end_time", "must be after start_time", reason: "OUT_OF_RANGE") }
            guard end.timeIntervalSince(start) <= Double(maxDays) * 86_400 else {
                throw InvalidRequest(prefix + "end_time", "must be at most \(maxDays) days after start_time", reason: "OUT_OF_RANGE")
            }
        }
    }

    /// Checks a name.
    /// - Throws: ``InvalidRequest`` naming the field.
    public static func checkName(_ name: String, field: String) throws {
        guard !name.allSatisfy(\.isWhitespace) else { throw InvalidRequest(field, "is required", reason: "REQUIRED") }
        guard name.utf8.count <= maxNameBytes else { throw InvalidRequest(field, "must be at most \(maxNameBytes) bytes", reason: "TOO_LONG") }
    }
}
