import ContactsService
import Testing

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
