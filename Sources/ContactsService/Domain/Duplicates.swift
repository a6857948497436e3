import FoundationEssentials
import SwitchboardServiceKit

/// Why a contact may be the same person as another (`switchboard.contacts.v1.DuplicateSignal`).
public enum DuplicateSignal: Int, Sendable, Hashable, CaseIterable {
    /// A phone number in common, by its E.164 form.
    case samePhone = 1
    /// The same folded name.
    case sameName
    /// Names a typo or two apart.
    case similarName
    /// An e-mail address with the same mailbox name at another domain.
    case sameEmailName
}

/// A contact that may be the same person as the one asked about, with what says so.
public struct DuplicateCandidate: Sendable, Hashable {
    /// The candidate.
    public var record: ContactRecord
    /// 0 to 1: the signals combined.
    public var score: Double
    /// The signals found, strongest first.
    public var signals: [DuplicateSignal]
    /// The folded names' trigram similarity, 0 to 1.
    public var nameSimilarity: Double
}

/// How likely duplicates are scored: pure functions, no I/O.
///
/// Each signal is a piece of evidence with a weight (the chance, roughly, that it alone means one person), combined as
/// independent evidence: `1 - Π(1 - w)`. A phone number in common weighs most (people rarely share a mobile number; an
/// office switchboard is why it is not certain), then the same name or the same mailbox name at another domain, then
/// a similar name, weighted by how similar. So a similar name alone stays a weak candidate, and a similar name with the
/// same phone number a strong one.
public enum DuplicateRules {
    /// Candidates returned when the request asks for none in particular, and the most it may ask for.
    public static let defaultResults = 10, maxResults = 50
    /// Trigram similarity from which two different names count as similar (pg_trgm's default threshold is 0.3; names
    /// are short, so a higher bar keeps "Ann Lee" from matching "Anna Leeds").
    public static let similarNameThreshold = 0.5
    /// The weights of the signals (a similar name's is multiplied by its similarity).
    static let weights: [DuplicateSignal: Double] = [.samePhone: 0.6, .sameName: 0.5, .sameEmailName: 0.5, .similarName: 0.4]
    /// Shortest name word a mailbox name must contain to count (see ``isPersonal(_:of:)``).
    static let minMailboxWordLength = 3
    /// Candidates read from each search for a call returning `limit`: twice the limit, at least 20, at most 50. A
    /// search ranks the closest names first, so its tail adds little; ranking a page costs in proportion to its size.
    static func searchedCandidates(for limit: Int) -> Int { min(50, max(20, 2 * limit)) }

    /// The name compared: given and family name (the display name when both are empty), folded by ``words(_:)``.
    public static func foldedName(_ name: PersonName) -> String {
        let text = name.given.isEmpty && name.family.isEmpty ? name.display : "\(name.given) \(name.family)"
        return words(text).joined(separator: " ")
    }

    /// The folded words of `text`: lower-cased, Latin letters without their accents ("José" and "Jose", "Müller" and
    /// "Muller" are one name: imports from older systems drop them), every run of other characters than letters and
    /// digits a separator. Works on Unicode scalars, so a name typed decomposed (e + a combining accent) folds as the
    /// precomposed one does.
    static func words(_ text: String) -> [String] {
        var words: [String] = []
        var word = String.UnicodeScalarView()
        func flush() {
            if !word.isEmpty { words.append(String(word)) }
            word = String.UnicodeScalarView()
        }
        for scalar in text.unicodeScalars {
            let properties = scalar.properties
            // A combining mark (a decomposed accent) belongs to the letter before it, and folding drops it.
            if properties.generalCategory == .nonspacingMark || properties.generalCategory == .spacingMark { continue }
            guard properties.isAlphabetic || properties.numericType != nil else {
                flush()
                continue
            }
            for lower in properties.lowercaseMapping.unicodeScalars {
                if let folded = latinFolds[lower] { word.append(contentsOf: folded.unicodeScalars) } else { word.append(lower) }
            }
        }
        flush()
        return words
    }

