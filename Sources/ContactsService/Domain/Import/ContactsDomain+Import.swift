import FoundationEssentials
import SwitchboardRuntime  // UUID.random
import SwitchboardServiceKit
import Synchronization

extension ContactsDomain {
    /// The import bounds in force.
    public var importLimits: ImportLimits { limits.importLimits }

    /// The tenant's custom field definitions (an import reads them once, for its mapping and every row).
    public func fieldDefinitions(actor: Actor) async throws -> [FieldDefinition] {
        try await store.fieldDefinitions(actor: actor, includeRetired: true)
    }

    /// Checks one row as CreateContact would check a contact (violations named `contact.…`), without the required
    /// custom fields: a row that updates a contact need not give them (the plan checks them for the rows it creates).
    /// Pure, so the rows of the next batch are checked while the previous batch is written.
    /// - Parameters:
    ///   - row: the row's number.
    ///   - contact: the row as mapped, or its failure.
    ///   - definitions: the tenant's field definitions.
    /// - Returns: the row for ``writeImportBatch(_:settings:definitions:actor:)``.
    public func prepareImportRow(row: Int, _ contact: Result<ImportedContact, ContactsError>, definitions: [FieldDefinition]) -> ImportBatchRow {
        switch contact {
        case .failure(let error):
            return ImportBatchRow(row: row, contact: nil, failure: error)
        case .success(var imported):
            do {
                // A row that updates a contact need not name it: the plan requires the name of the rows it creates.
                let nameless = imported.data.name.effectiveDisplay.isEmpty
                if nameless { imported.data.name.display = "-" }
                try ContactRules.validate(
                    &imported.data, definitions: definitions, requireAllRequiredFields: false, maxContactBytes: limits.maxContactBytes)
                if nameless { imported.data.name.display = "" }
                return ImportBatchRow(row: row, contact: imported, failure: nil)
            } catch let error as ContactsError {
                return ImportBatchRow(row: row, contact: nil, failure: error)
            } catch {
                return ImportBatchRow(row: row, contact: nil, failure: .invalid([Violation("row", "\(error)")]))
            }
        }
    }

    /// Writes one batch of an import (one transaction): rows an earlier attempt wrote are reported as then, the others
    /// are created, updated or skipped by the duplicate policy, in order.
    /// - Parameters:
    ///   - rows: the batch's rows, in order (from ``prepareImportRow(row:_:definitions:)``).
    ///   - settings: the import's settings.
    ///   - definitions: the tenant's field definitions.
    ///   - actor: the caller.
    ///   - preview: a dry run's memory of its earlier batches (required when `settings.dryRun`; the batches then run one
    ///     at a time, in order).
    ///   - turn: the batch's place in its import's order (``ImportTurns/turn(_:)``): when it may take a connection, and
    ///     when addresses.
    /// - Returns: one result per row, in order.
    /// - Throws: ``ContactsError/importOptionsChanged(importID:)``, ``ContactsError/importInputChanged(importID:row:)``,
    ///   ``ContactsError/importPreviewFull(row:maxBytes:)``, or a database error.
    public func writeImportBatch(
        _ rows: [ImportBatchRow], settings: ImportSettings, definitions: [FieldDefinition], actor: Actor, preview: ImportPreview? = nil,
        turn: ImportTurn = .free
    ) async throws -> [ImportRowResult] {
        guard !rows.isEmpty else { return [] }
        let planner = ImportPlanner(settings: settings, definitions: definitions, maxContactBytes: limits.maxContactBytes, actor: actor)
        guard settings.dryRun else {
            return try await store.importBatch(rows, settings: settings, actor: actor, turn: turn) { rows, existing, now in
                planner.plan(rows, existing: existing, now: now, newID: { UUID.timeOrdered() })
            }
        }
        let preview = preview ?? ImportPreview(maxBytes: limits.importLimits.maxPreviewBytes)
        // Refused before the batch rather than previewed without the earlier rows: every row a preview reports is what
        // the import would do.
        if let row = preview.fullAfterRow { throw ContactsError.importPreviewFull(row: row, maxBytes: preview.maxBytes) }
        // The store may plan a batch more than once (a transaction run again): the memory takes the batch once, and
        // a later call gets the same plan.
        let planned = Mutex<ImportPlan?>(nil)
        return try await store.importBatch(rows, settings: settings, actor: actor, turn: turn) { rows, existing, now in
            if let plan = planned.withLock({ $0 }) { return plan }
            let plan = preview.plan(rows, existing: existing, settings: settings) { existing, newID in
                planner.plan(rows, existing: existing, now: now, newID: newID)
            }
            planned.withLock { $0 = plan }
            return plan
        }
    }

    /// Starts an import call and returns the highest row number its ledger holds, 0 for a new import (see
    /// ``ContactStore/beginImport(_:actor:)``).
    public func beginImport(_ settings: ImportSettings, actor: Actor) async throws -> Int {
        try await store.beginImport(settings, actor: actor)
    }

    /// Contacts to export at most per page (each page one query, keyset-paged: memory stays flat for any size).
    public static let exportPageSize = SearchRules.maxPageSize

    /// One page of an export: the contacts a search matches, in creation order, after `after`.
    /// - Parameters:
    ///   - search: the filter (its sort and page are replaced).
    ///   - after: where the previous page ended.
    ///   - actor: the caller.
    /// - Returns: the contacts and whether more follow.
    public func exportPage(_ search: ContactSearch, after: SearchCursor?, actor: Actor) async throws -> (records: [ContactRecord], more: Bool) {
        var search = search
        search.sort = .createTime
        search.descending = false
        search.facets = []
        search.after = after
        search.limit = Self.exportPageSize
        search.maxBytes = limits.pageBytes
        search.timeoutMilliseconds = limits.searchTimeoutMilliseconds
        search.rankedMatches = limits.searchRankedMatches
        search.wordTierWalk = limits.searchWordTierWalk
        search.facetMatches = limits.searchFacetMatches
        let found = try await store.search(search, actor: actor)
        return (found.hits.map(\.record), found.more)
    }

    /// How many postal addresses a CSV export of a search's matches needs columns for (see
    /// ``ContactStore/mostAddresses(_:actor:)``).
    public func exportAddressCount(_ search: ContactSearch, actor: Actor) async throws -> Int {
        var search = search
        search.timeoutMilliseconds = limits.searchTimeoutMilliseconds
        return try await store.mostAddresses(search, actor: actor)
    }

    /// The cursor after a contact of an export page.
    public static func exportCursor(after record: ContactRecord) -> SearchCursor {
        SearchCursor(key: String(ContactCursor.microseconds(record.createdAt)), id: record.id)
    }
}
