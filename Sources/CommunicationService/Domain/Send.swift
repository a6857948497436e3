import FoundationEssentials
import SwitchboardRuntime
import SwitchboardServiceKit

/// Where a send is in its life (the values of `switchboard.communication.v1.SendStatus`).
public enum SendStatus: Int, Sendable, Hashable {
    case scheduled = 1, sending, sent, failed, cancelled, refused
}

/// What a caller asks to send.
public struct SendData: Sendable, Hashable {
    /// The recipient.
    public var contactID: UUID
    /// The channel.
    public var channel: Channel
    /// The purpose consent is checked for.
    public var purpose: String
    /// The address on the channel.
    public var toAddress: String
    /// The subject, when no template is named.
    public var subject = ""
    /// The body, when no template is named.
    public var body = ""
    /// A template to render instead (version nil: the latest).
    public var templateID: UUID?
    /// The template's version; nil for the latest.
    public var templateVersion: Int?
    /// The template's values.
    public var templateValues: [String: String] = [:]
    /// When to send; nil: now.
    public var sendAt: Date?
    /// The body is HTML (e-mail only); with a template, the template's. nil: not stated (text, or the template's).
    public var html: Bool?
    /// Deliver even inside the contact's quiet hours (consent and do-not-contact still apply).
    public var ignoreQuietHours = false

    /// Creates send data.
    public init(contactID: UUID, channel: Channel, purpose: String, toAddress: String) {
        self.contactID = contactID
        self.channel = channel
        self.purpose = purpose
        self.toAddress = toAddress
    }
}

/// A stored send.
public struct SendRecord: Sendable, Hashable {
    /// Its id, also the provider's idempotency key.
    public var id: UUID
    /// The recipient.
    public var contactID: UUID
    /// The channel.
    public var channel: Channel
    /// The purpose.
    public var purpose: String
    /// The address.
    public var toAddress: String
    /// The text sent.
    public var subject: String
    /// The text sent.
    public var body: String
    /// The template version rendered, if any.
    public var template: TemplateReference?
    /// When it is due.
    public var sendAt: Date
    /// Where it is.
    public var status: SendStatus
    /// Provider calls started.
    public var attempts: Int
    /// Why the last attempt failed or the send was refused.
    public var lastError: String
    /// The provider's id once sent.
    public var providerMessageID: String
    /// When the provider accepted it.
    public var sentAt: Date?
    /// The furthest state the provider's events report.
    public var deliveryState: DeliveryState = .none
    /// The campaign that made it, if one did.
    public var campaignID: UUID?
    /// The body is HTML.
    public var html = false
    /// It may be delivered inside the contact's quiet hours.
    public var ignoreQuietHours = false
    /// When it was made.
    public var createdAt: Date
    /// Who made it.
    public var createdBy: String
    /// When it last changed.
    public var updatedAt: Date
    /// Who or what changed it last (`dispatcher` for the dispatcher).
    public var updatedBy: String
}

/// Bounds and rules of sends, pure.
public enum SendRules {
    /// Longest address (bytes).
    public static let maxAddressBytes = 320
    /// How far ahead a send may be scheduled.
    public static let maxScheduleSeconds: TimeInterval = 366 * 24 * 3600