    /// Latin letters with diacritics (Latin-1 Supplement and Latin Extended-A, lower case) and the ASCII they fold to.
    static let latinFolds: [Unicode.Scalar: String] = {
        let groups: [(String, String)] = [
            ("àáâãäåāăą", "a"), ("çćĉċč", "c"), ("ďđ", "d"), ("èéêëēĕėęě", "e"), ("ĝğġģ", "g"), ("ĥħ", "h"), ("ìíîïĩīĭįı", "i"),
            ("ĵ", "j"), ("ķ", "k"), ("ĺļľŀł", "l"), ("ñńņňŉ", "n"), ("òóôõöøōŏő", "o"), ("ŕŗř", "r"), ("śŝşš", "s"), ("ţťŧ", "t"),
            ("ùúûüũūŭůűų", "u"), ("ŵ", "w"), ("ýÿŷ", "y"), ("źżž", "z"), ("ß", "ss"), ("æ", "ae"), ("œ", "oe"), ("þ", "th"), ("ð", "d"),
        ]
        var folds: [Unicode.Scalar: String] = [:]
        for (letters, base) in groups { for scalar in letters.unicodeScalars { folds[scalar] = base } }
        return folds
    }()

    /// pg_trgm's trigrams of a folded text: each word padded with two spaces before and one after, every run of three
    /// Unicode scalars (as pg_trgm counts characters).
    static func trigrams(_ folded: String) -> Set<[Unicode.Scalar]> {
        var grams = Set<[Unicode.Scalar]>()
        for word in folded.split(separator: " ") {
            let padded = Array("  \(word) ".unicodeScalars)
            for i in 0..<(padded.count - 2) { grams.insert(Array(padded[i..<(i + 3)])) }
        }
        return grams
    }

    /// The trigram similarity of two folded names: shared trigrams over all trigrams (0 when either is empty).
    public static func similarity(_ a: String, _ b: String) -> Double {
        let (x, y) = (trigrams(a), trigrams(b))
        let union = x.union(y).count
        return union == 0 ? 0 : Double(x.intersection(y).count) / Double(union)
    }

    /// The mailbox name of an address: the part before the last `@`, lower-cased, without a `+tag`.
    static func mailboxName(_ address: String) -> String? {
        guard let at = address.lastIndex(of: "@") else { return nil }
        var name = address[..<at].lowercased()
        if let plus = name.firstIndex(of: "+") { name = String(name[..<plus]) }
        return name.isEmpty ? nil : name
    }

    /// Whether a mailbox name is a person's: it contains one of their name words of ``minMailboxWordLength`` letters or
    /// more ("ada.lovelace", "alovelace" for Ada Lovelace). "sales@", "office@" or "support@" at two companies say
    /// nothing about one person.
    static func isPersonal(_ mailbox: String, of name: PersonName) -> Bool {
        let folded = words(mailbox).joined()
        return words("\(name.given) \(name.family) \(name.display)").contains { $0.count >= minMailboxWordLength && folded.contains($0) }
    }

    /// The domain of an address, lower-cased.
    static func domain(_ address: String) -> String {
        address.lastIndex(of: "@").map { address[address.index(after: $0)...].lowercased() } ?? ""
    }

    /// What `other` shares with `contact`; nil when nothing.
    public static func compare(
        _ contact: ContactData, with other: ContactData
    ) -> (score: Double, signals: [DuplicateSignal], nameSimilarity: Double)? {
        var signals: [DuplicateSignal] = []
        let phones = Set(contact.phones.map(\.e164).filter { !$0.isEmpty })
        if other.phones.contains(where: { phones.contains($0.e164) }) { signals.append(.samePhone) }
        let (name, otherName) = (foldedName(contact.name), foldedName(other.name))
        let nameSimilarity = similarity(name, otherName)
        if !name.isEmpty, name == otherName {
            signals.append(.sameName)
        } else if nameSimilarity >= similarNameThreshold {
            signals.append(.similarName)
        }
        // The same address twice is impossible within a tenant; the same personal mailbox name at another domain is the
        // signal.
        var mailboxes: [String: Set<String>] = [:]
        for email in contact.emails {
            if let mailbox = mailboxName(email.address), isPersonal(mailbox, of: contact.name) {
                mailboxes[mailbox, default: []].insert(domain(email.address))
            }
        }
        let sharesMailbox = other.emails.contains { email in
            guard let mailbox = mailboxName(email.address), let domains = mailboxes[mailbox] else { return false }
            return !domains.contains(domain(email.address))
        }
        if sharesMailbox { signals.append(.sameEmailName) }
        guard !signals.isEmpty else { return nil }
        signals.sort { weight($0, nameSimilarity) > weight($1, nameSimilarity) }
        let score = 1 - signals.reduce(1.0) { $0 * (1 - weight($1, nameSimilarity)) }
        return (score, signals, nameSimilarity)
    }

