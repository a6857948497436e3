import FoundationEssentials
import SwitchboardServiceKit

/// What an import does with a row that matches a live contact.
public enum DuplicatePolicy: Sendable, Hashable {
    /// Report the row as a duplicate of the contact; change nothing.
    case skip
    /// Give the contact the row's values (fields the row gives replace, lists are added to).
    case update
    /// No matching: create every valid row.
    case create
}

/// How a row ended.
public enum ImportOutcome: Int, Sendable, Hashable {
    case created = 1, updated = 2, skippedDuplicate = 3, invalid = 4
}

/// The result of one row.
public struct ImportRowResult: Sendable, Hashable {
    /// The row's number in the input.
    public var row: Int
    /// How it ended.
    public var outcome: ImportOutcome
    /// The contact created or updated, or the one the row duplicates.
    public var contactID: UUID?
    /// Why an invalid row is invalid.
    public var violations: [Violation]
    /// An earlier attempt of the import wrote this row.
    public var resumed: Bool

    /// Creates a result.
    public init(row: Int, outcome: ImportOutcome, contactID: UUID? = nil, violations: [Violation] = [], resumed: Bool = false) {
        self.row = row
        self.outcome = outcome
        self.contactID = contactID
        self.violations = violations
        self.resumed = resumed
    }
}

/// One call's import settings.
public struct ImportSettings: Sendable, Hashable {
    /// The import's id (client-chosen or picked by the service).
    public var importID: String
    /// What identifies the import's options: resuming with other options is refused.
    public var fingerprint: String
    /// What a duplicate row does.
    public var policy: DuplicatePolicy = .skip
    /// Match rows to contacts by email address.
    public var matchEmail = true
    /// Match rows to contacts by phone number (a number exactly one contact holds).
    public var matchPhone = false
    /// Write nothing.
    public var dryRun = false

    /// Creates settings.
    public init(importID: String, fingerprint: String) {
        self.importID = importID
        self.fingerprint = fingerprint
    }
}

/// A row of a batch as the domain hands it to the store: validated data, or the row's failure.
public struct ImportBatchRow: Sendable {
    /// The row's number.
    public var row: Int
    /// The validated (normalised) contact, when the row is valid so far.
    public var contact: ImportedContact?
    /// Why the row is invalid.
    public var failure: ContactsError?
    /// The record's ``SourceRecord/digest`` (0: not compared).
    public var digest: Int64

    /// Creates a row.
    public init(row: Int, contact: ImportedContact?, failure: ContactsError?, digest: Int64 = 0) {
        self.row = row
        self.contact = contact
        self.failure = failure
        self.digest = digest
    }
}

/// What the store read for a batch, in its transaction: what earlier attempts wrote and who holds the batch's
/// addresses and numbers.
public struct ImportExisting: Sendable {
    /// Rows of this import already written (by an earlier attempt): their outcome and contact.
    public var ledger: [Int: (outcome: ImportOutcome, contactID: UUID?)] = [:]
    /// Live contacts holding each lower-cased email address of the batch.
    public var emailHolders: [String: UUID] = [:]
    /// Live contacts holding each E.164 number of the batch (at most two each: enough to tell one from several).
    public var phoneHolders: [String: [UUID]] = [:]
    /// The contacts a row may update (every holder found, when the policy is update).
    public var records: [UUID: ContactRecord] = [:]

    /// Creates an empty read.
    public init() {}
}

/// What a batch writes, decided by ``ImportPlanner``.
public struct ImportPlan: Sendable {
    /// One result per row, in order.
    public var results: [ImportRowResult] = []
    /// Contacts to create, in their final state (a later row of the batch may have updated one).
    public var creates: [ContactRecord] = []
    /// Contacts to update: the new state, the version it replaces, the fields that changed.
    public var updates: [(record: ContactRecord, expectedVersion: Int64, changedFields: [String])] = []
}

/// Decides each row of a batch: resumed, invalid, created, updated or skipped, in input order, so that a row sees what
/// the rows before it in the same batch did (an address an earlier row took, a contact an earlier row created). Pure.
public struct ImportPlanner: Sendable {
    let settings: ImportSettings
    let definitions: [FieldDefinition]
    let maxContactBytes: Int
    let actor: Actor

    /// Creates a planner.
    public init(settings: ImportSettings, definitions: [FieldDefinition], maxContactBytes: Int, actor: Actor) {
        self.settings = settings
        self.definitions = definitions
        self.maxContactBytes = maxContactBytes
        self.actor = actor
    }

