import CommunicationService
import Foundation
import SwitchboardServiceKit
import Testing

/// The template scanner and rendering rules, pure.
@Suite("Communication service: template rules")
struct TemplateRulesTests {
    private func variables(_ text: String) throws -> [String] {
        try TemplateScanner.scan(text).compactMap { if case .variable(let v) = $0 { v } else { nil } }
    }

    @Test("placeholders: names with dots, spaces inside the braces, literals kept, braces without a placeholder refused")
    func scanning() throws {
        #expect(try variables("Hi {{contact.first_name}}, your tier is {{ custom.tier }}.") == ["contact.first_name", "custom.tier"])
        #expect(try variables("no placeholders, a single { brace and a } one") == [])
        #expect(try variables("") == [])
        #expect(try variables("{{a}}{{b}}") == ["a", "b"])
        let pieces = try TemplateScanner.scan("x{{a}}y")
        #expect(pieces.count == 3)
        for bad in ["{{", "{{}}", "{{ }}", "{{1x}}", "{{a-b}}", "{{a}", "{{a} }", "text {{x{{x}}", "{{\(String(repeating: "a", count: 65))}}"] {
            #expect(throws: TemplateScanner.Malformed.self, "\(bad)") { _ = try TemplateScanner.scan(bad) }
        }
        #expect(try variables("{{\(String(repeating: "a", count: 64))}}").first?.count == 64)
        do {
            _ = try TemplateScanner.scan("héllo {{ bad! }}")
            Issue.record("accepted")
        } catch {
            #expect(error.offset == 7)  // bytes, not characters
        }
    }

    @Test("adversarial input: 1 MB of \"{{x\", of \"{\" and of unclosed placeholders is refused; 64 KB of placeholders and near-misses scans whole")
    func adversarial() throws {
        // Speed is not asserted here (tests never time): the scanner makes one pass (see TemplateScanner.scan); this
        // checks what it answers on the inputs that made an earlier scanner quadratic.
        for text in [String(repeating: "{{x", count: 350_000), String(repeating: "{", count: 1_000_000), String(repeating: "{{ x ", count: 200_000)] {
            #expect(throws: TemplateScanner.Malformed.self) { _ = try TemplateScanner.scan(text) }
        }
        let many = String(repeating: "{{a}} { x } ", count: 100_000)
        #expect(try TemplateScanner.scan(many).count == 200_000)
    }

