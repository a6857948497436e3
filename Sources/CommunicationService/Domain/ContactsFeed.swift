import Crypto
import FoundationEssentials

/// One event of the contacts feed, as the communication service applies it.
public struct ContactEvent: Sendable, Hashable {
    /// What happened.
    public enum Kind: Sendable, Hashable {
        /// Created, updated or undeleted: the contact's addresses now.
        case addresses(emails: [String], phones: [String])
        /// Deleted: pending sends are cancelled, the directory forgets the addresses.
        case deleted
        /// Merged into `winner`: interactions and pending sends move to it; consent merges, the most restrictive wins.
        case merged(winner: UUID)
        /// A merge into `formerWinner` was reversed: what the merge moved comes back, as its log recorded it. `emails`
        /// and `phones` are the restored contact's addresses when the event carried the contact (nil: it did not, and
        /// the directory waits for the contact's next change).
        case unmerged(formerWinner: UUID, emails: [String]?, phones: [String]?)
        /// Erased (by the erasure request `request`, which the receipt names): the person's rows are redacted and their
        /// addresses suppressed (by HMAC only).
        case erased(request: String)
    }

    /// The tenant.
    public var tenantID: String
    /// The contact.
    public var contactID: UUID
    /// What happened.
    public var kind: Kind
    /// The contact's fields for templates (placeholder name → value, ``TemplateRules/contactFields``) when the event
    /// carried the live contact; nil otherwise.
    public var fields: [String: String]?

    /// Creates an event.
    public init(tenantID: String, contactID: UUID, kind: Kind, fields: [String: String]? = nil) {
        self.tenantID = tenantID
        self.contactID = contactID
        self.kind = kind
        self.fields = fields
    }
}

/// What an erasure removed, published as the service's erasure receipt (no personal data).
public struct ErasureReceiptData: Sendable, Hashable {
    /// The person.
    public var contactID: UUID
    /// The erasure request, from the contacts feed's ERASED event.
    public var erasureRequestID: String
    /// Interactions the person left.
    public var interactionsRedacted: Int
    /// Sends whose address and text were removed (or will be when they settle).
    public var sendsRedacted: Int
    /// Addresses newly on the suppression list.
    public var addressesSuppressed: Int
    /// Stored change events reduced to their resource id.
    public var changesRedacted: Int
    /// Stored idempotent responses deleted.
    public var storedResponsesRemoved: Int
    /// Consent ledger entries of the person, deleted.
    public var consentEntriesDeleted: Int = 0
    /// The person's stored preferences, deleted (0 or 1).
    public var preferencesDeleted: Int = 0
}

/// Address normalisation and the suppression hash, pure.
public enum AddressRules {
    /// The address kind a channel sends to.
    public static func kind(of channel: Channel) -> String { channel == .email ? "email" : "phone" }

    /// An address in the form the directory and the suppression list compare: e-mail trimmed and lower-cased; a phone
    /// number reduced to `+` and digits.
    public static func normalized(_ address: String, kind: String) -> String {
        let trimmed = InteractionRules.trimmed(address)
        if kind == "email" { return trimmed.lowercased() }
        return String(trimmed.unicodeScalars.filter { $0 == "+" || ("0"..."9").contains($0) }.map(Character.init))
    }

    /// The suppression list's key for an address: hex HMAC-SHA256 with the service's secret over `kind:normalised`, so
    /// the list holds no address, and nobody without the secret can test an address against it.
    public static func suppressionHash(_ address: String, kind: String, secret: [UInt8]) -> String {
        let message = Array("\(kind):\(normalized(address, kind: kind))".utf8)
        return ProviderAdapter.hex(Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: secret))))
    }
}
