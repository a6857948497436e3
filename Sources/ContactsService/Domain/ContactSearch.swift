import FoundationEssentials
import SwitchboardServiceKit

/// A search of the tenant's contacts: free text, filters, an order and a page.
public struct ContactSearch: Sendable, Hashable {
    /// How hits are ordered.
    public enum Sort: Sendable, Hashable {
        /// Best match first, then by id.
        case relevance
        /// By creation time, then id.
        case createTime
        /// By last update, then id.
        case updateTime
        /// By family name, then id.
        case familyName
    }

    /// A facet to count: a column or a custom field's values.
    public enum FacetField: Sendable, Hashable {
        case status
        case type
        case tag
        case owner
        case customField(String)
    }

    /// The text as given.
    public var text = ""
    /// The filters shared with ``ContactQuery`` (statuses, kinds, owner, dates); its tag, order and page are unused.
    public var filters = ContactQuery()
    /// Tags a hit carries, every one (lower-cased).
    public var tags: [String] = []
    /// Custom fields a hit has with these values (as JSON text for numbers and bools), sorted by key.
    public var customFields: [CustomFieldFilter] = []
    /// The order.
    public var sort: Sort = .relevance
    /// Descending, for the field orders.
    public var descending = false
    /// Facets to count over every hit.
    public var facets: [FacetField] = []
    /// Where the page starts (after this cursor).
    public var after: SearchCursor?
    /// At most this many hits.
    public var limit = 20
    /// Stop reading hits once they hold about this many bytes (at least one is read).
    public var maxBytes = 1 << 20
    /// The statement timeout of each query.
    public var timeoutMilliseconds = 2000
    /// The most matches a relevance order of several words ranks.
    public var rankedMatches = 2000
    /// The most matches facets count.
    public var facetMatches = 10_000
    /// The most combinations of facet values among the counted matches that the service counts itself; past it
    /// PostgreSQL ranks each facet's values. Either way the counts are the same (a setting for tests).
    public var facetCombinations = 2_000
    /// The contacts by id among which a one-word search first reads its word tiers (``ContactsLimits/searchWordTierWalk``).
    public var wordTierWalk = 256

    /// Creates an empty search.
    public init() {}
}

/// One custom-field condition of a search.
public struct CustomFieldFilter: Sendable, Hashable {
    /// The field's key.
    public var key: String
    /// The value, compared with the field's text.
    public var value: String

    /// Creates a condition.
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// Where a search page continues: the last hit's sort key (a score or a field's cursor text) and id.
public struct SearchCursor: Sendable, Hashable {
    /// The sort key: a score's shortest exact decimal text, microseconds since 1970, or a family name.
    public var key: String
    /// The last hit's id.
    public var id: UUID

    /// A relevance cursor's key past a cut sample: the matches the sample left out come in id order.
    public static let tailKey = "tail"
}

/// One hit of a search.
public struct ContactHit: Sendable {
    /// The contact.
    public var record: ContactRecord
    /// The relevance (0 when the search has no text).
    public var score: Double
    /// The names of the organizations the contact belongs to (from the organization feed), which a search also matches.
    public var organizationNames: [String] = []
    /// A relevance hit past a broad query's ranked sample: it comes in id order after the ranked ones, whatever its score.
    public var tail = false
}

/// What a search found.
public struct ContactHits: Sendable {
    /// At most `limit` hits, in order.
    public var hits: [ContactHit]
    /// Whether more hits follow the last one.
    public var more: Bool
    /// The tenant's words the query's words were expanded to (what matched), for highlights.
    public var terms: Set<String>
    /// Counts per facet asked, in the order asked: value and count, most frequent first.
    public var facets: [[(value: String, count: Int)]]
    /// Whether the facets counted only the first ``ContactSearch/facetMatches`` matches.
    public var facetsPartial = false

