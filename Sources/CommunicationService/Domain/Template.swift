import FoundationEssentials
import SwitchboardServiceKit

/// What a caller sets on a template version.
public struct TemplateData: Sendable, Hashable {
    /// A name for people.
    public var name: String
    /// The channel it is written for.
    public var channel: Channel
    /// The subject (e-mail).
    public var subject: String
    /// The body.
    public var body: String
    /// The body is HTML (e-mail only): values rendered into it are escaped.
    public var html: Bool

    /// Creates template data.
    public init(name: String, channel: Channel, subject: String = "", body: String, html: Bool = false) {
        self.name = name
        self.channel = channel
        self.subject = subject
        self.body = body
        self.html = html
    }
}

/// A stored template version.
public struct TemplateRecord: Sendable, Hashable {
    /// The template's id (shared by its versions).
    public var id: UUID
    /// The version, from 1.
    public var version: Int
    /// Its text.
    public var data: TemplateData
    /// The placeholders of subject and body, in order of first appearance.
    public var variables: [String]
    /// When this version was made.
    public var createdAt: Date
    /// Who made it.
    public var createdBy: String

    /// Creates a record.
    public init(id: UUID, version: Int, data: TemplateData, variables: [String], createdAt: Date, createdBy: String) {
        self.id = id
        self.version = version
        self.data = data
        self.variables = variables
        self.createdAt = createdAt
        self.createdBy = createdBy
    }
}

/// A rendering: complete text, or the placeholders that had no value.
public struct Rendering: Sendable, Hashable {
    /// The version rendered.
    public var version: Int
    /// Placeholders without a (non-empty) value, in order of first appearance; empty when complete.
    public var missing: [String]
    /// The rendered subject; empty unless complete.
    public var subject: String
    /// The rendered body; empty unless complete.
    public var body: String
    /// Every placeholder had a value.
    public var complete: Bool { missing.isEmpty }
}

/// Bounds and rules of templates and rendering, pure.
public enum TemplateRules {
    /// Longest template name (bytes).
    public static let maxNameBytes = 200
    /// Longest subject (bytes).
    public static let maxSubjectBytes = InteractionRules.maxSubjectBytes
    /// Longest body (bytes).
    public static let maxBodyBytes = 64 * 1024
    /// Longest placeholder name (bytes).
    public static let maxVariableLength = 64
    /// Most distinct placeholders in one template.
    public static let maxVariables = 100
    /// Most values in one render request, and the longest value (bytes).
    public static let maxValues = 200, maxValueBytes = 4096
    /// The most bytes one rendering may produce (subject and body together): a body of many placeholders with long
    /// values would otherwise multiply the request's size.
    public static let maxRenderedBytes = 256 * 1024