    /// Checks a request's data (the text is checked after rendering).
    /// - Throws: ``CommunicationError/invalid(_:)`` naming each bad field.
    public static func validate(_ data: SendData, now: Date) throws {
        var violations: [Violation] = []
        if !ConsentRules.isPurposeKey(data.purpose) || data.purpose == ConsentRules.allPurposes {
            violations.append(
                Violation("send.purpose", "must be a purpose key (not \"all\")", reason: data.purpose.isEmpty ? "REQUIRED" : "INVALID_FORMAT"))
        }
        let address = InteractionRules.trimmed(data.toAddress)
        if address.isEmpty {
            violations.append(Violation("send.to_address", "is required", reason: "REQUIRED"))
        } else if address.utf8.count > maxAddressBytes {
            violations.append(Violation("send.to_address", "must be at most \(maxAddressBytes) bytes", reason: "TOO_LONG"))
        } else if InteractionRules.hasNUL(address) {
            violations.append(Violation("send.to_address", "must not contain NUL characters", reason: "INVALID_CHARACTER"))
        }
        // An out-of-range Timestamp arrives as -infinity, which must not mean "now".
        if let at = data.sendAt, at < InteractionRules.earliest || at > now.addingTimeInterval(maxScheduleSeconds) {
            violations.append(Violation("send.send_at", "must be a valid time at most a year ahead", reason: "OUT_OF_RANGE"))
        }
        if data.templateID == nil {
            if data.body.isEmpty { violations.append(Violation("send.body", "is required without a template", reason: "REQUIRED")) }
            if !data.templateValues.isEmpty {
                violations.append(Violation("template_values", "are only read with send.template_id", reason: "INVALID"))
            }
        } else if !data.subject.isEmpty || !data.body.isEmpty {
            violations.append(Violation("send.body", "must be empty with a template (the template gives the text)", reason: "INVALID"))
        }
        if data.templateID == nil, data.html == true, data.channel != .email {
            violations.append(Violation("send.body_format", "HTML is for e-mail only", reason: "INVALID"))
        }
        if data.templateID == nil, !data.subject.isEmpty, data.channel != .email {
            violations.append(Violation("send.subject", "is for e-mail only (an SMS has no subject)", reason: "INVALID"))
        }
        if data.subject.utf8.count > InteractionRules.maxSubjectBytes {
            violations.append(Violation("send.subject", "must be at most \(InteractionRules.maxSubjectBytes) bytes", reason: "TOO_LONG"))
        }
        if data.body.utf8.count > InteractionRules.maxBodyBytes {
            violations.append(Violation("send.body", "must be at most \(InteractionRules.maxBodyBytes) bytes", reason: "TOO_LONG"))
        }
        for (field, text) in [("send.subject", data.subject), ("send.body", data.body)] where InteractionRules.hasNUL(text) {
            violations.append(Violation(field, "must not contain NUL characters", reason: "INVALID_CHARACTER"))
        }
        if !InteractionRules.hasNUL(data.subject), InteractionRules.hasControl(data.subject) {
            violations.append(Violation("send.subject", "must be one line: no line breaks or control characters", reason: "INVALID_CHARACTER"))
        }
        if !violations.isEmpty { throw CommunicationError.invalid(violations) }
    }
}

/// Persistence of sends on the request side (the dispatcher has its own store).
public protocol SendStore: Sendable {
    /// The first response of a request id, if the request was already made.
    func replay<V>(_ write: WriteOptions<V>, actor: Actor) async throws -> [UInt8]?
    /// Stores a scheduled send with its payload.
    func insert(
        id: UUID, _ data: SendData, subject: String, body: String, template: TemplateReference?, payload: [UInt8], maxAttempts: Int, actor: Actor,
        write: WriteOptions<SendRecord>
    ) async throws -> WriteOutcome<SendRecord>
    /// A send by id.
    func fetch(id: UUID, actor: Actor) async throws -> SendRecord?
    /// Whether an address hash is on the tenant's suppression list.
    func isSuppressed(kind: String, hash: String, actor: Actor) async throws -> Bool
    /// Whether the contact's preferences say not to contact them.
    func doNotContact(contactID: UUID, actor: Actor) async throws -> Bool
    /// Whether the address directory (the contacts feed's) lists `address` (normalised, of `kind`) for the contact.
    func isListed(address: String, kind: String, contactID: UUID, actor: Actor) async throws -> Bool
    /// Cancels a send still SCHEDULED (`notFound`, or `notCancellable` with its status).
    func cancel(id: UUID, actor: Actor, write: WriteOptions<SendRecord>) async throws -> WriteOutcome<SendRecord>
    /// Sends newest first (created, then id, descending) after `after`, at most `limit`, and the last one's cursor.
    func list(_ query: SendQuery, after: TimeCursor?, limit: Int, actor: Actor) async throws -> (Rows<SendRecord>, TimeCursor?)
}

