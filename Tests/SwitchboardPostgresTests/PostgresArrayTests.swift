import Testing

@testable import SwitchboardPostgres

/// PostgreSQL's text form of one-dimensional arrays, read and written without a database.
@Suite("Array literals")
struct PostgresArrayTests {
    @Test("elements: bare and quoted, escapes, NULL and the text \"NULL\", empty strings, non-ASCII text")
    func parse() throws {
        #expect(try PostgresArray.parse("{}") == [])
        #expect(try PostgresArray.parse("{a,b}") == ["a", "b"])
        #expect(try PostgresArray.parse(#"{"a b","c\"d","e\\f",NULL,"NULL",""}"#) == ["a b", "c\"d", "e\\f", nil, "NULL", ""])
        #expect(try PostgresArray.parse(#"{zoë,"müller, lüdenscheidt","{}"}"#) == ["zoë", "müller, lüdenscheidt", "{}"])
        #expect(throws: PostgresError.self) { try PostgresArray.parse("a,b") }
        #expect(throws: PostgresError.self) { try PostgresArray.parse("{") }
    }

    @Test("what format writes, parse reads back")
    func roundTrip() throws {
        let alphabet: [Character] = ["a", "Z", " ", ",", "\"", "\\", "{", "}", "é", "漢", "😀", "N", "U", "L"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let count = Int.random(in: 0...6, using: &generator)
            let elements: [String] = (0..<count).map { _ in
                String((0..<Int.random(in: 0...8, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            }
            let literal = PostgresArray.format(elements.map { PostgresValue.text($0) })
            #expect(try PostgresArray.parse(literal) == elements, "\(literal)")
        }
    }
}