    /// Creates hits.
    public init(hits: [ContactHit], more: Bool, terms: Set<String>, facets: [[(value: String, count: Int)]], facetsPartial: Bool = false) {
        self.hits = hits
        self.more = more
        self.terms = terms
        self.facets = facets
        self.facetsPartial = facetsPartial
    }
}

/// The part of a contact's text that matched: a field, its text, and the matched words as scalar offsets.
public struct ContactHighlight: Sendable, Hashable {
    /// The field, as in a FieldMask ("name.display", "emails[0].address", "tags[1]", "custom_fields.<key>").
    public var field: String
    /// The field's text.
    public var text: String
    /// Matched words: [start, end) in Unicode scalars.
    public var matches: [Range<Int>]
}

/// The search's rules, pure: bounds, words, highlights.
public enum SearchRules {
    /// The relevance of a matched contact (the formula the field orders compute in SQL): per query word, the best
    /// weight among the candidates the contact holds, × 1.8 when the candidate is the name's word at the word's place
    /// (the first word and the given name, the second and the family name), × 1.5 when it is elsewhere in the name;
    /// summed over the words.
    /// - Parameters:
    ///   - names: the contact's name words in order (given, family, middle, display, prefix, suffix).
    ///   - present: the candidates among the contact's words (a few: searched linearly).
    ///   - candidates: per query word, the words it may stand for and their weights.
    public static func score(names: [String], holding present: [String], candidates: [[(term: String, weight: Double)]]) -> Double {
        // Words compare as PostgreSQL compares them, byte for byte (String's == would equate a word's composed and
        // decomposed forms, which the database keeps apart).
        func same(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }
        var total = 0.0
        for (n, alternatives) in candidates.enumerated() {
            var best: Double?
            for candidate in alternatives where present.contains(where: { same($0, candidate.term) }) {
                let factor =
                    n < names.count && same(names[n], candidate.term) ? 1.8 : names.contains(where: { same($0, candidate.term) }) ? 1.5 : 1.0
                let value = candidate.weight * factor
                if best.map({ value > $0 }) ?? true { best = value }
            }
            total += best ?? 0
        }
        return total
    }

    /// The candidates a contact holds, read from its words as PostgreSQL writes a tsvector (`'abc' 'de''f'`: each
    /// lexeme quoted, a quote doubled, a backslash escaped). Asking PostgreSQL for the intersection instead
    /// (`ts_delete` twice per match) cost about 2 µs a match, a fifth of a typo search's database time; here each
    /// lexeme is compared as bytes with the few candidates, and nothing is allocated but the result.
    public struct HeldCandidates: Sendable {
        private let terms: [(text: String, bytes: [UInt8])]
        private let prefixes: [(text: String, bytes: [UInt8])]

        /// - Parameters:
        ///   - terms: the candidates that are whole words.
        ///   - prefixes: the candidates that stand for every word they begin (`555*`), held when any word begins with
        ///     the part before the `*`.
        public init(terms: some Sequence<String>, prefixes: [String]) {
            self.terms = terms.map { ($0, Array($0.utf8)) }
            self.prefixes = prefixes.map { ($0, Array($0.utf8.dropLast())) }
        }

        /// The held candidates: whole words in the vector's order, then the held prefixes in the given order.
        /// - Parameter vector: a tsvector's text.
        public func held(in vector: String) -> [String] {
            var held: [String] = []
            var prefixHeld = 0 as UInt64
            var text = vector
            text.withUTF8 { bytes in
                let quote = UInt8(ascii: "'"), backslash = UInt8(ascii: "\\"), space = UInt8(ascii: " ")
                var i = 0
                while i < bytes.count {
                    guard bytes[i] == quote else {
                        i += 1
                        continue
                    }
                    // The lexeme runs to the next single quote; a doubled quote is a quote in it and a backslash
                    // escapes the next byte (neither occurs in our words, which are letters or digits, but the format
                    // allows them).
                    let start = i + 1
                    var j = start
                    var plain = true
                    var closed = false
                    while j < bytes.count {
                        let byte = bytes[j]
                        if byte == quote {
                            guard j + 1 < bytes.count, bytes[j + 1] == quote else {
                                closed = true
                                break
                            }
                            plain = false
                            j += 2
                        } else if byte == backslash {
                            plain = false
                            j += 2
                        } else {
                            j += 1
                        }
                    }
                    guard closed else { return }
                    let lexeme = UnsafeBufferPointer(rebasing: bytes[start..<j])
                    let (term, prefixes) = plain ? match(lexeme) : Self.unescaped(lexeme).withUnsafeBufferPointer { match($0) }
                    if let term { held.append(term) }
                    prefixHeld |= prefixes
                    // Positions, if any (`'abc':1,3A`), run to the next space.
                    i = j + 1
                    while i < bytes.count, bytes[i] != space { i += 1 }
                }
            }
            for (i, prefix) in prefixes.enumerated() where i < 64 && prefixHeld & (1 << i) != 0 { held.append(prefix.text) }
            return held
        }