/// Which sends ``SendDomain/list(_:pageSize:pageToken:actor:)`` lists.
public struct SendQuery: Sendable, Hashable {
    /// Only the sends to this contact.
    public var contactID: UUID?
    /// Only the sends this campaign made.
    public var campaignID: UUID?
    /// Only the sends in this status.
    public var status: SendStatus?

    /// Creates a query.
    public init(contactID: UUID? = nil, campaignID: UUID? = nil, status: SendStatus? = nil) {
        self.contactID = contactID
        self.campaignID = campaignID
        self.status = status
    }
}

/// The send use cases on the request side.
public struct SendDomain: Sendable {
    let store: any SendStore
    let consent: ConsentDomain
    let templates: TemplateDomain
    let maxAttempts: Int
    let suppressionSecret: [UInt8]?
    let payload: @Sendable (_ id: UUID, _ channel: Channel, _ to: String, _ subject: String, _ body: String, _ html: Bool) throws -> [UInt8]
    let now: @Sendable () -> Date

    /// Creates the domain.
    /// - Parameters:
    ///   - store: the sends.
    ///   - consent: the consent checks.
    ///   - templates: the templates rendered.
    ///   - maxAttempts: provider calls a send may take.
    ///   - suppressionSecret: the secret of the suppression hashes, if the service keeps the list.
    ///   - payload: the bytes posted to the provider for a send (its wire contract lives with the provider adapter).
    ///   - now: the clock bounding send_at.
    public init(
        store: any SendStore, consent: ConsentDomain, templates: TemplateDomain, maxAttempts: Int, suppressionSecret: [UInt8]? = nil,
        payload:
            @escaping @Sendable (_ id: UUID, _ channel: Channel, _ to: String, _ subject: String, _ body: String, _ html: Bool) throws -> [UInt8],
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.payload = payload
        self.store = store
        self.consent = consent
        self.templates = templates
        self.maxAttempts = maxAttempts
        self.suppressionSecret = suppressionSecret
        self.now = now
    }

