import CWideCType
import FoundationEssentials
import Logging
import SwitchboardPostgres
import SwitchboardProtos
import Synchronization

/// A contact's search words as `contacts.word_list` (migration 014) gives them, computed in the service, so that an
/// insert can hand PostgreSQL its words instead of its trigger splitting the text with regular expressions (about
/// 25 µs of PostgreSQL's CPU a contact, the largest single share of an import's).
///
/// PostgreSQL's `lower()` and its regular expressions' `[[:alpha:]]`, `[[:digit:]]` and `[[:alnum:]]` classify a
/// character with the C library's wide-character functions in the database's `LC_CTYPE` (the libc locale provider; the
/// "C" and "POSIX" locales classify ASCII only). This calls the same glibc functions with the same locale, so the words
/// agree wherever the two processes' glibc and locale data are the same; ``SearchWordsSource`` checks what it can of
/// that before trusting them.
final class SearchWords: @unchecked Sendable {
    // @unchecked: the locale is only read after init (glibc's *_l functions are thread-safe on a locale object).
    private let locale: locale_t?
    /// Per ASCII code: its lowered code, and its kind (the common case, without a call into the C library).
    private let ascii: [(lowered: UInt8, kind: Kind)]

    /// What a character is to `word_list`: a separator, or part of a word (a run of letters or of digits).
    enum Kind: UInt8 {
        /// Neither letter nor digit: ends a word.
        case separator
        /// `[[:alpha:]]`: part of a run of letters.
        case letter
        /// `[[:digit:]]`: part of a run of digits.
        case digit
        /// Alphanumeric but neither a letter nor a digit (glibc has none): part of a word, in no run.
        case other
    }

    /// The word splitting of a database whose `LC_CTYPE` is `ctype`, or nil when this machine has no such locale.
    init?(ctype: String) {
        if ctype == "C" || ctype == "POSIX" {
            locale = nil
        } else {
            guard let made = newlocale(LC_CTYPE_MASK, ctype, nil) else { return nil }
            locale = made
        }
        var table: [(lowered: UInt8, kind: Kind)] = []
        table.reserveCapacity(128)
        for code in 0..<128 {
            let byte = UInt8(code)
            if let locale {
                let lowered = towlower_l(wint_t(code), locale)
                // A locale whose ASCII letters lower out of ASCII (Turkish "I") takes the slow path for them.
                table.append((lowered < 128 ? UInt8(lowered) : 0xFF, Self.kind(of: lowered, locale)))
            } else {
                let lowered = byte >= 65 && byte <= 90 ? byte + 32 : byte
                let kind: Kind =
                    (lowered >= 97 && lowered <= 122) ? .letter : (lowered >= 48 && lowered <= 57) ? .digit : .separator
                table.append((lowered, kind))
            }
        }
        ascii = table
    }

    deinit {
        if let locale { freelocale(locale) }
    }

    private static func kind(of code: wint_t, _ locale: locale_t) -> Kind {
        if iswalpha_l(code, locale) != 0 { return .letter }
        if iswdigit_l(code, locale) != 0 { return .digit }
        return iswalnum_l(code, locale) != 0 ? .other : .separator
    }

    /// This process's glibc version ("2.36"), as PostgreSQL records a libc collation's version.
    static let libcVersion = String(cString: gnu_get_libc_version())

    /// The longest run of letters, or of digits, a word keeps (`word_list` cuts longer runs).
    static let runLimit = 64

    /// The distinct words that begin with a letter, collected while words are split (those `search_terms` keeps:
    /// `w ~ '^[[:alpha:]]'` in ``PostgresContactStore/termsStatement(_:words:tenantID:)``).
    struct Terms {
        /// Whether words are collected (a caller that gives no words to the terms statement saves the set).
        var collect: Bool
        /// The words collected so far, lower-cased.
        var words: Set<String> = []
    }

