import FoundationEssentials
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

extension ContactsError: RPCErrorConvertible {
    /// The status each domain error is sent as.
    public var rpcError: RPCError {
        switch self {
        case .invalid(let violations):
            return InvalidRequest(violations).rpcError
        case .notFound(let id):
            return RPCError(code: .notFound, message: "contact \(id) not found")
        case .emailTaken(let email, let existing):
            var info = Google_Rpc_ResourceInfo()
            info.resourceType = "switchboard.contacts.v1.Contact"
            info.resourceName = existing.uuidString.lowercased()
            info.description = "already uses \(email)"
            return RPCError(code: .alreadyExists, message: "email \(email) already belongs to contact \(existing.uuidString.lowercased())")
                .withDetails([Google_Protobuf_Any(packing: info)])
        case .etagMismatch(let current):
            return RPCError(code: .aborted, message: "the contact changed since it was read (current etag \(current)); read it again and retry")
        case .fieldExists(let key):
            return RPCError(code: .alreadyExists, message: "custom field \(key) is already defined")
        case .fieldNotFound(let key):
            return RPCError(code: .notFound, message: "custom field \(key) is not defined")
        case .tooManyFields(let limit):
            return RPCError(code: .failedPrecondition, message: "the tenant already has \(limit) custom field definitions, the most it may have")
        case .savedSearchNotFound(let id):
            return RPCError(code: .notFound, message: "saved search \(id) not found")
        case .erasureNotFound(let id):
            return RPCError(code: .notFound, message: "erasure \(id) not found")
        case .mergedAway(let id, let into, let action):
            return RPCError(code: .failedPrecondition, message: "contact \(id) was merged into \(into); \(action)")
        case .concurrentChange(let message):
            return RPCError(code: .aborted, message: message)
        case .notMerged(let id):
            return RPCError(code: .failedPrecondition, message: "contact \(id) is not merged into another: there is no merge to reverse")
        case .mergeRefused(let violations):
            let reasons = violations.map { "\($0.field) \($0.description)" }.joined(separator: "; ")
            return RPCError(code: .failedPrecondition, message: "the merged contact would break the contact's rules: \(reasons); nothing changed")
        case .notSavedSearchOwner(let id):
            return RPCError(code: .permissionDenied, message: "saved search \(id) may be deleted only by its owner or an admin")
        case .searchTooExpensive(let milliseconds):
            return RPCError(
                code: .resourceExhausted,
                message: "the search ran past \(milliseconds) ms; use more specific words or filters, or sort by relevance")
        case .searchesBusy(let atOnce, let milliseconds):
            return RPCError(
                code: .resourceExhausted,
                message: "\(atOnce) searches with facets run at once and this one waited \(milliseconds) ms for its turn; retry later")
        case .tooManyMatches(let count, let limit):
            return RPCError(
                code: .failedPrecondition,
                message: "the filter matches more than \(limit) contacts (\(count) or more); narrow it, or tag in parts")
        case .importOptionsChanged(let importID):
            return RPCError(
                code: .failedPrecondition,
                message:
                    "import \(importID) is recorded with other options (by a call that wrote rows under them, is writing them, or came since); resume it with the same options, or use a new import_id"
            )
        case .importInputChanged(let importID, let row):
            return RPCError(
                code: .failedPrecondition,
                message:
                    "row \(row) is not the row \(row) that import \(importID) wrote before: resume by sending the same input again from its start, or use a new import_id"
            )
        case .importPreviewFull(let row, let maxBytes):
            return RPCError(
                code: .resourceExhausted,
                message:
                    "the dry run previewed rows up to \(row); what they would write passed the \(maxBytes) bytes a dry run remembers to find duplicates between rows (SWITCHBOARD_CONTACTS_IMPORT_PREVIEW_BYTES): raise it, or preview the rest as a file of its own (its rows are then not matched against the earlier ones)"
            )
        case .exportAddressesChanged(let id):
            return RPCError(
                code: .aborted,
                message: "contact \(id.lowercaseText) gained postal addresses during the export, more than its columns hold; export again")
        case .tooManySavedSearches(let limit):
            return RPCError(code: .failedPrecondition, message: "you already own \(limit) saved searches, the most one may; delete one first")
        case .contactNotFound(let field, let id):
            var info = Google_Rpc_ResourceInfo()
            info.resourceType = "switchboard.contacts.v1.Contact"
            info.resourceName = id
            info.description = "\(field): not a live contact of the tenant"
            return RPCError(code: .notFound, message: "\(field): contact \(id) not found").withDetails([Google_Protobuf_Any(packing: info)])
        case .relationshipNotFound(let id):
            return RPCError(code: .notFound, message: "relationship \(id) not found")
        case .relationshipExists(let existing):
            var info = Google_Rpc_ResourceInfo()
            info.resourceType = "switchboard.contacts.v1.Relationship"
            info.resourceName = existing.lowercaseText
            info.description = "ties the same two contacts by this type or its inverse"
            return RPCError(
                code: .alreadyExists,
                message: "the two contacts already have this relationship (relationship \(existing.lowercaseText), by this type or its inverse)"
            ).withDetails([Google_Protobuf_Any(packing: info)])
        case .relationshipETagMismatch(let current):
            return RPCError(code: .aborted, message: "the relationship changed since it was read (current etag \(current)); read it again and retry")
        case .tooManyRelationships(let contact, let limit):
            return RPCError(
                code: .failedPrecondition,
                message:
                    "contact \(contact) already has \(limit) relationships, the most one may (SWITCHBOARD_CONTACTS_MAX_RELATIONSHIPS); delete one first"
            )
        case .inBatchItem(let item, let error):
            var rpcError = error.rpcError
            rpcError.message = "\(item): \(rpcError.message) (all_or_nothing: nothing was written)"
            return rpcError
        }
    }
}
