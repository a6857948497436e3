import FoundationEssentials
import SwitchboardPostgres  // UUID text only
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardServiceKit

/// ``CampaignAudienceSource`` over gRPC: organization groups from the organization service (`ListGroupMembers`, page by
/// page) and saved searches from the contacts service (`ExportContacts` of the saved search, ids only), each call
/// with the caller's own token, so the upstream applies the caller's tenant and rights.
///
/// A saved search is read through ExportContacts rather than SearchContacts: a relevance-sorted search ranks only its
/// first matches, while an export walks every match (in creation order), and an audience must not be cut short
/// silently.
public struct UpstreamAudienceSource: CampaignAudienceSource {
    /// Contacts asked for per ListGroupMembers page (the organization service caps it at its own maximum).
    static let groupPageSize: Int32 = 500

    let organization: Switchboard_Organization_V1_OrganizationService_Client?
    let contacts: Switchboard_Contacts_V1_ContactsService_Client?

    /// Creates the source.
    /// - Parameters:
    ///   - organization: a channel to the organization service; nil: group audiences are refused (not configured).
    ///   - contacts: a channel to the contacts service; nil: saved-search audiences are refused (not configured).
    public init(organization: (any ClientTransport)?, contacts: (any ClientTransport)?) {
        self.organization = organization.map { Switchboard_Organization_V1_OrganizationService_Client(client: RPCClient(transport: $0)) }
        self.contacts = contacts.map { Switchboard_Contacts_V1_ContactsService_Client(client: RPCClient(transport: $0)) }
    }

    /// The protocol requirement `contacts(of:limit:call:)` (documented on the protocol).
    public func contacts(of audience: CampaignAudience, limit: Int, call: ForwardedCall) async throws -> [UUID] {
        switch audience {
        case .contacts:
            return []
        case .group(let id, let includeSubgroups):
            guard let organization else {
                throw CommunicationError.audienceRefused(
                    field: audience.field, type: "NOT_CONFIGURED",
                    description: "group audiences need SWITCHBOARD_COMMUNICATION_ORGANIZATION_ADDRESS, which is not set")
            }
            return try await upstream(audience, service: "organization") {
                try await groupMembers(organization, group: id, includeSubgroups: includeSubgroups, limit: limit, call: call)
            }
        case .savedSearch(let id):
            guard let contacts else {
                throw CommunicationError.audienceRefused(
                    field: audience.field, type: "NOT_CONFIGURED",
                    description: "saved search audiences need SWITCHBOARD_COMMUNICATION_CONTACTS_ADDRESS, which is not set")
            }
            return try await upstream(audience, service: "contacts") {
                try await savedSearchMatches(contacts, search: id, limit: limit, call: call)
            }
        }
    }

    /// Runs `body`, turning the upstream's answer into this service's: a group or search the caller cannot see is a
    /// refused audience naming the field; an unreachable or failing upstream is UNAVAILABLE; the caller's own problems
    /// (token, rights, deadline) keep their code.
    private func upstream(_ audience: CampaignAudience, service: String, _ body: () async throws -> [UUID]) async throws -> [UUID] {
        do {
            return try await body()
        } catch let error as RPCError {
            switch error.code {
            case .notFound:
                throw CommunicationError.audienceRefused(
                    field: audience.field, type: "AUDIENCE_NOT_FOUND", description: "not found by the \(service) service in the caller's tenant")
            case .invalidArgument, .failedPrecondition, .outOfRange:
                // E.g. a saved search whose stored filter no longer passes the contacts service's checks: asking again
                // will not help, so it is not UNAVAILABLE.
                throw CommunicationError.audienceRefused(
                    field: audience.field, type: "AUDIENCE_UNUSABLE", description: "the \(service) service refused it: \(error.message)")
            case .unauthenticated, .permissionDenied, .deadlineExceeded, .cancelled:
                throw RPCError(code: error.code, message: "the \(service) service: \(error.message)")
            default:
                throw CommunicationError.upstreamUnavailable("the \(service) service could not give the audience (\(error.code))")
            }
        }
    }

    /// Every member of a group (and its subgroups), page by page, until more than `limit` were read.
    private func groupMembers(
        _ client: Switchboard_Organization_V1_OrganizationService_Client, group: UUID, includeSubgroups: Bool, limit: Int, call: ForwardedCall
    ) async throws -> [UUID] {
        var ids: [UUID] = []
        var request = Switchboard_Organization_V1_ListGroupMembersRequest()
        request.groupId = group.lowercaseText
        request.includeSubgroups = includeSubgroups
        var page = Switchboard_Common_V1_PageRequest()
        page.pageSize = Self.groupPageSize
        repeat {
            request.page = page
            let response = try await client.listGroupMembers(request, options: try call.options(doing: "the audience was read"))
            for member in response.members {
                guard let id = UUID(uuidString: member.contactId) else {
                    throw CommunicationError.upstreamUnavailable("the organization service listed a member that is not a contact id")
                }
                ids.append(id)
            }
            // Pages hold distinct contacts (contact id order), so the count is the audience's size so far.
            if ids.count > limit { return ids }
            page.pageToken = response.page?.nextPageToken ?? ""
        } while !page.pageToken.isEmpty
        return ids
    }

    /// Every live match of a saved search: its export as CSV with the `id` column only (a header row `id`, then one
    /// contact id per line), read until the stream ends or more than `limit` ids arrived (the call is then cancelled).
    private func savedSearchMatches(
        _ client: Switchboard_Contacts_V1_ContactsService_Client, search: UUID, limit: Int, call: ForwardedCall
    ) async throws -> [UUID] {
        var request = Switchboard_Contacts_V1_ExportContactsRequest()
        request.format = .csv
        request.fields = ["id"]
        var filter = Switchboard_Contacts_V1_SearchContactsRequest()
        filter.savedSearchId = search.lowercaseText
        request.filter = filter
        return try await client.exportContacts(request, options: try call.options(doing: "the audience was read")) { chunks in
            var reader = IDLineReader()
            for try await chunk in chunks {
                try reader.read(chunk.chunk)
                if reader.ids.count > limit { return reader.ids }
            }
            try reader.finish()
            return reader.ids
        }
    }
}

/// Reads a one-column CSV of contact ids (header `id`, CRLF or LF line ends) from chunks that may split lines.
struct IDLineReader {
    /// The ids read so far.
    private(set) var ids: [UUID] = []
    private var line: [UInt8] = []
    private var sawHeader = false

    /// The longest line accepted: an id is 36 bytes.
    static let maxLineBytes = 64

    /// Reads the next bytes.
    /// - Throws: ``CommunicationError/upstreamUnavailable(_:)`` when a line is not the header or an id.
    mutating func read(_ bytes: [UInt8]) throws {
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                try endLine()
            } else {
                line.append(byte)
                guard line.count <= Self.maxLineBytes else { throw Self.malformed }
            }
        }
    }

    /// Ends the input (a last line without a line end counts).
    mutating func finish() throws {
        if !line.isEmpty { try endLine() }
    }

    private mutating func endLine() throws {
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        defer { line.removeAll(keepingCapacity: true) }
        let text = String(decoding: line, as: UTF8.self)
        if !sawHeader {
            guard text == "id" else { throw Self.malformed }
            sawHeader = true
            return
        }
        guard let id = UUID(uuidString: text) else { throw Self.malformed }
        ids.append(id)
    }

    private static var malformed: CommunicationError {
        .upstreamUnavailable("the contacts service's export was not a list of contact ids")
    }
}