        /// The whole-word candidate a lexeme is, and the prefixes it begins with (a bit each).
        private func match(_ lexeme: UnsafeBufferPointer<UInt8>) -> (String?, UInt64) {
            var found: String?
            for term in terms where term.bytes.count == lexeme.count && term.bytes.first == lexeme.first {
                if Self.same(term.bytes, lexeme) {
                    found = term.text
                    break
                }
            }
            var begun = 0 as UInt64
            for (i, prefix) in prefixes.enumerated() where i < 64 && prefix.bytes.count <= lexeme.count {
                if Self.same(prefix.bytes, UnsafeBufferPointer(rebasing: lexeme[..<prefix.bytes.count])) { begun |= 1 << i }
            }
            return (found, begun)
        }

        private static func same(_ a: [UInt8], _ b: UnsafeBufferPointer<UInt8>) -> Bool {
            a.withUnsafeBufferPointer { a in
                guard a.count == b.count else { return false }
                for k in 0..<a.count where a[k] != b[k] { return false }
                return true
            }
        }

        private static func unescaped(_ lexeme: UnsafeBufferPointer<UInt8>) -> [UInt8] {
            var out: [UInt8] = []
            var j = 0
            while j < lexeme.count {
                // Inside a closed lexeme a quote is always doubled and a backslash always has a byte after it.
                if lexeme[j] == UInt8(ascii: "'") || lexeme[j] == UInt8(ascii: "\\"), j + 1 < lexeme.count { j += 1 }
                out.append(lexeme[j])
                j += 1
            }
            return out
        }
    }

    /// Longest query text, in bytes.
    public static let maxQueryBytes = 256
    /// Most words in a query.
    public static let maxQueryWords = 8
    /// Most tags and most custom-field conditions.
    public static let maxTagFilters = 10
    /// Most custom-field conditions.
    public static let maxCustomFieldFilters = 10
    /// Longest custom-field value compared.
    public static let maxCustomFieldValueBytes = 256
    /// Most facets asked.
    public static let maxFacets = 8
    /// Values returned per facet.
    public static let facetValues = 20
    /// Largest page of hits.
    public static let maxPageSize = 100
    /// Page size when none is given.
    public static let defaultPageSize = 20
    /// Longest word kept (the database keeps the first 64 characters of a longer one).
    public static let maxWordCharacters = 64

    /// A query that is one phone number written in several words (`+1 415 555 0100`, `0049 30 1234567`) as the digits
    /// of its E.164 form, which every contact's words hold for each of its numbers: the words of the text as written
    /// match only a number written the same way. Nil for any other query (a single word is matched as it is).
    public static func phoneQuery(_ text: String) -> String? {
        guard let e164 = ContactRules.normalizePhone(text), words(text).count > 1 else { return nil }
        return String(e164.dropFirst())
    }

    /// The words of a text as a search compares them: lower-cased runs of letters or of digits ("jsmith42" is two
    /// words), each cut to 64 characters (as `contacts.search_words_of` splits in the database), in order, duplicates
    /// kept.
    public static func words(_ text: String) -> [String] {
        wordRanges(text).map { $0.word }
    }

