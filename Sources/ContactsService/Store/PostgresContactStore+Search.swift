import FoundationEssentials
import SwitchboardPostgres
import SwitchboardServiceKit

extension PostgresContactStore {
    /// Trigram similarity from which a tenant's word counts as a typo of a query's word ("jon" and "john" are 0.29,
    /// "smi" and "smyth" 0.25).
    static let typoThreshold = "0.27"
    /// Words a query's word may stand for, by prefix and by resemblance.
    static let prefixCandidates = 32
    static let typoCandidates = 16
    /// The weight of a word of digits that a query's word of digits begins (the word itself weighs 1).
    static let digitPrefixWeight = "0.7"

    /// The query's words (`tokens`: split by `contacts.word_list`, as the trigger splits a contact's text, each word once,
    /// numbered from 1 in the query's order, so that its first word is compared with the given name and the ranked
    /// sample starts from it) and what each may stand for (`candidates`: n, term, weight); $1 is the tenant and $2
    /// the text.
    private static let expansion = """
        \(tokens),
        candidates AS (
            SELECT k.n, m.term, max(m.weight) AS weight FROM tokens k CROSS JOIN LATERAL (
                \(prefixCandidatesOfToken)
                UNION ALL
                \(editCandidatesOfToken)
                UNION ALL
                \(typoCandidatesOfToken)
            ) m GROUP BY k.n, m.term
        )
        """

    /// The query's words, each once, numbered from 1 in the query's order.
    private static let tokens = """
        tokens AS (
            SELECT token, row_number() OVER (ORDER BY min(o)) AS n FROM (
                SELECT token, o FROM unnest(contacts.word_list($2)) WITH ORDINALITY AS m (token, o)
            ) x GROUP BY token ORDER BY min(o) LIMIT \(SearchRules.maxQueryWords)
        )
        """

    /// The candidates of a query word `k.token` that do not depend on the tenant's size: the tenant's words of letters
    /// it begins (a range of the terms' primary key, the shortest first), and for a word of digits itself and the
    /// words it begins.
    private static let prefixCandidatesOfToken = """
        (SELECT term, CASE WHEN term = k.token COLLATE "C" THEN 1.0
                           ELSE 0.6 + 0.3 * length(k.token)::float8 / length(term) END AS weight
         FROM contacts.search_terms
         WHERE tenant_id = $1 AND term >= k.token COLLATE "C" AND term < (k.token || chr(1114111)) COLLATE "C"
           AND k.token ~ '^[[:alpha:]]'
         ORDER BY length(term), term LIMIT \(prefixCandidates))
        UNION ALL
        (SELECT v.term, v.weight FROM (VALUES (k.token, 1.0::float8), (k.token || '*', \(digitPrefixWeight)::float8)) AS v (term, weight)
         WHERE k.token ~ '^[[:digit:]]')
        """

    /// The tenant's words of letters that resemble a query word `k.token` (trigram similarity, for words of three
    /// letters or more): whether the trigram index or the tenant's own terms are the cheaper way there depends on the
    /// tenant's size.
    private static let typoCandidatesOfToken = """
        (SELECT term, 0.5 + 0.5 * contacts.term_similarity(term, k.token) AS weight
         FROM contacts.search_terms
         WHERE tenant_id = $1 AND length(k.token) >= 3 AND k.token ~ '^[[:alpha:]]' AND term ~ '^[[:alpha:]]'
           AND contacts.term_resembles(term, k.token)
         ORDER BY contacts.term_similarity(term, k.token) DESC, term LIMIT \(typoCandidates))
        """

    /// The tenant's words one swap of neighbouring letters away from a query word `k.token` of four letters or more, or
    /// one letter shorter than one of five or more, weighing ``editWeight``. Each edit is looked up by key on its own
    /// (a lateral subquery with a limit), so that no plan, made once for an average tenant, can read a large tenant's
    /// terms instead. Trigrams miss these words: "jhon" and "john" share one
    /// trigram of nine (similarity 0.11), "smtih" and "smith" two of ten.
    private static let editCandidatesOfToken = """
        (SELECT v.term, \(editWeight)::float8 AS weight FROM (
             SELECT (substr(k.token, 1, i - 1) || substr(k.token, i + 1, 1) || substr(k.token, i, 1) || substr(k.token, i + 2)) COLLATE "C" AS term
             FROM generate_series(1, length(k.token) - 1) AS i WHERE substr(k.token, i, 1) <> substr(k.token, i + 1, 1)
             UNION
             SELECT (substr(k.token, 1, i - 1) || substr(k.token, i + 1)) COLLATE "C"
             FROM generate_series(1, length(k.token)) AS i WHERE length(k.token) >= 5
         ) v CROSS JOIN LATERAL (SELECT 1 FROM contacts.search_terms t WHERE t.tenant_id = $1 AND t.term = v.term LIMIT 1) held
         WHERE length(k.token) >= 4 AND k.token ~ '^[[:alpha:]]+$')
        """

    /// The weight of a word one swap or one deletion away from a query's word (a prefix weighs 0.6–0.9, a resemblance
    /// 0.6–1 by similarity, the word itself 1).
    static let editWeight = "0.8"

    /// The ranked search's candidates in two statements sent together: by prefix and by one edit, planned once per
    /// connection (ranges and keys whatever the tenant; with the edits in the statement planned at every execution,
    /// typo searches served 0.80× as many), and by resemblance, planned for each execution (a generic plan, made for an
    /// average tenant, read a large tenant's 300,000 terms for a typo: 1 s against 7 ms). Planning the one statement
    /// that did both was 0.66 of its 0.87 ms for "mar" (psql, the search benchmark's million contacts); apart, 0.3 ms
    /// of planning and 0.2 of execution. $1 is the tenant and $2 the text; rows of (n, term, weight, words), where
    /// `words` is the number of the query's words.
    static let candidateStatements = (
        prefix: "WITH \(tokens) SELECT k.n, m.term, m.weight::float8 AS weight, (SELECT count(*) FROM tokens) AS words "
            + "FROM tokens k CROSS JOIN LATERAL (\(prefixCandidatesOfToken) UNION ALL \(editCandidatesOfToken)) m",
        typo: "WITH \(tokens) SELECT k.n, m.term, m.weight::float8 AS weight, (SELECT count(*) FROM tokens) AS words "
            + "FROM tokens k CROSS JOIN LATERAL \(typoCandidatesOfToken) m"
    )

    /// The statement parts shared by the page and the facets: the query's words, what each may stand for (with a
    /// weight: the word itself 1, a word of letters it begins 0.6–0.9 by how much of it it is, a word of digits it begins
    /// 0.7, a word it resembles 0.6–1 by trigram similarity), the tsquery that needs every word, and the matching
    /// contacts.
    ///
    /// `tokens` splits the text as the trigger splits the contacts (`contacts.word_list`), in the query's order. For a
    /// word of letters `candidates` reads the tenant's terms by prefix (a range of the primary key, the shortest first)
    /// and by trigram similarity (the GIN index, through `contacts.term_resembles`, for words of three letters or
    /// more). A word of digits stands for itself and, as `<digits>*`, for every word it begins: `contacts.term_query`
    /// makes that a tsquery prefix, which the contacts' GIN index answers (the terms hold no words of digits, which
    /// were nearly all of them and could not all be candidates). `query` is NULL unless every word has a
    /// candidate, so a word that matches nothing matches no contact.
    /// - Parameters:
    ///   - cap: at most this many matches, in no particular order unless `newestFirst` (the facets').
    ///   - newestFirst: the matches under the cap are the newest (`contacts_by_created` read backwards), not whichever
    ///     a plan finds first.
    ///   - tsquery: the placeholder of the query's tsquery when the caller built it already (the words are not
    ///     expanded again).
    ///   - materialized: whether `matched` is materialized (for a statement that reads it more than once; one that
    ///     reads it once saves the copy).
    private static func matchedCTE(
        hasText: Bool, conditions: [String], columns: String, cap: Int? = nil, tsquery: String? = nil, materialized: Bool = true,
        newestFirst: Bool = false
    ) -> String {
        let filters = conditions.joined(separator: " AND ")
        let limit = (newestFirst ? " ORDER BY c.created_at DESC, c.id DESC" : "") + (cap.map { " LIMIT \($0)" } ?? "")
        let kind = materialized ? "MATERIALIZED" : "NOT MATERIALIZED"
        if hasText, let tsquery {
            return
                "WITH matched AS \(kind) (SELECT \(columns) FROM contacts.contacts c WHERE \(filters) AND c.search_words @@ \(tsquery)::tsquery\(limit))"
        }
        let text = hasText ? queryCTEs : ""
        let match = hasText ? " AND c.search_words @@ (SELECT q FROM query)" : ""
        return """
            WITH \(text)
            matched AS \(kind) (
                SELECT \(columns) FROM contacts.contacts c WHERE \(filters)\(match)\(limit)
            )
            """
    }

