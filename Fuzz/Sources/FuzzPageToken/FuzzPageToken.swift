import SwitchboardServiceKit

/// The kit's page-token decoder on arbitrary text (a `page_token` is any string a client sends): it returns a token
/// or nil, never traps, and a token it accepts encodes to text that decodes to the same token.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPageToken(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let token = PageToken.decode(text) else { return 0 }
    precondition(PageToken.decode(token.encoded) == token, "token does not survive a round trip: \(token)")
    return 0
}
