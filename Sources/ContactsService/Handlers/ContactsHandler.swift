import FoundationEssentials
import Logging
import SwitchboardPostgres  // UUID text only (UUID.lowercaseText, UUID(text:)): no pool or database types here
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime
import SwitchboardServiceKit

/// `switchboard.contacts.v1.ContactsService`: turns protobuf requests into domain calls and domain errors into
/// precise gRPC statuses. No SQL here.
public struct ContactsHandler: Switchboard_Contacts_V1_ContactsService_ServiceProtocol {
    public typealias Proto = Switchboard_Contacts_V1_Contact
    let domain: ContactsDomain
    let erasures: ErasureDomain
    private let changes: TenantChangeWatcher
    /// Most elements of a repeated filter (`statuses`, `types`).
    static let maxFilterValues = 16
    /// Longest etag and custom field key a request may name.
    static let maxETagBytes = 64, maxKeyBytes = 64

    /// Creates the handler.
    /// - Parameters:
    ///   - domain: the contacts use cases.
    ///   - erasures: the erasure use cases.
    ///   - changes: the kit's `WatchChanges`.
    public init(domain: ContactsDomain, erasures: ErasureDomain, changes: TenantChangeWatcher) {
        self.domain = domain
        self.erasures = erasures
        self.changes = changes
    }

    /// The id in a request field, or INVALID_ARGUMENT naming the field (`what` says what kind of id it must be).
    static func uuid(_ text: String, field: String, what: String = "a contact id") throws -> UUID {
        guard let id = UUID(text: text) else {
            throw ContactsError.invalid([
                Violation(
                    field, text.isEmpty ? "is required" : "\(ContactRules.excerpt(text)) is not \(what) (UUID)",
                    reason: text.isEmpty ? "REQUIRED" : "INVALID_FORMAT")
            ])
        }
        return id
    }

    static func write(
        _ request: some ProtoJSONMessage, _ requestID: String, _ method: MethodDescriptor
    ) throws -> IdempotentWrite<ContactRecord, Proto> {
        try IdempotentWrite(request: request, requestID: requestID, method: method, response: { ContactsMapping.proto($0) })
    }

    /// An etag is one this service issued (`"<version>"`) or too long to be one.
    static func checkETag(_ etag: String, field: String = "etag") throws {
        guard etag.utf8.count <= maxETagBytes else {
            throw ContactsError.invalid([Violation(field, "must be at most \(maxETagBytes) bytes", reason: "TOO_LONG")])
        }
    }

    /// Checks a repeated enum filter: bounded, no duplicates, every value known.
    static func filter<Proto: Equatable, Value>(
        _ values: [Proto], field: String, what: String, map: (Proto) -> Value?
    ) -> (values: [Value], violations: [Violation]) {
        guard values.count <= maxFilterValues else {
            return ([], [Violation(field, "at most \(maxFilterValues) values", reason: "TOO_MANY")])
        }
        var mapped: [Value] = []
        var violations: [Violation] = []
        for (i, value) in values.enumerated() {
            if let m = map(value) {
                if values[..<i].contains(value) {
                    violations.append(Violation("\(field)[\(i)]", "appears twice", reason: "DUPLICATE"))
                } else {
                    mapped.append(m)
                }
            } else {
                violations.append(Violation("\(field)[\(i)]", "is not \(what)"))
            }
        }
        return (mapped, violations)
    }

    typealias Methods = Switchboard_Contacts_V1_ContactsService.Method

    public func createContact(request: Switchboard_Contacts_V1_CreateContactRequest, context: ServerContext) async throws -> Proto {
        guard let contact = request.contact else {
            throw ContactsError.invalid([Violation("contact", "is required", reason: "REQUIRED")])
        }
        let data = try ContactsMapping.data(contact, prefix: "contact")
        let write = try Self.write(request, request.requestId, Methods.createContact)
        return try write.response(try await domain.create(data, actor: try context.actor(), write: write.options))
    }