    /// The query's words, their candidates and (`query`, one row: `q`) the tsquery that needs every word, NULL when a
    /// word has no candidate; each followed by a comma, for a `WITH` list.
    private static let queryCTEs = """
        \(expansion),
        query AS (
            SELECT CASE WHEN count(*) = (SELECT count(*) FROM tokens) THEN string_agg('(' || alternatives || ')', ' & ')::tsquery END AS q
            FROM (SELECT n, string_agg(contacts.term_query(term)::text, ' | ') AS alternatives FROM candidates GROUP BY n) a
        ),
        """

    /// The conditions of every search, the tenant's live contacts; a search with only these has no filter of the
    /// caller's.
    static let tenantConditions = ["c.tenant_id = $1", "c.deleted_at IS NULL"]

    /// A search's filters as SQL conditions on `c` (contacts) and their binds: $1 is the tenant, $2 the text.
    static func filter(_ search: ContactSearch, tenantID: String) -> (hasText: Bool, conditions: [String], binds: [PostgresValue]) {
        let hasText = !SearchRules.words(search.text).isEmpty
        var binds: [PostgresValue] = [.text(tenantID), .text(search.text)]
        func bind(_ value: PostgresValue) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        // Only fixed column names and placeholders are spliced; every value is bound.
        var conditions = tenantConditions
        let q = search.filters
        if !q.statuses.isEmpty {
            conditions.append("c.status = ANY(\(bind(.array(q.statuses.map { .int(Int64($0.rawValue)) }, elementType: .int))))")
        }
        if !q.kinds.isEmpty {
            conditions.append("c.contact_type = ANY(\(bind(.array(q.kinds.map { .int(Int64($0.rawValue)) }, elementType: .int))))")
        }
        if !search.tags.isEmpty {
            conditions.append("c.tags @> \(bind(.array(search.tags.map { .text($0.lowercased()) }, elementType: .text)))::text[]")
        }
        if let owner = q.ownerID { conditions.append("c.owner_id = \(bind(.text(owner)))") }
        if let d = q.createdAfter { conditions.append("c.created_at > \(bind(.timestamp(d)))") }
        if let d = q.createdBefore { conditions.append("c.created_at < \(bind(.timestamp(d)))") }
        if let d = q.updatedAfter { conditions.append("c.updated_at > \(bind(.timestamp(d)))") }
        if let d = q.updatedBefore { conditions.append("c.updated_at < \(bind(.timestamp(d)))") }
        for filter in search.customFields {
            conditions.append("c.custom_fields ->> \(bind(.text(filter.key))) = \(bind(.text(filter.value)))")
        }
        return (hasText, conditions, binds)
    }

    /// The ``ContactStore`` requirement `search` (documented there).
    public func search(_ search: ContactSearch, actor: Actor) async throws -> ContactHits {
        var (hasText, conditions, binds) = Self.filter(search, tenantID: actor.tenantID)
        func bind(_ value: PostgresValue) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        let settings = [
            "app.tenant_id": actor.tenantID, "pg_trgm.similarity_threshold": Self.typoThreshold,
            "statement_timeout": String(search.timeoutMilliseconds),
            // The planner's costs for these statements pass JIT's threshold while they run in milliseconds: compiling
            // them took 85 ms a statement (measured on the benchmark's million contacts).
            "jit": "off",
            // A generic plan knows nothing of the bound tsquery: after five executions PostgreSQL took one for the
            // facets' statement that ran in 50 ms instead of 5. Statements that can do without a plan per execution
            // say so (`SearchStatements`).
            "plan_cache_mode": "force_custom_plan",
        ]
        // Facets count every match up to their bound, reading only the columns they need; when they counted that many,
        // the probe (one more than counted, ids only) tells whether there were more.
        func facetQuery(tsquery: String? = nil, binds: [PostgresValue]) -> FacetStatements? {
            guard !search.facets.isEmpty else { return nil }
            let counted = max(1, search.facetMatches)
            let cte = Self.matchedCTE(
                hasText: hasText, conditions: conditions, columns: Self.facetColumns(search.facets), cap: counted, tsquery: tsquery,
                materialized: false, newestFirst: Self.countsNewestFirst(search))
            let probe = Self.matchedCTE(
                hasText: hasText, conditions: conditions, columns: "c.id", cap: counted + 1, tsquery: tsquery, materialized: false)
            let (sql, facetBinds) = Self.facetStatement(search.facets, combinations: search.facetCombinations, cte: cte, binds: binds)
            return FacetStatements(
                counts: sql, probe: "\(probe) SELECT count(*) AS n FROM matched", binds: facetBinds, probeBinds: binds,
                settings: tsquery == nil ? [] : Self.facetPlanCosts)
        }
        if hasText && search.sort == .relevance {
            do {
                return try await pool.transaction(settings: settings) { c in
                    var statements = SearchStatements(connection: c)
                    // Without facets, the page's rows are the transaction's last statement and go with its COMMIT.
                    var (hits, query) = try await Self.ranked(
                        search, conditions: conditions, binds: binds, committingPage: search.facets.isEmpty, on: &statements)
                    hits.facets = search.facets.map { _ in [] }
                    if let query, let facets = facetQuery(tsquery: "$\(binds.count + 1)", binds: binds + [.text(query)]) {
                        (hits.facets, hits.facetsPartial) = try await Self.facets(search, facets, on: &statements)
                    }
                    return hits
                }
            } catch let error as PostgresError where error.sqlState == "57014" {
                throw ContactsError.searchTooExpensive(milliseconds: search.timeoutMilliseconds)
            }
        }
        // The score: per query word, the best weight among the contact's words it stands for, × 1.8 when it is the
        // name's word at the same place (the query's first word and the given name, its second and the family name),
        // × 1.5 elsewhere in the name. Only the page's contacts are scored: the order here is a field's (or, without
        // text, every score is 0), and scoring every match cost about 7 µs each.
        let score = """
            (SELECT coalesce(sum(best), 0) FROM (
                SELECT max(cd.weight * CASE WHEN cd.term = c.search_names[cd.n::int] THEN 1.8 WHEN cd.term = ANY(c.search_names) THEN 1.5 ELSE 1.0 END)
                    AS best
                FROM candidates cd WHERE c.search_words @@ contacts.term_query(cd.term) GROUP BY cd.n) b)::float8
            """
        // Relevance (only without text here, every score 0): id ascending. Fields: as asked, id in the same direction.
        let column: String
        switch search.sort {
        case .relevance: column = "id"
        case .createTime: column = "created_at"
        case .updateTime: column = "updated_at"
        case .familyName: column = "family_name"
        }
        let direction = search.sort != .relevance && search.descending ? "DESC" : "ASC"
        let order = search.sort == .relevance ? "id ASC" : "\(column) \(direction), id \(direction)"
        // The page's rows come back best first for relevance as for the other sorts (`score DESC` first changes nothing
        // when every score is 0, and orders them as the cursor was made).
        let rowOrder = search.sort == .relevance ? "score DESC, id ASC" : order
        // The page: the matches after the cursor in the sort's order, one more than the page, then their rows, cut
        // where they pass the page's bytes. `match` is the text's condition on `c` (a bound tsquery) and `candidates`
        // its words' candidates as (n, term, weight) arrays, or neither without text. Without text the page is an index
        // range in the sort's order (`contacts_by_created` and the like, or the primary key): it reads its own rows
        // however many the tenant has. With text the tsquery is bound, so the planner knows how many contacts hold its
        // words: a rare word's few from the GIN index, then sorted; a common word's by walking the sort's index.
        func page(
            match: String, candidates: (n: [PostgresValue], terms: [PostgresValue], weights: [PostgresValue])?, binds: [PostgresValue]
        )
            -> (String, [PostgresValue])
        {
            var binds = binds
            func bind(_ value: PostgresValue) -> String {
                binds.append(value)
                return "$\(binds.count)"
            }
            var after = ""
            if let cursor = search.after {
                let id = bind(.uuid(cursor.id))
                switch search.sort {
                case .relevance:
                    // A cursor's score: 0 unless it came from a search with text (then nothing here is after a higher one).
                    let key = "\(bind(.double(Double(cursor.key) ?? 0)))::float8"
                    after = " AND (0::float8 < \(key) OR (0::float8 = \(key) AND c.id > \(id)))"
                case .familyName:
                    after = " AND (c.family_name, c.id) \(search.descending ? "<" : ">") (\(bind(.text(cursor.key))), \(id))"
                case .createTime, .updateTime:
                    let key = "('epoch'::timestamptz + \(bind(.int(Int64(cursor.key) ?? 0))) * interval '1 microsecond')"
                    after = " AND (c.\(column), c.id) \(search.descending ? "<" : ">") (\(key), \(id))"
                }
            }
            let limit = bind(.int(Int64(max(0, min(search.limit, SearchRules.maxPageSize)) + 1)))
            let maxBytes = bind(.int(Int64(max(0, search.maxBytes))))
            let scored = candidates.map { candidates in
                """
                candidates AS (
                    SELECT * FROM unnest(\(bind(.array(candidates.n, elementType: .int)))::int8[], \(bind(.array(candidates.terms, elementType: .text)))::text[],
                        \(bind(.array(candidates.weights, elementType: .double)))::float8[]) AS cd (n, term, weight)
                ),
                """
            }
            let sql = """
                WITH \(scored ?? "")
                hits AS (
                    SELECT c.id AS hit_id FROM contacts.contacts c WHERE \(conditions.joined(separator: " AND "))\(match)\(after)
                    ORDER BY \(order) LIMIT \(limit)
                ),
                rows_of_page AS (
                    SELECT \(Self.columns), c.organization_names, \(scored == nil ? "0::float8" : score) AS score, count(*) OVER () AS candidates
                    FROM hits h JOIN contacts.contacts c ON c.tenant_id = $1 AND c.id = h.hit_id
                )
                SELECT * FROM (
                    SELECT p.*,
                        coalesce(sum(octet_length(p::text)) OVER (ORDER BY \(rowOrder) ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
                            AS bytes_before
                    FROM rows_of_page p
                ) r WHERE bytes_before < \(maxBytes) ORDER BY \(rowOrder)
                """
            return (sql, binds)
        }
        func hits(_ rows: [PostgresRow], terms: Set<String>) throws -> ContactHits {
            let candidates = try rows.first?.int("candidates") ?? 0
            var hits = try rows.map {
                ContactHit(record: try Self.record($0), score: try $0.double("score"), organizationNames: try $0.strings("organization_names"))
            }
            if hits.count > search.limit { hits.removeLast(hits.count - max(0, search.limit)) }
            return ContactHits(hits: hits, more: candidates > hits.count, terms: terms, facets: search.facets.map { _ in [] })
        }
        do {
            return try await pool.transaction(settings: settings) { c in
                var statements = SearchStatements(connection: c)
                guard hasText else {
                    let (sql, pageBinds) = page(match: "", candidates: nil, binds: binds)
                    var found = try hits(
                        try await statements.query(sql, pageBinds, planOnce: false, committing: search.facets.isEmpty).rows, terms: [])
                    if let facets = facetQuery(binds: binds) {
                        (found.facets, found.facetsPartial) = try await Self.facets(search, facets, on: &statements)
                    }
                    return found
                }
                guard let expanded = try await Self.expandSortedByField(binds, text: search.text, on: &statements) else {
                    return try hits([], terms: [])
                }
                guard let query = expanded.query else { return try hits([], terms: expanded.terms) }
                let tsquery = "$\(binds.count + 1)"
                let textBinds = binds + [.text(query)]
                var n: [PostgresValue] = [], terms: [PostgresValue] = [], weights: [PostgresValue] = []
                for (index, word) in expanded.words.enumerated() {
                    for candidate in word {
                        n.append(.int(Int64(index + 1)))
                        terms.append(.text(candidate.term))
                        weights.append(.double(candidate.weight))
                    }
                }
                let (sql, pageBinds) = page(match: " AND c.search_words @@ \(tsquery)::tsquery", candidates: (n, terms, weights), binds: textBinds)
                var found = try hits(
                    try await statements.query(sql, pageBinds, planOnce: false, committing: search.facets.isEmpty).rows, terms: expanded.terms)
                if let facets = facetQuery(tsquery: tsquery, binds: textBinds) {
                    (found.facets, found.facetsPartial) = try await Self.facets(search, facets, on: &statements)
                }
                return found
            }
        } catch let error as PostgresError where error.sqlState == "57014" {
            // query_canceled: the statement timeout fired.
            throw ContactsError.searchTooExpensive(milliseconds: search.timeoutMilliseconds)
        }
    }

