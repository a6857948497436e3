import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit

extension ContactsHandler {
    /// Most bytes of one chunk message.
    static let maxImportChunkBytes = 1 << 20
    /// Batches of one import written at once.
    static let importBatchesInFlight = 2

    /// The `ImportContacts` RPC (see `contacts.proto`): options first, then chunks. Records are read as chunks arrive,
    /// checked, and written in batches of ``ImportLimits/batchRows`` rows, one transaction each; the next batch is read
    /// and checked while up to ``importBatchesInFlight`` are written (memory holds that many batches and one more).
    /// Each written batch is one response with its rows' results and the counts, sent as soon as it and the batches
    /// before it are written (responses stay in row order), whether or not the client is sending: a client may wait
    /// for progress before it sends more.
    public func importContacts(
        requests: RPCAsyncSequence<Switchboard_Contacts_V1_ImportContactsRequest>,
        responses: RPCWriter<Switchboard_Contacts_V1_ImportContactsResponse>,
        context: ServerContext
    ) async throws {
        let actor = try context.actor()
        // Reading and answering are two tasks: the reader waits for the client, the answerer for the database. A
        // failed write or answer ends the call at once (the other task is cancelled), even while the client is silent.
        let (written, sink) = AsyncStream.makeStream(of: WrittenImportBatch.self)
        var answers = ImportAnswers()
        var read: Result<ImportRead, any Error>?
        try await withThrowingTaskGroup(of: ImportTaskEnd.self) { tasks in
            tasks.addTask { .answered(try await Self.answer(written, responses: responses)) }
            tasks.addTask {
                defer { sink.finish() }
                do {
                    return .read(.success(try await self.readImport(requests, actor: actor, sink: sink)))
                } catch {
                    return .read(.failure(error))
                }
            }
            while let end = try await tasks.next() {
                switch end {
                case .answered(let done): answers = done
                case .read(let result): read = result
                }
            }
        }
        // A reader's error comes after the batches written before it were answered (as the row bound's error says).
        let summary = try read!.get()
        answers.header = answers.header ?? (summary.importID, summary.ignored)
        try await responses.write(answers.response([], endOffset: summary.received, done: true))
    }

    /// How one of an import's two tasks ended.
    private enum ImportTaskEnd: Sendable {
        case answered(ImportAnswers)
        case read(Result<ImportRead, any Error>)
    }

    /// What the reader learned: the import's id, the columns no mapping used, and the bytes received.
    struct ImportRead: Sendable {
        var importID: String
        var ignored: [String]
        var received: Int
    }

    /// A batch the reader had written, or the error that ended its write.
    enum WrittenImportBatch: Sendable {
        case batch(index: Int, results: [ImportRowResult], endOffset: Int, header: (importID: String, ignored: [String])?)
        case failed(any Error)
    }

    /// The answerer's running counts; the first response carries the import's id and ignored columns.
    struct ImportAnswers: Sendable {
        var progress = Switchboard_Contacts_V1_ImportProgress()
        var header: (importID: String, ignored: [String])?
        var headerSent = false

        mutating func response(_ results: [ImportRowResult], endOffset: Int, done: Bool) -> Switchboard_Contacts_V1_ImportContactsResponse {
            var response = Switchboard_Contacts_V1_ImportContactsResponse()
            for result in results {
                progress.rows += 1
                switch result.outcome {
                case .created: progress.created += 1
                case .updated: progress.updated += 1
                case .skippedDuplicate: progress.skipped += 1
                case .invalid: progress.invalid += 1
                }
                if result.resumed { progress.resumed += 1 }
                response.results.append(ContactsHandler.proto(result))
            }
            progress.bytesProcessed = Int64(endOffset)
            progress.done = done
            response.progress = progress
            if !headerSent, let header {
                response.importId = header.importID
                response.ignoredSources = header.ignored
                headerSent = true
            }
            return response
        }
    }

    /// Answers written batches in row order as they arrive (they finish in any order); throws a batch's write error.
    private static func answer(
        _ written: AsyncStream<WrittenImportBatch>, responses: RPCWriter<Switchboard_Contacts_V1_ImportContactsResponse>
    ) async throws -> ImportAnswers {
        var answers = ImportAnswers()
        var waiting: [Int: (results: [ImportRowResult], endOffset: Int)] = [:]
        var next = 0
        for await item in written {
            switch item {
            case .failed(let error):
                throw error
            case .batch(let index, let results, let endOffset, let header):
                if let header { answers.header = header }
                waiting[index] = (results, endOffset)
                while let ready = waiting.removeValue(forKey: next) {
                    next += 1
                    try await responses.write(answers.response(ready.results, endOffset: ready.endOffset, done: false))
                }
            }
        }
        return answers
    }

