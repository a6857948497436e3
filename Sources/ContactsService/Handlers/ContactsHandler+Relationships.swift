import FoundationEssentials
import SwitchboardPostgres  // UUID text only (UUID.lowercaseText, UUID(text:))
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

extension ContactsHandler {
    private static func relationshipWrite(
        _ request: some ProtoJSONMessage, _ requestID: String, _ method: MethodDescriptor
    ) throws -> IdempotentWrite<RelationshipRecord, Switchboard_Contacts_V1_Relationship> {
        try IdempotentWrite(request: request, requestID: requestID, method: method, response: { ContactsMapping.proto($0) })
    }

    /// The type in `field`: required, and one this version knows.
    private static func relationshipKind(_ type: Switchboard_Contacts_V1_RelationshipType, field: String) throws -> RelationshipKind {
        guard let kind = ContactsMapping.relationshipKind(type) else {
            throw ContactsError.invalid([
                type == .unspecified
                    ? Violation(field, "is required", reason: "REQUIRED")
                    : Violation(field, "\(type.protoValue) is not a relationship type", reason: "UNKNOWN")
            ])
        }
        return kind
    }

    /// A `types` filter: bounded, no duplicates, every type known.
    private static func relationshipKinds(_ types: [Switchboard_Contacts_V1_RelationshipType]) throws -> [RelationshipKind] {
        let (kinds, violations) = filter(types, field: "types", what: "a relationship type", map: ContactsMapping.relationshipKind)
        if !violations.isEmpty { throw ContactsError.invalid(violations) }
        return kinds
    }

    /// The `CreateRelationship` RPC (see `contacts.proto`).
    public func createRelationship(
        request: Switchboard_Contacts_V1_CreateRelationshipRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_Relationship {
        guard let relationship = request.relationship else {
            throw ContactsError.invalid([Violation("relationship", "is required", reason: "REQUIRED")])
        }
        let contact = try Self.uuid(relationship.contactId, field: "relationship.contact_id")
        let related = try Self.uuid(relationship.relatedContactId, field: "relationship.related_contact_id")
        let kind = try Self.relationshipKind(relationship.type, field: "relationship.type")
        let write = try Self.relationshipWrite(request, request.requestId, Methods.createRelationship)
        return try write.response(
            try await domain.createRelationship(
                contact: contact, related: related, kind: kind, strength: Int(relationship.strength), note: relationship.note,
                actor: try context.actor(), write: write.options))
    }

    /// The `UpdateRelationship` RPC (see `contacts.proto`).
    public func updateRelationship(
        request: Switchboard_Contacts_V1_UpdateRelationshipRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_Relationship {
        guard let relationship = request.relationship else {
            throw ContactsError.invalid([Violation("relationship", "is required", reason: "REQUIRED")])
        }
        let id = try Self.uuid(relationship.id, field: "relationship.id", what: "a relationship id")
        try Self.checkETag(request.etag)
        let paths = request.updateMask?.paths ?? []
        if paths.isEmpty { throw ContactsError.invalid([Violation("update_mask", "must name at least one field", reason: "REQUIRED")]) }
        let updatable = ["type", "strength", "note"]
        guard paths.count <= updatable.count * 2 else {
            throw ContactsError.invalid([Violation("update_mask.paths", "at most \(updatable.count * 2) paths", reason: "TOO_MANY")])
        }
        let unknown = paths.enumerated().filter { !updatable.contains($0.element) }.map { i, path in
            Violation(
                "update_mask.paths[\(i)]", "\(ContactRules.excerpt(path)) is not an updatable field (type, strength, note)", reason: "UNKNOWN_FIELD")
        }
        if !unknown.isEmpty { throw ContactsError.invalid(unknown) }
        let kind = paths.contains("type") ? try Self.relationshipKind(relationship.type, field: "relationship.type") : nil
        let write = try Self.relationshipWrite(request, request.requestId, Methods.updateRelationship)
        return try write.response(
            try await domain.updateRelationship(
                id: id, kind: kind, strength: paths.contains("strength") ? Int(relationship.strength) : nil,
                note: paths.contains("note") ? relationship.note : nil, etag: request.etag, actor: try context.actor(), write: write.options))
    }

    /// The `DeleteRelationship` RPC (see `contacts.proto`).
    public func deleteRelationship(
        request: Switchboard_Contacts_V1_DeleteRelationshipRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_Relationship {
        let id = try Self.uuid(request.id, field: "id", what: "a relationship id")
        try Self.checkETag(request.etag)
        let write = try Self.relationshipWrite(request, request.requestId, Methods.deleteRelationship)
        return try write.response(try await domain.deleteRelationship(id: id, etag: request.etag, actor: try context.actor(), write: write.options))
    }

    /// The `ListRelationships` RPC (see `contacts.proto`).
    public func listRelationships(
        request: Switchboard_Contacts_V1_ListRelationshipsRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_ListRelationshipsResponse {
        let contact = try Self.uuid(request.contactId, field: "contact_id")
        let kinds = try Self.relationshipKinds(request.types)
        let (page, next) = try await domain.relationships(
            of: contact, kinds: kinds, pageSize: Int(request.page?.pageSize ?? 0), pageToken: request.page?.pageToken ?? "",
            actor: try context.actor())
        var response = Switchboard_Contacts_V1_ListRelationshipsResponse()
        response.relationships = page.map(ContactsMapping.proto)
        var pageResponse = Switchboard_Common_V1_PageResponse()
        pageResponse.nextPageToken = next
        response.page = pageResponse
        return response
    }

    /// The `GetRelatedContacts` RPC (see `contacts.proto`).
    public func getRelatedContacts(
        request: Switchboard_Contacts_V1_GetRelatedContactsRequest, context: ServerContext
    ) async throws -> Switchboard_Contacts_V1_GetRelatedContactsResponse {
        let start = try Self.uuid(request.contactId, field: "contact_id")
        let kinds = try Self.relationshipKinds(request.types)
        let (related, truncated) = try await domain.relatedContacts(
            of: start, maxHops: request.maxHops == 0 ? 1 : Int(request.maxHops), kinds: kinds, minStrength: Int(request.minStrength),
            maxResults: request.maxResults == 0 ? 100 : Int(request.maxResults), actor: try context.actor())
        var response = Switchboard_Contacts_V1_GetRelatedContactsResponse()
        response.related = related.map { found in
            var p = Switchboard_Contacts_V1_RelatedContact()
            p.contact = ContactsMapping.proto(found.contact)
            p.hops = Int32(found.path.count)
            p.path = found.path.map(ContactsMapping.proto)
            return p
        }
        response.truncated = truncated
        return response
    }
}