    /// The words of a text with where they are: [start, end) in Unicode scalars.
    static func wordRanges(_ text: String) -> [(word: String, range: Range<Int>)] {
        var result: [(word: String, range: Range<Int>)] = []
        var current = String.UnicodeScalarView()
        var start = 0
        var index = 0
        func flush() {
            if !current.isEmpty {
                let word = String(String(current).lowercased().prefix(maxWordCharacters))
                result.append((word, start..<index))
                current = String.UnicodeScalarView()
            }
        }
        // 0: neither, 1: a letter, 2: a digit. A word is a run of one kind.
        var kind = 0
        for scalar in text.unicodeScalars {
            // Digits are ASCII's, as PostgreSQL's [[:digit:]] in a UTF-8 locale. ASCII is answered without Unicode's
            // property tables (their lookup was most of a search's highlighting).
            let v = scalar.value
            let next =
                v < 0x80
                ? (v >= 0x30 && v <= 0x39 ? 2 : (v | 0x20) >= 0x61 && (v | 0x20) <= 0x7A ? 1 : 0)
                : (scalar.properties.isAlphabetic ? 1 : 0)
            if next != kind { flush() }
            if next != 0 {
                if current.isEmpty { start = index }
                current.append(scalar)
            }
            kind = next
            index += 1
        }
        flush()
        return result
    }

    /// Checks a search's text and filters; every problem is a violation naming its field.
    public static func violations(of search: ContactSearch) -> [Violation] {
        var violations: [Violation] = []
        if search.text.utf8.count > maxQueryBytes {
            violations.append(Violation("query", "must be at most \(maxQueryBytes) bytes", reason: "TOO_LONG"))
        } else if words(search.text).count > maxQueryWords {
            violations.append(Violation("query", "must have at most \(maxQueryWords) words", reason: "TOO_MANY"))
        }
        if search.tags.count > maxTagFilters {
            violations.append(Violation("tags", "at most \(maxTagFilters) tags", reason: "TOO_MANY"))
        }
        for (i, tag) in search.tags.enumerated() where tag.isEmpty || !ContactRules.tagLimit.allows(tag) {
            violations.append(Violation("tags[\(i)]", tag.isEmpty ? "must not be empty" : ContactRules.tagLimit.description, reason: "INVALID"))
        }
        if search.customFields.count > maxCustomFieldFilters {
            violations.append(Violation("custom_fields", "at most \(maxCustomFieldFilters) conditions", reason: "TOO_MANY"))
        }
        for filter in search.customFields {
            if !ContactRules.isValidFieldKey(filter.key) {
                violations.append(Violation("custom_fields", "\"\(filter.key.prefix(64))\" is not a field key", reason: "INVALID_FORMAT"))
            } else if filter.value.utf8.count > maxCustomFieldValueBytes {
                violations.append(
                    Violation("custom_fields[\(filter.key)]", "must be at most \(maxCustomFieldValueBytes) bytes", reason: "TOO_LONG"))
            }
        }
        if search.facets.count > maxFacets {
            violations.append(Violation("facets", "at most \(maxFacets) facets", reason: "TOO_MANY"))
        }
        return violations
    }

    /// Parses a facet name: "status", "type", "tag", "owner_id" or "custom_fields.<key>".
    public static func facet(_ name: String) -> ContactSearch.FacetField? {
        switch name {
        case "status": return .status
        case "type": return .type
        case "tag": return .tag
        case "owner_id": return .owner
        default:
            let prefix = "custom_fields."
            guard name.hasPrefix(prefix) else { return nil }
            let key = String(name.dropFirst(prefix.count))
            return ContactRules.isValidFieldKey(key) ? .customField(key) : nil
        }
    }

    /// The fields of a contact where one of `terms` occurs as a word, with the words' places; then the names of its
    /// organizations (`organization_names[i]`). A term ending in `*` (a query's word of digits as a prefix) marks
    /// every word it begins.
    public static func highlights(of data: ContactData, organizationNames: [String] = [], terms: Set<String>) -> [ContactHighlight] {
        guard !terms.isEmpty else { return [] }
        let matcher = WordMatcher(terms: terms)
        var fields: [(String, String)] = [
            ("name.display", data.name.effectiveDisplay), ("name.prefix", data.name.prefix), ("name.given", data.name.given),
            ("name.middle", data.name.middle), ("name.family", data.name.family), ("name.suffix", data.name.suffix),
        ]
        fields += data.emails.enumerated().map { ("emails[\($0.offset)].address", $0.element.address) }
        fields += data.phones.enumerated().map { ("phones[\($0.offset)].number", $0.element.number) }
        fields += data.tags.enumerated().map { ("tags[\($0.offset)]", $0.element) }
        for key in data.customFields.keys.sorted() {
            if case .string(let text)? = data.customFields[key] { fields.append(("custom_fields.\(key)", text)) }
        }
        fields += organizationNames.enumerated().map { ("organization_names[\($0.offset)]", $0.element) }
        var result: [ContactHighlight] = []
        for (field, text) in fields where !text.isEmpty {
            let ranges = matcher.ranges(in: text)
            if !ranges.isEmpty { result.append(ContactHighlight(field: field, text: text, matches: ranges)) }
        }
        return result
    }

