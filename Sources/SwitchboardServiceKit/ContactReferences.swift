import FoundationEssentials
import SwitchboardPostgres
import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime

/// A contact a write names, and the request field that names it (`interaction.contact_ids[2]`).
public struct ContactReference: Sendable, Hashable {
    /// The request field, as an error names it.
    public var field: String
    /// The contact's id.
    public var id: UUID

    /// Creates a reference.
    /// - Parameters:
    ///   - field: the request field naming the contact.
    ///   - id: the contact's id.
    public init(field: String, id: UUID) {
        self.field = field
        self.id = id
    }
}

/// Contacts a write named that are not live contacts of the caller's tenant (never created, deleted, merged away or
/// erased): NOT_FOUND naming the fields, with a `google.rpc.ResourceInfo` for each contact (as the organization
/// service answers for a membership's unknown contact), so a client need not parse the message.
public struct ContactsNotFound: Error, Sendable, Hashable, RPCErrorConvertible {
    /// The references that failed, in request order.
    public var references: [ContactReference]

    /// Creates the error.
    /// - Parameter references: the references to contacts that are not live.
    public init(_ references: [ContactReference]) { self.references = references }

    /// NOT_FOUND with the first ``InvalidRequest/maxReported`` references.
    public var rpcError: RPCError {
        let shown = references.prefix(InvalidRequest.maxReported)
        let list = shown.map { "\($0.field): contact \($0.id.lowercaseText)" }.joined(separator: "; ")
        let more = references.count > shown.count ? " (and \(references.count - shown.count) more)" : ""
        let details = shown.map { reference in
            var info = Google_Rpc_ResourceInfo()
            info.resourceType = "switchboard.contacts.v1.Contact"
            info.resourceName = reference.id.lowercaseText
            info.description = "\(reference.field): not a live contact of the caller's tenant (unknown, deleted, merged away or erased)"
            return Google_Protobuf_Any(packing: info)
        }
        return RPCError(
            code: .notFound,
            message: "\(list)\(more): not found by the contacts service (unknown, deleted, merged away or erased); nothing was written"
        ).withDetails(details)
    }
}

/// Checks, before a write, that the contacts it names are live contacts of the caller's tenant, by asking the contacts
/// service (`BatchGetContacts`, at most 100 ids a call) with the caller's own token: no service keeps a copy of another's
/// contacts for this, so a contact created a moment ago is found and one deleted or erased before the check is not. The
/// check and the write are not one transaction: a contact deleted or erased between the answer and the write's commit
/// (milliseconds) is still written, as it would have been had the write come first. A write whose first response was
/// stored under its request id is answered with that response even when a contact it named has gone since (a retry
/// must not fail where the first try succeeded).
///
/// The contacts service's failures are this service's UNAVAILABLE (nothing written, a retry may succeed): its token
/// and rights were checked here already, so an UNAUTHENTICATED or PERMISSION_DENIED there means the services disagree
/// (keys, clocks, roles), not that the caller should sign in again. Only the caller's own deadline passing, or the
/// caller cancelling, keeps its code.
///
/// Without a contacts address nothing is checked: a deployment without the contacts service takes contact ids as
/// given.
public struct ContactReferences: Sendable {
    /// The contacts service; nil: references are not checked.
    let contacts: Switchboard_Contacts_V1_ContactsService_Client?
    /// Where a write's first response is found.
    let idempotency: Idempotency
    let pool: PostgresPool
    /// Ids per `BatchGetContacts` call. The call answers whole contacts, each up to the contacts service's size limit
    /// (256 KiB by default), and a response may be at most 4 MiB: 15 of the largest fit.
    static let idsPerCall = 15
    /// Distinct contacts one write may name; bounds the upstream calls a request costs.
    public static let maxContacts = 1_000

    /// Creates the check.
    /// - Parameters:
    ///   - contacts: a channel to the contacts service; nil checks nothing.
    ///   - idempotency: the service's stored responses.
    ///   - pool: the service's database.
    public init(contacts: (any ClientTransport)?, idempotency: Idempotency, pool: PostgresPool) {
        self.contacts = contacts.map { Switchboard_Contacts_V1_ContactsService_Client(client: RPCClient(transport: $0)) }
        self.idempotency = idempotency
        self.pool = pool
    }

    /// Whether references are checked at all.
    public var isEnabled: Bool { contacts != nil }