    /// The ``ContactStore`` requirement `mostAddresses` (documented there). One pass over the tenant's matching rows
    /// (a million contacts: 0.35 s warm), asked only by a CSV export that writes addresses.
    public func mostAddresses(_ search: ContactSearch, actor: Actor) async throws -> Int {
        let (hasText, conditions, filterBinds) = Self.filter(search, tenantID: actor.tenantID)
        let settings = [
            "app.tenant_id": actor.tenantID, "pg_trgm.similarity_threshold": Self.typoThreshold,
            "statement_timeout": String(search.timeoutMilliseconds * 10), "jit": "off", "plan_cache_mode": "force_custom_plan",
        ]
        do {
            return try await pool.transaction(settings: settings) { c in
                // The matches of the text as the export's pages find them (a search sorted by a field), so a narrow
                // export's header has the groups its own contacts need, not the tenant's most.
                var statements = SearchStatements(connection: c)
                var binds = filterBinds
                var conditions = conditions
                if hasText {
                    guard let query = try await Self.expandSortedByField(filterBinds, text: search.text, on: &statements)?.query else { return 0 }
                    binds.append(.text(query))
                    conditions.append("c.search_words @@ $\(binds.count)::tsquery")
                }
                let sql = """
                    SELECT coalesce(max(jsonb_array_length(c.addresses)), 0) AS n FROM contacts.contacts c
                    WHERE \(conditions.joined(separator: " AND "))
                    """
                return Int(try await statements.query(sql, binds, planOnce: false).rows.first?.int("n") ?? 0)
            }
        } catch let error as PostgresError where error.sqlState == "57014" {
            throw ContactsError.searchTooExpensive(milliseconds: search.timeoutMilliseconds * 10)
        }
    }

    /// A search's facet statements (see `facetQuery` in ``search(_:actor:)``).
    struct FacetStatements {
        /// Counts per facet over at most the bound of matches: the combinations of facet values to count (facet -2), or
        /// each facet's first values and (as facet -1) how many matches were counted (``facetStatement(_:combinations:cte:binds:)``).
        var counts: String
        /// How many matches there are up to one more than the bound.
        var probe: String
        var binds: [PostgresValue]
        var probeBinds: [PostgresValue]
        /// Planner settings for both (``facetPlanCosts`` when the matches are read by the search words' index).
        var settings: [(name: String, value: String)] = []
    }

    /// Reads the facet statement's counts: per facet asked, its values and counts; and whether more matches existed
    /// than were counted (asked of the probe only when the counts reached the bound).
    static func facets(
        _ search: ContactSearch, _ statements: FacetStatements, on c: inout SearchStatements
    ) async throws -> (facets: [[(value: String, count: Int)]], partial: Bool) {
        var counts = Array(repeating: [(value: String, count: Int)](), count: search.facets.count)
        var combined = Array(repeating: [String: Int](), count: search.facets.count)
        var combining = false
        var counted = 0
        // Planned for each execution: how many contacts hold the tsquery's words decides the plan, under costs that
        // read cached pages as cached (``facetPlanCosts``).
        for row in try await c.query(statements.counts, statements.binds, planOnce: false, settings: statements.settings).rows {
            let index = Int(try row.int("facet"))
            if index == -2 {
                combining = true
                let n = Int(try row.int("n"))
                counted += n
                // A tag facet's value is its list; any other facet's is text, or NULL where a contact has none.
                for facet in search.facets.indices {
                    switch row["e\(facet)"] {
                    case .array(let tags, _): for case .text(let tag) in tags { combined[facet][tag, default: 0] += n }
                    case .text(let value): combined[facet][value, default: 0] += n
                    default: continue
                    }
                }
            } else if index == -1 {
                counted = Int(try row.int("n"))
            } else if counts.indices.contains(index) {
                counts[index].append((try row.string("value"), Int(try row.int("n"))))
            }
        }
        if combining { counts = combined.map(Self.mostFrequent) }
        let bound = max(1, search.facetMatches)
        guard counted >= bound else { return (counts, false) }
        return (counts, try await c.query(statements.probe, statements.probeBinds, planOnce: false).first?.int("n") ?? 0 > bound)
    }

    /// Whether a search's facets count its newest matches when there are more than they count: without text, and with
    /// no filter that an index of its own serves (tags, owner, custom fields). Otherwise the matches come from a
    /// sequential scan that stops at the bound, and in a table shared by tenants PostgreSQL's synchronized scans start it
    /// wherever the last scan stopped: counts that changed between two identical searches, in 9 ms or in 435 ms when the
    /// scan first crossed another tenant's million rows (a tenant of 200,000, `psql`). The newest come from
    /// `contacts_by_created` read backwards, in 8.5–10 ms warm for both benchmark tenants. Not with those filters: there
    /// the filter's own index finds the matches (a tag's, an owner's), and sorting all of them first cost 2–5 times as
    /// much (BENCHMARKS.md).
    static func countsNewestFirst(_ search: ContactSearch) -> Bool {
        SearchRules.words(search.text).isEmpty && search.tags.isEmpty && search.filters.ownerID == nil && search.customFields.isEmpty
    }

