import SwitchboardProtos

/// The JSON reader on arbitrary bytes: it must return a value or throw, never trap, and what it returns must write
/// out as text that reads back to the same text (the writer and the reader agree).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let value = try? JSON.parse(text) else { return 0 }
    let written = value.text
    guard let reread = try? JSON.parse(written) else { fatalError("the writer's output does not parse: \(written)") }
    precondition(reread.text == written, "text changed on a second round trip: \(written) vs \(reread.text)")
    return 0
}
