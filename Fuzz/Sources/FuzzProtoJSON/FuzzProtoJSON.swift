import SwitchboardProtos

/// Proto3 JSON decoding on arbitrary bytes, into the two messages that hold every field kind: it must return a
/// message or throw, never trap; a message that decodes either writes out or refuses with an error, and what it
/// writes must decode again (the encoder and decoder agree).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProtoJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    check(Switchboard_Testing_V1_Everything.self, text)
    check(Switchboard_Testing_V1_MoreShapes.self, text)
    return 0
}

private func check<M: ProtoJSONMessage>(_ type: M.Type, _ text: String) {
    var lenient = ProtoJSONDecodingOptions()
    lenient.ignoreUnknownFields = true
    for options in [ProtoJSONDecodingOptions(), lenient] {
        guard let message = try? M(protoJSONText: text, options: options),
            let written = try? message.protoJSONText()
        else { continue }
        do {
            _ = try M(protoJSONText: written)
        } catch {
            fatalError("\(M.protoMessageName): the encoder's output does not decode (\(error)): \(written)")
        }
    }
}
