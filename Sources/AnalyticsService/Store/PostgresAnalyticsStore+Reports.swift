import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

extension PostgresAnalyticsStore {
    /// Builds a report's SQL: column expressions are this file's constants; every value (custom field keys, filter
    /// values, the range, the model) is a bound parameter.
    struct ReportQuery {
        var binds: [PostgresValue]
        /// Activity columns read a page's aggregates (`g`, one pass over the page's activities) instead of one
        /// correlated count per row; filters are compiled before this is set, so they keep the per-row form.
        var pageAggregates = false

        init(actor: Actor) { binds = [.text(actor.tenantID)] }

        mutating func bind(_ value: PostgresValue) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }

        static let timeFormat = "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"
        /// A number as PostgreSQL writes one as text (`numeric`'s and `jsonb`'s output never uses an exponent).
        static let numberPattern = "^-?[0-9]{1,100}(\\.[0-9]{1,100})?$"

        /// The column's typed expression over contact row `c` (numbers and times keep their types for comparisons).
        mutating func raw(_ column: ReportColumn, model: inout ModelBinds?) -> String {
            switch column {
            case .custom(let key): return "coalesce(c.custom_fields ->> \(bind(.text(key))), '')"
            case .builtIn(let name):
                switch name {
                case "contact_id": return "c.id::text"
                case "display_name": return "c.display_name"
                case "email": return "c.email"
                case "status": return "c.status"
                case "owner_id": return "c.owner_id"
                case "tags": return "array_to_string(c.tags, ';')"
                case "create_time": return "c.created_at"
                case "activities" where pageAggregates: return "coalesce(g.activities, 0)::float8"
                case "interactions" where pageAggregates: return "coalesce(g.interactions, 0)::float8"
                case "last_contact_time" where pageAggregates: return "g.last_contact"
                case "engagement_score" where pageAggregates: return "coalesce(g.score, 0)::float8"
                case "activities":
                    return "(SELECT count(*) FROM analytics.activities a WHERE a.tenant_id = c.tenant_id AND a.contact_ids @> ARRAY[c.id])::float8"
                case "interactions":
                    return
                        "(SELECT count(*) FROM analytics.activities a WHERE a.tenant_id = c.tenant_id AND a.contact_ids @> ARRAY[c.id] AND a.is_interaction)::float8"
                case "last_contact_time":
                    return
                        "(SELECT max(a.occurred_at) FROM analytics.activities a WHERE a.tenant_id = c.tenant_id AND a.contact_ids @> ARRAY[c.id] AND a.is_interaction)"
                default:  // engagement_score
                    let m = model!
                    return """
                        (SELECT coalesce(sum(\(PostgresAnalyticsStore.decayedWeight(
                            kinds: m.kinds, weights: m.weights, time: m.time, halfLife: m.halfLife))), 0)
                         FROM analytics.activities a WHERE a.tenant_id = c.tenant_id AND a.contact_ids @> ARRAY[c.id])::float8
                        """
                }
            }
        }

        /// The column's text expression (what a row shows).
        mutating func text(_ column: ReportColumn, model: inout ModelBinds?) -> String {
            let raw = raw(column, model: &model)
            guard case .builtIn(let name) = column else { return raw }
            switch name {
            case "create_time", "last_contact_time": return "coalesce(to_char(\(raw) AT TIME ZONE 'UTC', \(Self.timeFormat)), '')"
            case "activities", "interactions": return "(\(raw))::bigint::text"
            case "engagement_score": return "round((\(raw))::numeric, 4)::text"
            default: return raw
            }
        }