    public func getContact(request: Switchboard_Contacts_V1_GetContactRequest, context: ServerContext) async throws -> Proto {
        ContactsMapping.proto(
            try await domain.get(
                id: try Self.uuid(request.id, field: "id"), includeDeleted: request.includeDeleted, actor: try context.actor()))
    }

    public func batchGetContacts(
        request: Switchboard_Contacts_V1_BatchGetContactsRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_BatchGetContactsResponse {
        guard request.ids.count <= 100 else { throw ContactsError.invalid([Violation("ids", "at most 100 ids", reason: "TOO_MANY")]) }
        let ids = try request.ids.enumerated().map { try Self.uuid($1, field: "ids[\($0)]") }
        let found = Dictionary(uniqueKeysWithValues: try await domain.store.fetch(ids: ids, actor: try context.actor()).map { ($0.id, $0) })
        var response = Switchboard_Contacts_V1_BatchGetContactsResponse()
        for (text, id) in zip(request.ids, ids) {
            if let record = found[id] { response.contacts.append(ContactsMapping.proto(record)) } else { response.missingIds.append(text) }
        }
        return response
    }

    /// The `FindDuplicateContacts` RPC (see `contacts.proto`).
    public func findDuplicateContacts(
        request: Switchboard_Contacts_V1_FindDuplicateContactsRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_FindDuplicateContactsResponse {
        let candidates = try await domain.duplicates(
            of: try Self.uuid(request.contactId, field: "contact_id"), maxResults: Int(request.maxResults), actor: try context.actor())
        var response = Switchboard_Contacts_V1_FindDuplicateContactsResponse()
        response.candidates = candidates.map { candidate in
            var p = Switchboard_Contacts_V1_DuplicateCandidate()
            p.contact = ContactsMapping.proto(candidate.record)
            p.score = candidate.score
            p.signals = candidate.signals.map { Switchboard_Contacts_V1_DuplicateSignal(protoValue: Int32($0.rawValue)) }
            p.nameSimilarity = candidate.nameSimilarity
            return p
        }
        return response
    }

    public func lookupContacts(
        request: Switchboard_Contacts_V1_LookupContactsRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_LookupContactsResponse {
        let found = try await domain.lookup(emails: request.emails, phones: request.phones, actor: try context.actor())
        func proto(_ match: ContactMatch) -> Switchboard_Contacts_V1_ContactMatch {
            var m = Switchboard_Contacts_V1_ContactMatch()
            m.query = match.query
            m.normalized = match.normalized
            m.contactIds = match.contactIDs.map(\.lowercaseText)
            m.truncated = match.truncated
            return m
        }
        var response = Switchboard_Contacts_V1_LookupContactsResponse()
        response.emails = found.emails.map(proto)
        response.phones = found.phones.map(proto)
        return response
    }

    public func batchCreateContacts(
        request: Switchboard_Contacts_V1_BatchCreateContactsRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_BatchCreateContactsResponse {
        let items = request.contacts.enumerated().map { i, contact in
            Result { try ContactsMapping.data(contact, prefix: "contacts[\(i)]") }.mapError { error in
                error as? ContactsError ?? .invalid([Violation("contacts[\(i)]", "\(error)")])
            }
        }
        let write = try IdempotentWrite(
            request: request, requestID: request.requestId, method: Methods.batchCreateContacts, response: Self.batchResponse)
        return try write.response(
            try await domain.batchCreate(items, allOrNothing: request.allOrNothing, actor: try context.actor(), write: write.options))
    }

    public func batchUpdateContacts(
        request: Switchboard_Contacts_V1_BatchUpdateContactsRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_BatchUpdateContactsResponse {
        let items = request.requests.enumerated().map { i, item in
            Result { try Self.updateItem(item, prefix: "requests[\(i)]") }.mapError { Self.itemError($0, "requests[\(i)]") }
        }
        let write = try IdempotentWrite(request: request, requestID: request.requestId, method: Methods.batchUpdateContacts) { results in
            var response = Switchboard_Contacts_V1_BatchUpdateContactsResponse()
            response.results = Self.batchResults(results)
            return response
        }
        return try write.response(
            try await domain.batchUpdate(items, allOrNothing: request.allOrNothing, actor: try context.actor(), write: write.options))
    }

    public func batchDeleteContacts(
        request: Switchboard_Contacts_V1_BatchDeleteContactsRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_BatchDeleteContactsResponse {
        let items = request.requests.enumerated().map { i, item in
            Result { () throws -> (id: UUID, etag: String) in
                let prefix = "requests[\(i)]"
                try Self.checkNoItemRequestID(item.requestId, prefix: prefix)
                try Self.checkETag(item.etag, field: "\(prefix).etag")
                return (try Self.uuid(item.id, field: "\(prefix).id"), item.etag)
            }.mapError { Self.itemError($0, "requests[\(i)]") }
        }
        let write = try IdempotentWrite(request: request, requestID: request.requestId, method: Methods.batchDeleteContacts) { results in
            var response = Switchboard_Contacts_V1_BatchDeleteContactsResponse()
            response.results = Self.batchResults(results)
            return response
        }
        return try write.response(
            try await domain.batchDelete(items, allOrNothing: request.allOrNothing, actor: try context.actor(), write: write.options))
    }

    /// One update of a batch, checked as UpdateContact checks its request, its fields named under `prefix`.
    private static func updateItem(_ request: Switchboard_Contacts_V1_UpdateContactRequest, prefix: String) throws -> ContactsDomain.UpdateItem {
        try checkNoItemRequestID(request.requestId, prefix: prefix)
        guard let contact = request.contact else {
            throw ContactsError.invalid([Violation("\(prefix).contact", "is required", reason: "REQUIRED")])
        }
        let id = try uuid(contact.id, field: "\(prefix).contact.id")
        let source = try ContactsMapping.data(contact, prefix: "\(prefix).contact")
        let paths = request.updateMask?.paths ?? []
        try checkETag(request.etag, field: "\(prefix).etag")
        if paths.contains("type"), contact.type == .unspecified {
            throw ContactsError.invalid([Violation("\(prefix).contact.type", "must be PERSON or COMPANY", reason: "REQUIRED")])
        }
        if paths.contains("status"), contact.status == .unspecified {
            throw ContactsError.invalid([Violation("\(prefix).contact.status", "must be set", reason: "REQUIRED")])
        }
        return ContactsDomain.UpdateItem(id: id, source: source, paths: paths, etag: request.etag)
    }

    /// A batch item's own request id would suggest per-item idempotency the batch does not have: the batch's covers all.
    private static func checkNoItemRequestID(_ requestID: String, prefix: String) throws {
        guard requestID.isEmpty else {
            throw ContactsError.invalid([
                Violation("\(prefix).request_id", "must be empty: the batch's request_id covers every item", reason: "INVALID")
            ])
        }
    }

    /// An item's mapping failure as the item's error, its fields under `prefix`.
    private static func itemError(_ error: any Error, _ prefix: String) -> ContactsError {
        (error as? ContactsError)?.prefixed(prefix) ?? .invalid([Violation(prefix, "\(error)")])
    }

    /// The response of a batch create: each item's contact, or its error as the status a single create would have
    /// returned (code, message and details).
    @Sendable private static func batchResponse(_ results: [ContactBatchResult]) -> Switchboard_Contacts_V1_BatchCreateContactsResponse {
        var response = Switchboard_Contacts_V1_BatchCreateContactsResponse()
        response.results = batchResults(results)
        return response
    }

    /// Each item's contact, or its error as the status the single RPC would have returned (code, message, details).
    private static func batchResults(_ results: [ContactBatchResult]) -> [Switchboard_Contacts_V1_ContactResult] {
        results.map { result in
            var item = Switchboard_Contacts_V1_ContactResult()
            switch result {
            case .succeeded(let record): item.contact = ContactsMapping.proto(record)
            case .failed(let error):
                let rpc = error.rpcError
                item.error =
                    rpc.statusDetails
                    ?? {
                        var status = Google_Rpc_Status()
                        status.code = Int32(rpc.code.rawValue)
                        status.message = rpc.message
                        return status
                    }()
            }
            return item
        }
    }

    public func updateContact(request: Switchboard_Contacts_V1_UpdateContactRequest, context: ServerContext) async throws -> Proto {
        guard let contact = request.contact else {
            throw ContactsError.invalid([Violation("contact", "is required", reason: "REQUIRED")])
        }
        let id = try Self.uuid(contact.id, field: "contact.id")
        let source = try ContactsMapping.data(contact, prefix: "contact")
        let paths = request.updateMask?.paths ?? []
        try Self.checkETag(request.etag)
        if paths.contains("type"), contact.type == .unspecified {
            throw ContactsError.invalid([Violation("contact.type", "must be PERSON or COMPANY", reason: "REQUIRED")])
        }
        if paths.contains("status"), contact.status == .unspecified {
            throw ContactsError.invalid([Violation("contact.status", "must be set", reason: "REQUIRED")])
        }
        let write = try Self.write(request, request.requestId, Methods.updateContact)
        return try write.response(
            try await domain.update(
                id: id, from: source, paths: paths, etag: request.etag, actor: try context.actor(), write: write.options))
    }

    public func deleteContact(request: Switchboard_Contacts_V1_DeleteContactRequest, context: ServerContext) async throws -> Proto {
        try Self.checkETag(request.etag)
        let write = try Self.write(request, request.requestId, Methods.deleteContact)
        return try write.response(
            try await domain.setDeleted(
                id: try Self.uuid(request.id, field: "id"), deleted: true, etag: request.etag, actor: try context.actor(),
                write: write.options))
    }

    public func undeleteContact(request: Switchboard_Contacts_V1_UndeleteContactRequest, context: ServerContext) async throws -> Proto {
        let write = try Self.write(request, request.requestId, Methods.undeleteContact)
        return try write.response(
            try await domain.setDeleted(
                id: try Self.uuid(request.id, field: "id"), deleted: false, etag: "", actor: try context.actor(), write: write.options))
    }

    public func mergeContacts(request: Switchboard_Contacts_V1_MergeContactsRequest, context: ServerContext) async throws -> Proto {
        let winner = try Self.uuid(request.winnerId, field: "winner_id")
        let loser = try Self.uuid(request.loserId, field: "loser_id")
        try Self.checkETag(request.winnerEtag, field: "winner_etag")
        try Self.checkETag(request.loserEtag, field: "loser_etag")
        let write = try Self.write(request, request.requestId, Methods.mergeContacts)
        return try write.response(
            try await domain.merge(
                winnerID: winner, loserID: loser, winnerETag: request.winnerEtag, loserETag: request.loserEtag, actor: try context.actor(),
                write: write.options))
    }

    public func unmergeContact(request: Switchboard_Contacts_V1_UnmergeContactRequest, context: ServerContext) async throws -> Proto {
        let write = try Self.write(request, request.requestId, Methods.unmergeContact)
        return try write.response(
            try await domain.unmerge(id: try Self.uuid(request.id, field: "id"), actor: try context.actor(), write: write.options))
    }

    public func listContacts(
        request: Switchboard_Contacts_V1_ListContactsRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_ListContactsResponse {
        var query = ContactQuery()
        var violations: [Violation] = []
        let statuses = Self.filter(request.statuses, field: "statuses", what: "a status", map: ContactsMapping.status)
        let kinds = Self.filter(request.types, field: "types", what: "a contact type", map: ContactsMapping.kind)
        query.statuses = statuses.values
        query.kinds = kinds.values
        violations += statuses.violations + kinds.violations
        if !ContactRules.tagLimit.allows(request.tag) {
            violations.append(Violation("tag", ContactRules.tagLimit.description, reason: "TOO_LONG"))
        }
        if !ContactRules.ownerIDLimit.allows(request.ownerId) {
            violations.append(Violation("owner_id", ContactRules.ownerIDLimit.description, reason: "TOO_LONG"))
        }
        // Before any conversion of these dates (to SQL text, to a page token's fingerprint).
        violations += ContactRules.timeFilterViolations(
            createdAfter: request.createdAfter, createdBefore: request.createdBefore, updatedAfter: request.updatedAfter,
            updatedBefore: request.updatedBefore)
        if !violations.isEmpty { throw ContactsError.invalid(violations) }
        query.tag = request.tag.isEmpty ? nil : request.tag
        query.ownerID = request.ownerId.isEmpty ? nil : request.ownerId
        query.createdAfter = request.createdAfter
        query.createdBefore = request.createdBefore
        query.updatedAfter = request.updatedAfter
        query.updatedBefore = request.updatedBefore
        switch request.orderBy {
        case .unspecified, .createTime: query.order = .createTime
        case .updateTime: query.order = .updateTime
        case .familyName: query.order = .familyName
        case .unrecognized: throw ContactsError.invalid([Violation("order_by", "is not a known order")])
        }
        query.descending = request.descending
        query.includeDeleted = request.includeDeleted
        var contacts: [Proto] = []
        let (page, next) = try await domain.list(
            query, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "", actor: try context.actor()
        ) { record in
            // Each contact is encoded once: the size decides whether it joins the page, and it is kept if so.
            let proto = ContactsMapping.proto(record)
            contacts.append(proto)
            // The field's tag and length prefix.
            return proto.serializedBytes().count + 6
        }
        var response = Switchboard_Contacts_V1_ListContactsResponse()
        response.contacts = Array(contacts.prefix(page.count))
        var pageResponse = Switchboard_Common_V1_PageResponse()
        pageResponse.nextPageToken = next
        response.page = pageResponse
        return response
    }

    /// A search request as the domain's search, every problem a violation naming its field (under `prefix`).
    static func contactSearch(_ request: Switchboard_Contacts_V1_SearchContactsRequest, prefix: String = "") throws -> ContactSearch {
        var search = ContactSearch()
        var violations: [Violation] = []
        let statuses = Self.filter(request.statuses, field: "statuses", what: "a status", map: ContactsMapping.status)
        let kinds = Self.filter(request.types, field: "types", what: "a contact type", map: ContactsMapping.kind)
        search.filters.statuses = statuses.values
        search.filters.kinds = kinds.values
        violations += statuses.violations + kinds.violations
        if !ContactRules.ownerIDLimit.allows(request.ownerId) {
            violations.append(Violation("owner_id", ContactRules.ownerIDLimit.description, reason: "TOO_LONG"))
        }
        // Before any conversion of these dates (to SQL text, to a page token's fingerprint).
        violations += ContactRules.timeFilterViolations(
            createdAfter: request.createdAfter, createdBefore: request.createdBefore, updatedAfter: request.updatedAfter,
            updatedBefore: request.updatedBefore)
        var facets: [ContactSearch.FacetField] = []
        for (i, name) in request.facets.enumerated() {
            if let facet = SearchRules.facet(name) {
                facets.append(facet)
            } else {
                violations.append(
                    Violation(
                        "facets[\(i)]", "must be status, type, tag, owner_id or custom_fields.<key>, not \(ContactRules.excerpt(name))",
                        reason: "INVALID"))
            }
        }
        switch request.sortBy {
        case .unspecified, .relevance: search.sort = .relevance
        case .createTime: search.sort = .createTime
        case .updateTime: search.sort = .updateTime
        case .familyName: search.sort = .familyName
        case .unrecognized: violations.append(Violation("sort_by", "is not a known order"))
        }
        search.text = SearchRules.phoneQuery(request.query) ?? request.query
        search.tags = request.tags
        search.customFields = request.customFields.map { CustomFieldFilter(key: $0.key, value: $0.value) }.sorted { $0.key < $1.key }
        search.facets = facets
        violations += SearchRules.violations(of: search)
        if !violations.isEmpty { throw ContactsError.invalid(violations.map { Violation(prefix + $0.field, $0.description, reason: $0.reason) }) }
        search.filters.ownerID = request.ownerId.isEmpty ? nil : request.ownerId
        search.filters.createdAfter = request.createdAfter
        search.filters.createdBefore = request.createdBefore
        search.filters.updatedAfter = request.updatedAfter
        search.filters.updatedBefore = request.updatedBefore
        search.descending = request.descending
        return search
    }

    /// Refuses a facet or condition on a custom field the tenant has not defined (retired fields count: contacts keep
    /// their values). No contact holds such a field, so it could only count and match nothing, and a misspelt key
    /// would look like an empty result. Reads the definitions only when the search names a custom field. A saved
    /// search run by id is not checked again: one saved before this check runs as it always did.
    /// - Parameter facets: whether the caller counts facets (an export and a bulk tag ignore them).
    func checkCustomFields(_ search: ContactSearch, facets checkFacets: Bool = true, prefix: String, actor: Actor) async throws {
        let facets = search.facets.enumerated().compactMap { i, facet -> (Int, String)? in
            guard checkFacets else { return nil }
            if case .customField(let key) = facet { return (i, key) }
            return nil
        }
        guard !facets.isEmpty || !search.customFields.isEmpty else { return }
        let defined = Set(try await domain.fieldDefinitions(actor: actor).map(\.key))
        var violations: [Violation] = []
        for (i, key) in facets where !defined.contains(key) {
            violations.append(Violation("\(prefix)facets[\(i)]", "custom field \(key) is not defined", reason: "UNKNOWN_FIELD"))
        }
        for filter in search.customFields where !defined.contains(filter.key) {
            violations.append(
                Violation("\(prefix)custom_fields[\(filter.key)]", "custom field \(filter.key) is not defined", reason: "UNKNOWN_FIELD"))
        }
        if !violations.isEmpty { throw ContactsError.invalid(violations) }
    }

    /// The search a request asks for: itself, or the saved search it names (with its page).
    func resolved(
        _ given: Switchboard_Contacts_V1_SearchContactsRequest, prefix: String, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_SearchContactsRequest {
        guard !given.savedSearchId.isEmpty else { return given }
        // A saved search brings everything but the page.
        var rest = given
        rest.page = nil
        rest.savedSearchId = ""
        guard rest == Switchboard_Contacts_V1_SearchContactsRequest() else {
            throw ContactsError.invalid([
                Violation(
                    "\(prefix)saved_search_id", "runs a saved search as saved: leave the query, filters, sort and facets empty", reason: "CONFLICT")
            ])
        }
        let saved = try await domain.savedSearch(
            id: try Self.savedSearchID(given.savedSearchId, field: "\(prefix)saved_search_id"), actor: try context.actor())
        var request = try Switchboard_Contacts_V1_SearchContactsRequest(serializedBytes: saved.search)
        request.page = given.page
        return request
    }

    public func bulkTagContacts(
        request: Switchboard_Contacts_V1_BulkTagContactsRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_BulkTagContactsResponse {
        guard let filter = request.filter else {
            throw ContactsError.invalid([Violation("filter", "is required: a search (an empty query matches every contact)", reason: "REQUIRED")])
        }
        let search = try Self.contactSearch(try await resolved(filter, prefix: "filter.", context: context), prefix: "filter.")
        if filter.savedSearchId.isEmpty { try await checkCustomFields(search, facets: false, prefix: "filter.", actor: try context.actor()) }
        let write = try IdempotentWrite(
            request: request, requestID: request.requestId, method: Methods.bulkTagContacts,
            response: { (r: BulkTagResult) in
                var p = Switchboard_Contacts_V1_BulkTagContactsResponse()
                p.matched = Int64(r.matched)
                p.changed = Int64(r.changed)
                p.skippedTooManyTags = Int64(r.skippedTooManyTags)
                return p
            })
        return try write.response(
            try await domain.bulkTag(search, add: request.addTags, remove: request.removeTags, actor: try context.actor(), write: write.options))
    }

    public func searchContacts(
        request given: Switchboard_Contacts_V1_SearchContactsRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_SearchContactsResponse {
        let request = try await resolved(given, prefix: "", context: context)
        let search = try Self.contactSearch(request)
        if given.savedSearchId.isEmpty { try await checkCustomFields(search, prefix: "", actor: try context.actor()) }
        var hits: [Switchboard_Contacts_V1_SearchHit] = []
        let found = try await domain.search(
            search, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "", actor: try context.actor()
        ) { hit in
            var proto = Switchboard_Contacts_V1_SearchHit()
            proto.contact = ContactsMapping.proto(hit.record)
            proto.score = hit.score
            hits.append(proto)
            // Highlights come after the page is cut (they need the matched terms); each copies a field's text of the
            // contact, so they add at most the contact's size again.
            return 2 * proto.serializedBytes().count + 12
        }
        var response = Switchboard_Contacts_V1_SearchContactsResponse()
        response.hits = Array(hits.prefix(found.hits.count))
        for i in response.hits.indices {
            response.hits[i].highlights = SearchRules.highlights(
                of: found.hits[i].record.data, organizationNames: found.hits[i].organizationNames, terms: found.terms
            ).map(ContactsMapping.proto)
        }
        var page = Switchboard_Common_V1_PageResponse()
        page.nextPageToken = found.next
        response.page = page
        response.facets = zip(request.facets, found.facets).map { name, counts in
            var facet = Switchboard_Contacts_V1_Facet()
            facet.field = name
            facet.partial = found.facetsPartial
            facet.counts = counts.map {
                var count = Switchboard_Contacts_V1_FacetCount()
                count.value = ContactsMapping.facetValue($0.value, of: SearchRules.facet(name))
                count.count = Int64($0.count)
                return count
            }
            return facet
        }
        return response
    }

    private static func savedSearchID(_ text: String, field: String) throws -> UUID {
        guard let id = UUID(text: text) else {
            throw ContactsError.invalid([
                Violation(
                    field, text.isEmpty ? "is required" : "\(ContactRules.excerpt(text)) is not a saved search id (UUID)",
                    reason: text.isEmpty ? "REQUIRED" : "INVALID_FORMAT")
            ])
        }
        return id
    }

    private static func savedSearchWrite(
        _ request: some ProtoJSONMessage, _ requestID: String, _ method: MethodDescriptor
    ) throws -> IdempotentWrite<SavedSearchRecord, Switchboard_Contacts_V1_SavedSearch> {
        try IdempotentWrite(request: request, requestID: requestID, method: method, response: { ContactsMapping.proto($0) })
    }

    public func createSavedSearch(
        request: Switchboard_Contacts_V1_CreateSavedSearchRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_SavedSearch {
        guard let saved = request.savedSearch else {
            throw ContactsError.invalid([Violation("saved_search", "is required", reason: "REQUIRED")])
        }
        var search = saved.search ?? Switchboard_Contacts_V1_SearchContactsRequest()
        var violations: [Violation] = []
        if search.page != nil {
            violations.append(Violation("saved_search.search.page", "must be empty: a page belongs to a run", reason: "INVALID"))
        }
        if !search.savedSearchId.isEmpty {
            violations.append(Violation("saved_search.search.saved_search_id", "must be empty", reason: "INVALID"))
        }
        if !violations.isEmpty { throw ContactsError.invalid(violations) }
        // Checked as a search would be, so a saved search always runs.
        try await checkCustomFields(
            try Self.contactSearch(search, prefix: "saved_search.search."), prefix: "saved_search.search.", actor: try context.actor())
        search.page = nil
        let write = try Self.savedSearchWrite(request, request.requestId, Methods.createSavedSearch)
        return try write.response(
            try await domain.saveSearch(
                name: saved.name, shared: saved.shared, search: search.serializedBytes(), actor: try context.actor(), write: write.options))
    }

    public func getSavedSearch(
        request: Switchboard_Contacts_V1_GetSavedSearchRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_SavedSearch {
        ContactsMapping.proto(try await domain.savedSearch(id: try Self.savedSearchID(request.id, field: "id"), actor: try context.actor()))
    }

    public func listSavedSearches(
        request: Switchboard_Contacts_V1_ListSavedSearchesRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_ListSavedSearchesResponse {
        let (page, next) = try await domain.savedSearches(
            pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "", actor: try context.actor())
        var response = Switchboard_Contacts_V1_ListSavedSearchesResponse()
        response.savedSearches = page.map(ContactsMapping.proto)
        var pageResponse = Switchboard_Common_V1_PageResponse()
        pageResponse.nextPageToken = next
        response.page = pageResponse
        return response
    }

    public func deleteSavedSearch(
        request: Switchboard_Contacts_V1_DeleteSavedSearchRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_SavedSearch {
        let write = try Self.savedSearchWrite(request, request.requestId, Methods.deleteSavedSearch)
        return try write.response(
            try await domain.deleteSavedSearch(
                id: try Self.savedSearchID(request.id, field: "id"), asAdmin: try context.caller().has(atLeast: .admin), actor: try context.actor(),
                write: write.options))
    }

    public func defineField(
        request: Switchboard_Contacts_V1_DefineFieldRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_FieldDefinition {
        guard let proto = request.definition else {
            throw ContactsError.invalid([Violation("definition", "is required", reason: "REQUIRED")])
        }
        guard let type = ContactsMapping.fieldType(proto.type) else {
            throw ContactsError.invalid([Violation("definition.type", "must be STRING, NUMBER, BOOL, DATE or ENUM", reason: "REQUIRED")])
        }
        let definition = FieldDefinition(
            key: proto.key, displayName: proto.displayName, type: type, allowedValues: proto.allowedValues, required: proto.required)
        let write = try IdempotentWrite(
            request: request, requestID: request.requestId, method: Methods.defineField,
            response: { (d: FieldDefinition) in ContactsMapping.proto(d) })
        return try write.response(try await domain.define(definition, actor: try context.actor(), write: write.options))
    }

    public func listFieldDefinitions(
        request: Switchboard_Contacts_V1_ListFieldDefinitionsRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_ListFieldDefinitionsResponse {
        var response = Switchboard_Contacts_V1_ListFieldDefinitionsResponse()
        response.definitions = try await domain.store.fieldDefinitions(actor: try context.actor(), includeRetired: request.includeRetired)
            .map(ContactsMapping.proto)
        return response
    }

    public func retireField(
        request: Switchboard_Contacts_V1_RetireFieldRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_FieldDefinition {
        guard !request.key.isEmpty else { throw ContactsError.invalid([Violation("key", "is required", reason: "REQUIRED")]) }
        guard request.key.utf8.count <= Self.maxKeyBytes else {
            throw ContactsError.invalid([Violation("key", "must be at most \(Self.maxKeyBytes) bytes", reason: "TOO_LONG")])
        }
        let write = try IdempotentWrite(
            request: request, requestID: request.requestId, method: Methods.retireField,
            response: { (d: FieldDefinition) in ContactsMapping.proto(d) })
        return try write.response(try await domain.retire(key: request.key, actor: try context.actor(), write: write.options))
    }

    public func watchChanges(
        request: Switchboard_Common_V1_WatchChangesRequest, responses: RPCWriter<Switchboard_Common_V1_ChangeEvent>,
        context: ServerContext
    ) async throws {
        try await changes.watch(request, responses: responses, context: context)
    }
}
