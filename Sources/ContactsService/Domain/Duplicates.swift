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
    /// Shortest mailbox name compared: "info@" or "jo@" at two domains says nothing about a person.
    static let minMailboxNameLength = 5
    /// Candidates read from each search.
    static let searchedCandidates = 50

    /// The name compared: given and family name (the display name when both are empty), lower-cased, with every run of
    /// characters other than letters and digits as one space.
    public static func foldedName(_ name: PersonName) -> String {
        let text = name.given.isEmpty && name.family.isEmpty ? name.display : "\(name.given) \(name.family)"
        return words(text).joined(separator: " ")
    }

    /// The lower-cased words of letters and digits of `text`.
    static func words(_ text: String) -> [String] {
        var words: [String] = []
        var word = ""
        for character in text.lowercased() {
            if character.isLetter || character.isNumber {
                word.append(character)
            } else if !word.isEmpty {
                words.append(word)
                word = ""
            }
        }
        if !word.isEmpty { words.append(word) }
        return words
    }

    /// pg_trgm's trigrams of a folded text: each word padded with two spaces before and one after, every run of three
    /// characters.
    static func trigrams(_ folded: String) -> Set<String> {
        var grams = Set<String>()
        for word in folded.split(separator: " ") {
            let padded = Array("  \(word) ")
            for i in 0..<(padded.count - 2) { grams.insert(String(padded[i..<(i + 3)])) }
        }
        return grams
    }

    /// The trigram similarity of two folded names: shared trigrams over all trigrams (0 when either is empty).
    public static func similarity(_ a: String, _ b: String) -> Double {
        let (x, y) = (trigrams(a), trigrams(b))
        let union = x.union(y).count
        return union == 0 ? 0 : Double(x.intersection(y).count) / Double(union)
    }

    /// The mailbox name of an address: the part before the last `@`, lower-cased, without a `+tag`; nil when shorter
    /// than ``minMailboxNameLength``.
    static func mailboxName(_ address: String) -> String? {
        guard let at = address.lastIndex(of: "@") else { return nil }
        var name = address[..<at].lowercased()
        if let plus = name.firstIndex(of: "+") { name = String(name[..<plus]) }
        return name.count >= minMailboxNameLength ? name : nil
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
        // The same address twice is impossible within a tenant; the same mailbox name at another domain is the signal.
        let mailboxes = Dictionary(
            contact.emails.compactMap { e in mailboxName(e.address).map { ($0, domain(e.address)) } }, uniquingKeysWith: { a, _ in a })
        if other.emails.contains(where: { e in mailboxName(e.address).map { mailboxes[$0] != nil && mailboxes[$0] != domain(e.address) } ?? false }) {
            signals.append(.sameEmailName)
        }
        guard !signals.isEmpty else { return nil }
        signals.sort { weight($0, nameSimilarity) > weight($1, nameSimilarity) }
        let score = 1 - signals.reduce(1.0) { $0 * (1 - weight($1, nameSimilarity)) }
        return (score, signals, nameSimilarity)
    }

    static func weight(_ signal: DuplicateSignal, _ nameSimilarity: Double) -> Double {
        (weights[signal] ?? 0) * (signal == .similarName ? nameSimilarity : 1)
    }

    /// The texts searched for candidates: the folded name, and each mailbox name, as words a search takes (at most
    /// ``SearchRules/maxQueryWords`` words and ``SearchRules/maxQueryBytes`` bytes each).
    static func searches(for contact: ContactData) -> [String] {
        var texts: [String] = []
        for text in [foldedName(contact.name)] + contact.emails.compactMap({ mailboxName($0.address) }) {
            var words = Array(words(text).prefix(SearchRules.maxQueryWords))
            while !words.isEmpty, words.joined(separator: " ").utf8.count > SearchRules.maxQueryBytes { words.removeLast() }
            let query = words.joined(separator: " ")
            if !query.isEmpty, !texts.contains(query) { texts.append(query) }
        }
        return Array(texts.prefix(4))
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
        let contact = try await get(id: id, includeDeleted: false, actor: actor)
        var found: [UUID: ContactRecord] = [:]
        let phones = Array(Set(contact.data.phones.map(\.e164).filter { !$0.isEmpty })).sorted()
        if !phones.isEmpty {
            let matches = try await lookup(emails: [], phones: Array(phones.prefix(Self.maxLookupValues)), actor: actor).phones
            let ids = Set(matches.flatMap(\.contactIDs)).subtracting([id])
            for record in try await store.fetch(ids: Array(ids), actor: actor) { found[record.id] = record }
        }
        for text in DuplicateRules.searches(for: contact.data) {
            var search = ContactSearch()
            search.text = text
            // A name the search would refuse as a query (its own word rules) is not searched; the other sources remain.
            guard SearchRules.violations(of: search).isEmpty else { continue }
            let hits = try await self.search(
                search, pageSize: DuplicateRules.searchedCandidates, pageToken: "", actor: actor, encodedSize: { _ in 0 })
            for hit in hits.hits where hit.record.id != id { found[hit.record.id] = hit.record }
        }
        let candidates = found.values.compactMap { record -> DuplicateCandidate? in
            guard let match = DuplicateRules.compare(contact.data, with: record.data) else { return nil }
            return DuplicateCandidate(record: record, score: match.score, signals: match.signals, nameSimilarity: match.nameSimilarity)
        }
        let limit = maxResults == 0 ? DuplicateRules.defaultResults : maxResults
        return Array(
            candidates.sorted { $0.score != $1.score ? $0.score > $1.score : $0.record.id.uuidString < $1.record.id.uuidString }.prefix(limit))
    }
}