    /// Plans a batch.
    /// - Parameters:
    ///   - rows: the rows, in order.
    ///   - existing: what the store read.
    ///   - now: the time stamp of every write of the batch.
    ///   - newID: makes a contact id.
    /// - Returns: the plan.
    public func plan(_ rows: [ImportBatchRow], existing: ImportExisting, now: Date, newID: () -> UUID) -> ImportPlan {
        var plan = ImportPlan()
        plan.results.reserveCapacity(rows.count)
        // What the batch's earlier rows hold: addresses and numbers of contacts created or updated so far.
        var emailClaims: [String: UUID] = [:]
        var phoneClaims: [String: Set<UUID>] = [:]
        var creates: [UUID: Int] = [:]
        var updates: [UUID: (record: ContactRecord, expectedVersion: Int64, changed: [String])] = [:]
        var updateOrder: [UUID] = []

        func holder(ofEmail address: String) -> UUID? { emailClaims[address] ?? existing.emailHolders[address] }
        func current(_ id: UUID) -> ContactRecord? {
            if let index = creates[id] { return plan.creates[index] }
            return updates[id]?.record ?? existing.records[id]
        }
        func claim(_ data: ContactData, for id: UUID) {
            for email in data.emails { emailClaims[email.address.lowercased()] = id }
            for phone in data.phones where !phone.e164.isEmpty { phoneClaims[phone.e164, default: []].insert(id) }
        }
        func takenAddress(_ data: ContactData, by id: UUID?) -> Violation? {
            for (i, email) in data.emails.enumerated() {
                if let other = holder(ofEmail: email.address.lowercased()), other != id {
                    return Violation(
                        "contact.emails[\(i)].address", "\(ContactRules.excerpt(email.address)) already belongs to contact \(other.lowercaseText)",
                        reason: "ALREADY_EXISTS")
                }
            }
            return nil
        }

        for item in rows {
            if let done = existing.ledger[item.row] {
                plan.results.append(ImportRowResult(row: item.row, outcome: done.outcome, contactID: done.contactID, resumed: true))
                continue
            }
            guard let row = item.contact else {
                let violations: [Violation]
                if case .invalid(let v)? = item.failure {
                    violations = v
                } else {
                    violations = [Violation("row", "\(item.failure.map { "\($0)" } ?? "invalid")")]
                }
                plan.results.append(ImportRowResult(row: item.row, outcome: .invalid, violations: violations))
                continue
            }
            let match =
                settings.policy == .create ? nil : self.match(row.data, emailHolder: holder(ofEmail:), phoneClaims: phoneClaims, existing: existing)
            if let match {
                if settings.policy == .skip {
                    plan.results.append(ImportRowResult(row: item.row, outcome: .skippedDuplicate, contactID: match))
                    continue
                }
                guard let target = current(match) else {
                    // A holder the store did not read (it was deleted meanwhile): the row is reported, not guessed at.
                    plan.results.append(ImportRowResult(row: item.row, outcome: .skippedDuplicate, contactID: match))
                    continue
                }
                var (merged, changed) = Self.merge(row, into: target.data)
                do {
                    try ContactRules.validate(
                        &merged, definitions: definitions, requireAllRequiredFields: false, maxContactBytes: maxContactBytes,
                        storedFields: target.data.customFields)
                } catch {
                    let violations: [Violation]
                    if case .invalid(let v)? = error as? ContactsError { violations = v } else { violations = [Violation("contact", "\(error)")] }
                    plan.results.append(ImportRowResult(row: item.row, outcome: .invalid, violations: violations))
                    continue
                }
                if let taken = takenAddress(merged, by: match) {
                    plan.results.append(ImportRowResult(row: item.row, outcome: .invalid, violations: [taken]))
                    continue
                }
                plan.results.append(ImportRowResult(row: item.row, outcome: .updated, contactID: match))
                guard merged != target.data else { continue }
                claim(merged, for: match)
                if let index = creates[match] {
                    plan.creates[index].data = merged
                } else {
                    var record = target
                    record.data = merged
                    record.updatedAt = now
                    record.updatedBy = actor.userID
                    let baseVersion = existing.records[match]?.version ?? target.version
                    record.version = baseVersion + 1
                    if updates[match] == nil { updateOrder.append(match) }
                    let before = updates[match]?.changed ?? []
                    updates[match] = (record, baseVersion, before + changed.filter { !before.contains($0) })
                }
                continue
            }
            var data = row.data
            if data.ownerID.isEmpty { data.ownerID = actor.userID }
            var missing = ContactRules.customFieldViolations(
                data.customFields, definitions: definitions, prefix: "contact.custom_fields", requireAll: true
            )
            .filter { $0.reason == "REQUIRED" }
            if data.name.effectiveDisplay.isEmpty {
                missing.insert(Violation("contact.name", "needs at least one of given, family or display", reason: "REQUIRED"), at: 0)
            }
            if !missing.isEmpty {
                plan.results.append(ImportRowResult(row: item.row, outcome: .invalid, violations: missing))
                continue
            }
            if let taken = takenAddress(data, by: nil) {
                plan.results.append(ImportRowResult(row: item.row, outcome: .invalid, violations: [taken]))
                continue
            }
            let id = newID()
            claim(data, for: id)
            creates[id] = plan.creates.count
            plan.creates.append(
                ContactRecord(
                    id: id, data: data, version: 1, createdAt: now, createdBy: actor.userID, updatedAt: now, updatedBy: actor.userID, deletedAt: nil))
            plan.results.append(ImportRowResult(row: item.row, outcome: .created, contactID: id))
        }
        plan.updates = updateOrder.map { id in
            let u = updates[id]!
            return (u.record, u.expectedVersion, u.changed)
        }
        return plan
    }