    /// Reads the options and the chunks, and writes the records in batches, handing each written batch to `sink`.
    private func readImport(
        _ requests: RPCAsyncSequence<Switchboard_Contacts_V1_ImportContactsRequest>, actor: Actor,
        sink: AsyncStream<WrittenImportBatch>.Continuation
    ) async throws -> ImportRead {
        var iterator = requests.makeAsyncIterator()
        guard case .options(let options)? = try await iterator.next()?.part else {
            throw ContactsError.invalid([Violation("options", "the first message must carry the options", reason: "REQUIRED")])
        }
        let limits = domain.importLimits
        let (settings, format) = try Self.importSettings(options)
        let definitions = try await domain.fieldDefinitions(actor: actor)
        var mapper = try ImportMapper(
            format: format, mapping: options.mapping.map { ($0.source, $0.target) }, definitions: definitions, contactJSON: Self.contactFromJSON)
        var reader: any ContactRecordReader
        switch format {
        case .csv:
            reader = CSVReader(delimiter: try Self.delimiter(options.csvDelimiter), hasHeader: !options.csvNoHeader, limits: limits)
        case .vcard: reader = VCardReader(limits: limits)
        case .jsonLines: reader = JSONLinesReader(limits: limits)
        }

        let domain = self.domain
        var headerSeen = false
        var headerDigest: UInt64 = 0
        var rowsSeen = 0
        var received = 0
        // Where the last record ended: input that makes no record (blank lines, text outside vCards) is bounded too, or
        // a client could stream it for ever (the row bound never moves).
        var recordsEnd = 0
        // Never under one record and one line: a record still arriving is not input that makes no row.
        let maxGap = max(limits.maxBytesWithoutRow, limits.maxRecordBytes + limits.maxLineBytes)
        var batch: [ImportBatchRow] = []
        var batchEnd = 0
        batch.reserveCapacity(limits.batchRows)
        // Two batches in flight: their transactions overlap in the database (one's rows go in while the other's change
        // events and ledger commit). Matching phones keeps one: a number a batch in flight takes is not yet visible to
        // the next (an address is: its unique key makes the later batch wait and run again).
        // A dry run's batches run in order too: each is previewed on top of what the earlier ones would write.
        let depth = settings.matchPhone || settings.dryRun ? 1 : Self.importBatchesInFlight
        let preview = settings.dryRun ? ImportPreview(maxBytes: limits.maxPreviewBytes) : nil
        let turns = ImportTurns()
        // A resumed import's rows up to the ledger's last are checked against it batch by batch: a batch is not started
        // while one that holds ledger rows is in flight, so a refused input (another file under this id) leaves no
        // later batch writing rows the ledger would then hold under the wrong record.
        let ledgerEnd = try await domain.beginImport(settings, actor: actor)
        try await withThrowingTaskGroup(of: Void.self) { group in
            var inFlight = 0
            var submitted = 0
            var checkingLedger = false
            func drain() async throws {
                while inFlight > 0, try await group.next() != nil { inFlight -= 1 }
            }
            func submit() async throws {
                guard !batch.isEmpty else { return }
                while inFlight >= (checkingLedger ? 1 : depth), try await group.next() != nil { inFlight -= 1 }
                checkingLedger = batch[0].row <= ledgerEnd
                let rows = batch
                let end = batchEnd
                let index = submitted
                let header = index == 0 ? (settings.importID, mapper.ignoredColumns) : nil
                group.addTask {
                    // Not cancelled with the call: a batch whose transaction has begun ends it (commit or rollback) even
                    // when the client goes away, rather than leaving a connection mid-transaction holding its locks.
                    // The ledger makes the outcome safe either way.
                    let write = Task {
                        defer { turns.end(index) }
                        return try await domain.writeImportBatch(
                            rows, settings: settings, definitions: definitions, actor: actor, preview: preview, turn: turns.turn(index)
                        )
                    }
                    do {
                        sink.yield(.batch(index: index, results: try await write.value, endOffset: end, header: header))
                    } catch {
                        sink.yield(.failed(error))
                        throw error
                    }
                }
                submitted += 1
                inFlight += 1
                batch.removeAll(keepingCapacity: true)
            }
            func take(_ records: [SourceRecord]) async throws {
                for record in records {
                    recordsEnd = max(recordsEnd, record.endOffset)
                    if record.row == 0, case .unreadable(let violation) = record.content {
                        throw ContactsError.invalid([violation])
                    }
                    rowsSeen += 1
                    guard rowsSeen <= limits.maxRows else {
                        // The rows before the bound are written and answered first, as the error says.
                        try await submit()
                        try await drain()
                        throw ContactsError.invalid([
                            Violation(
                                "chunk",
                                "more than \(limits.maxRows) rows in one import; split the input (rows up to \(limits.maxRows) were written)",
                                reason: "TOO_MANY")
                        ])
                    }
                    var row = domain.prepareImportRow(row: record.row, mapper.contact(from: record), definitions: definitions)
                    row.digest = record.digest(header: headerDigest)
                    batch.append(row)
                    batchEnd = record.endOffset
                    if batch.count >= limits.batchRows { try await submit() }
                }
            }
            func learnHeader() throws {
                guard !headerSeen, let header = (reader as? CSVReader)?.header else { return }
                headerSeen = true
                headerDigest = SourceRecord.headerDigest(header)
                mapper.setHeader(header)
                // A mapping naming a column the file does not have is a typo the caller wants to hear of.
                let missing = options.mapping.enumerated().filter { !header.contains($0.element.source) }
                if !missing.isEmpty, !header.isEmpty {
                    throw ContactsError.invalid(
                        missing.prefix(10).map {
                            Violation(
                                "options.mapping[\($0.offset)].source", "the file has no column \(ContactRules.excerpt($0.element.source))",
                                reason: "NOT_FOUND")
                        })
                }
            }
            while let message = try await iterator.next() {
                guard case .chunk(let bytes)? = message.part else {
                    throw ContactsError.invalid([Violation("chunk", "every message after the first must carry a chunk", reason: "REQUIRED")])
                }
                guard bytes.count <= Self.maxImportChunkBytes else {
                    throw ContactsError.invalid([Violation("chunk", "at most \(Self.maxImportChunkBytes) bytes per chunk", reason: "TOO_LARGE")])
                }
                received += bytes.count
                let records = bytes.withUnsafeBytes { reader.read($0) }
                try learnHeader()
                try await take(records)
                // The header counts as a record (the CSV reader keeps it out of the records).
                if headerSeen, recordsEnd == 0 { recordsEnd = received }
                guard received - recordsEnd <= maxGap else {
                    try await submit()
                    try await drain()
                    throw ContactsError.invalid([
                        Violation(
                            "chunk",
                            "\(received - recordsEnd) bytes after row \(rowsSeen) make no row (blank lines, text outside records); at most \(maxGap)",
                            reason: "TOO_LONG")
                    ])
                }
            }
            let last = reader.finish()
            try learnHeader()
            try await take(last)
            try await submit()
            try await drain()
        }
        return ImportRead(importID: settings.importID, ignored: mapper.ignoredColumns, received: received)
    }