    /// The words of texts that a search's terms name: a term, or a word a term ending in `*` begins.
    struct WordMatcher {
        let terms: Set<String>
        /// The terms ending in `*`, without it.
        let prefixes: [String]
        /// Whether a prefix term may begin a word of letters, or one of digits: such words skip the refusal below.
        private let letterPrefixes: Bool
        private let digitPrefixes: Bool
        /// For a word of ASCII, by its first byte lower-cased: bit L - 1 is set when a term of L bytes (at most 64)
        /// begins with that byte. Most of a contact's words are refused by it without a `String` made and hashed
        /// (that was most of a search's highlighting).
        private var lengths = [UInt64](repeating: 0, count: 128)

        init(terms: Set<String>) {
            self.terms = terms
            prefixes = terms.filter { $0.hasSuffix("*") }.map { String($0.dropLast()) }
            let firsts = prefixes.map { $0.utf8.first }
            digitPrefixes = firsts.contains { $0 == nil || (0x30...0x39).contains($0!) }
            letterPrefixes = firsts.contains { $0 == nil || !(0x30...0x39).contains($0!) }
            for term in terms where !term.hasSuffix("*") {
                let bytes = term.utf8
                guard let first = bytes.first, first < 0x80, (1...SearchRules.maxWordCharacters).contains(bytes.count) else { continue }
                lengths[Int(first)] |= 1 << UInt64(bytes.count - 1)
            }
        }

        /// Whether a word (as ``SearchRules/wordRanges(_:)`` gives it) is named.
        func matches(_ word: String) -> Bool { terms.contains(word) || prefixes.contains { word.hasPrefix($0) } }

