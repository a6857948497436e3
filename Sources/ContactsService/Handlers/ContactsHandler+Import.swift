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
    /// and checked while up to ``importBatchesInFlight`` are written (responses stay in row order; memory holds that
    /// many batches and one more). Each written batch is one response with its rows' results and the counts.
    public func importContacts(
        requests: RPCAsyncSequence<Switchboard_Contacts_V1_ImportContactsRequest>,
        responses: RPCWriter<Switchboard_Contacts_V1_ImportContactsResponse>,
        context: ServerContext
    ) async throws {
        let actor = try context.actor()
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

        var progress = Switchboard_Contacts_V1_ImportProgress()
        var first = true
        var headerSeen = false
        func respond(_ results: [ImportRowResult], endOffset: Int, done: Bool) async throws {
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
                response.results.append(Self.proto(result))
            }
            progress.bytesProcessed = Int64(endOffset)
            progress.done = done
            response.progress = progress
            if first {
                response.importId = settings.importID
                response.ignoredSources = mapper.ignoredColumns
                first = false
            }
            try await responses.write(response)
        }

        let domain = self.domain
        var rowsSeen = 0
        var received = 0
        var batch: [ImportBatchRow] = []
        var batchEnd = 0
        batch.reserveCapacity(limits.batchRows)
        // Two batches in flight: their transactions overlap in the database (one's rows go in while the other's change
        // events and ledger commit). Matching phones keeps one: a number a batch in flight takes is not yet visible to
        // the next (an address is: its unique key makes the later batch wait and run again).
        let depth = settings.matchPhone ? 1 : Self.importBatchesInFlight
        try await withThrowingTaskGroup(of: (index: Int, results: [ImportRowResult], endOffset: Int).self) { group in
            var inFlight = 0
            var submitted = 0
            var answered = 0
            var finished: [Int: (results: [ImportRowResult], endOffset: Int)] = [:]
            // Waits for one batch; answers every finished batch whose turn it is (responses keep row order).
            func awaitWrite() async throws {
                guard inFlight > 0, let written = try await group.next() else { return }
                inFlight -= 1
                finished[written.index] = (written.results, written.endOffset)
                while let next = finished.removeValue(forKey: answered) {
                    answered += 1
                    try await respond(next.results, endOffset: next.endOffset, done: false)
                }
            }
            func drain() async throws {
                while inFlight > 0 { try await awaitWrite() }
            }
            func submit() async throws {
                guard !batch.isEmpty else { return }
                while inFlight >= depth { try await awaitWrite() }
                let rows = batch
                let end = batchEnd
                let index = submitted
                group.addTask {
                    // Not cancelled with the call: a batch whose transaction has begun ends it (commit or rollback) even
                    // when the client goes away, rather than leaving a connection mid-transaction holding its locks
                    // (which made the resumed import wait for them). The ledger makes the outcome safe either way.
                    let write = Task { try await domain.writeImportBatch(rows, settings: settings, definitions: definitions, actor: actor) }
                    return (index, try await write.value, end)
                }
                submitted += 1
                inFlight += 1
                batch.removeAll(keepingCapacity: true)
            }
            func take(_ records: [SourceRecord]) async throws {
                for record in records {
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
                    batch.append(domain.prepareImportRow(row: record.row, mapper.contact(from: record), definitions: definitions))
                    batchEnd = record.endOffset
                    if batch.count >= limits.batchRows { try await submit() }
                }
            }
            func learnHeader() throws {
                guard !headerSeen, let header = (reader as? CSVReader)?.header else { return }
                headerSeen = true
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
            }
            let last = reader.finish()
            try learnHeader()
            try await take(last)
            try await submit()
            try await drain()
        }
        try await respond([], endOffset: received, done: true)
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
        let csv = ContactCSVWriter(fields: fields, customKeys: keys)
        let vcard = VCardWriter(version: request.vcardVersion == 3 ? 3 : 4, fields: fields)
        if request.format == .csv { buffer += Array(csv.header.utf8) }
        var after: SearchCursor?
        while true {
            let page = try await domain.exportPage(search, after: after, actor: actor)
            for record in page.records {
                switch request.format {
                case .csv: buffer += Array(csv.row(record).utf8)
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