    /// Schedules a send. The request id is required: a send is an effect outside the database, so a client retry must
    /// never make a second one.
    public func send(_ data: SendData, actor: Actor, write: WriteOptions<SendRecord>) async throws -> WriteOutcome<SendRecord> {
        guard !write.requestID.isEmpty else {
            throw CommunicationError.invalid([
                Violation("request_id", "is required: a retried SendMessage must not send twice", reason: "REQUIRED")
            ])
        }
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        var data = data
        data.toAddress = InteractionRules.trimmed(data.toAddress)
        try SendRules.validate(data, now: now())
        var subject = data.subject, body = data.body
        var template: TemplateReference?
        if let templateID = data.templateID {
            let record = try await templates.get(id: templateID, version: data.templateVersion, actor: actor)
            // An SMS template's text sent as an e-mail (or the other way round) is never what was meant.
            guard record.data.channel == data.channel else {
                throw CommunicationError.invalid([
                    Violation("send.template_id", "is written for \(record.data.channel), not the send's \(data.channel)", reason: "CHANNEL_MISMATCH")
                ])
            }
            if let html = data.html, html != record.data.html {
                throw CommunicationError.invalid([
                    Violation(
                        "send.body_format", "differs from the template's (\(record.data.html ? "HTML" : "TEXT")), which decides it", reason: "INVALID"
                    )
                ])
            }
            data.html = record.data.html
            try TemplateRules.checkRenderable(record)
            try TemplateRules.validate(values: data.templateValues, field: "template_values")
            // The contact's own fields fill `contact.…` and `custom.…`; the caller's values fill the rest and stand in
            // where the record has none. A template that uses none costs no read.
            let fields =
                record.variables.contains(where: TemplateRules.isContactField)
                ? try await templates.contactFields(contactID: data.contactID, actor: actor) : [:]
            let rendering = try TemplateRules.render(record, values: TemplateRules.values(data.templateValues, contact: fields))
            guard rendering.complete else {
                throw CommunicationError.invalid(
                    rendering.missing.prefix(InvalidRequest.maxReported).map {
                        Violation(
                            "template_values[\($0)]",
                            TemplateRules.isContactField($0)
                                ? "is required by the template: the contact's record has no value for it and none was given"
                                : "is required by the template and missing or empty", reason: "REQUIRED")
                    })
            }
            subject = rendering.subject
            body = rendering.body
            template = TemplateReference(id: record.id, version: record.version)
            guard subject.utf8.count <= InteractionRules.maxSubjectBytes, body.utf8.count <= InteractionRules.maxBodyBytes else {
                throw CommunicationError.invalid([
                    Violation("template_values", "the rendered text is longer than a message may be", reason: "TOO_LONG")
                ])
            }
        }
        if let secret = suppressionSecret {
            let kind = AddressRules.kind(of: data.channel)
            if try await store.isSuppressed(kind: kind, hash: AddressRules.suppressionHash(data.toAddress, kind: kind, secret: secret), actor: actor)
            {
                throw CommunicationError.suppressed
            }
        }
        // Consent is the contact's: the address must be one of the contact's own (as the contacts feed last gave them),
        // or one person's withdrawal could be bypassed by sending to them under another contact's consent. A deleted
        // contact has none, so it gets no new send either.
        let kind = AddressRules.kind(of: data.channel)
        guard
            try await store.isListed(
                address: AddressRules.normalized(data.toAddress, kind: kind), kind: kind, contactID: data.contactID, actor: actor)
        else {
            throw CommunicationError.addressNotListed(kind: kind)
        }
        let decision = try await consent.check(contactID: data.contactID, channel: data.channel, purpose: data.purpose, actor: actor)
        guard decision.allowed else { throw CommunicationError.consentRefused(decision.reason) }
        // Asked not to be contacted: whatever consent says (the dispatcher checks again when the send falls due).
        if try await store.doNotContact(contactID: data.contactID, actor: actor) { throw CommunicationError.doNotContact }
        let id = UUID.random()
        let payload = try self.payload(id, data.channel, data.toAddress, subject, body, data.html ?? false)
        return try await store.insert(
            id: id, data, subject: subject, body: body, template: template, payload: payload, maxAttempts: maxAttempts, actor: actor, write: write)
    }

    /// A send by id.
    public func get(id: UUID, actor: Actor) async throws -> SendRecord {
        guard let record = try await store.fetch(id: id, actor: actor) else {
            throw CommunicationError.notFound(kind: "send", id: id.uuidString.lowercased())
        }
        return record
    }

    /// A page of sends and the next page's token (empty on the last page).
    public func list(_ query: SendQuery, pageSize: Int, pageToken: String, actor: Actor) async throws -> ([SendRecord], String) {
        let limit = try InteractionRules.pageLimit(pageSize)
        let fingerprint = PageToken.fingerprint([
            "sends", query.contactID?.uuidString ?? "", query.campaignID?.uuidString ?? "", "\(query.status?.rawValue ?? 0)",
        ])
        let after = try InteractionDomain.resume(pageToken, fingerprint: fingerprint)
        let (rows, last) = try await store.list(query, after: after, limit: limit, actor: actor)
        return (rows.records, Self.token(after: last, more: rows.more, fingerprint: fingerprint))
    }

    /// The token of the page after the one whose last row is `last`: empty when no rows follow.
    static func token(after last: TimeCursor?, more: Bool, fingerprint: UInt64) -> String {
        guard more, let last else { return "" }
        return PageToken(cursor: [String(last.micros), last.id.uuidString.lowercased()], fingerprint: fingerprint).encoded
    }

    /// Cancels a send no dispatcher has claimed.
    public func cancel(id: UUID, actor: Actor, write: WriteOptions<SendRecord>) async throws -> WriteOutcome<SendRecord> {
        if let replay = try await store.replay(write, actor: actor) { return .replayed(replay) }
        return try await store.cancel(id: id, actor: actor, write: write)
    }
}