    /// Checks template data and returns its placeholders in order of first appearance.
    /// - Throws: ``CommunicationError/invalid(_:)`` naming each bad field under `prefix`.
    public static func validate(_ data: TemplateData, prefix: String = "template") throws -> [String] {
        var violations: [Violation] = []
        let name = InteractionRules.trimmed(data.name)
        if name.isEmpty {
            violations.append(Violation("\(prefix).name", "is required", reason: "REQUIRED"))
        } else if data.name.utf8.count > maxNameBytes {
            violations.append(Violation("\(prefix).name", "must be at most \(maxNameBytes) bytes", reason: "TOO_LONG"))
        }
        if data.body.isEmpty { violations.append(Violation("\(prefix).body", "is required", reason: "REQUIRED")) }
        if data.html, data.channel != .email {
            violations.append(Violation("\(prefix).body_format", "HTML is for e-mail templates only", reason: "INVALID"))
        }
        if !data.subject.isEmpty, data.channel != .email {
            violations.append(Violation("\(prefix).subject", "is for e-mail templates only (an SMS has no subject)", reason: "INVALID"))
        }
        var variables: [String] = []
        for (field, text, max) in [("name", data.name, maxNameBytes), ("subject", data.subject, maxSubjectBytes), ("body", data.body, maxBodyBytes)] {
            if InteractionRules.hasNUL(text) {
                violations.append(Violation("\(prefix).\(field)", "must not contain NUL characters", reason: "INVALID_CHARACTER"))
                continue
            }
            if field == "name" { continue }
            if field == "subject", InteractionRules.hasControl(text) {
                violations.append(
                    Violation("\(prefix).subject", "must be one line: no line breaks or control characters", reason: "INVALID_CHARACTER"))
                continue
            }
            guard text.utf8.count <= max else {
                violations.append(Violation("\(prefix).\(field)", "must be at most \(max) bytes", reason: "TOO_LONG"))
                continue
            }
            do {
                for case .variable(let v) in try TemplateScanner.scan(text) where !variables.contains(v) { variables.append(v) }
            } catch {
                violations.append(
                    Violation(
                        "\(prefix).\(field)",
                        "has a \"{{\" at byte \(error.offset) that does not start a placeholder {{name}} (a letter or _, then letters, digits, _ or ., at most \(maxVariableLength))",
                        reason: "INVALID_FORMAT"))
            }
        }
        if data.html, !InteractionRules.hasNUL(data.body), data.body.utf8.count <= maxBodyBytes {
            let problems = HTMLPlaceholders.problems(in: data.body)
            if let first = problems.first {
                violations.append(
                    Violation(
                        "\(prefix).body", first + (problems.count > 1 ? " (and \(problems.count - 1) more)" : ""), reason: "UNSAFE_PLACEHOLDER"))
            }
        }
        if variables.count > maxVariables {
            violations.append(Violation("\(prefix).body", "uses more than \(maxVariables) distinct placeholders", reason: "TOO_MANY"))
        }
        if !violations.isEmpty { throw CommunicationError.invalid(violations) }
        return variables
    }

    /// Checks render values.
    /// - Parameter field: the request's field holding them (`values` in RenderTemplate, `template_values` in SendMessage).
    /// - Throws: ``CommunicationError/invalid(_:)`` naming `<field>` or `<field>[key]`.
    public static func validate(values: [String: String], field name: String = "values") throws {
        guard values.count <= maxValues else {
            throw CommunicationError.invalid([Violation(name, "at most \(maxValues) values", reason: "TOO_MANY")])
        }
        var violations: [Violation] = []
        for (key, value) in values.sorted(by: { $0.key < $1.key }) {
            let field = "\(name)[\(CustomFieldRules.excerpt(key, maxBytes: maxVariableLength))]"
            if key.utf8.count > maxVariableLength || InteractionRules.hasNUL(key) {
                violations.append(Violation(field, "keys are placeholder names of at most \(maxVariableLength) bytes", reason: "INVALID_FORMAT"))
            } else if value.utf8.count > maxValueBytes {
                violations.append(Violation(field, "must be at most \(maxValueBytes) bytes", reason: "TOO_LONG"))
            } else if InteractionRules.hasNUL(value) {
                violations.append(Violation(field, "must not contain NUL characters", reason: "INVALID_CHARACTER"))
            }
        }
        if !violations.isEmpty { throw CommunicationError.invalid(violations) }
    }

    /// The placeholders of a contact's record, besides `custom.<key>`.
    public static let contactFieldNames: Set<String> = [
        "contact.name.given", "contact.name.family", "contact.name.middle", "contact.name.prefix", "contact.name.suffix",
        "contact.name.display", "contact.email", "contact.phone",
    ]

    /// Whether a placeholder is filled from the recipient's record (one of ``contactFieldNames``, or `custom.<key>`)
    /// rather than only by the caller. A misspelt one (`contact.first_name`) is not: a campaign needs a value for it up
    /// front instead of skipping every recipient.
    public static func isContactField(_ name: String) -> Bool { contactFieldNames.contains(name) || name.hasPrefix("custom.") }

    /// The values a rendering for one contact uses: the contact's fields as the contacts feed last gave them, and the
    /// caller's values for every placeholder the record has no value for (so a caller's `contact.name.given` is the
    /// fallback, "friend", for a contact without one).
    public static func values(_ given: [String: String], contact fields: [String: String]) -> [String: String] {
        given.merging(fields.filter { !$0.value.isEmpty }) { _, record in record }
    }

