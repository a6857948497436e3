import SwitchboardProtos
import SwitchboardRPC
import SwitchboardRuntime

/// Who is calling, within which tenant: what a domain needs of the verified caller.
public struct Actor: Sendable, Hashable {
    /// The tenant every query of the call runs in.
    public var tenantID: String
    /// The user, recorded as the author of changes.
    public var userID: String

    /// Creates an actor.
    public init(tenantID: String, userID: String) {
        self.tenantID = tenantID
        self.userID = userID
    }
}

extension ServerContext {
    /// The verified caller as a domain actor.
    /// - Throws: `UNAUTHENTICATED` when the call carries no verified identity (a server wiring error).
    public func actor() throws -> Actor {
        let caller = try caller()
        return Actor(tenantID: caller.tenantID, userID: caller.userID)
    }
}

/// One invalid field of a request: the field's path as the client named it (`contact.emails[2].address`), what is
/// wrong, and a machine-readable reason (`REQUIRED`, `TOO_LONG`, `INVALID_FORMAT`, …).
public struct Violation: Sendable, Hashable {
    /// The field's path.
    public var field: String
    /// What is wrong, for people.
    public var description: String
    /// What is wrong, for programs.
    public var reason: String

    /// Creates a violation.
    public init(_ field: String, _ description: String, reason: String = "INVALID") {
        self.field = field
        self.description = description
        self.reason = reason
    }
}

/// A request that breaks the rules: INVALID_ARGUMENT listing each field (`google.rpc.BadRequest` in the details).
public struct InvalidRequest: Error, Sendable, Hashable, RPCErrorConvertible {
    /// The violations, in the order found.
    public var violations: [Violation]
    /// Most violations one error lists: each is repeated in `grpc-message` and the details trailer, and clients cap
    /// trailers at a few KiB.
    public static let maxReported = 10

    /// Creates the error.
    public init(_ violations: [Violation]) { self.violations = violations }

    /// Creates the error for one field.
    public init(_ field: String, _ description: String, reason: String = "INVALID") {
        self.violations = [Violation(field, description, reason: reason)]
    }

    /// INVALID_ARGUMENT with the first ``maxReported`` violations.
    public var rpcError: RPCError {
        .invalidArgument(
            violations: violations.prefix(Self.maxReported).map {
                FieldViolation(field: $0.field, description: $0.description, reason: $0.reason)
            })
    }
}