        /// The places of the named words of `text`, in Unicode scalars: those of ``SearchRules/wordRanges(_:)`` whose
        /// word ``matches(_:)``. Text of ASCII is read as bytes (an offset is a scalar's); other text through
        /// `wordRanges`.
        func ranges(in text: String) -> [Range<Int>] {
            var contiguous = text
            return contiguous.withUTF8 { bytes in
                guard bytes.allSatisfy({ $0 < 0x80 }) else { return SearchRules.wordRanges(text).filter { matches($0.word) }.map(\.range) }
                var result: [Range<Int>] = []
                var start = 0
                // 0: neither, 1: a letter, 2: a digit, as in wordRanges.
                var kind = 0
                func close(_ end: Int) {
                    guard kind != 0 else { return }
                    let count = min(end - start, SearchRules.maxWordCharacters)
                    let first = bytes[start] | (kind == 1 ? 0x20 : 0)
                    // A word a prefix term may begin is checked; any other needs a term of its first byte and length.
                    guard (kind == 2 ? digitPrefixes : letterPrefixes) || lengths[Int(first)] & (1 << UInt64(count - 1)) != 0 else { return }
                    let word = String(unsafeUninitializedCapacity: count) { buffer in
                        for i in 0..<count { buffer[i] = kind == 1 ? bytes[start + i] | 0x20 : bytes[start + i] }
                        return count
                    }
                    if matches(word) { result.append(start..<end) }
                }
                for (i, byte) in bytes.enumerated() {
                    let next = byte >= 0x30 && byte <= 0x39 ? 2 : (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x7A ? 1 : 0
                    if next != kind {
                        close(i)
                        start = i
                        kind = next
                    }
                }
                close(bytes.count)
                return result
            }
        }
    }
}

extension ContactsDomain {
    /// A page of hits, the token for the next page, the facets (on the first page only) and the matched terms.
    ///
    /// A page ends at `pageSize` hits or before the hit that would take the page's encoded size past
    /// ``ContactsLimits/pageBytes`` (a first hit always fits), as ``list(_:pageSize:pageToken:actor:encodedSize:)``.
    /// - Parameters:
    ///   - encodedSize: the bytes a hit adds to the response.
    public func search(
        _ search: ContactSearch, pageSize: Int, pageToken: String, actor: Actor, encodedSize: (ContactHit) -> Int
    ) async throws -> (hits: [ContactHit], next: String, facets: [[(value: String, count: Int)]], facetsPartial: Bool, terms: Set<String>) {
        var search = search
        var violations = SearchRules.violations(of: search)
        if pageSize < 0 { violations.append(Violation("page.page_size", "must not be negative")) }
        if !violations.isEmpty { throw ContactsError.invalid(violations) }
        search.limit = pageSize == 0 ? SearchRules.defaultPageSize : min(pageSize, SearchRules.maxPageSize)
        search.maxBytes = limits.pageBytes
        search.timeoutMilliseconds = limits.searchTimeoutMilliseconds
        search.rankedMatches = limits.searchRankedMatches
        search.wordTierWalk = limits.searchWordTierWalk
        search.facetMatches = limits.searchFacetMatches
        let fingerprint = Self.fingerprint(of: search)
        // Tokens are not signed: the cursor is client input, checked before it reaches SQL.
        if let cursor = try PageToken.resume(pageToken, fingerprint: fingerprint, parts: 2) {
            guard let id = UUID(uuidString: cursor[1]), Self.isValidCursorKey(cursor[0], for: search.sort) else {
                throw ContactsError.invalid([Violation("page.page_token", "is not a token this service issued", reason: "INVALID_FORMAT")])
            }
            search.after = SearchCursor(key: cursor[0], id: id)
            // Facets belong to the first page.
            search.facets = []
        }
        let found: ContactHits
        do {
            // Counting facets is the part of a search whose cost grows with its matches (every match's row, up to
            // facetMatches), all of it PostgreSQL's CPU: those searches take turns. The others alternate between the
            // database and the service's ranking, and served 5-7 % fewer searches in turns.
            found =
                search.facets.isEmpty
                ? try await store.search(search, actor: actor)
                : try await facetSearchGate.run(key: actor.tenantID) { try await store.search(search, actor: actor) }
        } catch let busy as CallGate.Timeout {
            throw ContactsError.searchesBusy(atOnce: busy.limit, milliseconds: Int(busy.waited / .milliseconds(1)))
        }
        var page: [ContactHit] = []
        var bytes = 0
        for hit in found.hits {
            let size = encodedSize(hit)
            if !page.isEmpty, size > limits.pageBytes - bytes { break }
            page.append(hit)
            bytes += size
        }
        var next = ""
        if let last = page.last, found.more || page.count < found.hits.count {
            let key: String
            switch search.sort {
            case .relevance: key = last.tail ? SearchCursor.tailKey : "\(last.score)"
            case .createTime: key = String(ContactCursor.microseconds(last.record.createdAt))
            case .updateTime: key = String(ContactCursor.microseconds(last.record.updatedAt))
            case .familyName: key = last.record.data.name.family
            }
            next = PageToken(cursor: [key, last.record.id.uuidString.lowercased()], fingerprint: fingerprint).encoded
        }
        return (page, next, found.facets, found.facetsPartial, found.terms)
    }

    /// Whether a decoded cursor key is one this service could have issued for `sort`.
    static func isValidCursorKey(_ key: String, for sort: ContactSearch.Sort) -> Bool {
        switch sort {
        case .relevance: return key == SearchCursor.tailKey || (Double(key).map { $0.isFinite && $0 >= 0 && $0 < 1_000 } ?? false)
        case .familyName: return ContactRules.nameLimit.allows(key)
        case .createTime, .updateTime: return Int64(key).map(ContactCursor.validMicroseconds.contains) ?? false
        }
    }

    /// The fingerprint a search's page token carries: its text, filters and order.
    static func fingerprint(of search: ContactSearch) -> UInt64 {
        var parts = [search.text, "\(search.sort)", "\(search.descending)", "\(fingerprint(of: search.filters))"]
        parts += search.tags
        parts += search.customFields.flatMap { [$0.key, $0.value] }
        return PageToken.fingerprint(parts)
    }
}
