import FoundationEssentials

/// How far a sent message got (the values of `switchboard.communication.v1.DeliveryState`). The raw values are ranks:
/// a send's state only moves to a higher one, so an event that arrives late never moves it back.
public enum DeliveryState: Int, Sendable, Hashable, CaseIterable {
    case none = 0
    case delivered = 10, callRinging = 11
    case opened = 20, callAnswered = 21
    case clicked = 30
    case replied = 40, callCompleted = 41
    case bounced = 50, callFailed = 51

    /// The state an event type names (the provider's vocabulary).
    public init?(eventType: String) {
        switch eventType {
        case "delivered": self = .delivered
        case "opened": self = .opened
        case "clicked": self = .clicked
        case "replied": self = .replied
        case "bounced": self = .bounced
        case "call_ringing": self = .callRinging
        case "call_answered": self = .callAnswered
        case "call_completed": self = .callCompleted
        case "call_failed": self = .callFailed
        default: return nil
        }
    }
}

/// One event from the provider, as its webhook posts it.
public struct ProviderEvent: Sendable, Hashable {
    /// The provider's id of the event: redeliveries carry the same one.
    public var eventID: String
    /// The send (the idempotency key the provider was given).
    public var sendID: UUID
    /// What happened.
    public var state: DeliveryState

    /// Longest event id (bytes).
    public static let maxEventIDBytes = 128
    /// Largest event body (bytes).
    public static let maxBodyBytes = 16 * 1024

    /// Creates an event.
    public init(eventID: String, sendID: UUID, state: DeliveryState) {
        self.eventID = eventID
        self.sendID = sendID
        self.state = state
    }
}

/// Why an event was refused.
public struct EventRefusal: Error, Sendable, Hashable {
    /// What was wrong.
    public var reason: String
    /// Creates a refusal.
    public init(_ reason: String) { self.reason = reason }
}