    /// The planner's costs for the facet statement and the probe after it (for the rest of the search's transaction)
    /// when they read the matches by the search words' index. With the defaults, the planner expects a word's matches to lie on as many heap pages as there are matches, each a
    /// random read, and so ANDs the search words' bitmap with a bitmap of the tenant's every row to read fewer of them:
    /// for a tenant of 200,000 contacts that bitmap took 8–11 ms of a 10–13 ms statement, while reading the matches of
    /// every tenant and filtering took 3.6–7 ms (a family name's rows sit together, and the pages are cached). At these
    /// costs a tenant row in a bitmap is weighed at a tenth of a match read: the bitmap is left out where it costs more,
    /// and kept for small tenants (5,000 and 50,000 contacts kept it, at the same times), whose matches are a few among
    /// every tenant's. Not without text: there they would price the probe's index-only walk of the tenant above a
    /// sequential scan (4–5 against 8 ms for the big tenant). BENCHMARKS.md, "Why the planner ANDs".
    static let facetPlanCosts = [("random_page_cost", "1.1"), ("cpu_index_tuple_cost", "0.1")]

    /// A facet's first ``SearchRules/facetValues`` values by count, then by value in bytes (as the facet statement orders
    /// them when it ranks: `COLLATE "C"`).
    static func mostFrequent(_ values: [String: Int]) -> [(value: String, count: Int)] {
        values.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            .prefix(SearchRules.facetValues).map { (value: $0.key, count: $0.value) }
    }

    /// The columns the facet statement's matches carry: only those the facets asked for read (a custom field's
    /// facet reads the whole jsonb).
    static func facetColumns(_ facets: [ContactSearch.FacetField]) -> String {
        var columns = ["c.id"]
        for facet in facets {
            let column: String
            switch facet {
            case .status: column = "c.status"
            case .type: column = "c.contact_type"
            // The tags as one text value (migration 021): the grouping key that costs no array copy per match.
            case .tag: column = "c.facet_tags"
            case .owner: column = "c.owner_id"
            case .customField: column = "c.custom_fields"
            }
            if !columns.contains(column) { columns.append(column) }
        }
        return columns.joined(separator: ", ")
    }

    /// A term as a tsquery operand. Lexemes are runs of letters or digits; quoting them anyway keeps the tsquery's
    /// syntax out of reach. A term ending in '*' is a word of digits as a prefix (as `contacts.term_query` reads it).
    static func lexeme(_ term: String) -> String {
        let prefix = term.hasSuffix("*")
        let word = prefix ? String(term.dropLast()) : term
        return "'" + word.replacing("\\", with: "\\\\").replacing("'", with: "''") + "'" + (prefix ? ":*" : "")
    }

    /// Below every id: a cursor's id bound for the tiers it does not cut (a bound, not an OR, so that it narrows the
    /// index range instead of filtering a tier's contacts from its start on every later page).
    static let noID = "'00000000-0000-0000-0000-000000000000'::uuid"

    /// One matched contact, ranked.
    struct RankedMatch {
        var id: UUID
        /// The id's bytes as two big-endian halves: their order is uuid order (PostgreSQL compares the bytes).
        var high: UInt64
        var low: UInt64
        var score: Double
        /// Past a cut sample: one of the matches the sample left out, which follow it in id order.
        var tail = false

        init(id: UUID, score: Double, tail: Bool = false) {
            self.id = id
            self.score = score
            self.tail = tail
            (high, low) = Self.halves(id)
        }

        static func halves(_ id: UUID) -> (UInt64, UInt64) {
            withUnsafeBytes(of: id.uuid) { bytes in
                (UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self)), UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
        }

        /// Best first, then id ascending.
        func precedes(_ other: RankedMatch) -> Bool {
            score != other.score ? score > other.score : (high, low) < (other.high, other.low)
        }
    }

    /// A query's words and what each stands for (``expand(_:on:)``).
    struct Expansion {
        /// Per query word, in the query's order: its candidates, best first (then by term).
        var words: [[(term: String, weight: Double)]]
        /// Every candidate of every word.
        var terms: Set<String>
        /// The candidates that are prefixes (`<word>*`: of digits, or of letters by ``addLetterPrefixes(to:text:)``),
        /// sorted.
        var prefixTerms: [String]
        /// The tsquery that needs every word (one of its candidates each); nil when a word has none, so nothing
        /// matches.
        var query: String?
    }

    /// Reads the candidates of the query's words (`candidateStatements`: $1 the tenant, $2 the text, in `binds`), in one
    /// round trip: by resemblance first, since the transaction starts planning at every execution and the statements
    /// after these (name tiers and pairs without a filter) are planned once, as the prefix statement is: one switch, not
    /// three.
    /// - Returns: the words and their candidates, or nil when the text has no word.
    static func expand(_ binds: [PostgresValue], on c: inout SearchStatements) async throws -> Expansion? {
        let expansion = try await c.queries([
            (Self.candidateStatements.typo, Array(binds.prefix(2)), planOnce: false),
            (Self.candidateStatements.prefix, Array(binds.prefix(2)), planOnce: true),
        ]).flatMap(\.rows)
        guard let wordCount = try expansion.first.map({ Int(try $0.int("words")) }), wordCount > 0 else { return nil }
        // A word found both ways weighs its better weight.
        var weights = Array(repeating: [String: Double](), count: wordCount)
        for row in expansion {
            let n = Int(try row.int("n"))
            guard n >= 1 && n <= wordCount else { continue }
            let term = try row.string("term"), weight = try row.double("weight")
            weights[n - 1][term] = max(weights[n - 1][term] ?? weight, weight)
        }
        var words = weights.map { $0.map { (term: $0.key, weight: $0.value) } }
        for i in words.indices { words[i].sort { $0.weight != $1.weight ? $0.weight > $1.weight : $0.term < $1.term } }
        let terms = Set(words.flatMap { $0.map(\.term) })
        let query =
            words.allSatisfy { !$0.isEmpty }
            ? words.map { "(" + $0.map { Self.lexeme($0.term) }.joined(separator: " | ") + ")" }.joined(separator: " & ") : nil
        return Expansion(words: words, terms: terms, prefixTerms: terms.filter { $0.hasSuffix("*") }.sorted(), query: query)
    }

    /// A query's words as a search sorted by a field reads them (and so an export, an audience, a bulk tag and an
    /// export's address count, which must match the same contacts): ``expand(_:on:)`` with
    /// ``addLetterPrefixes(to:text:)``. Nil when a word stands for nothing.
    static func expandSortedByField(_ binds: [PostgresValue], text: String, on c: inout SearchStatements) async throws -> Expansion? {
        guard var expanded = try await expand(binds, on: &c) else { return nil }
        addLetterPrefixes(to: &expanded, text: text)
        return expanded
    }

    /// Sorted by a field (as exports and audiences page too), a search walks its matches in the field's order, so it
    /// can afford every one: a word of letters whose candidates by prefix reached their bound (the
    /// ``prefixCandidates`` shortest words it begins) also stands for every word it begins, as `<word>*` weighing 0.6
    /// (the least a word it begins weighs). "mar" then finds "Marguerite" on some page however many shorter words
    /// begin with "mar". A relevance search keeps the bound: it ranks its matches by their candidates.
    /// - Parameter text: the query's text, split as `tokens` splits it (each word once, in order, at most
    ///   ``SearchRules/maxQueryWords``); nothing is added when that gives another number of words.
    static func addLetterPrefixes(to expansion: inout Expansion, text: String) {
        var seen: Set<String> = []
        let tokens = SearchRules.words(text).filter { seen.insert($0).inserted }.prefix(SearchRules.maxQueryWords)
        guard tokens.count == expansion.words.count else { return }
        var added = false
        for (i, token) in tokens.enumerated() {
            guard let first = token.utf8.first, !(0x30...0x39).contains(first),
                expansion.words[i].count(where: { $0.term.hasPrefix(token) }) >= prefixCandidates
            else { continue }
            expansion.words[i].append((term: token + "*", weight: 0.6))
            expansion.terms.insert(token + "*")
            expansion.prefixTerms.append(token + "*")
            added = true
        }
        guard added, expansion.query != nil else { return }
        expansion.prefixTerms.sort()
        expansion.query = expansion.words.map { "(" + $0.map { Self.lexeme($0.term) }.joined(separator: " | ") + ")" }.joined(separator: " & ")
    }

