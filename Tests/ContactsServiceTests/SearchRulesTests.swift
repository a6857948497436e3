import Testing

@testable import ContactsService

/// The search's pure rules: how text splits into words, where highlights fall, what is refused.
@Suite("Search rules")
struct SearchRulesTests {
    @Test("words are lower-cased runs of letters or of digits; everything else splits them")
    func words() {
        #expect(SearchRules.words("John.Smith@Example.com") == ["john", "smith", "example", "com"])
        #expect(SearchRules.words("jsmith42@x1.io") == ["jsmith", "42", "x", "1", "io"])
        #expect(SearchRules.words("  Zoë  Müller-Lüdenscheidt +49 (30) 1234 ") == ["zoë", "müller", "lüdenscheidt", "49", "30", "1234"])
        #expect(SearchRules.words("a & !b | c:* <-> 'd'") == ["a", "b", "c", "d"])
        #expect(SearchRules.words("").isEmpty && SearchRules.words("!!! ---").isEmpty)
        #expect(SearchRules.words(String(repeating: "x", count: 100)) == [String(repeating: "x", count: 64)])
    }

    @Test("scores: the best candidate a contact holds per word, weighted by where it is in the name")
    func scores() {
        let jonSmth: [[(term: String, weight: Double)]] = [[("jon", 1.0), ("john", 0.8)], [("smith", 0.9), ("smyth", 0.85)]]
        // Given and family name at the query words' places: 1.0 × 1.8 + 0.9 × 1.8.
        #expect(abs(SearchRules.score(names: ["jon", "smith"], holding: ["jon", "smith"], candidates: jonSmth) - 3.42) < 1e-9)
        // In the name at other places: × 1.5.
        #expect(abs(SearchRules.score(names: ["smith", "jon"], holding: ["jon", "smith"], candidates: jonSmth) - 2.85) < 1e-9)
        // Outside the name (an e-mail address): the weights alone.
        #expect(abs(SearchRules.score(names: ["ann", "lee"], holding: ["jon", "smyth"], candidates: jonSmth) - 1.85) < 1e-9)
        // The best product wins, not the best weight: "john" as the given name (0.8 × 1.8) beats "jon" in an address.
        #expect(abs(SearchRules.score(names: ["john", "smith"], holding: ["jon", "john", "smith"], candidates: jonSmth) - (1.44 + 1.62)) < 1e-9)
        // A word the contact holds no candidate of adds nothing; words that are not candidates count for nothing.
        #expect(SearchRules.score(names: ["jon", "doe"], holding: ["jon", "doe"], candidates: jonSmth) == 1.8)
        #expect(SearchRules.score(names: [], holding: [], candidates: jonSmth) == 0)
    }

    @Test("the candidates a contact holds are read from its tsvector's text")
    func held() {
        let terms: Set<String> = ["jon", "john", "smith", "zoë", "o'hara", "a\\b"]
        func held(_ vector: String, prefixes: [String] = []) -> [String] {
            SearchRules.HeldCandidates(terms: terms, prefixes: prefixes).held(in: vector)
        }
        // Whole words in the vector's order; a word that only begins with a candidate is not it.
        #expect(held("'0001875' 'com' 'johnny' 'jon' 'smith' 'zoë'") == ["jon", "smith", "zoë"])
        // A prefix candidate is held when any word begins with it, once, after the whole words.
        #expect(
            held("'15550001875' '555' 'jon'", prefixes: ["555*", "1555*", "999*"]) == ["jon", "555*", "1555*"])
        // The format's escapes (a doubled quote, a backslash) and positions, though our words never have them.
        #expect(held("'o''hara':1,3A 'a\\\\b':2 'smith':4") == ["o'hara", "a\\b", "smith"])
        #expect(held("", prefixes: ["5*"]).isEmpty)
        // A truncated text stops at the last whole lexeme.
        #expect(held("'jon' 'smi") == ["jon"])
    }

    @Test("highlights mark whole matched words by Unicode scalar offsets, per field")
    func highlights() {
        var data = ContactData()
        data.name.given = "Zoë"
        data.name.family = "Müller"
        data.emails = [EmailAddress(address: "zoe.mueller@example.com")]
        data.tags = ["vip", "müller-fans"]
        let found = SearchRules.highlights(of: data, terms: ["müller", "zoe"])
        let byField = Dictionary(uniqueKeysWithValues: found.map { ($0.field, $0.matches) })
        #expect(byField["name.display"] == [4..<10])
        #expect(byField["name.family"] == [0..<6])
        #expect(byField["emails[0].address"] == [0..<3])
        #expect(byField["tags[1]"] == [0..<6])
        #expect(byField["name.given"] == nil && byField["tags[0]"] == nil)
        #expect(SearchRules.highlights(of: data, terms: []).isEmpty)
    }

    @Test("highlights read text of ASCII as bytes and find the words the general path finds")
    func highlightsOfASCII() {
        let terms: Set<String> = ["jon", "smith", "a", "x1", "5550", "555*", String(repeating: "q", count: 64), "zoë", "mueller"]
        let matcher = SearchRules.WordMatcher(terms: terms)
        // Prefix terms of letters, and the empty prefix, begin words of letters too.
        for others in [["jo*", "q*"], ["*"], ["0*"]] {
            let prefixed = SearchRules.WordMatcher(terms: terms.union(others))
            for text in ["Jon JOSH qq 0123 zoë-jo", "5550 55 x", "Mueller@example.COM"] {
                #expect(
                    prefixed.ranges(in: text) == SearchRules.wordRanges(text).filter { prefixed.matches($0.word) }.map(\.range), "\(others) \(text)")
            }
        }
        let alphabet = Array("jonSMITHa5x1 .@-Q0ë")
        var generator = SystemRandomNumberGenerator()
        for round in 0..<3000 {
            var text = String((0..<Int.random(in: 0...40, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            if round % 10 == 0 { text += String(repeating: "Q", count: Int.random(in: 63...66, using: &generator)) + " jon" }
            let expected = SearchRules.wordRanges(text).filter { matcher.matches($0.word) }.map(\.range)
            #expect(matcher.ranges(in: text) == expected, "\(text)")
        }
        #expect(matcher.ranges(in: "JON Smith, 5550123 mueller") == [0..<3, 4..<9, 11..<18, 19..<26])
        #expect(SearchRules.WordMatcher(terms: ["jon"]).ranges(in: "jonas jon") == [6..<9])
    }

    @Test("bounds and facet names")
    func bounds() {
        var search = ContactSearch()
        search.text = "one two three four five six seven eight"
        #expect(SearchRules.violations(of: search).isEmpty)
        search.text += " nine"
        #expect(SearchRules.violations(of: search).map(\.field) == ["query"])
        search.text = String(repeating: "é", count: 129)
        #expect(SearchRules.violations(of: search).map(\.field) == ["query"])
        search.text = ""
        search.tags = ["ok", ""]
        search.customFields = [
            CustomFieldFilter(key: "Bad Key", value: "x"), CustomFieldFilter(key: "ok", value: String(repeating: "v", count: 257)),
        ]
        #expect(SearchRules.violations(of: search).map(\.field) == ["tags[1]", "custom_fields", "custom_fields[ok]"])
        #expect(SearchRules.facet("status") == .status && SearchRules.facet("owner_id") == .owner)
        #expect(SearchRules.facet("custom_fields.region") == .customField("region"))
        #expect(SearchRules.facet("custom_fields.") == nil && SearchRules.facet("colour") == nil && SearchRules.facet("custom_fields.Bad") == nil)
    }
}