        mutating func condition(_ filter: ReportFilterSpec, model: inout ModelBinds?) -> String {
            let ops: [ReportOperator: String] = [.eq: "=", .ne: "<>", .lt: "<", .le: "<=", .gt: ">", .ge: ">="]
            switch (filter.column, filter.op) {
            // A contact's tags are a set: a filter matches one tag, not the list's text.
            // Tags are stored trimmed and lower-cased (as contacts keeps them): the value is read the same way.
            case (.builtIn("tags"), .eq): return "lower(btrim(\(bind(.text(filter.value))))) = ANY(c.tags)"
            case (.builtIn("tags"), .ne): return "NOT (lower(btrim(\(bind(.text(filter.value))))) = ANY(c.tags))"
            case (.builtIn("tags"), .contains):
                return "EXISTS (SELECT 1 FROM unnest(c.tags) AS t WHERE strpos(lower(t), lower(\(bind(.text(filter.value))))) > 0)"
            case (.builtIn("tags"), .exists): return "cardinality(c.tags) > 0"
            // Addresses are case-insensitive (as contacts stores and matches them).
            case (.builtIn("email"), .eq): return "lower(c.email) = lower(\(bind(.text(filter.value))))"
            case (.builtIn("email"), .ne): return "lower(c.email) <> lower(\(bind(.text(filter.value))))"
            // A count or a score always has a value: it "exists" when it is not zero.
            case (.builtIn(let name), .exists) where ReportColumn.numeric.contains(name): return "\(raw(filter.column, model: &model)) <> 0"
            case (.custom(let key), _) where filter.number != nil && ops[filter.op] != nil:
                let field = "c.custom_fields -> \(bind(.text(key)))"
                let op = ops[filter.op]!
                // A contact without the field has no value to compare: only "not equal" holds.
                return """
                    (CASE WHEN jsonb_typeof(\(field)) = 'number' THEN (\(field))::numeric \(op) \(bind(.text(filter.value)))::numeric \
                    WHEN \(field) IS NULL THEN \(filter.op == .ne) \
                    ELSE \(text(filter.column, model: &model)) \(op) \(bind(.text(filter.value))) END)
                    """
            case (_, .exists): return "\(text(filter.column, model: &model)) <> ''"
            case (_, .contains): return "strpos(lower(\(text(filter.column, model: &model))), lower(\(bind(.text(filter.value))))) > 0"
            default:
                let op = ops[filter.op]!
                if let number = filter.number { return "\(raw(filter.column, model: &model)) \(op) \(bind(.double(number)))::float8" }
                if let time = filter.time { return "\(raw(filter.column, model: &model)) \(op) \(bind(.timestamp(time)))::timestamptz" }
                return "\(text(filter.column, model: &model)) \(op) \(bind(.text(filter.value)))"
            }
        }
    }

    /// Where the scoring model's parameters sit in a report query.
    struct ModelBinds {
        var kinds: Int, weights: Int, time: Int, halfLife: Int
    }

    public func reportRows(
        _ spec: ReportSpec, after: String?, limit: Int, model: ScoringModelValue, asOf: Date, actor: Actor
    ) async throws -> [(key: String, values: [String])] {
        var q = ReportQuery(actor: actor)
        let (kinds, weights) = Self.modelBinds(model)
        var binds: ModelBinds? = ModelBinds(kinds: 0, weights: 0, time: 0, halfLife: 0)
        binds!.kinds = Int(q.bind(kinds).dropFirst())!
        binds!.weights = Int(q.bind(weights).dropFirst())!
        binds!.time = Int(q.bind(.timestamp(asOf)).dropFirst())!
        binds!.halfLife = Int(q.bind(.double(model.halfLifeDays)).dropFirst())!
        var conditions = ["c.tenant_id = $1", "NOT c.deleted"]
        if let start = spec.start { conditions.append("c.created_at >= \(q.bind(.timestamp(start)))::timestamptz") }
        if let end = spec.end { conditions.append("c.created_at < \(q.bind(.timestamp(end)))::timestamptz") }
        for filter in spec.filters { conditions.append(q.condition(filter, model: &binds)) }
        let sql: String
        if let group = spec.groupBy {
            // Grouped by tags, a contact counts under each of its tags (untagged ones under "").
            let g =
                group == .builtIn("tags")
                ? "unnest(CASE WHEN cardinality(c.tags) = 0 THEN ARRAY[''] ELSE c.tags END)" : q.text(group, model: &binds)
            // Groups in value order: numbers (a count, a score, a NUMBER field's values) by their value, before the texts
            // in byte order; the page token is the last group's text, compared in the same order.
            func order(_ v: String) -> String {
                "(\(v) !~ '\(ReportQuery.numberPattern)', CASE WHEN \(v) ~ '\(ReportQuery.numberPattern)' THEN \(v)::numeric ELSE 0 END, \(v) COLLATE \"C\")"
            }
            let afterCondition = after.map { "WHERE \(order("g")) > \(order(q.bind(.text($0))))" } ?? ""
            sql = """
                SELECT g AS key, ARRAY[g, count(*)::text] AS cols FROM (
                    SELECT \(g) AS g FROM analytics.contacts c WHERE \(conditions.joined(separator: " AND "))
                ) s \(afterCondition) GROUP BY g ORDER BY \(order("g")) LIMIT \(q.bind(.int(Int64(limit))))
                """
        } else {
            if let after { conditions.append("c.id > \(q.bind(.text(after)))::uuid") }
            let activityColumns: Set<String> = ["activities", "interactions", "last_contact_time", "engagement_score"]
            let needsActivities = spec.columns.contains { column in
                if case .builtIn(let name) = column { activityColumns.contains(name) } else { false }
            }
            if needsActivities {
                // A correlated count per row costs a GIN lookup each (~0.3 ms): a page's activities are read once,
                // by one overlap lookup for all its contacts, and aggregated per contact.
                q.pageAggregates = true
                let columns = spec.columns.map { "coalesce(\(q.text($0, model: &binds)), '')" }
                let m = binds!
                let score = PostgresAnalyticsStore.decayedWeight(kinds: m.kinds, weights: m.weights, time: m.time, halfLife: m.halfLife)
                sql = """
                    WITH page AS MATERIALIZED (
                        SELECT c.* FROM analytics.contacts c WHERE \(conditions.joined(separator: " AND "))
                        ORDER BY c.id LIMIT \(q.bind(.int(Int64(limit))))
                    ), g AS (
                        SELECT u.id, count(*) AS activities, count(*) FILTER (WHERE a.is_interaction) AS interactions,
                            max(a.occurred_at) FILTER (WHERE a.is_interaction) AS last_contact, sum(\(score)) AS score
                        FROM analytics.activities a
                        CROSS JOIN LATERAL (SELECT DISTINCT x AS id FROM unnest(a.contact_ids) x) u
                        WHERE a.tenant_id = $1 AND a.contact_ids && (SELECT array_agg(id) FROM page) AND u.id IN (SELECT id FROM page)
                        GROUP BY u.id
                    )
                    SELECT c.id::text AS key, ARRAY[\(columns.joined(separator: ", "))]::text[] AS cols
                    FROM page c LEFT JOIN g ON g.id = c.id ORDER BY c.id
                    """
            } else {
                let columns = spec.columns.map { "coalesce(\(q.text($0, model: &binds)), '')" }
                sql = """
                    SELECT c.id::text AS key, ARRAY[\(columns.joined(separator: ", "))]::text[] AS cols
                    FROM analytics.contacts c WHERE \(conditions.joined(separator: " AND ")) ORDER BY c.id LIMIT \(q.bind(.int(Int64(limit))))
                    """
            }
        }
        return try await read(actor, sql, q.binds).map { (try $0.string("key"), try $0.strings("cols")) }
    }
}