    /// Appends the words of `text` to `out`, each preceded by a space unless `out` is empty: lower-cased, split at every
    /// character that is neither letter nor digit and between a letter and a digit, each run of letters or of digits
    /// cut to 64 characters — `contacts.word_list`'s words in order, duplicates kept; and each word that begins with a
    /// letter to `terms` when it collects.
    func appendWords(of text: String, to out: inout [UInt8], terms: inout Terms) {
        var open = false
        var start = 0
        var letterFirst = false
        var previous = Kind.separator
        var run = 0
        func close() {
            if open && letterFirst && terms.collect { terms.words.insert(String(decoding: out[start...], as: UTF8.self)) }
            open = false
        }
        for scalar in text.unicodeScalars {
            let lowered: UInt32
            let kind: Kind
            if scalar.value < 128, ascii[Int(scalar.value)].lowered != 0xFF {
                let entry = ascii[Int(scalar.value)]
                lowered = UInt32(entry.lowered)
                kind = entry.kind
            } else if let locale {
                let code = towlower_l(wint_t(scalar.value), locale)
                lowered = UInt32(code)
                kind = Self.kind(of: code, locale)
            } else {
                lowered = scalar.value
                kind = .separator
            }
            switch kind {
            case .separator:
                close()
                run = 0
            case .letter, .digit, .other:
                if (previous == .letter && kind == .digit) || (previous == .digit && kind == .letter) { close() }
                run = kind == previous && kind != .other ? run + 1 : 1
                if run <= Self.runLimit {
                    if !open {
                        if !out.isEmpty { out.append(0x20) }
                        open = true
                        start = out.count
                        letterFirst = kind == .letter
                    }
                    Self.appendUTF8(lowered, to: &out)
                }
            }
            previous = kind
        }
        close()
    }