    /// The settings an import's options ask for, checked.
    static func importSettings(_ options: Switchboard_Contacts_V1_ImportOptions) throws -> (ImportSettings, ImportMapper.Format) {
        var violations: [Violation] = []
        let format: ImportMapper.Format
        switch options.format {
        case .csv: format = .csv
        case .vcard: format = .vcard
        case .jsonLines: format = .jsonLines
        default:
            format = .csv
            violations.append(Violation("options.format", "must be CSV, VCARD or JSON_LINES", reason: "REQUIRED"))
        }
        var importID = options.importId
        if importID.isEmpty {
            importID = UUID.random().lowercaseText
        } else if importID.utf8.count > 64
            || !importID.utf8.allSatisfy({
                ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D
            })
        {
            violations.append(Violation("options.import_id", "must be 1 to 64 characters of A-Z a-z 0-9 . _ -", reason: "INVALID_FORMAT"))
        }
        let policy: DuplicatePolicy
        switch options.duplicatePolicy {
        case .unspecified, .skip: policy = .skip
        case .update: policy = .update
        case .create: policy = .create
        default:
            policy = .skip
            violations.append(Violation("options.duplicate_policy", "is not a known policy"))
        }
        var matchEmail = options.matchOn.isEmpty
        var matchPhone = false
        for (i, match) in options.matchOn.enumerated() {
            switch match {
            case .email where !matchEmail: matchEmail = true
            case .phone where !matchPhone: matchPhone = true
            default: violations.append(Violation("options.match_on[\(i)]", "must be EMAIL or PHONE, each at most once"))
            }
        }
        if format != .csv, !options.csvDelimiter.isEmpty || options.csvNoHeader {
            violations.append(Violation("options.csv_delimiter", "is for CSV imports only"))
        }
        if !violations.isEmpty { throw ContactsError.invalid(violations) }
        var fingerprint = ["import-v1", "\(options.format.protoValue)", "\(options.duplicatePolicy.protoValue)", "\(matchEmail)", "\(matchPhone)"]
        fingerprint += [options.csvDelimiter, "\(options.csvNoHeader)"] + options.mapping.flatMap { [$0.source, $0.target] }
        var settings = ImportSettings(importID: importID, fingerprint: String(PageToken.fingerprint(fingerprint), radix: 16))
        settings.policy = policy
        settings.matchEmail = matchEmail
        settings.matchPhone = matchPhone
        settings.dryRun = options.dryRun
        return (settings, format)
    }