    static func weight(_ signal: DuplicateSignal, _ nameSimilarity: Double) -> Double {
        (weights[signal] ?? 0) * (signal == .similarName ? nameSimilarity : 1)
    }

    /// Most searches one call runs (the name's, then mailbox names'): each is a ranked search of the tenant.
    static let maxSearches = 4

    /// The texts searched for candidates: the folded name, then each personal mailbox name, as the search splits them
    /// into words (at most ``SearchRules/maxQueryWords`` words and ``SearchRules/maxQueryBytes`` bytes each, cut to
    /// fit), distinct, at most ``maxSearches``.
    public static func searches(for contact: ContactData) -> [String] {
        var texts: [String] = []
        let mailboxes = contact.emails.compactMap { mailboxName($0.address) }.filter { isPersonal($0, of: contact.name) }
        for text in [foldedName(contact.name)] + mailboxes where texts.count < maxSearches {
            var words = Array(SearchRules.words(text).prefix(SearchRules.maxQueryWords))
            while !words.isEmpty, words.joined(separator: " ").utf8.count > SearchRules.maxQueryBytes { words.removeLast() }
            let query = words.joined(separator: " ")
            if !query.isEmpty, !texts.contains(query) { texts.append(query) }
        }
        return texts
    }
}

extension ContactsDomain {
    /// The live contacts of the tenant most likely to be the same person as contact `id`, best first.
    ///
    /// Candidates come from three places the service already indexes: the contact's phone numbers (the lookup), a
    /// typo-tolerant search of its name, and searches of its e-mail addresses' mailbox names; each is then scored by
    /// ``DuplicateRules/compare(_:with:)``. A contact that shares nothing the indexes find (say, only a postal address)
    /// is not found.
    /// - Throws: ``ContactsError/invalid(_:)`` naming `max_results`; ``ContactsError/notFound(_:)`` for a contact that
    ///   is not live.
    public func duplicates(of id: UUID, maxResults: Int, actor: Actor) async throws -> [DuplicateCandidate] {
        guard (0...DuplicateRules.maxResults).contains(maxResults) else {
            throw ContactsError.invalid([Violation("max_results", "must be 0 to \(DuplicateRules.maxResults)", reason: "OUT_OF_RANGE")])
        }
        let limit = maxResults == 0 ? DuplicateRules.defaultResults : maxResults
        let contact = try await get(id: id, includeDeleted: false, actor: actor)
        var found: [UUID: ContactRecord] = [:]
        let phones = Array(Set(contact.data.phones.map(\.e164).filter { !$0.isEmpty })).sorted()
        if !phones.isEmpty {
            let matches = try await lookup(emails: [], phones: Array(phones.prefix(Self.maxLookupValues)), actor: actor).phones
            let ids = Set(matches.flatMap(\.contactIDs)).subtracting([id])
            if !ids.isEmpty { for record in try await store.fetch(ids: Array(ids), actor: actor) { found[record.id] = record } }
        }
        for text in DuplicateRules.searches(for: contact.data) {
            var search = ContactSearch()
            search.text = text
            guard SearchRules.violations(of: search).isEmpty else { continue }
            do {
                let hits = try await self.search(
                    search, pageSize: DuplicateRules.searchedCandidates(for: limit), pageToken: "", actor: actor, encodedSize: { _ in 0 })
                for hit in hits.hits where hit.record.id != id { found[hit.record.id] = hit.record }
            } catch ContactsError.searchTooExpensive {
                // A name too common to rank in time (the caller chose no words to make more specific): the other
                // sources' candidates still stand.
                continue
            }
        }
        let candidates = found.values.compactMap { record -> DuplicateCandidate? in
            guard let match = DuplicateRules.compare(contact.data, with: record.data) else { return nil }
            return DuplicateCandidate(record: record, score: match.score, signals: match.signals, nameSimilarity: match.nameSimilarity)
        }
        return Array(
            candidates.sorted { $0.score != $1.score ? $0.score > $1.score : $0.record.id.uuidString < $1.record.id.uuidString }.prefix(limit))
    }
}