    private static func appendUTF8(_ code: UInt32, to out: inout [UInt8]) {
        switch code {
        case ..<0x80: out.append(UInt8(code))
        case ..<0x800:
            out.append(UInt8(0xC0 | (code >> 6)))
            out.append(UInt8(0x80 | (code & 0x3F)))
        case ..<0x10000:
            out.append(UInt8(0xE0 | (code >> 12)))
            out.append(UInt8(0x80 | ((code >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (code & 0x3F)))
        default:
            out.append(UInt8(0xF0 | (code >> 18)))
            out.append(UInt8(0x80 | ((code >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((code >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (code & 0x3F)))
        }
    }

    /// `word_list(text)` joined by spaces (its words hold no space).
    func words(of texts: [String]) -> String {
        var terms = Terms(collect: false)
        return words(of: texts, terms: &terms)
    }

    private func words(of texts: [String], terms: inout Terms) -> String {
        var out: [UInt8] = []
        for text in texts { appendWords(of: text, to: &out, terms: &terms) }
        return String(decoding: out, as: UTF8.self)
    }

    /// What the contacts' trigger computes for a new contact (migration 014), as space-separated words: its search
    /// words (in any order, duplicates kept: `array_to_tsvector` sorts and merges them) and its name words (in order);
    /// the search words that begin with a letter are added to `terms` when it collects.
    func contactWords(_ data: ContactData, organizationNames: [String] = [], terms: inout Terms) -> (words: String, names: String) {
        let name = data.name
        var texts = [name.display, name.given, name.middle, name.family, name.prefix, name.suffix]
        texts += data.emails.map(\.address)
        texts += data.phones.map(\.number)
        texts += data.phones.map(\.e164)
        for value in data.customFields.values { if case .string(let text) = value { texts.append(text) } }
        texts += data.tags
        texts += organizationNames
        return (words(of: texts, terms: &terms), words(of: [name.given, name.family, name.middle, name.display, name.prefix, name.suffix]))
    }

    /// Text the probe compares with the database's `word_list`: each kind of character the splitting treats apart
    /// (letters that lower out of their block, marks, other scripts' digits, ligatures, long runs, JSON's escapes).
    static let probeTexts: [String] = [
        "John SMITH jo.smith+crm@Example.COM +1 (555) 010-0199 ab12cd 3rd",
        "Straße ΣΟΦΊΑ Σ İstanbul ǅemal ǈ ﬁne Ⅻ ⅻ ² x²y ½ ٣٤ ١٢a ١٢٣ ０１２ ＡＢＣ",
        "日本語テキスト 한국어 हिन्दी ไทย עברית العربية e\u{301}x a\u{200D}b 😀x 🇫🇷 ŉ ǰ ẞ Ω K Å",
        String(repeating: "q", count: 70) + "7" + String(repeating: "5", count: 70) + "z" + String(repeating: "É", count: 65),
        "tab\tnew\nline\u{1}ctl\u{7F}del quote\"back\\slash \\u0041 u0041 a_b a-b a'b",
    ]
}

/// Whether this store hands PostgreSQL the search words it computed (``SearchWords``), decided once per process: the
/// database must be PostgreSQL 15 or later in UTF-8 with the libc locale provider, the glibc version PostgreSQL records
/// for its collation (none for C, POSIX and C.UTF-8) must be this process's, its `LC_CTYPE` must open here, and the
/// words of ``SearchWords/probeTexts`` must be the database's own. Otherwise (an ICU database, a locale missing on
/// this machine, another glibc, any difference) the contacts' trigger computes them, as it does for every write that
/// does not give them. The probe checks chosen text, not every character: two glibc versions whose tables differ
/// elsewhere with the same recorded version (C.UTF-8 records none) would go unnoticed.
final class SearchWordsSource: Sendable {
    private enum State {
        case unknown
        case decided(SearchWords?)
    }

    private let state = Mutex(State.unknown)
    /// Where the decision is said once, so an operator can tell which side splits the words.
    private let logger: Logger?

    /// A source that probes the database on first use and logs what it decided.
    init(logger: Logger? = nil) {
        self.logger = logger
    }

    /// A source decided already (tests: nil makes the trigger compute every word).
    init(decided: SearchWords?) {
        logger = nil
        state.withLock { $0 = .decided(decided) }
    }

    /// The splitting to use, probing the database in a transaction of its own the first time (concurrent first callers
    /// may each probe; they decide alike); nil while the probe cannot run (the database unreachable: the write that
    /// follows fails or lets the trigger compute, and the next one probes again).
    func words(pool: PostgresPool) async -> SearchWords? {
        if case .decided(let words) = state.withLock({ $0 }) { return words }
        let probed: (words: SearchWords?, reason: String)
        do {
            probed = try await pool.transaction(settings: [:]) { try await Self.probe(on: $0) }
        } catch {
            return nil
        }
        let first = state.withLock { state -> Bool in
            if case .decided = state { return false }
            state = .decided(probed.words)
            return true
        }
        if first {
            logger?.info(
                "search words of new contacts: \(probed.words == nil ? "split by the database's trigger" : "split in the service")",
                metadata: ["reason": "\(probed.reason)"])
        }
        return probed.words
    }

    /// The service's splitting if it is the database's (see the type), else nil; and why, for the log. Every statement
    /// it runs works on any PostgreSQL the service supports, so an error is the connection's, not a refusal.
    static func probe(on connection: PostgresConnection) async throws -> (words: SearchWords?, reason: String) {
        let server = try await connection.query(
            "SELECT current_setting('server_version_num')::int AS version, getdatabaseencoding() AS encoding"
        ).first
        guard let server, try server.int("version") >= 150_000, try server.string("encoding") == "UTF8" else {
            return (nil, "not PostgreSQL 15 or later in UTF-8")
        }
        let database = try await connection.query(
            """
            SELECT datlocprovider::text AS provider, datctype, coalesce(pg_database_collation_actual_version(oid), '') AS libc
            FROM pg_database WHERE datname = current_database()
            """
        ).first
        guard let database, try database.string("provider") == "c" else { return (nil, "the database's locale provider is not libc") }
        let ctype = try database.string("datctype")
        let libc = try database.string("libc")
        guard libc.isEmpty || libc == SearchWords.libcVersion else {
            return (nil, "the database's glibc is \(libc), this process's \(SearchWords.libcVersion)")
        }
        guard let words = SearchWords(ctype: ctype) else { return (nil, "the locale \(ctype) is not installed here") }
        let rows = try await connection.query(
            "SELECT array_to_string(contacts.word_list(t), ' ') AS words FROM unnest($1::text[]) WITH ORDINALITY AS p (t, i) ORDER BY i",
            [.array(SearchWords.probeTexts.map(PostgresValue.text), elementType: .text)]
        ).rows
        let theirs = try rows.map { try $0.string("words") }
        guard theirs == SearchWords.probeTexts.map({ words.words(of: [$0]) }) else {
            return (nil, "the probe's words differ from the database's in \(ctype)")
        }
        return (words, "LC_CTYPE \(ctype), glibc \(SearchWords.libcVersion)")
    }
}
