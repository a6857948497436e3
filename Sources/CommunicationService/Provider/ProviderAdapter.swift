import Crypto
import FoundationEssentials
import NIOCore
import NIOHTTP1
import SwitchboardProtos
import SwitchboardRuntime

/// The provider adapter: posts a send's payload to the provider's webhook, signed, and classifies the answer.
///
/// Exactly one provider call per send rests on three things here and one in the provider: the `Idempotency-Key`
/// header is the send's id (the same on every attempt, in every process); the body is the payload stored with the
/// send, so its bytes, and so its signature, are identical on every attempt; the attempt number travels in a header
/// outside the signature. The provider deduplicates by the key.
public struct ProviderAdapter: Sendable {
    /// What to do after a call.
    public enum Verdict: Sendable, Hashable {
        /// Accepted, with the provider's message id (may be empty).
        case accepted(String)
        /// Refused for good: do not retry.
        case rejected(String)
        /// Try again, not before `retryAfter` seconds if the provider said so.
        case retryable(String, retryAfter: Double?)
    }

    let client: WebhookClient
    let secret: SymmetricKey
    let timeout: TimeAmount
    /// The longest Retry-After honoured (seconds): a provider cannot park a send for days.
    static let maxRetryAfter = 3600.0
    /// Longest provider message id kept (bytes).
    static let maxMessageIDBytes = 256

    /// Creates the adapter.
    /// - Parameters:
    ///   - client: the webhook client.
    ///   - secret: the shared secret the signature is made with.
    ///   - timeout: the bound of one call.
    public init(client: WebhookClient, secret: [UInt8], timeout: TimeAmount) {
        self.client = client
        self.secret = SymmetricKey(data: secret)
        self.timeout = timeout
    }

    /// `sha256=<hex>` of HMAC-SHA256 over exactly `body`.
    public static func signature(of body: [UInt8], secret: [UInt8]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: secret))
        return "sha256=" + hex(Array(mac))
    }

    /// Lower-case hexadecimal of bytes.
    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Posts one attempt of a send.
    public func deliver(id: UUID, payload: [UInt8], attempt: Int) async -> Verdict {
        let mac = HMAC<SHA256>.authenticationCode(for: payload, using: secret)
        let headers = [
            ("Idempotency-Key", id.uuidString.lowercased()),
            ("X-Switchboard-Signature", "sha256=" + Self.hex(Array(mac))),  // = signature(of: payload, secret:)
            ("X-Switchboard-Attempt", String(attempt)),
        ]
        do {
            return Self.verdict(try await client.post(body: payload, headers: headers, timeout: timeout))
        } catch {
            return .retryable("\(error)", retryAfter: nil)
        }
    }

    /// The verdict on a response: 2xx accepted; 408, 425, 429 and 5xx retryable (with Retry-After in seconds, bounded);
    /// any other status rejected.
    public static func verdict(_ response: WebhookResponse) -> Verdict {
        switch response.status {
        case 200..<300:
            return .accepted(messageID(response))
        case 408, 425, 429, 500..<600:
            var retryAfter: Double?
            if let value = response.headers.first(name: "Retry-After"), let seconds = Double(InteractionRules.trimmed(value)),
                seconds.isFinite, seconds >= 0
            {
                retryAfter = min(seconds, maxRetryAfter)
            }
            return .retryable("the provider answered \(response.status)", retryAfter: retryAfter)
        case 401, 403, 404:
            // Our credentials or endpoint, not the message: a wrong secret or path must not fail every send for good.
            // Retried with backoff (up to the attempt limit) while an operator fixes the configuration.
            return .retryable(
                "the provider refused our credentials or endpoint (HTTP \(response.status)); check the provider URL and secret",
                retryAfter: nil)
        default:
            return .rejected("the provider refused the message (HTTP \(response.status))")
        }
    }

    /// The provider's message id: `{"id": "…"}` in the body, else an `X-Provider-Message-Id` header; bounded, and
    /// without NUL bytes (it is stored as text).
    static func messageID(_ response: WebhookResponse) -> String {
        // The provider's own response shape, read with the project's one JSON type.
        var id = response.headers.first(name: "X-Provider-Message-Id") ?? ""
        if case .object(let fields)? = try? JSON.parse(String(decoding: response.body, as: UTF8.self)), case .string(let value)? = fields["id"] {
            id = value
        }
        id.removeAll { $0 == "\u{0}" }
        return id.utf8.count <= maxMessageIDBytes ? id : ""
    }
}