    /// A relevance-ordered search with text. PostgreSQL finds the matches and returns their words; the service picks
    /// the candidates each holds, ranks them, then reads the page's rows by key. Ranking in SQL cost about 7 µs a
    /// match (a correlated subquery per row), several times the cost of finding it.
    ///
    /// Statements, in the search's transaction: (1) the candidates of every query word; then, for words of letters,
    /// (2a) one word: its tiers (``tiered``, exact, no ceiling), or (2b) two words: their name pairs when they prove
    /// the page (``namePairs``); otherwise (2c) every match up to `rankedMatches` + 1 (one scan of the index for the
    /// whole query, whose words narrow each other), and when that found more, or for a word of digits alone, (3) a
    /// ranked sample: the contacts holding the first word's best candidates first, each candidate's read by the index up
    /// to the sample's size; (4) the page's rows. When the sample is cut, the matches it left out follow it, in id order
    /// (each with its own score): (3b) the next of them after the page's ranked hits or the cursor, so no match is out
    /// of reach of a relevance search's pages.
    /// - Returns: the page, and the tsquery of the whole query (nil when a word has no candidate: nothing matches).
    /// - Parameter committingPage: whether the page's rows are the transaction's last statement, to be sent with its
    ///   COMMIT.
    static func ranked(
        _ search: ContactSearch, conditions: [String], binds: [PostgresValue], committingPage: Bool = false, on c: inout SearchStatements
    ) async throws -> (ContactHits, query: String?) {
        guard let expanded = try await expand(binds, on: &c) else {
            return (ContactHits(hits: [], more: false, terms: [], facets: []), nil)
        }
        let (words, terms, prefixTerms) = (expanded.words, expanded.terms, expanded.prefixTerms)
        let wordCount = words.count
        // A word with no candidate matches no contact.
        guard let query = expanded.query else { return (ContactHits(hits: [], more: false, terms: terms, facets: []), nil) }

        let filterBinds = binds
        var binds = binds
        func bind(_ value: PostgresValue) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        let filters = conditions.joined(separator: " AND ")
        // A match's words come back whole and the service picks the candidates among them (`SearchRules.held`).
        let holding = SearchRules.HeldCandidates(terms: terms.subtracting(prefixTerms), prefixes: prefixTerms)
        let sample = max(1, search.rankedMatches)
        let columns = "c.id, c.search_names, c.search_words::text AS words"

        var rows: [PostgresRow] = []
        var sampleRows = 0
        var complete = false
        var matches: [RankedMatch] = []
        // A cursor past a cut sample: only the sample's path reaches there (the name pairs' and tiers' pages are exact).
        let tailCursor = search.after?.key == SearchCursor.tailKey ? search.after?.id : nil
        if wordCount == 2 && prefixTerms.isEmpty && tailCursor == nil,
            let page = try await Self.namePairs(
                search, candidates: words, filters: filters, binds: binds, planOnce: conditions == Self.tenantConditions, holding: holding, on: &c)
        {
            matches = page
            complete = true
        } else if wordCount == 1 && prefixTerms.isEmpty {
            matches = try await Self.tiered(
                search, candidates: words[0], filters: filters, binds: binds, planOnce: conditions == Self.tenantConditions, holding: holding,
                on: &c)
            complete = true
        } else if wordCount > 1 {
            let q = bind(.text(query))
            rows = try await c.query(
                "SELECT \(columns) FROM contacts.contacts c WHERE \(filters) AND c.search_words @@ \(q)::tsquery LIMIT \(sample + 1)", binds,
                planOnce: false
            ).rows
            complete = rows.count <= sample
            if !complete { binds.removeLast() }
        }
        if !complete {
            let first = bind(.array(words[0].map { .text($0.term) }, elementType: .text))
            let sampled: String
            if wordCount > 1 {
                sampled =
                    "SELECT \(columns) FROM contacts.contacts c WHERE \(filters) AND c.search_words @@ (contacts.term_query(t.term) && \(bind(.text(query)))::tsquery)"
            } else {
                // One word: a candidate's contacts match the whole query, and the candidates they hold are not read
                // (see below).
                sampled = "SELECT c.id, c.search_names FROM contacts.contacts c WHERE \(filters) AND c.search_words @@ contacts.term_query(t.term)"
            }
            rows = try await c.query(
                """
                SELECT x.*, t.i FROM unnest(\(first)::text[]) WITH ORDINALITY AS t (term, i) CROSS JOIN LATERAL (\(sampled) LIMIT \(sample)) x
                LIMIT \(sample)
                """, binds, planOnce: false
            ).rows
            sampleRows = rows.count
            if wordCount == 2 && prefixTerms.isEmpty {
                // The name pairs' contacts first, best first (up to the sample's size): they outrank every other
                // contact, and earlier pages may have come from them (``namePairs``), so the ranked pages go on from
                // them in order and the tail never repeats one (unless more than the sample's size of them were paged).
                let pairs = try await Self.pairWalk(
                    candidates: words, filters: filters, binds: filterBinds, planOnce: conditions == Self.tenantConditions, limit: sample,
                    after: nil, on: &c)
                rows = (pairs?.rows ?? []) + rows
            }
        }

        matches.reserveCapacity(rows.count)
        // Only the sample can name a contact twice (once per candidate it holds).
        var seen = Set<UUID>(minimumCapacity: complete ? 0 : rows.count)
        for row in rows {
            let id = try row.uuid("id")
            if !complete { guard seen.insert(id).inserted else { continue } }
            let names = try row.strings("search_names")
            let present: [String]
            if wordCount == 1 {
                // The sample reads candidates best weight first, so a contact first comes with the best-weighted
                // candidate it holds; any better score needs a factor above 1, i.e. a candidate among its name's
                // words. So that candidate and the name's words score it exactly as all its words would.
                let index = Int(try row.int("i")) - 1
                present = words[0].indices.contains(index) ? [words[0][index].term] + names : names
            } else {
                present = holding.held(in: try row.string("words"))
            }
            matches.append(RankedMatch(id: id, score: SearchRules.score(names: names, holding: present, candidates: words)))
        }
        matches.sort { $0.precedes($1) }
        // A sample that reached its size left matches out (a whole query's scan found more, or a word of digits' walk
        // filled it): they follow the ranked ones. The sample is read in the indexes' order, recomputed per page: pages
        // reach every match once while the matches do not change (a write between pages can move a contact between
        // the sample and the tail, and a tail cursor of a query no longer cut ends the pages).
        let cut = !complete && sampleRows >= sample
        let sampled = cut ? matches.map(\.id) : []
        if tailCursor != nil {
            matches = []
        } else if let after = search.after {
            let cursor = RankedMatch(id: after.id, score: Double(after.key) ?? 0)
            matches.removeAll { !cursor.precedes($0) }
        }
        let limit = max(0, min(search.limit, SearchRules.maxPageSize))
        var page = Array(matches.prefix(limit + 1))
        if cut, page.count <= limit {
            var tailBinds = filterBinds
            func tailBind(_ value: PostgresValue) -> String {
                tailBinds.append(value)
                return "$\(tailBinds.count)"
            }
            let tail = try await c.query(
                """
                SELECT \(columns) FROM contacts.contacts c WHERE \(filters) AND c.search_words @@ \(tailBind(.text(query)))::tsquery
                    AND c.id > \(tailCursor.map { tailBind(.uuid($0)) } ?? Self.noID) AND NOT c.id = ANY(\(tailBind(.array(sampled.map(PostgresValue.uuid), elementType: .uuid))))
                ORDER BY c.id LIMIT \(limit + 1 - page.count)
                """, tailBinds, planOnce: false
            ).rows
            for row in tail {
                let names = try row.strings("search_names")
                let score = SearchRules.score(names: names, holding: holding.held(in: try row.string("words")), candidates: words)
                page.append(RankedMatch(id: try row.uuid("id"), score: score, tail: true))
            }
        }
        guard !page.isEmpty else { return (ContactHits(hits: [], more: false, terms: terms, facets: []), query) }

        // The page's rows: the page stops once it holds `maxBytes` of their text (at least one hit). Their size is
        // the values' as received: PostgreSQL's `octet_length(row::text)` was half of this statement's time.
        let rowsOfPage = try await c.query(
            "SELECT \(Self.columns), c.organization_names FROM contacts.contacts c WHERE c.tenant_id = $1 AND c.id = ANY($2::uuid[])",
            [binds[0], .array(page.map { .uuid($0.id) }, elementType: .uuid)], planOnce: true, committing: committingPage
        ).rows
        var byID: [UUID: PostgresRow] = [:]
        for row in rowsOfPage { byID[try row.uuid("id")] = row }
        var hits: [ContactHit] = []
        var bytes = 0
        var available = 0
        for match in page {
            // A contact deleted since it matched is left out.
            guard let row = byID[match.id] else { continue }
            available += 1
            guard bytes < search.maxBytes else { continue }
            bytes += row.textBytes
            hits.append(
                ContactHit(
                    record: try Self.record(row), score: match.score, organizationNames: try row.strings("organization_names"), tail: match.tail))
        }
        if hits.count > limit { hits.removeLast(hits.count - limit) }
        return (ContactHits(hits: hits, more: available > hits.count || matches.count > page.count, terms: terms, facets: []), query)
    }