    static func delimiter(_ text: String) throws -> UInt8 {
        switch text {
        case "", ",": return UInt8(ascii: ",")
        case ";": return UInt8(ascii: ";")
        case "|": return UInt8(ascii: "|")
        case "\t", "\\t": return 0x09
        default: throw ContactsError.invalid([Violation("options.csv_delimiter", "must be \",\", \";\", \"|\" or a tab", reason: "INVALID")])
        }
    }

    /// A JSON line without a mapping: a Contact in proto3 JSON (output-only fields ignored), checked as CreateContact
    /// maps its contact.
    @Sendable static func contactFromJSON(_ json: JSON) -> Result<ImportedContact, ContactsError> {
        let contact: Switchboard_Contacts_V1_Contact
        do {
            contact = try Switchboard_Contacts_V1_Contact(protoJSON: json)
        } catch let error as ProtoJSONError {
            return .failure(.invalid([Violation(error.path.isEmpty ? "contact" : "contact.\(error.path)", error.reason, reason: "INVALID")]))
        } catch {
            return .failure(.invalid([Violation("contact", "is not a Contact in proto3 JSON", reason: "INVALID")]))
        }
        do {
            var data = try ContactsMapping.data(contact, prefix: "contact")
            var given: Set<String> = []
            let n = data.name
            for (value, field) in [
                (n.given, "name.given"), (n.family, "name.family"), (n.middle, "name.middle"), (n.prefix, "name.prefix"), (n.suffix, "name.suffix"),
            ] where !value.isEmpty { given.insert(field) }
            var derived = n
            derived.display = ""
            if n.display == derived.effectiveDisplay { data.name.display = "" } else if !n.display.isEmpty { given.insert("name.display") }
            if !data.emails.isEmpty { given.insert("emails") }
            if !data.phones.isEmpty { given.insert("phones") }
            if !data.addresses.isEmpty { given.insert("addresses") }
            if !data.tags.isEmpty { given.insert("tags") }
            if contact.type != .unspecified { given.insert("type") }
            if contact.status != .unspecified { given.insert("status") }
            if !data.ownerID.isEmpty { given.insert("owner_id") }
            for key in data.customFields.keys { given.insert("custom_fields.\(key)") }
            return .success(ImportedContact(data: data, givenFields: given))
        } catch let error as ContactsError {
            return .failure(error)
        } catch {
            return .failure(.invalid([Violation("contact", "\(error)")]))
        }
    }

    static func proto(_ result: ImportRowResult) -> Switchboard_Contacts_V1_ImportRowResult {
        var p = Switchboard_Contacts_V1_ImportRowResult()
        p.row = Int64(result.row)
        switch result.outcome {
        case .created: p.outcome = .created
        case .updated: p.outcome = .updated
        case .skippedDuplicate: p.outcome = .skippedDuplicate
        case .invalid: p.outcome = .invalid
        }
        p.contactId = result.contactID?.lowercaseText ?? ""
        p.violations = result.violations.map { v in
            var f = Google_Rpc_BadRequest.FieldViolation()
            f.field = v.field
            f.description = v.description
            f.reason = v.reason
            return f
        }
        p.resumed = result.resumed
        return p
    }