    /// `text` with the characters HTML gives meaning to written as entities (`&amp;`, `&lt;`, `&gt;`, `&quot;`,
    /// `&#39;`): safe inside element content and quoted attribute values.
    public static func htmlEscaped(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "&"): out += Array("&amp;".utf8)
            case UInt8(ascii: "<"): out += Array("&lt;".utf8)
            case UInt8(ascii: ">"): out += Array("&gt;".utf8)
            case UInt8(ascii: "\""): out += Array("&quot;".utf8)
            case UInt8(ascii: "'"): out += Array("&#39;".utf8)
            default: out.append(byte)
            }
        }
        return out
    }

    /// Checks a stored version before it is rendered: an HTML version saved under older rules renders only if today's
    /// rules accept it. Made once per version read (a campaign checks it once per batch, not per recipient).
    /// - Throws: ``CommunicationError/invalid(_:)`` naming `template_id`.
    public static func checkRenderable(_ template: TemplateRecord) throws {
        if template.data.html, let problem = HTMLPlaceholders.problems(in: template.data.body).first {
            throw CommunicationError.invalid([
                Violation(
                    "template_id", "version \(template.version) is an HTML template this service no longer renders: \(problem); save a new version",
                    reason: "UNSAFE_PLACEHOLDER")
            ])
        }
    }

    /// Renders a template version with `values`. A placeholder with no value or an empty one is reported missing and
    /// nothing is rendered: a message is never sent with blanks.
    /// - Throws: ``CommunicationError/invalid(_:)`` naming `values` when the output would pass ``maxRenderedBytes``.
    public static func render(_ template: TemplateRecord, values: [String: String]) throws -> Rendering {
        let missing = template.variables.filter { (values[$0] ?? "").isEmpty }
        guard missing.isEmpty else { return Rendering(version: template.version, missing: missing, subject: "", body: "") }
        var budget = maxRenderedBytes
        // A value rendered into the subject keeps it one line: its line breaks and control characters become spaces (a
        // contact's name from an import or a web form must not add a `Bcc:` header).
        func fill(_ text: String, oneLine: Bool = false, html: Bool = false) throws -> String {
            // The text was scanned when the version was saved; a failure here means stored text changed under us.
            guard let pieces = try? TemplateScanner.scan(text) else { throw CommunicationError.invalid([Violation("template_id", "is corrupt")]) }
            var out: [UInt8] = []
            for piece in pieces {
                let bytes: [UInt8]
                switch piece {
                case .literal(let literal): bytes = Array(literal)
                case .variable(let name):
                    let value = values[name] ?? ""
                    if oneLine {
                        bytes = value.utf8.map { InteractionRules.isControl($0) ? 0x20 : $0 }
                    } else {
                        bytes = html ? htmlEscaped(value) : Array(value.utf8)
                    }
                }
                budget -= bytes.count
                guard budget >= 0 else {
                    throw CommunicationError.invalid([
                        Violation("values", "the rendered text would pass \(maxRenderedBytes) bytes", reason: "TOO_LONG")
                    ])
                }
                out += bytes
            }
            return String(decoding: out, as: UTF8.self)
        }
        return Rendering(
            version: template.version, missing: [], subject: try fill(template.data.subject, oneLine: true),
            body: try fill(template.data.body, html: template.data.html))
    }
}

/// Persistence of templates: versions are appended, never changed.
public protocol TemplateStore: Sendable {
    /// The first response of a request id, if the request was already made.
    func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]?
    /// Stores version 1 of a new template.
    func create(
        _ data: TemplateData, variables: [String], actor: Actor, write: WriteOptions<TemplateRecord>
    ) async throws -> WriteOutcome<TemplateRecord>
    /// Appends a version; `expectedVersion` (if set) must still be the latest (`etagMismatch`); `notFound` for no template.
    func addVersion(
        id: UUID, _ data: TemplateData, variables: [String], expectedVersion: Int?, actor: Actor, write: WriteOptions<TemplateRecord>
    ) async throws -> WriteOutcome<TemplateRecord>
    /// A version (nil: the latest).
    func fetch(id: UUID, version: Int?, actor: Actor) async throws -> TemplateRecord?
    /// Latest versions in name order after a cursor.
    func list(after: (nameKey: String, id: UUID)?, limit: Int, actor: Actor) async throws -> Rows<TemplateRecord>
    /// A contact's fields for templates (placeholder name → value) as the contacts feed last gave them; empty for a
    /// contact the feed has not brought (or deleted).
    func contactFields(contactID: UUID, actor: Actor) async throws -> [String: String]
}