    /// A relevance page of a one-word query (of letters), exact and without reading every match. A contact's score
    /// is the best among its candidates' weight × 1.8 when the candidate is its first name word, × 1.5 elsewhere in
    /// its name, × 1 elsewhere in its words: so every contact belongs to "tiers" — (candidate, where) — and scores the
    /// value of its best one. Each tier lists, in id order, its contacts that belong to no better tier, so the page is
    /// the tiers best first, each in id order. The name tiers are index ranges (migration 016: the first name word,
    /// the second, the rest), and one statement walks them that way (an incremental sort by value, then id, under the
    /// page's limit), stopping once the page is full: a broad word reads a few index ranges instead of every match.
    /// The word tiers (value = the weight) are read only when the name tiers left the page short of them, each up to
    /// a page and one in id order; then the page is still exact, since a tier cut there gives that many scores of at
    /// least its value. (They are not in the name tiers' statement: to close a group of equal value its sort reads the
    /// next tier, and a word tier is no index range.) Each word tier is read among the tenant's first contacts by id,
    /// then, when that leaves it short, from its word's holders through the GIN index.
    /// - Parameter planOnce: whether the name tiers' statement is planned once per connection (no filter of the
    ///   caller's: its values reach the plan only through the lateral walk, whose shape they cannot change).
    /// - Returns: the page and one more hit when there is one, scored, best first; all of them follow the cursor.
    static func tiered(
        _ search: ContactSearch, candidates: [(term: String, weight: Double)], filters: String, binds: [PostgresValue], planOnce: Bool,
        holding: SearchRules.HeldCandidates, on c: inout SearchStatements
    ) async throws -> [RankedMatch] {
        let size = max(0, min(search.limit, SearchRules.maxPageSize)) + 1
        let filterBinds = binds
        var binds = binds
        func bind(_ value: PostgresValue) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        let terms = bind(.array(candidates.map { .text($0.term) }, elementType: .text))
        let weights = bind(.array(candidates.map { .double($0.weight) }, elementType: .double))
        let cursorScore = bind(search.after.map { .double(Double($0.key) ?? 0) } ?? .null)
        let cursorID = bind(search.after.map { .uuid($0.id) } ?? .null)
        let perTier = bind(.int(Int64(size)))
        // A tier's contacts that belong to no better tier, after the cursor, in id order, at most a page and one.
        func list(_ position: Int, _ condition: String) -> String {
            """
            (SELECT c.id, c.search_names, c.search_words::text AS words FROM contacts.contacts c
             WHERE t.pos = \(position) AND \(filters) AND \(condition)
               AND NOT coalesce(c.search_names[1] = ANY(ARRAY(SELECT term FROM cand WHERE w * 1.8::float8 > t.v)), false)
               AND NOT c.search_names && ARRAY(SELECT term FROM cand WHERE w * 1.5::float8 > t.v)
               AND NOT coalesce(c.search_words @@ (SELECT string_agg(contacts.term_query(term)::text, ' | ') FROM cand WHERE w > t.v)::tsquery, false)
               AND c.id > CASE WHEN \(cursorScore)::float8 IS NULL OR t.v < \(cursorScore)::float8 THEN \(Self.noID) ELSE \(cursorID)::uuid END
             ORDER BY c.id LIMIT \(perTier))
            """
        }
        // The rest of the name less its first two words: the expression of the partial index contacts_name_rest.
        let rest = "array_remove(array_remove(c.search_names[3:], c.search_names[1]), c.search_names[2])"
        // Name tiers: 1 the first name word, 2 the second, 3 the rest of the name (the word tiers follow below); the
        // products are the service's (`SearchRules.score`: the same doubles multiplied the same way). A tier above
        // the cursor's score is behind it.
        let tiers = """
            WITH cand AS MATERIALIZED (SELECT term, w FROM unnest(\(terms)::text[], \(weights)::float8[]) AS u (term, w)),
            tiers AS MATERIALIZED (
                SELECT term, pos, w * f AS v FROM cand, (VALUES (1, 1.8::float8), (2, 1.5::float8), (3, 1.5::float8)) AS p (pos, f)
                WHERE \(cursorScore)::float8 IS NULL OR w * f <= \(cursorScore)::float8
            )
            """
        let nameTiers = """
            \(tiers)
            SELECT t.v, x.* FROM (SELECT * FROM tiers ORDER BY v DESC) t CROSS JOIN LATERAL (
                \(list(1, "c.search_names[1] = t.term")) UNION ALL \(list(2, "c.search_names[2] = t.term"))
                UNION ALL \(list(3, "cardinality(c.search_names) > 2 AND \(rest) @> ARRAY[t.term]"))
            ) x
            ORDER BY t.v DESC, x.id LIMIT
            """
        var byID: [UUID: RankedMatch] = [:]
        func score(_ rows: [PostgresRow]) throws {
            for row in rows {
                let id = try row.uuid("id")
                guard byID[id] == nil else { continue }
                let names = try row.strings("search_names")
                let present = holding.held(in: try row.string("words"))
                byID[id] = RankedMatch(id: id, score: SearchRules.score(names: names, holding: present, candidates: [candidates]))
            }
        }
        // A contact in two name tiers of the same value (two candidates of one weight in its name) comes twice: read
        // on until the page has as many different contacts (or the tiers end).
        var limit = size
        while true {
            let rows = try await c.query("\(nameTiers) \(bind(.int(Int64(limit))))", binds, planOnce: planOnce).rows
            binds.removeLast()
            byID.removeAll()
            try score(rows)
            if byID.count >= size || rows.count < limit { break }
            limit += rows.count - byID.count
        }
        var matches = byID.values.sorted { $0.precedes($1) }
        // The word tiers whose value reaches the page's last score (all of them when the page is not full), behind
        // the cursor's none. A word tier's contacts hold its word outside their names: PostgreSQL cannot tell how
        // many of a word's holders that is, and planned for a common word held mostly in names it walked the tenant
        // by id looking for them (4.7 s at a million contacts: "garcia" on its last page, or under a filter). So each
        // tier is read in two bounded ways: first among the tenant's first contacts by id, one walk for every tier (a
        // word held outside names that often fills its tier there; deleted contacts count, so that a tenant's many
        // deleted ones cannot make the walk long, and each tier's conditions leave them out); then, for a tier that
        // came out short, from all of its word's holders through the GIN index (`OFFSET 0` keeps that plan from
        // walking by id), sorted by id. Either way a tier yields every one of its contacts in an id range that starts
        // at its bound, so the page stays exact (see above). The walk's size is `search.wordTierWalk`.
        let last = matches.count >= size ? matches[size - 1].score : -Double.infinity
        let after = search.after.map { (score: Double($0.key) ?? 0, id: $0.id) }
        // Their own statements: the filters' values and each tier's.
        binds = filterBinds
        var conditions: [String] = []
        for candidate in candidates where candidate.weight >= last {
            let v = candidate.weight
            if let after, v > after.score { continue }
            let term = bind(.text(candidate.term))
            let betterFirst = bind(.array(candidates.filter { $0.weight * 1.8 > v }.map { .text($0.term) }, elementType: .text))
            let betterName = bind(.array(candidates.filter { $0.weight * 1.5 > v }.map { .text($0.term) }, elementType: .text))
            // The word, and none of the better words: one tsquery, which the GIN index answers whole (a word every
            // contact holds beside a better one gives an empty bitmap, not a million rows to filter) and whose
            // selectivity PostgreSQL estimates.
            let better = candidates.filter { $0.weight > v }.map { Self.lexeme($0.term) }
            let words = bind(.text(Self.lexeme(candidate.term) + (better.isEmpty ? "" : " & !(" + better.joined(separator: " | ") + ")")))
            let from = after.map { v == $0.score ? "\(bind(.uuid($0.id)))::uuid" : Self.noID } ?? Self.noID
            conditions.append(
                """
                \(filters) AND c.search_words @@ \(words)::tsquery AND NOT \(term) = ANY(c.search_names)
                   AND NOT coalesce(c.search_names[1] = ANY(\(betterFirst)::text[]), false)
                   AND NOT c.search_names && \(betterName)::text[]
                   AND c.id > \(from)
                """)
        }
        guard !conditions.isEmpty else { return matches }
        let tierLimit = bind(.int(Int64(size)))
        let walked = conditions.indices.map { tier in
            "(SELECT \(tier) AS tier, c.id, c.search_names, c.search_words::text AS words FROM walk c WHERE \(conditions[tier]) ORDER BY c.id LIMIT \(tierLimit))"
        }
        let walk = """
            WITH walk AS MATERIALIZED (
                SELECT * FROM contacts.contacts c WHERE c.tenant_id = $1 ORDER BY c.id LIMIT \(bind(.int(Int64(max(1, search.wordTierWalk)))))
            )
            \(walked.joined(separator: " UNION ALL "))
            """
        // Unprepared, like the second read below: their text varies with the tiers (which of them came out short).
        let rows = try await c.query(walk, binds, planOnce: false, prepared: false).rows
        try score(rows)
        var found = [Int](repeating: 0, count: conditions.count)
        for row in rows { found[Int(try row.int("tier"))] += 1 }
        let short = conditions.indices.filter { found[$0] < size }
        if !short.isEmpty {
            let searched = short.map { tier in
                """
                (SELECT s.id, s.search_names, s.search_words::text AS words FROM (
                    SELECT c.id, c.search_names, c.search_words FROM contacts.contacts c WHERE \(conditions[tier]) OFFSET 0
                 ) s ORDER BY s.id LIMIT \(tierLimit))
                """
            }
            try score(try await c.query(searched.joined(separator: " UNION ALL "), binds, planOnce: false, prepared: false).rows)
        }
        matches = byID.values.sorted { $0.precedes($1) }
        return matches
    }