    /// The `ExportContacts` RPC (see `contacts.proto`): pages of the filter's matches in creation order (keyset, so
    /// memory holds one page and one chunk whatever the size), each contact encoded and sent in chunks of about
    /// ``ContactsLimits/exportChunkBytes``.
    public func exportContacts(
        request: Switchboard_Contacts_V1_ExportContactsRequest, responses: RPCWriter<Switchboard_Contacts_V1_ExportContactsResponse>,
        context: ServerContext
    ) async throws {
        let actor = try context.actor()
        var violations: [Violation] = []
        switch request.format {
        case .csv, .vcard, .jsonLines: break
        default: violations.append(Violation("format", "must be CSV, VCARD or JSON_LINES", reason: "REQUIRED"))
        }
        if ![0, 3, 4].contains(request.vcardVersion) { violations.append(Violation("vcard_version", "must be 3 or 4", reason: "INVALID")) }
        if !violations.isEmpty { throw ContactsError.invalid(violations) }
        let fields = try ExportFields.parse(request.fields)
        var search = ContactSearch()
        if let filter = request.filter {
            search = try Self.contactSearch(try await resolved(filter, prefix: "filter.", context: context), prefix: "filter.")
            if filter.savedSearchId.isEmpty { try await checkCustomFields(search, facets: false, prefix: "filter.", actor: actor) }
        }
        let keys = try await domain.fieldDefinitions(actor: actor).map(\.key)
        let chunkBytes = domain.limits.exportChunkBytes
        var buffer: [UInt8] = []
        buffer.reserveCapacity(chunkBytes + 64 * 1024)
        var written: Int64 = 0
        var sent = false
        func flush() async throws {
            var response = Switchboard_Contacts_V1_ExportContactsResponse()
            response.chunk = buffer
            response.contacts = written
            try await responses.write(response)
            buffer.removeAll(keepingCapacity: true)
            sent = true
        }
        // A CSV row has a column group per address: as many as the most any match has (read before the header).
        let addresses =
            request.format == .csv && fields.fields.contains("addresses") ? max(1, try await domain.exportAddressCount(search, actor: actor)) : 1
        let csv = ContactCSVWriter(fields: fields, customKeys: keys, addresses: addresses, spreadsheetSafe: request.spreadsheetSafe)
        let vcard = VCardWriter(version: request.vcardVersion == 3 ? 3 : 4, fields: fields)
        if request.format == .csv { buffer += Array(csv.header.utf8) }
        var after: SearchCursor?
        while true {
            let page = try await domain.exportPage(search, after: after, actor: actor)
            for record in page.records {
                switch request.format {
                case .csv:
                    // Never a row that leaves an address out: the header's groups were counted before the pages.
                    guard record.data.addresses.count <= addresses || !fields.fields.contains("addresses") else {
                        throw ContactsError.exportAddressesChanged(contactID: record.id)
                    }
                    buffer += Array(csv.row(record).utf8)
                case .vcard: buffer += Array(vcard.card(record).utf8)
                default: buffer += Array((try Self.exportJSON(record, fields: fields) + "\n").utf8)
                }
                written += 1
                if buffer.count >= chunkBytes { try await flush() }
            }
            guard page.more, let last = page.records.last else { break }
            after = ContactsDomain.exportCursor(after: last)
        }
        if !buffer.isEmpty || !sent { try await flush() }
    }

    /// A contact's proto3 JSON line with only the selected fields.
    static func exportJSON(_ record: ContactRecord, fields: ExportFields) throws -> String {
        var contact = ContactsMapping.proto(record)
        let f = fields.fields
        if !f.contains("id") { contact.id = "" }
        if !f.contains("name") { contact.name = nil }
        if !f.contains("emails") { contact.emails = [] }
        if !f.contains("phones") { contact.phones = [] }
        if !f.contains("addresses") { contact.addresses = [] }
        if !f.contains("type") { contact.type = .unspecified }
        if !f.contains("status") { contact.status = .unspecified }
        if !f.contains("tags") { contact.tags = [] }
        if !f.contains("owner_id") { contact.ownerId = "" }
        if !f.contains("audit") {
            contact.audit = nil
            contact.etag = ""
        }
        if !f.contains("custom_fields") {
            contact.customFields = nil
        } else if let keys = fields.customKeys, var custom = contact.customFields {
            custom.fields = custom.fields.filter { keys.contains($0.key) }
            contact.customFields = custom
        }
        return try contact.protoJSONText()
    }
}
