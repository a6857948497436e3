import FoundationEssentials
import SwitchboardProtos
import SwitchboardServiceKit
import Synchronization

/// What a dry run's earlier batches would have written: the contacts they would create or change, and the addresses and
/// numbers those would hold. A dry run writes nothing, so without it a batch could not see an earlier batch's would-be
/// contacts: a duplicate of one would be previewed "created" where the import skips it (or updates it, or refuses its
/// taken address). A dry run's batches therefore run one at a time, each planned on top of this memory, each adding
/// what it would write. Pure: no I/O.
///
/// Bounded by ``maxBytes``, counted at an estimate of what each entry holds (an address or number claimed: 96 bytes,
/// its 64-bit key and holder with the dictionary's slack and growth, as measured: a dry run of a million rows with one
/// address each peaked 92 MB above the idle service; a contact's state, kept when the duplicate policy updates:
/// ``recordBytes(_:)``). Addresses and numbers are keyed by their ``TextFingerprint``: two
/// different addresses of one file sharing a 64-bit FNV-1a value (about one chance in 10^7 for a million addresses)
/// would preview a duplicate the import does not find.
public struct ImportPreviewMemory: Sendable {
    /// Who would hold a number: one contact, or two (enough to tell one holder from several, as the store reads).
    enum NumberHolders: Sendable, Equatable {
        case one(UUID)
        case two(UUID, UUID)
    }

    /// The estimated bytes past which no further batch is previewed.
    public let maxBytes: Int
    /// The estimated bytes held.
    public private(set) var bytes = 0
    /// The last row of the batch whose entries took the memory past ``maxBytes``: rows after it cannot be previewed
    /// exactly.
    public private(set) var fullAfterRow: Int?
    private var emails: [UInt64: UUID] = [:]
    private var numbers: [UInt64: NumberHolders] = [:]
    private var records: [UUID: ContactRecord] = [:]
    private var created: UInt64 = 0

    /// An empty memory of at most `maxBytes` (estimated).
    public init(maxBytes: Int) { self.maxBytes = maxBytes }

    /// An id for a contact the dry run would create: its first eight bytes are zero, which no stored contact's id has
    /// (time-ordered ids begin with the time, random ones with 2^-64 odds), so a preview can blank it.
    mutating func newID() -> UUID {
        created += 1
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 { bytes[8 + i] = UInt8(truncatingIfNeeded: created >> (56 - 8 * UInt64(i))) }
        return UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
    }

    /// Whether `id` is one ``newID()`` made: a contact that only the preview has.
    static func isWouldBe(_ id: UUID) -> Bool {
        let u = id.uuid
        return u.0 == 0 && u.1 == 0 && u.2 == 0 && u.3 == 0 && u.4 == 0 && u.5 == 0 && u.6 == 0 && u.7 == 0
    }

    private static func key(_ text: String) -> UInt64 { TextFingerprint.of([text]) }

    /// What one address or number claimed is counted at.
    static let claimBytes = 96

    /// What the store read for a batch, with what the earlier batches would have written on top: the holders of the
    /// batch's addresses and numbers that only the preview has, and (when `records`) the contacts' would-be states.
    /// - Parameters:
    ///   - existing: what the store read.
    ///   - rows: the batch's rows.
    ///   - matchPhone: whether rows are matched by number (numbers are remembered only then).
    ///   - records: whether the planner merges rows into contacts (the update policy).
    func overlay(_ existing: ImportExisting, rows: [ImportBatchRow], matchPhone: Bool, records withRecords: Bool) -> ImportExisting {
        var existing = existing
        for row in rows {
            guard let data = row.contact?.data else { continue }
            for email in data.emails {
                let address = email.address.lowercased()
                if existing.emailHolders[address] == nil, let holder = emails[Self.key(address)] { existing.emailHolders[address] = holder }
            }
            guard matchPhone else { continue }
            for phone in data.phones where !phone.e164.isEmpty {
                guard let held = numbers[Self.key(phone.e164)] else { continue }
                var holders = existing.phoneHolders[phone.e164] ?? []
                switch held {
                case .one(let id): holders.append(id)
                case .two(let a, let b): holders += [a, b]
                }
                var distinct: [UUID] = []
                for id in holders where !distinct.contains(id) && distinct.count < 2 { distinct.append(id) }
                existing.phoneHolders[phone.e164] = distinct
            }
        }
        if withRecords {
            for id in Set(existing.emailHolders.values).union(existing.phoneHolders.values.joined()) {
                if let record = records[id] { existing.records[id] = record }
            }
        }
        return existing
    }

    /// Adds what a batch's plan would write: its created and updated contacts' addresses and numbers, and (when
    /// `records`) their states. When the memory passes ``maxBytes``, ``fullAfterRow`` becomes `lastRow`.
    mutating func remember(_ plan: ImportPlan, lastRow: Int, matchPhone: Bool, records withRecords: Bool) {
        for record in plan.creates { remember(record, matchPhone: matchPhone, withRecord: withRecords) }
        for update in plan.updates { remember(update.record, matchPhone: matchPhone, withRecord: withRecords) }
        if bytes > maxBytes, fullAfterRow == nil { fullAfterRow = lastRow }
    }

