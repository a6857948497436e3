import SwitchboardProtos

extension Switchboard_Common_V1_ChangeEvent {
    /// The event's resource as the message its `resource_type` names, decoded from its proto3 JSON: what every feed
    /// consumer reads. Fields a newer publisher added are ignored, so a consumer keeps working across the publisher's
    /// additive contract changes.
    /// - Parameter type: the message type.
    /// - Returns: the message (the default message when the event carries no resource).
    /// - Throws: ``ProtoJSONError`` when the payload is not that message's JSON.
    public func resource<M: ProtoJSONMessage>(as type: M.Type) throws -> M {
        var options = ProtoJSONDecodingOptions()
        options.ignoreUnknownFields = true
        return try M(protoJSONText: (resource ?? Google_Protobuf_Struct()).protoJSONText(), options: options)
    }
}