/// The template use cases.
public struct TemplateDomain: Sendable {
    let store: any TemplateStore

    /// Creates the domain.
    public init(store: any TemplateStore) { self.store = store }

    /// Creates a template (version 1).
    public func create(_ data: TemplateData, actor: Actor, write: WriteOptions<TemplateRecord>) async throws -> WriteOutcome<TemplateRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        var data = data
        data.name = InteractionRules.trimmed(data.name)
        let variables = try TemplateRules.validate(data)
        return try await store.create(data, variables: variables, actor: actor, write: write)
    }

    /// Saves a new version.
    /// - Parameter keepingFormat: the request did not state a body format: the new version keeps the latest one's (a
    ///   client that does not know the field must not turn an HTML template into text).
    public func update(
        id: UUID, _ data: TemplateData, keepingFormat: Bool = false, expectedVersion: Int?, actor: Actor, write: WriteOptions<TemplateRecord>
    ) async throws -> WriteOutcome<TemplateRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        var data = data
        // (An HTML template moved to another channel becomes text: HTML is for e-mail only.)
        if keepingFormat, let latest = try await store.fetch(id: id, version: nil, actor: actor) {
            data.html = latest.data.html && data.channel == .email
        }
        data.name = InteractionRules.trimmed(data.name)
        let variables = try TemplateRules.validate(data)
        return try await store.addVersion(id: id, data, variables: variables, expectedVersion: expectedVersion, actor: actor, write: write)
    }

    /// A version (nil: the latest).
    public func get(id: UUID, version: Int?, actor: Actor) async throws -> TemplateRecord {
        guard let record = try await store.fetch(id: id, version: version, actor: actor) else {
            throw CommunicationError.notFound(kind: "template", id: id.uuidString.lowercased() + (version.map { " version \($0)" } ?? ""))
        }
        return record
    }

    /// A page of templates (latest versions) in name order.
    public func list(pageSize: Int, pageToken: String, actor: Actor) async throws -> ([TemplateRecord], String) {
        let limit = try InteractionRules.pageLimit(pageSize)
        let fingerprint = PageToken.fingerprint(["templates"])
        var after: (String, UUID)?
        if let cursor = try PageToken.resume(pageToken, fingerprint: fingerprint, parts: 2) {
            // PostgreSQL text cannot hold NUL: a forged cursor with one would be an INTERNAL error, not this one.
            guard let id = UUID(uuidString: cursor[1]), cursor[0].utf8.count <= TemplateRules.maxNameBytes * 2,
                !InteractionRules.hasNUL(cursor[0])
            else {
                throw CommunicationError.invalid([Violation("page.page_token", "is not a token this service issued", reason: "INVALID_FORMAT")])
            }
            after = (cursor[0], id)
        }
        let rows = try await store.list(after: after, limit: limit, actor: actor)
        var next = ""
        if rows.more, let last = rows.records.last {
            next = PageToken(cursor: [last.data.name.lowercased(), last.id.uuidString.lowercased()], fingerprint: fingerprint).encoded
        }
        return (rows.records, next)
    }

    /// Renders a version with values, and with a contact's fields when `contactID` is set (``TemplateRules/values(_:contact:)``).
    public func render(id: UUID, version: Int?, values: [String: String], contactID: UUID? = nil, actor: Actor) async throws -> Rendering {
        try TemplateRules.validate(values: values)
        let template = try await get(id: id, version: version, actor: actor)
        try TemplateRules.checkRenderable(template)
        guard let contactID else { return try TemplateRules.render(template, values: values) }
        return try TemplateRules.render(
            template, values: TemplateRules.values(values, contact: try await contactFields(contactID: contactID, actor: actor)))
    }

    /// A contact's fields for templates.
    public func contactFields(contactID: UUID, actor: Actor) async throws -> [String: String] {
        try await store.contactFields(contactID: contactID, actor: actor)
    }
}
