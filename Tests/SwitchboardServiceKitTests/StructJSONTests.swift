import SwitchboardProtos
import SwitchboardServiceKit
import Testing

@Suite("Change payload JSON")
struct StructJSONTests {
    @Test("google.protobuf.Struct round-trips through JSON text")
    func structRoundTrip() throws {
        var inner = Google_Protobuf_Struct()
        var flag = Google_Protobuf_Value()
        flag.kind = .boolValue(true)
        inner.fields["flag"] = flag
        var list = Google_Protobuf_ListValue()
        var n = Google_Protobuf_Value()
        n.kind = .numberValue(42)
        var s = Google_Protobuf_Value()
        s.kind = .stringValue("x\"y")
        list.values = [n, s]
        var outer = Google_Protobuf_Struct()
        var nested = Google_Protobuf_Value()
        nested.kind = .structValue(inner)
        var listValue = Google_Protobuf_Value()
        listValue.kind = .listValue(list)
        var null = Google_Protobuf_Value()
        null.kind = .nullValue(.nullValue)
        outer.fields = ["nested": nested, "list": listValue, "none": null]
        let text = StructJSON.encode(outer)
        #expect(text == #"{"list":[42,"x\"y"],"nested":{"flag":true},"none":null}"#)
        #expect(try StructJSON.decode(text) == outer)
    }
}