    /// The relevance page of a two-word query (of letters) when the contacts whose first two name words are candidates
    /// of its words fill it, or nil. Such a pair (c1, c2) scores c1's weight × 1.8 + c2's × 1.8, the most a contact can
    /// with those words; any contact whose first or second name word is not a candidate scores at most `bound` (one
    /// word × 1.8, the other × 1.5, each at its best weight). The pairs above the bound are walked best first (each
    /// pair's contacts in id order through `contacts_name_pair`) under the page's limit; when the page and one more
    /// hit come out all above the bound, no other contact can come before them and the page is exact. A pair's contact
    /// scores exactly its pair's value: for a pair above the bound, w1 × 1.8 > b1 × 1.5 (b1 the best weight of the
    /// first word; likewise the second), so no other candidate can give either word more. Otherwise (a rare pair, a
    /// later page) nil, and the search reads every match. `planOnce`: as for ``tiered``.
    static func namePairs(
        _ search: ContactSearch, candidates: [[(term: String, weight: Double)]], filters: String, binds: [PostgresValue], planOnce: Bool,
        holding: SearchRules.HeldCandidates, on c: inout SearchStatements
    ) async throws -> [RankedMatch]? {
        let size = max(0, min(search.limit, SearchRules.maxPageSize)) + 1
        guard
            let (rows, bound) = try await pairWalk(
                candidates: candidates, filters: filters, binds: binds, planOnce: planOnce, limit: size, after: search.after, on: &c),
            rows.count >= size
        else { return nil }
        var matches: [RankedMatch] = []
        for row in rows {
            let present = holding.held(in: try row.string("words"))
            let score = SearchRules.score(names: try row.strings("search_names"), holding: present, candidates: candidates)
            matches.append(RankedMatch(id: try row.uuid("id"), score: score))
        }
        matches.sort { $0.precedes($1) }
        // Every hit must beat what a contact outside the pairs can score.
        guard matches.count >= size, matches[size - 1].score > bound else { return nil }
        return matches
    }

    /// The contacts whose first and second name words are candidates of a two-word query's first and second words, by
    /// their pair's value (best first), then id, after `after`, at most `limit`: every one of them scores above
    /// `bound`, the most a contact outside the pairs can (columns `v`, `id`, `search_names`, `words`).
    /// - Returns: nil when no page can come from the pairs (not two words, or a cursor at or below the bound).
    static func pairWalk(
        candidates: [[(term: String, weight: Double)]], filters: String, binds: [PostgresValue], planOnce: Bool, limit size: Int,
        after: SearchCursor?, on c: inout SearchStatements
    ) async throws -> (rows: [PostgresRow], bound: Double)? {
        guard candidates.count == 2, let best1 = candidates[0].map(\.weight).max(), let best2 = candidates[1].map(\.weight).max() else {
            return nil
        }
        let bound = max(best1 * 1.8 + best2 * 1.5, best1 * 1.5 + best2 * 1.8)
        if let after, (Double(after.key) ?? 0) <= bound { return nil }
        var binds = binds
        func bind(_ value: PostgresValue) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }
        let terms = candidates.map { words in bind(.array(words.map { .text($0.term) }, elementType: .text)) }
        let weights = candidates.map { words in bind(.array(words.map { .double($0.weight) }, elementType: .double)) }
        let cursorScore = bind(after.map { .double(Double($0.key) ?? 0) } ?? .null)
        let cursorID = bind(after.map { .uuid($0.id) } ?? .null)
        let over = bind(.double(bound))
        let limit = bind(.int(Int64(size)))
        let rows = try await c.query(
            """
            WITH c1 AS MATERIALIZED (SELECT term, w FROM unnest(\(terms[0])::text[], \(weights[0])::float8[]) AS u (term, w)),
            c2 AS MATERIALIZED (SELECT term, w FROM unnest(\(terms[1])::text[], \(weights[1])::float8[]) AS u (term, w)),
            pairs AS MATERIALIZED (
                SELECT a.term AS t1, b.term AS t2, a.w * 1.8::float8 AS v1, b.w * 1.8::float8 AS v2, a.w * 1.8::float8 + b.w * 1.8::float8 AS v
                FROM c1 a, c2 b
                WHERE a.w * 1.8::float8 + b.w * 1.8::float8 > \(over)::float8
                  AND (\(cursorScore)::float8 IS NULL OR a.w * 1.8::float8 + b.w * 1.8::float8 <= \(cursorScore)::float8)
            )
            SELECT p.v, x.* FROM (SELECT * FROM pairs ORDER BY v DESC) p CROSS JOIN LATERAL (
                SELECT c.id, c.search_names, c.search_words::text AS words FROM contacts.contacts c
                WHERE \(filters) AND c.search_names[1] = p.t1 AND c.search_names[2] = p.t2
                  AND c.id > CASE WHEN \(cursorScore)::float8 IS NULL OR p.v < \(cursorScore)::float8 THEN \(Self.noID) ELSE \(cursorID)::uuid END
                ORDER BY c.id LIMIT \(limit)
            ) x
            ORDER BY p.v DESC, x.id LIMIT \(limit)
            """, binds, planOnce: planOnce
        ).rows
        return (rows, bound)
    }

    /// Counts per facet over the matches `cte` defines. The matches are grouped once by the combination of all their
    /// facet values (one hash lookup a match: 3.9 ms for three facets over 6,680 matches, where grouping them by every
    /// facet at once with `GROUPING SETS`, a lookup per facet and one of whole tag lists, took 6.0–7.5), a tag facet's
    /// value being the tags as one text (`facet_tags`, migration 021: a list's key cost an array copy per match). Then:
    /// - at most `combinations` (``ContactSearch/facetCombinations``): they are the rows (facet -2, the combination's values as `e0`,
    ///   `e1`, … (text, a tag facet's as text[]) and its count `n`), counted per facet by ``facets(_:_:on:)``;
    /// - more: PostgreSQL groups the combinations by each facet (`GROUPING SETS`) and returns the 20 most frequent values
    ///   of each (facet, value, n; then by value in bytes, as the service orders them) and the number of matches (as
    ///   facet -1). A tag facet's groups are whole tag lists, split into tags at the end.
    static func facetStatement(
        _ facets: [ContactSearch.FacetField], combinations: Int, cte: String, binds: [PostgresValue]
    ) -> (String, [PostgresValue]) {
        var binds = binds
        var inputs: [String] = []
        var outputs: [String] = []
        var nulls: [String] = []
        for (index, facet) in facets.enumerated() {
            let expression: String
            switch facet {
            case .status: expression = "status"
            case .type: expression = "contact_type"
            case .tag: expression = "facet_tags"
            case .owner: expression = "owner_id"
            case .customField(let key):
                binds.append(.text(key))
                expression = "custom_fields ->> $\(binds.count)"
            }
            inputs.append("\(expression) AS f\(index)")
            if case .tag = facet {
                // Back to a list for each combination only (a few hundred, not every match).
                outputs.append("f\(index)::text[] AS e\(index)")
                nulls.append("NULL::text[]")
            } else {
                outputs.append("f\(index)::text AS e\(index)")
                nulls.append("NULL::text")
            }
        }
        let names = facets.indices.map { "e\($0)" }.joined(separator: ", ")
        let keys = facets.indices.map { "f\($0)" }.joined(separator: ", ")
        let empty = nulls.joined(separator: ", ")
        // GROUPING(e0, e1, …) has a bit per argument, e0's the highest, set where that argument is not grouped by: the
        // rows of the set (eI) have every bit but eI's, and the total's every bit. Over no combinations (the branch not
        // taken) the total is one row whose n is NULL.
        let all = (1 << facets.count) - 1
        var parts = ["(SELECT -1 AS facet, '' AS value, n, \(empty) FROM groups WHERE g = \(all) AND n IS NOT NULL)"]
        for (index, facet) in facets.enumerated() {
            let rows = "g = \(all & ~(1 << (facets.count - 1 - index)))"
            if case .tag = facet {
                parts.append(
                    """
                    (SELECT \(index), t, sum(n)::int8, \(empty) FROM groups, unnest(e\(index)) AS t WHERE \(rows) AND t IS NOT NULL
                     GROUP BY t ORDER BY 3 DESC, t COLLATE "C" LIMIT \(SearchRules.facetValues))
                    """)
            } else {
                parts.append(
                    """
                    (SELECT \(index), e\(index), n, \(empty) FROM groups WHERE \(rows) AND e\(index) IS NOT NULL
                     ORDER BY 3 DESC, e\(index) COLLATE "C" LIMIT \(SearchRules.facetValues))
                    """)
            }
        }
        let sql = """
            \(cte),
            combinations AS MATERIALIZED (
                SELECT \(outputs.joined(separator: ", ")), count(*) AS n FROM (SELECT \(inputs.joined(separator: ", ")) FROM matched) m
                GROUP BY \(keys)
            ),
            size AS (SELECT count(*) AS k FROM combinations)
            SELECT -2 AS facet, NULL::text AS value, n, \(names) FROM combinations WHERE (SELECT k FROM size) <= \(max(0, combinations))
            UNION ALL (
                WITH groups AS MATERIALIZED (
                    SELECT grouping(\(names)) AS g, \(names), sum(n)::int8 AS n
                    FROM combinations WHERE (SELECT k FROM size) > \(max(0, combinations))
                    GROUP BY GROUPING SETS (\(facets.indices.map { "(e\($0))" }.joined(separator: ", ")), ())
                )
                \(parts.joined(separator: " UNION ALL "))
            )
            """
        return (sql, binds)
    }
}

