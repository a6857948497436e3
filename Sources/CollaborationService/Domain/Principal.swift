import SwitchboardServiceKit

/// Who is calling, and what their roles let them do beyond an ordinary user: admins read every note of their tenant
/// and may edit or delete anyone's comment; managers (and admins) manage teams and notify the whole tenant.
public struct Principal: Sendable, Hashable {
    /// The tenant and user.
    public var actor: Actor
    /// Holds the admin role.
    public var isAdmin: Bool
    /// Holds the manager role or a higher one.
    public var isManager: Bool

    /// Creates a principal.
    public init(actor: Actor, isAdmin: Bool, isManager: Bool) {
        self.actor = actor
        self.isAdmin = isAdmin
        self.isManager = isManager
    }

    /// The user id.
    public var userID: String { actor.userID }
}
