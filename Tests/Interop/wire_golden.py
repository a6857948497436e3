"""Golden bytes for the wire-compatibility tests, made and checked by Python's protobuf (the reference encoder).

    wire_golden.py --write FILE   writes the expected Everything message, encoded by Python
    wire_golden.py --check FILE   decodes FILE (written by Switchboard's Swift/protoc-c encoder) and exits 0 only if
                                  it equals the expected message field for field
The expected values here mirror `WireCompatibilityTests.expected` in Swift; change both together.
"""
import os
import sys

sys.path.insert(0, os.environ.get("SWITCHBOARD_INTEROP_STUBS", ""))

from google.protobuf import struct_pb2  # noqa: E402
from sbproto.switchboard.testing.v1 import everything_pb2 as pb  # noqa: E402


def expected():
    m = pb.Everything()
    m.f_double = 3.141592653589793
    m.f_float = -2.5
    m.f_int32 = -123456
    m.f_int64 = -9007199254740993
    m.f_uint32 = 4000000000
    m.f_uint64 = 18446744073709551615
    m.f_sint32 = -2147483648
    m.f_sint64 = -9223372036854775808
    m.f_fixed32 = 4294967295
    m.f_fixed64 = 1234567890123456789
    m.f_sfixed32 = -42
    m.f_sfixed64 = -4242424242424242
    m.f_bool = True
    m.f_string = "héllo, wörld ☺ 😈"
    m.f_bytes = bytes([0, 1, 2, 255, 254])
    m.f_enum = pb.COLOR_BLUE
    m.f_nested.name = "nested"
    m.f_nested.value = 7
    m.r_double.extend([1.5, -0.25])
    m.r_int32.extend([1, -1, 2147483647])
    m.r_int64.extend([-5, 5])
    m.r_uint64.extend([0, 18446744073709551615])
    m.r_sint32.extend([-3, 3])
    m.r_fixed32.extend([9, 10])
    m.r_bool.extend([True, False, True])
    m.r_string.extend(["a", "", "ç"])
    m.r_bytes.extend([b"", b"\x00\xff"])
    m.r_enum.extend([pb.COLOR_RED, pb.COLOR_GREEN])
    m.r_nested.add(name="first", value=1)
    m.r_nested.add(name="second", value=2)
    m.choice_nested.name = "chosen"
    m.choice_nested.value = 42
    m.m_string_string["k1"] = "v1"
    m.m_string_string["k2"] = ""
    m.m_int32_nested[5].name = "five"
    m.m_int32_nested[-1].value = -1
    m.m_string_enum["g"] = pb.COLOR_GREEN
    m.t_timestamp.seconds = 1700000000
    m.t_timestamp.nanos = 123000000
    m.t_duration.seconds = 90
    m.t_duration.nanos = 500000000
    m.t_field_mask.paths.extend(["name.given", "emails"])
    m.t_struct.update({"s": "x", "n": 1.5, "b": True, "l": [1.0, "two"], "o": {"inner": None}})
    m.t_value.string_value = "value"
    m.t_int32_wrapper.value = 0
    m.t_string_wrapper.value = "wrapped"
    m.t_bool_wrapper.value = False
    m.t_empty.SetInParent()
    return m


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "--write":
        with open(path, "wb") as f:
            f.write(expected().SerializeToString(deterministic=True))
        return 0
    with open(path, "rb") as f:
        got = pb.Everything.FromString(f.read())
    want = expected()
    if got != want:
        for field, value in want.ListFields():
            if getattr(got, field.name) != value:
                print(f"field {field.name} differs: {getattr(got, field.name)!r} != {value!r}", file=sys.stderr)
        for field, _ in got.ListFields():
            if not want.HasField(field.name) if field.label != field.LABEL_REPEATED else False:
                print(f"unexpected field {field.name}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