    @Test("HTML bodies: every value rendered into the body is escaped, the subject stays text; HTML only for e-mail")
    func html() throws {
        #expect(
            String(decoding: TemplateRules.htmlEscaped(#"<a href="x">Tom & 'Jerry'</a>"#), as: UTF8.self)
                == "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;")
        let data = TemplateData(name: "n", channel: .email, subject: "Hi {{name}}", body: "<p>Dear {{name}}</p>", html: true)
        let record = TemplateRecord(
            id: UUID(), version: 1, data: data, variables: try TemplateRules.validate(data), createdAt: Date(), createdBy: "u")
        let rendering = try TemplateRules.render(record, values: ["name": "<script>x</script> & co"])
        #expect(rendering.body == "<p>Dear &lt;script&gt;x&lt;/script&gt; &amp; co</p>")
        #expect(rendering.subject == "Hi <script>x</script> & co")
        var text = record
        text.data.html = false
        #expect(try TemplateRules.render(text, values: ["name": "<b>"]).body == "<p>Dear <b></p>")
        #expect(throws: CommunicationError.self) { _ = try TemplateRules.validate(TemplateData(name: "n", channel: .sms, body: "b", html: true)) }
        do {
            _ = try TemplateRules.validate(TemplateData(name: "n", channel: .sms, body: "b", html: true))
        } catch CommunicationError.invalid(let violations) {
            #expect(violations.map(\.field) == ["template.body_format"])
        }
    }

    @Test("HTML templates: a placeholder only where escaping keeps a value safe (text, quoted values, after a URL's fixed start)")
    func htmlPlaceholders() throws {
        let safe = [
            "<p>Dear {{n}}</p>", "<a href=\"https://example.com/u/{{n}}\" title='{{n}}'>{{n}}</a>", "<img alt=\"{{n}}\" src=\"/img/{{n}}.png\">",
            "<a href=\"?id={{n}}\">x</a>", "<STYLE>p { color: red }</STYLE>{{n}}", "<p>1 < 2 and {{n}}</p>", "<!DOCTYPE html><p>{{n}}</p>",
        ]
        for body in safe { #expect(HTMLPlaceholders.problems(in: body).isEmpty, "\(body)") }
        let unsafe = [
            "<a href=\"{{n}}\">x</a>", "<a HREF='{{n}}'>x</a>", "<img src={{n}}>", "<p {{n}}>x</p>", "<p title={{n}}>x</p>",
            "<div onclick=\"go('{{n}}')\">x</div>", "<p style=\"color: {{n}}\">x</p>", "<script>var a = '{{n}}';</script>",
            "<style>p { color: {{n}} }</style>", "<{{n}}>", "<a href=\"j{{n}}\">x</a>",
        ]
        for body in unsafe { #expect(HTMLPlaceholders.problems(in: body).count == 1, "\(body)") }
        // Where a browser would read the text differently from the check (found in review): refused as a whole.
        let desyncs = [
            "<!--><script>{{n}}</script>", "<!--[if mso]><a href=\"{{n}}\">x</a><![endif]-->", "</ a=\"><img src=x onerror={{n}}>\">",
            "<title><a title=\"</title><img src=x onerror={{n}}>\">", "<script><!--<script></script>{{n}}", "<p>{{n}}</p><!-- c -->",
            "<a href=\"javascript:go('{{n}}')\">x</a>", "<a href=\"data:text/html,{{n}}\">x</a>", "<a href=\"/{{n}}\">x</a>",
            "<a href=\"https://example.com{{n}}\">x</a>", "<a href=\"https://{{n}}\">x</a>", "<iframe srcdoc=\"{{n}}\"></iframe>",
            "<meta http-equiv=\"refresh\" content=\"0;url={{n}}\">", "<svg><animate to=\"{{n}}\"/></svg>", "<!{{n}}>",
            "<style>p { color: {{n}} }</style>", "<p>x</p><!DOCTYPE html>{{n}}",
        ]
        for body in desyncs { #expect(!HTMLPlaceholders.problems(in: body).isEmpty, "\(body)") }
        // Read as browsers read them: a title ends only at </title, whatever quotes it holds; a leading doctype is fine.
        for body in [
            "<!DOCTYPE html><html><head><title>Hi \"{{n}}</title></head><body><p>{{n}}</p></body></html>", "<textarea>{{n}}</textarea>",
            "<a href=\"mailto:{{n}}\">m</a>", "<a href=\"tel:{{n}}\">t</a>", "<a href=\"#{{n}}\">f</a>", "<a href=\"/p/{{n}}\">p</a>",
            "<style>p { color: red }</style><p>{{n}}</p>", "<title>x</titlex>{{n}}</title>",
        ] {
            #expect(HTMLPlaceholders.problems(in: body).isEmpty, "\(body): \(HTMLPlaceholders.problems(in: body))")
        }
        // Without placeholders nothing can be injected: any markup is the author's.
        #expect(HTMLPlaceholders.problems(in: "<script>alert(1)</script><!-- c -->").isEmpty)
        do {
            _ = try TemplateRules.validate(TemplateData(name: "n", channel: .email, body: "<a href=\"{{url}}\">x</a> {{a}}", html: true))
            Issue.record("accepted")
        } catch CommunicationError.invalid(let violations) {
            #expect(violations.map(\.field) == ["template.body"] && violations.first?.reason == "UNSAFE_PLACEHOLDER")
            #expect(violations.first?.description.contains("{{url}}") == true, "\(violations)")
        }
        // A version stored under older rules (made here directly, as a database row would be read) is refused when read
        // for rendering; the same body as text, or a safe HTML body, renders.
        let stored = TemplateRecord(
            id: UUID(), version: 3, data: TemplateData(name: "n", channel: .email, body: "<a href=\"{{url}}\">x</a>", html: true),
            variables: ["url"], createdAt: Date(), createdBy: "u")
        #expect(throws: CommunicationError.self) { try TemplateRules.checkRenderable(stored) }
        var asText = stored
        asText.data.html = false
        try TemplateRules.checkRenderable(asText)
        var safeVersion = stored
        safeVersion.data.body = "<p>{{url}}</p>"
        try TemplateRules.checkRenderable(safeVersion)
        // The same text as plain text is fine: it is not HTML.
        #expect(try TemplateRules.validate(TemplateData(name: "n", channel: .email, body: "<a href=\"{{url}}\">x</a>")) == ["url"])
    }

    @Test("validation: name, body, sizes, NUL bytes, malformed placeholders and too many variables name their fields")
    func validation() throws {
        #expect(
            try TemplateRules.validate(TemplateData(name: "Welcome", channel: .email, subject: "Hi {{n}}", body: "{{n}} {{m}} {{n}}")) == ["n", "m"])
        func fields(_ data: TemplateData) -> Set<String> {
            do {
                _ = try TemplateRules.validate(data)
                return []
            } catch CommunicationError.invalid(let v) {
                return Set(v.map(\.field))
            } catch { return ["?"] }
        }
        #expect(fields(TemplateData(name: " ", channel: .email, body: "")) == ["template.name", "template.body"])
        #expect(
            fields(TemplateData(name: String(repeating: "n", count: 201), channel: .sms, subject: String(repeating: "s", count: 999), body: "ok"))
                == ["template.name", "template.subject"])
        #expect(fields(TemplateData(name: "n", channel: .email, body: String(repeating: "b", count: 65537))) == ["template.body"])
        #expect(
            fields(TemplateData(name: "n\u{0}", channel: .email, subject: "\u{0}", body: "a\u{0}")) == [
                "template.name", "template.subject", "template.body",
            ])
        #expect(fields(TemplateData(name: "n", channel: .email, subject: "{{", body: "ok")) == ["template.subject"])
        #expect(fields(TemplateData(name: "n", channel: .email, subject: "Hi\r\nBcc: x", body: "b")) == ["template.subject"])
        let hundredOne = (0...100).map { "{{v\($0)}}" }.joined()
        #expect(fields(TemplateData(name: "n", channel: .email, body: hundredOne)) == ["template.body"])
    }

    @Test("rendering fills values, reports missing or empty ones instead of rendering blanks, and bounds its output")
    func rendering() throws {
        let record = TemplateRecord(
            id: UUID(), version: 3, data: TemplateData(name: "t", channel: .email, subject: "Hi {{first}}", body: "Dear {{first}}, {{tier}}."),
            variables: ["first", "tier"], createdAt: Date(), createdBy: "u")
        let done = try TemplateRules.render(record, values: ["first": "Ada", "tier": "gold", "unused": "x"])
        #expect(done.complete && done.subject == "Hi Ada" && done.body == "Dear Ada, gold." && done.version == 3)
        let missing = try TemplateRules.render(record, values: ["first": "Ada", "tier": ""])
        #expect(!missing.complete && missing.missing == ["tier"] && missing.body.isEmpty && missing.subject.isEmpty)
        #expect(try TemplateRules.render(record, values: [:]).missing == ["first", "tier"])
        // A value keeps the subject one line (a name from a web form must not add a header); the body keeps it as is.
        let injected = try TemplateRules.render(record, values: ["first": "Ann\r\nBcc: x@evil.example", "tier": "gold"])
        #expect(injected.subject == "Hi Ann  Bcc: x@evil.example" && injected.body.contains("Ann\r\nBcc"))
        // A subject written with a line break is refused for a send, as for a template.
        var send = SendData(contactID: UUID(), channel: .email, purpose: "news", toAddress: "a@example.com")
        send.subject = "Hello\r\nBcc: x@evil.example"
        send.body = "b"
        #expect(
            throws: CommunicationError.invalid([
                Violation("send.subject", "must be one line: no line breaks or control characters", reason: "INVALID_CHARACTER")
            ])
        ) {
            try SendRules.validate(send, now: Date())
        }
        // An SMS has no subject: one given is refused, not dropped.
        var sms = SendData(contactID: UUID(), channel: .sms, purpose: "news", toAddress: "+1 555 0100")
        sms.subject = "Hi"
        sms.body = "b"
        #expect(throws: CommunicationError.invalid([Violation("send.subject", "is for e-mail only (an SMS has no subject)", reason: "INVALID")])) {
            try SendRules.validate(sms, now: Date())
        }
        sms.subject = ""
        try SendRules.validate(sms, now: Date())

        let wide = TemplateRecord(
            id: UUID(), version: 1, data: TemplateData(name: "t", channel: .email, body: String(repeating: "{{v}}", count: 100)),
            variables: ["v"], createdAt: Date(), createdBy: "u")
        #expect(throws: CommunicationError.self) { _ = try TemplateRules.render(wide, values: ["v": String(repeating: "x", count: 4096)]) }
        #expect(try TemplateRules.render(wide, values: ["v": String(repeating: "x", count: 2000)]).body.utf8.count == 200_000)
        #expect(throws: CommunicationError.self) { try TemplateRules.validate(values: ["v": String(repeating: "x", count: 4097)]) }
        #expect(throws: CommunicationError.self) {
            try TemplateRules.validate(values: Dictionary(uniqueKeysWithValues: (0...200).map { ("k\($0)", "v") }))
        }
        #expect(throws: CommunicationError.self) { try TemplateRules.validate(values: [String(repeating: "k", count: 65): "v"]) }
    }
}