    /// Checks `references` for a write.
    /// - Returns: the write's stored first response, when the request was made before under its request id and the check
    ///   would refuse it (a contact is missing) or cannot answer (the handler returns it as a replay: a retry does not
    ///   fail where the first try succeeded); nil when every contact is live (the write goes on).
    /// - Throws: ``ContactsNotFound``; UNAVAILABLE when the contacts service cannot answer or refuses the call, its
    ///   token and rights refusals included (nothing was written, a retry may succeed); DEADLINE_EXCEEDED when the
    ///   caller's own deadline passed; the caller's cancellation.
    /// - Parameters:
    ///   - references: the contacts the write names, with their fields.
    ///   - call: the caller's headers and deadline.
    ///   - callerDeadline: whether the deadline is the caller's own (not a budget this service chose).
    ///   - write: the write's idempotency options.
    ///   - actor: the caller.
    public func check<V>(
        _ references: [ContactReference], call: ForwardedCall, callerDeadline: Bool, write: WriteOptions<V>, actor: Actor
    ) async throws -> [UInt8]? {
        guard let contacts, !references.isEmpty else { return nil }
        var ids: [UUID] = []
        var seen = Set<UUID>()
        for reference in references where seen.insert(reference.id).inserted { ids.append(reference.id) }
        guard ids.count <= Self.maxContacts else {
            throw InvalidRequest(references[0].field, "a write may name at most \(Self.maxContacts) distinct contacts", reason: "TOO_MANY")
        }
        var missing = Set<UUID>()
        var start = 0
        while start < ids.count {
            let chunk = ids[start..<min(start + Self.idsPerCall, ids.count)]
            start += chunk.count
            var request = Switchboard_Contacts_V1_BatchGetContactsRequest()
            request.ids = chunk.map(\.lowercaseText)
            let response: Switchboard_Contacts_V1_BatchGetContactsResponse
            do {
                response = try await contacts.batchGetContacts(request, options: try call.options(doing: "the contacts named were checked"))
            } catch let error as RPCError {
                if error.code == .deadlineExceeded, callerDeadline, .now >= call.deadline {
                    throw RPCError(code: .deadlineExceeded, message: "the deadline passed while the contacts named were checked; nothing was written")
                }
                if error.code == .cancelled, Task.isCancelled { throw error }
                // A retry of a write made before is answered without the contacts service.
                if let replay = try await idempotency.replay(write, actor: actor, pool: pool) { return replay }
                throw RPCError(
                    code: .unavailable,
                    message: "the contacts service could not check the contacts named (\(error.code): \(error.message)); nothing was written",
                    cause: error)
            }
            for text in response.missingIds {
                guard let id = UUID(uuidString: text), chunk.contains(id) else {
                    throw RPCError(code: .unavailable, message: "the contacts service named a missing id that is not one asked; nothing was written")
                }
                missing.insert(id)
            }
        }
        guard !missing.isEmpty else { return nil }
        if let replay = try await idempotency.replay(write, actor: actor, pool: pool) { return replay }
        throw ContactsNotFound(references.filter { missing.contains($0.id) })
    }
}

extension ContactReferences {
    /// How long the check may take when the caller set no deadline (running out of it is UNAVAILABLE, not the caller's
    /// DEADLINE_EXCEEDED).
    public static let defaultBudget = Duration.seconds(10)

    /// Checks `references` for a handler's write, with the caller's token and deadline.
    /// - Returns: the write's first response, decoded, when it is a retry the check would refuse or cannot answer (a
    ///   contact gone since, the contacts service unreachable); nil: go on.
    /// - Parameters:
    ///   - references: the contacts the write names, with their fields.
    ///   - write: the handler's idempotent write.
    ///   - context: the call (its token, trace and deadline are forwarded).
    /// - Throws: as ``check(_:call:callerDeadline:write:actor:)``.
    public func check<Value, Response>(
        _ references: [ContactReference], for write: IdempotentWrite<Value, Response>, context: ServerContext
    ) async throws -> Response? {
        guard isEnabled, !references.isEmpty else { return nil }
        let replay = try await check(
            references, call: context.forwardedCall(budget: Self.defaultBudget), callerDeadline: context.deadline != nil, write: write.options,
            actor: try context.actor())
        return try replay.map { try write.response(.replayed($0)) }
    }
}