    private mutating func remember(_ record: ContactRecord, matchPhone: Bool, withRecord: Bool) {
        let id = record.id
        for email in record.data.emails {
            let key = Self.key(email.address.lowercased())
            if emails[key] == nil {
                emails[key] = id
                bytes += Self.claimBytes
            }
        }
        if matchPhone {
            for phone in record.data.phones where !phone.e164.isEmpty {
                let key = Self.key(phone.e164)
                switch numbers[key] {
                case nil:
                    numbers[key] = .one(id)
                    bytes += Self.claimBytes
                case .one(let holder) where holder != id: numbers[key] = .two(holder, id)
                default: break
                }
            }
        }
        if withRecord {
            let size = Self.recordBytes(record.data)
            if let before = records.updateValue(record, forKey: id) {
                bytes += max(0, size - Self.recordBytes(before.data))
            } else {
                bytes += size
            }
        }
    }

    /// About what a contact's state takes in this memory: 512 for the record itself (its id, dates, audit, the
    /// dictionary's entry), each text's bytes, and 64 for each element of its lists (an address counts four).
    /// ``ContactRules/estimatedSize(_:)`` bounds the wire instead, at two to three times this.
    static func recordBytes(_ data: ContactData) -> Int {
        let n = data.name
        var size = 512 + [n.given, n.family, n.middle, n.prefix, n.suffix, n.display, data.ownerID].reduce(0) { $0 + $1.utf8.count }
        size += data.emails.reduce(0) { $0 + 64 + $1.address.utf8.count + $1.label.utf8.count }
        size += data.phones.reduce(0) { $0 + 64 + $1.number.utf8.count + $1.label.utf8.count + $1.e164.utf8.count }
        size += data.addresses.reduce(0) { total, a in
            total + 256 + a.lines.reduce(0) { $0 + 64 + $1.utf8.count } + a.label.utf8.count + a.locality.utf8.count
                + a.administrativeArea.utf8.count + a.postalCode.utf8.count + a.regionCode.utf8.count
        }
        size += data.tags.reduce(0) { $0 + 64 + $1.utf8.count }
        size += data.customFields.reduce(0) { $0 + 64 + $1.key.utf8.count + jsonBytes($1.value) }
        return size
    }

    private static func jsonBytes(_ value: JSON) -> Int {
        switch value {
        case .null, .bool, .number: return 16
        case .string(let text): return 16 + text.utf8.count
        case .array(let values): return 32 + values.reduce(0) { $0 + jsonBytes($1) }
        case .object(let members): return 64 + members.reduce(0) { $0 + 32 + $1.key.utf8.count + jsonBytes($1.value) }
        }
    }

    /// Results as a preview gives them: no contact id that only the preview has (a row that would be created, or would
    /// duplicate or update a contact an earlier row would create). A row an earlier run of the import wrote (resumed)
    /// keeps its contact's: that contact exists.
    static func previewResults(_ results: [ImportRowResult]) -> [ImportRowResult] {
        results.map { result in
            var result = result
            if (result.outcome == .created && !result.resumed) || result.contactID.map(isWouldBe) == true { result.contactID = nil }
            return result
        }
    }
}

/// One dry run's ``ImportPreviewMemory``, shared by its batches (which run one at a time).
public final class ImportPreview: Sendable {
    private let memory: Mutex<ImportPreviewMemory>

    /// A preview remembering at most `maxBytes` (estimated; ``ImportLimits/maxPreviewBytes``).
    public init(maxBytes: Int) { memory = Mutex(ImportPreviewMemory(maxBytes: maxBytes)) }

    /// The estimated bytes past which no further batch is previewed.
    public var maxBytes: Int { memory.withLock { $0.maxBytes } }

    /// See ``ImportPreviewMemory/fullAfterRow``.
    public var fullAfterRow: Int? { memory.withLock { $0.fullAfterRow } }

    /// Plans a batch on top of the memory and adds what it would write.
    /// - Parameters:
    ///   - rows: the batch's rows.
    ///   - existing: what the store read for them.
    ///   - settings: the import's settings.
    ///   - plan: the planner, given what to plan on and how to make a would-be contact's id.
    /// - Returns: the plan, its results as a preview gives them (``ImportPreviewMemory/previewResults(_:)``).
    func plan(
        _ rows: [ImportBatchRow], existing: ImportExisting, settings: ImportSettings,
        _ plan: (ImportExisting, () -> UUID) -> ImportPlan
    ) -> ImportPlan {
        memory.withLock { memory in
            let withRecords = settings.policy == .update
            let seen = memory.overlay(existing, rows: rows, matchPhone: settings.matchPhone, records: withRecords)
            var decided = plan(seen, { memory.newID() })
            memory.remember(decided, lastRow: rows.last?.row ?? 0, matchPhone: settings.matchPhone, records: withRecords)
            decided.results = ImportPreviewMemory.previewResults(decided.results)
            return decided
        }
    }
}