extension PostgresContactStore {
    /// The ``ContactStore`` requirement `bulkTag` (documented there).
    public func bulkTag(
        _ search: ContactSearch, add: [String], remove: [String], limit: Int, actor: Actor, write: WriteOptions<BulkTagResult>
    ) async throws -> WriteOutcome<BulkTagResult> {
        let (hasText, conditions, filterBinds) = Self.filter(search, tenantID: actor.tenantID)
        do {
            return try await idempotency.transaction(write, actor: actor, pool: pool) { c in
                try await c.query("SELECT set_config('pg_trgm.similarity_threshold', $1, true) AS t", [.text(Self.typoThreshold)])
                try await c.query("SELECT set_config('statement_timeout', $1, true) AS t", [.text(String(search.timeoutMilliseconds))])
                try await c.query("SELECT set_config('jit', 'off', true) AS t")
                try await c.query("SELECT set_config('plan_cache_mode', 'force_custom_plan', true) AS t")
                // Every match, in no order, one more than may change (to tell "too many"): the words stand for what they
                // do in a search sorted by a field or an export (``addLetterPrefixes(to:text:)``), so a bulk tag changes
                // exactly the contacts an export of its filter writes.
                var statements = SearchStatements(connection: c)
                var binds = filterBinds
                var tsquery: String?
                if hasText {
                    guard let query = try await Self.expandSortedByField(filterBinds, text: search.text, on: &statements)?.query else {
                        return BulkTagResult(matched: 0, changed: 0, skippedTooManyTags: 0)
                    }
                    binds.append(.text(query))
                    tsquery = "$\(binds.count)"
                }
                let cte = Self.matchedCTE(hasText: hasText, conditions: conditions, columns: "c.id", cap: limit + 1, tsquery: tsquery)
                let ids = try await statements.query("\(cte) SELECT id FROM matched", binds, planOnce: false).rows.map { try $0.uuid("id") }
                guard ids.count <= limit else { throw ContactsError.tooManyMatches(count: ids.count, limit: limit) }
                // New tags: the current ones, then the added ones not there yet, in order, without the removed ones.
                let rows = try await c.query(
                    """
                    WITH next AS (
                        SELECT c.id, ARRAY(
                            SELECT t FROM unnest(c.tags || $3::text[]) WITH ORDINALITY AS u (t, i)
                            WHERE t <> ALL($4::text[]) GROUP BY t ORDER BY min(i)) AS tags
                        FROM contacts.contacts c WHERE c.tenant_id = $1 AND c.id = ANY($2::uuid[]) AND c.deleted_at IS NULL
                        FOR UPDATE
                    )
                    UPDATE contacts.contacts c SET tags = n.tags, version = c.version + 1, updated_at = now(), updated_by = $5
                    FROM next n
                    WHERE c.tenant_id = $1 AND c.id = n.id AND n.tags IS DISTINCT FROM c.tags AND cardinality(n.tags) <= $6
                    RETURNING \(Self.columns.split(separator: ",").map { "c." + String($0).trimmingSpaces }.joined(separator: ", "))
                    """,
                    [
                        .text(actor.tenantID), .array(ids.map { .uuid($0) }, elementType: .uuid), .array(add.map { .text($0) }, elementType: .text),
                        .array(remove.map { .text($0) }, elementType: .text), .text(actor.userID), .int(Int64(ContactRules.maxTags)),
                    ]
                ).rows
                // Those that would pass the most tags a contact may have: counted, left alone.
                let skipped =
                    add.isEmpty
                    ? 0
                    : Int(
                        try await c.query(
                            """
                            SELECT count(*) AS n FROM contacts.contacts c
                            WHERE c.tenant_id = $1 AND c.id = ANY($2::uuid[]) AND c.deleted_at IS NULL
                              AND cardinality(ARRAY(SELECT DISTINCT t FROM unnest(c.tags || $3::text[]) AS t WHERE t <> ALL($4::text[]))) > $5
                            """,
                            [
                                .text(actor.tenantID), .array(ids.map { .uuid($0) }, elementType: .uuid),
                                .array(add.map { .text($0) }, elementType: .text), .array(remove.map { .text($0) }, elementType: .text),
                                .int(Int64(ContactRules.maxTags)),
                            ]
                        ).first?.int("n") ?? 0)
                for row in rows {
                    try await recordChange(try Self.record(row), kind: .updated, fields: ["tags"], actor: actor, on: c)
                }
                try await recordTerms(try rows.map { try $0.uuid("id") }, actor: actor, on: c)
                return BulkTagResult(matched: ids.count, changed: rows.count, skippedTooManyTags: skipped)
            }
        } catch let error as PostgresError where error.sqlState == "57014" {
            throw ContactsError.searchTooExpensive(milliseconds: search.timeoutMilliseconds)
        }
    }
}

/// A search's statements on its transaction's connection, each planned as its values call for. The transaction starts
/// with a plan made for each execution (`plan_cache_mode` in its settings), which a statement needs when its best plan
/// depends on its values: a tsquery's words (how many contacts hold them decides between the GIN index and a walk by
/// id), a filter's values, the tenant where the plan has a choice its size decides. A statement whose values cannot
/// change its plan — they reach it only through lateral walks of an index on (tenant, word, id), or keys — is planned
/// once per connection instead: planning at every execution was most of PostgreSQL's time for a typo or prefix search
/// (1.7 of 2.9 ms a search, measured on a million contacts).
struct SearchStatements {
    /// The transaction's connection.
    let connection: PostgresConnection
    /// Whether the transaction's `plan_cache_mode` is `force_generic_plan` now.
    private var generic = false

    /// A search's statements on `connection`, in a transaction whose settings force a plan per execution.
    init(connection: PostgresConnection) { self.connection = connection }

    /// Runs statements in one round trip, each under a plan made once per connection or at every execution (a
    /// switch sets `plan_cache_mode` between them, for the rest of the transaction).
    /// - Returns: each statement's result, in order.
    mutating func queries(_ statements: [(sql: String, binds: [PostgresValue], planOnce: Bool)]) async throws -> [PostgresResult] {
        var pipeline: [(sql: String, binds: [PostgresValue])] = []
        var mine: [Int] = []
        var generic = self.generic
        for statement in statements {
            if statement.planOnce != generic {
                pipeline.append(
                    ("SELECT set_config('plan_cache_mode', $1, true)", [.text(statement.planOnce ? "force_generic_plan" : "force_custom_plan")]))
                generic = statement.planOnce
            }
            mine.append(pipeline.count)
            pipeline.append((statement.sql, statement.binds))
        }
        let results = try await connection.pipeline(pipeline)
        self.generic = generic
        return mine.map { results[$0] }
    }

    /// Runs a statement under a plan made once per connection or at every execution; switching sets
    /// `plan_cache_mode` in the same round trip, for the rest of the transaction.
    /// - Parameter prepared: whether the statement is prepared once per connection (see
    ///   ``PostgresConnection/query(_:_:prepared:)``); a statement whose text varies with its data should not be, or
    ///   every connection keeps each variant.
    /// - Parameter committing: whether this is the transaction's last statement, sent with its COMMIT (see
    ///   ``PostgresConnection/pipelineCommitting(_:prepared:)``).
    /// - Parameter settings: settings (name, value) made before the statement is planned, for the rest of the
    ///   transaction, in the statement that sets `plan_cache_mode` (one statement either way).
    mutating func query(
        _ sql: String, _ binds: [PostgresValue], planOnce: Bool, prepared: Bool = true, committing: Bool = false,
        settings: [(name: String, value: String)] = []
    ) async throws -> PostgresResult {
        var statements: [(sql: String, binds: [PostgresValue])] = [(sql, binds)]
        if planOnce != generic || !settings.isEmpty {
            var values: [PostgresValue] = [.text(planOnce ? "force_generic_plan" : "force_custom_plan")]
            var calls = ["set_config('plan_cache_mode', $1, true)"]
            for (name, value) in settings {
                calls.append("set_config($\(values.count + 1), $\(values.count + 2), true)")
                values += [.text(name), .text(value)]
            }
            statements.insert(("SELECT " + calls.joined(separator: ", "), values), at: 0)
        }
        let results =
            committing
            ? try await connection.pipelineCommitting(statements, prepared: prepared)
            : try await connection.pipeline(statements, prepared: prepared)
        generic = planOnce
        return results[results.count - 1]
    }
}
