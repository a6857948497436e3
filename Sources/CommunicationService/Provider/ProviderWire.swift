import FoundationEssentials
import SwitchboardProtos

/// The provider's two wire contracts, as the proto3 JSON of messages in `Protos/` (`ProviderMessage` posted to the
/// provider, `ProviderDeliveryEvent` posted back), so the shape a provider integrates against is written down in the
/// contract and made by the generated code, not by a Swift encoder.
enum ProviderWire {
    /// The bytes posted to the provider for a send.
    static func payload(id: UUID, channel: Channel, to: String, subject: String, body: String, html: Bool = false) throws -> [UInt8] {
        var message = Switchboard_Communication_V1_ProviderMessage()
        message.idempotencyKey = id.uuidString.lowercased()
        message.channel = .init(protoValue: Int32(channel.rawValue))
        message.to = to
        // Only e-mail has a subject (an SMS template saved before subjects were refused for it may still hold one).
        message.subject = channel == .email ? subject : ""
        message.body = body
        if html { message.bodyFormat = .html }
        return Array(try message.protoJSONText().utf8)
    }

    /// A delivery event from its body: bounded, decoded (unknown fields ignored), checked.
    /// - Returns: the event, or why it was refused.
    static func event(_ body: [UInt8]) -> Result<ProviderEvent, EventRefusal> {
        guard body.count <= ProviderEvent.maxBodyBytes else {
            return .failure(EventRefusal("the event is larger than \(ProviderEvent.maxBodyBytes) bytes"))
        }
        var options = ProtoJSONDecodingOptions()
        options.ignoreUnknownFields = true
        guard
            let parsed = try? Switchboard_Communication_V1_ProviderDeliveryEvent(
                protoJSONText: String(decoding: body, as: UTF8.self), options: options)
        else {
            return .failure(EventRefusal("the body is not an event: event_id, idempotency_key and type are required"))
        }
        guard !parsed.eventId.isEmpty, parsed.eventId.utf8.count <= ProviderEvent.maxEventIDBytes, !parsed.eventId.utf8.contains(0) else {
            return .failure(EventRefusal("event_id must be 1-\(ProviderEvent.maxEventIDBytes) bytes"))
        }
        guard let send = UUID(uuidString: parsed.idempotencyKey) else { return .failure(EventRefusal("idempotency_key is not a send id")) }
        guard let state = DeliveryState(eventType: parsed.type), state != .none else {
            return .failure(EventRefusal("type must be delivered, opened, clicked, replied, bounced or call_ringing/answered/completed/failed"))
        }
        return .success(ProviderEvent(eventID: parsed.eventId, sendID: send, state: state))
    }
}