    /// The contact a row duplicates: the holder of its first held address, else (when matching phones) the one contact
    /// holding one of its numbers.
    private func match(
        _ data: ContactData, emailHolder: (String) -> UUID?, phoneClaims: [String: Set<UUID>], existing: ImportExisting
    ) -> UUID? {
        if settings.matchEmail {
            for email in data.emails {
                if let id = emailHolder(email.address.lowercased()) { return id }
            }
        }
        if settings.matchPhone {
            for phone in data.phones where !phone.e164.isEmpty {
                let holders = Set(existing.phoneHolders[phone.e164] ?? []).union(phoneClaims[phone.e164] ?? [])
                if holders.count == 1 { return holders.first }
            }
        }
        return nil
    }

    /// A row's values on top of a contact's: the name parts, type, status, owner and custom fields the row gives
    /// replace; its emails, phones, addresses and tags are added where the contact lacks them.
    /// - Returns: the data and the fields that changed.
    static func merge(_ row: ImportedContact, into current: ContactData) -> (ContactData, [String]) {
        var data = current
        let given = row.givenFields
        let source = row.data
        if given.contains("name.given") { data.name.given = source.name.given }
        if given.contains("name.family") { data.name.family = source.name.family }
        if given.contains("name.middle") { data.name.middle = source.name.middle }
        if given.contains("name.prefix") { data.name.prefix = source.name.prefix }
        if given.contains("name.suffix") { data.name.suffix = source.name.suffix }
        if given.contains("name.display") { data.name.display = source.name.display }
        for email in source.emails where !data.emails.contains(where: { $0.address.lowercased() == email.address.lowercased() }) {
            var added = email
            added.primary = false
            data.emails.append(added)
        }
        for phone in source.phones where !data.phones.contains(where: { $0.e164 == phone.e164 && !phone.e164.isEmpty }) {
            var added = phone
            added.primary = false
            data.phones.append(added)
        }
        for address in source.addresses where !data.addresses.contains(address) { data.addresses.append(address) }
        for tag in source.tags where !data.tags.contains(tag) { data.tags.append(tag) }
        if given.contains("type") { data.kind = source.kind }
        if given.contains("status") { data.status = source.status }
        if given.contains("owner_id"), !source.ownerID.isEmpty { data.ownerID = source.ownerID }
        for (key, value) in source.customFields where given.contains("custom_fields.\(key)") { data.customFields[key] = value }
        var changed: [String] = []
        if data.name != current.name { changed.append("name") }
        if data.emails != current.emails { changed.append("emails") }
        if data.phones != current.phones { changed.append("phones") }
        if data.addresses != current.addresses { changed.append("addresses") }
        if data.tags != current.tags { changed.append("tags") }
        if data.kind != current.kind { changed.append("type") }
        if data.status != current.status { changed.append("status") }
        if data.ownerID != current.ownerID { changed.append("owner_id") }
        if data.customFields != current.customFields { changed.append("custom_fields") }
        return (data, changed)
    }
}
