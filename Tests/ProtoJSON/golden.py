"""Golden cases for the proto3 JSON tests, made by Python's protobuf `json_format` (the reference mapping).

    golden.py --write FILE   writes every case to FILE (committed as Tests/ProtoJSON/goldens.json)

Three kinds of case, each naming a message by its full proto name:
  encode  a message (built here from a dict) as binary hex, and the JSON `MessageToDict` makes of it: Swift decodes
          the binary, writes JSON, and must produce the same JSON value.
  decode  JSON text in its many accepted spellings, and the binary `Parse` makes of it: Swift parses the text and
          must produce the same message.
  reject  JSON text that `Parse` refuses; Swift must refuse it too.
Python must agree with each case as written (the script fails otherwise), so a case is a checked fact about Python.

Needs the stubs from Tests/Interop/gen_stubs.sh on SWITCHBOARD_INTEROP_STUBS. Timestamps in message fields carry
at most microseconds: Swift holds those fields as `Date`.
"""
import json
import os
import sys

sys.path.insert(0, os.environ.get("SWITCHBOARD_INTEROP_STUBS", ""))

from google.protobuf import json_format, symbol_database  # noqa: E402
from google.protobuf import any_pb2, duration_pb2, empty_pb2, field_mask_pb2, struct_pb2, timestamp_pb2  # noqa: E402,F401
from google.protobuf import wrappers_pb2  # noqa: E402,F401
from google.protobuf import message_factory  # noqa: E402
from sbproto.switchboard.testing.v1 import everything_pb2  # noqa: E402,F401
from sbproto.switchboard.contacts.v1 import contacts_pb2  # noqa: E402,F401
from sbproto.switchboard.common.v1 import change_pb2, types_pb2  # noqa: E402,F401
from sbproto.google.rpc import error_details_pb2, status_pb2  # noqa: E402,F401
from sbproto.grpc.testing import messages_pb2  # noqa: E402,F401
from sbproto.grpc.health.v1 import health_pb2  # noqa: E402,F401
from sbproto.grpc.reflection.v1 import reflection_pb2  # noqa: E402,F401

EV = "switchboard.testing.v1.Everything"
MS = "switchboard.testing.v1.MoreShapes"


def new(name):
    pool = symbol_database.Default().pool
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))()


def deep_list(depth):
    return "[" * depth + "]" * depth


EVERYTHING_FULL = {
    "fDouble": 3.141592653589793, "fFloat": -2.5, "fInt32": -123456, "fInt64": "-9007199254740993",
    "fUint32": 4000000000, "fUint64": "18446744073709551615", "fSint32": -2147483648,
    "fSint64": "-9223372036854775808", "fFixed32": 4294967295, "fFixed64": "1234567890123456789", "fSfixed32": -42,
    "fSfixed64": "-4242424242424242", "fBool": True, "fString": "héllo, wörld ☺ 😈 \"q\" \\ \n\t\u0001",
    "fBytes": "AAEC//4=", "fEnum": "COLOR_BLUE", "fNested": {"name": "nested", "value": 7},
    "rDouble": [1.5, -0.25, 1e300, 5e-324], "rInt32": [1, -1, 2147483647], "rInt64": ["-5", "5"],
    "rUint64": ["0", "18446744073709551615"], "rSint32": [-3, 3], "rFixed32": [9, 10], "rBool": [True, False],
    "rString": ["a", "", "ç"], "rBytes": ["", "AP8="], "rEnum": ["COLOR_RED", "COLOR_GREEN", 7],
    "rNested": [{"name": "first", "value": 1}, {}], "choiceNested": {"name": "chosen", "value": 42},
    "mStringString": {"k1": "v1", "k2": ""}, "mInt32Nested": {"5": {"name": "five"}, "-1": {"value": -1}},
    "mStringEnum": {"g": "COLOR_GREEN", "u": 9},
    "tTimestamp": "2023-11-14T22:13:20.123Z", "tDuration": "90.500s", "tFieldMask": "name.given,emails,addressLines",
    "tStruct": {"s": "x", "n": 1.5, "b": True, "l": [1.0, "two", None, {"deep": [[]]}], "o": {"inner": None}},
    "tValue": "value", "tInt32Wrapper": 0, "tStringWrapper": "wrapped", "tBoolWrapper": False, "tEmpty": {},
}

ENCODE = [
    ("everything, every field set", EV, EVERYTHING_FULL),
    ("everything, empty", EV, {}),
    ("oneof member at its default is still written", EV, {"choiceString": ""}),
    ("oneof int64 member", EV, {"choiceInt64": "-1"}),
    ("special floats", EV, {"fDouble": "NaN", "fFloat": "-Infinity", "rDouble": ["Infinity", "-Infinity", "NaN", -0.0],
                            "fInt32": 2147483647}),
    ("float shortest forms", MS, {"rFloat": [0.1, 3e38, 1e-45, 16777216.0, -1.5, 0.9, 123456.79], "wFloat": 0.3}),
    ("value null, struct empty, list empty", EV, {"tValue": None, "tStruct": {}}),
    ("value number, bool, list, struct", MS, {"rValue": [1, True, [], {"a": None}, "s", None, -2.5e-8]}),
    ("timestamps: no fraction, millis, micros, bounds", MS, {"rTimestamp": [
        "1970-01-01T00:00:00Z", "2024-02-29T23:59:59.001Z", "2024-02-29T23:59:59.000001Z",
        "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.500Z"]}),
    ("durations: signs, fractions, bounds", MS, {"rDuration": [
        "0s", "-1.500s", "-0.000001s", "0.000000001s", "315576000000s", "-315576000000.999999999s", "1.123456789s"]}),
    ("wrappers at zero are written", MS, {"wDouble": 0, "wFloat": 0, "wInt64": "0", "wUint64": "0", "wUint32": 0,
                                          "wBytes": ""}),
    ("wrappers with values", MS, {"wDouble": -1.25, "wInt64": "-9223372036854775808", "wUint64": "18446744073709551615",
                                  "wUint32": 4294967295, "wBytes": "/+8="}),
    ("maps with bool, int64, uint32, uint64 keys", MS, {
        "mBoolString": {"true": "yes", "false": ""}, "mInt64Int64": {"-9223372036854775808": "1", "0": "0"},
        "mUint32Bytes": {"4294967295": "AQ==", "0": ""}, "mUint64Enum": {"18446744073709551615": "COLOR_RED"},
        "mStringValue": {"n": None, "l": [1, 2]}}),
    ("repeated 64-bit and fixed kinds", MS, {
        "rSint64": ["-9223372036854775808", "9223372036854775807"], "rFixed64": ["18446744073709551615"],
        "rSfixed32": [-2147483648], "rSfixed64": ["-1"], "rUint32": [0, 4294967295]}),
    ("oneof bytes", MS, {"pickBytes": ""}),
    ("oneof enum", MS, {"pickEnum": "COLOR_UNSPECIFIED"}),
    ("oneof timestamp", MS, {"pickTimestamp": "2000-01-01T00:00:00Z"}),
    ("recursive field and custom json_name", MS, {"recursive": {"recursive": {"customName": "deep"}}, "customName": "x"}),
    ("list value field", MS, {"tList": [1, "a", [None]]}),
    ("any of a message", MS, {"tAny": {"@type": "type.googleapis.com/switchboard.testing.v1.Everything.Nested",
                                       "name": "n", "value": 3}}),
    ("any of a timestamp", MS, {"tAny": {"@type": "type.googleapis.com/google.protobuf.Timestamp",
                                         "value": "2020-05-05T05:05:05.123456789Z"}}),
    ("any of a wrapper", MS, {"tAny": {"@type": "type.googleapis.com/google.protobuf.Int64Value", "value": "7"}}),
    ("any of a struct", MS, {"tAny": {"@type": "type.googleapis.com/google.protobuf.Struct", "value": {"a": [1]}}}),
    ("any of an any", MS, {"tAny": {"@type": "type.googleapis.com/google.protobuf.Any",
                                    "value": {"@type": "type.googleapis.com/google.protobuf.Empty"}}}),
    ("any of a message with a map", MS, {"tAny": {"@type": "type.googleapis.com/switchboard.testing.v1.MoreShapes",
                                                  "mBoolString": {"true": "t"}}}),
    ("any empty", MS, {"tAny": {}}),
    ("contact", "switchboard.contacts.v1.Contact", {
        "id": "c-1", "name": {"given": "Ada", "family": "Lovelace", "display": "Ada Lovelace"},
        "emails": [{"address": "ada@example.com", "label": "work", "primary": True}, {"address": "a@b.c"}],
        "phones": [{"number": "+44 20 7946 0000", "e164": "+442079460000"}],
        "addresses": [{"label": "home", "addressLines": ["1 Main St", "Flat 2"], "locality": "London",
                       "postalCode": "N1"}],
        "type": "CONTACT_TYPE_PERSON", "status": "CONTACT_STATUS_CUSTOMER", "tags": ["vip", "math"],
        "ownerId": "u-9", "customFields": {"score": 9.5, "langs": ["en", "fr"], "vip": True, "none": None},
        "audit": {"createTime": "2024-01-02T03:04:05.678901Z", "createdBy": "u-1", "updateTime": "2024-01-03T00:00:00Z"},
        "etag": "W/\"1\""}),
    ("list contacts request", "switchboard.contacts.v1.ListContactsRequest", {
        "statuses": ["CONTACT_STATUS_LEAD", "CONTACT_STATUS_INACTIVE"], "types": ["CONTACT_TYPE_COMPANY"],
        "createdAfter": "2024-01-01T00:00:00Z", "updatedBefore": "2025-06-30T12:00:00.250Z"}),
    ("update contact request with a mask", "switchboard.contacts.v1.UpdateContactRequest", {
        "contact": {"id": "c-1", "tags": []}, "updateMask": "name.given,customFields,tags"}),
    ("field definition, empty", "switchboard.contacts.v1.FieldDefinition", {}),
    ("field definition with a nested enum", "switchboard.contacts.v1.FieldDefinition", {
        "key": "tier", "displayName": "Tier", "type": "FIELD_TYPE_ENUM", "allowedValues": ["gold", "silver"],
        "required": True}),
    ("batch get response", "switchboard.contacts.v1.BatchGetContactsResponse", {
        "contacts": [{"id": "a"}, {"id": "b", "status": "CONTACT_STATUS_PROSPECT"}], "missingIds": ["c"]}),
    ("watch changes request", "switchboard.common.v1.WatchChangesRequest", {"fromSequence": "42",
                                                                             "resourceTypes": ["contact"]}),
    ("reflection response with bytes in a oneof message", "grpc.reflection.v1.ServerReflectionResponse", {
        "validHost": "h", "originalRequest": {"fileContainingSymbol": "x.Y"},
        "fileDescriptorResponse": {"fileDescriptorProto": ["CgVhLnByb3Rv", ""]}}),
    ("health response", "grpc.health.v1.HealthCheckResponse", {"status": "NOT_SERVING"}),
    ("change event", "switchboard.common.v1.ChangeEvent", {
        "sequence": "9007199254740993", "tenantId": "t", "resourceType": "contact", "kind": "CHANGE_KIND_UPDATED",
        "commitTime": "2024-05-01T12:00:00.000100Z", "changedFields": ["name", "emails"],
        "resource": {"id": "c-1", "emails": [{"address": "x@y.z"}]}}),
    ("money", "switchboard.common.v1.Money", {"currencyCode": "EUR", "units": "-12", "nanos": -500000000}),
    ("rpc status with details", "google.rpc.Status", {
        "code": 3, "message": "bad", "details": [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                                                  "fieldViolations": [{"field": "contact.emails[2].address",
                                                                       "description": "invalid"}]}]}),
    ("grpc testing simple request", "grpc.testing.SimpleRequest", {
        "responseType": "COMPRESSABLE", "responseSize": 10, "payload": {"body": "AAAA"}, "fillUsername": True}),
    ("timestamp at top level", "google.protobuf.Timestamp", "2021-12-31T23:59:60Z".replace(":60", ":59")),
    ("duration at top level", "google.protobuf.Duration", "-3.100s"),
    ("field mask at top level", "google.protobuf.FieldMask", "a.bC,d"),
    ("empty field mask", "google.protobuf.FieldMask", ""),
    ("struct at top level", "google.protobuf.Struct", {"k": {"nested": [True, None]}}),
    ("value at top level", "google.protobuf.Value", [1, "x"]),
    ("list value at top level", "google.protobuf.ListValue", [None, {}]),
    ("empty at top level", "google.protobuf.Empty", {}),
    ("int64 wrapper at top level", "google.protobuf.Int64Value", "123"),
    ("bytes wrapper at top level", "google.protobuf.BytesValue", "aGk="),
    ("string wrapper at top level", "google.protobuf.StringValue", ""),
]

# (name, type, JSON text, ignore_unknown_fields)
DECODE = [
    ("original proto field names", EV, '{"f_int32": 5, "f_string": "s", "r_enum": ["COLOR_RED"], "m_string_string": {"a": "b"}, "t_timestamp": "2020-01-01T00:00:00Z", "choice_string": "c"}', False),
    ("64-bit integers as numbers and strings, exact", EV, '{"fInt64": -9007199254740993, "fUint64": 18446744073709551615, "fSint64": "-9223372036854775808", "fFixed64": "0", "fSfixed64": 9223372036854775807}', False),
    ("32-bit integers as strings, exponents, integral fractions", EV, '{"fInt32": "-7", "fUint32": 1e3, "fSint32": "2.0", "fFixed32": "1e2", "fSfixed32": -4.0, "rInt32": ["1", 2, 3e0]}', False),
    ("int64 from an integral float literal", EV, '{"fInt64": 1.5e3, "rInt64": ["12", "1e2", -0]}', False),
    ("enums by number and numeric string", EV, '{"fEnum": 2, "rEnum": [1, "COLOR_BLUE", 0, 99, "3"]}', False),
    ("floats from strings and special values", EV, '{"fDouble": "1.25", "fFloat": "Infinity", "rDouble": ["NaN", "-Infinity", "1e2", 7, "-0"]}', False),
    ("url-safe unpadded base64 and standard base64", EV, '{"fBytes": "-_8", "rBytes": ["AP8=", "AP8", "_-_-", ""]}', False),
    ("nulls mean defaults", EV, '{"fInt32": null, "fNested": null, "rInt32": null, "mStringString": null, "tTimestamp": null, "tStruct": null, "tInt32Wrapper": null, "fEnum": null, "choiceString": null, "fString": "x"}', False),
    ("null for a Value field is the null value", EV, '{"tValue": null}', False),
    ("null oneof member next to a set one", EV, '{"choiceString": null, "choiceInt64": "5"}', False),
    ("timestamps with offsets and fractions", MS, '{"rTimestamp": ["2024-05-01T14:00:00+02:00", "2024-05-01T07:30:00.5-04:30", "2024-05-01T00:00:00.123456Z", "1970-01-01T00:00:00.1Z", "2000-01-01T00:00:00.000010+00:00"]}', False),
    ("durations in many spellings", MS, '{"rDuration": ["1s", "-1.5s", "0.000000001s", "+2s", "-0.25s", "3.1000s", "1.1234567891s", "315576000000s"]}', False),
    ("map keys as strings of ints and bools", MS, '{"mBoolString": {"true": "t", "false": "f"}, "mInt64Int64": {"-5": "-5", "1e2": 7}, "mUint32Bytes": {"7": "-_8"}, "mUint64Enum": {"18446744073709551615": 2}}', False),
    ("map of values with null", MS, '{"mStringValue": {"a": null, "b": {"c": [1, null]}}}', False),
    ("wrappers from plain values", MS, '{"wDouble": "NaN", "wFloat": 1, "wInt64": "-1", "wUint64": 5, "wUint32": "4294967295", "wBytes": "YQ"}', False),
    ("custom json_name and proto name", MS, '{"customName": "a", "recursive": {"json_named": "b"}}', False),
    ("any with @type last", MS, '{"tAny": {"value": 3, "name": "n", "@type": "type.googleapis.com/switchboard.testing.v1.Everything.Nested"}}', False),
    ("any of a duration", MS, '{"tAny": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1.5s"}}', False),
    ("any of a struct value", MS, '{"tAny": {"@type": "type.googleapis.com/google.protobuf.Value", "value": {"x": null}}}', False),
    ("oneof bytes and enum members", MS, '{"pick_enum": "COLOR_GREEN"}', False),
    ("field mask in camel case back to snake case", EV, '{"tFieldMask": "fooBar.bazQux,a,x1Y"}', False),
    ("struct with every kind of value", EV, '{"tStruct": {"n": 1e308, "i": 12345678901234567890, "s": "", "b": false, "z": null, "l": [[], {}], "o": {"p": {"q": [1.5]}}}}', False),
    ("unicode escapes", EV, '{"fString": "\\u00e9\\ud83d\\ude00\\n\\u001f\\/"}', False),
    ("unknown field ignored when asked", EV, '{"nope": {"deep": [1]}, "fInt32": 1}', True),
    ("unknown enum name ignored when asked", EV, '{"fEnum": "COLOR_PURPLE", "rEnum": ["COLOR_RED", "COLOR_PURPLE"], "mStringEnum": {"a": "COLOR_PURPLE", "b": "COLOR_RED"}}', True),
    ("contact with original names", "switchboard.contacts.v1.Contact", '{"id": "c", "owner_id": "o", "custom_fields": {"k": 1}, "audit": {"create_time": "2024-01-01T00:00:00-08:00"}, "emails": [{"address": "a@b", "primary": true}], "status": 3}', False),
    ("change event with a numeric sequence", "switchboard.common.v1.ChangeEvent", '{"sequence": 9223372036854775807, "kind": "CHANGE_KIND_DELETED", "resource": {}}', False),
    ("top-level timestamp with offset", "google.protobuf.Timestamp", '"9999-12-31T23:59:59.999999999Z"', False),
    ("top-level duration", "google.protobuf.Duration", '"-315576000000.999999999s"', False),
    ("top-level value string", "google.protobuf.Value", '"s"', False),
    ("top-level uint64 wrapper as number", "google.protobuf.UInt64Value", '18446744073709551615', False),
    ("top-level empty", "google.protobuf.Empty", '{}', False),
    ("nesting at the depth limit", "google.protobuf.Value", deep_list(50), False),
]

# (name, type, JSON text, ignore_unknown_fields)
REJECT = [
    ("not JSON", EV, '{"fInt32": }', False),
    ("duplicate key", EV, '{"fInt32": 1, "fInt32": 2}', False),
    ("unknown field", EV, '{"nope": 1}', False),
    ("unknown field in a nested message", EV, '{"fNested": {"nope": 1}}', False),
    ("unknown enum name", EV, '{"fEnum": "COLOR_PURPLE"}', False),
    ("unknown enum name in a repeated field", EV, '{"rEnum": ["COLOR_PURPLE"]}', False),
    ("int32 out of range", EV, '{"fInt32": 2147483648}', False),
    ("int32 out of range as a string", EV, '{"fInt32": "-2147483649"}', False),
    ("uint32 negative", EV, '{"fUint32": -1}', False),
    ("uint64 out of range", EV, '{"fUint64": "18446744073709551616"}', False),
    ("int64 out of range", EV, '{"fInt64": 9223372036854775808}', False),
    ("int64 with a fraction", EV, '{"fInt64": 1.5}', False),
    ("int64 string with a fraction", EV, '{"fInt64": "1.5"}', False),
    ("int32 string with a space", EV, '{"fInt32": " 1"}', False),
    ("int32 from a bool", EV, '{"fInt32": true}', False),
    ("int32 from garbage", EV, '{"fInt32": "abc"}', False),
    ("int64 exponent too large", EV, '{"fInt64": 1e20}', False),
    ("bool from a string", EV, '{"fBool": "true"}', False),
    ("bool from a number", EV, '{"fBool": 1}', False),
    ("string from a number", EV, '{"fString": 1}', False),
    ("double from an overflowing literal", EV, '{"fDouble": 1e400}', False),
    ("double from lowercase nan", EV, '{"fDouble": "nan"}', False),
    ("double from garbage", EV, '{"fDouble": "one"}', False),
    ("float out of range", EV, '{"fFloat": 3.5e38}', False),
    ("bytes with bad length", EV, '{"fBytes": "A"}', False),
    ("bytes from a number", EV, '{"fBytes": 1}', False),
    ("repeated field not an array", EV, '{"rInt32": 1}', False),
    ("null inside a repeated field", EV, '{"rInt32": [1, null]}', False),
    ("null inside a repeated message field", EV, '{"rNested": [null]}', False),
    ("map not an object", EV, '{"mStringString": []}', False),
    ("map int key not an integer", EV, '{"mInt32Nested": {"x": {}}}', False),
    ("map value null", EV, '{"mStringString": {"a": null}}', False),
    ("map bool key not a bool", MS, '{"mBoolString": {"1": "x"}}', False),
    ("two members of one oneof", EV, '{"choiceString": "a", "choiceInt64": "1"}', False),
    ("two members of one oneof by original name", MS, '{"pick_bytes": "", "pickEnum": 1}', False),
    ("timestamp without offset", EV, '{"tTimestamp": "2020-01-01T00:00:00"}', False),
    ("timestamp with lowercase t", EV, '{"tTimestamp": "2020-01-01t00:00:00Z"}', False),
    ("timestamp with ten fractional digits", EV, '{"tTimestamp": "2020-01-01T00:00:00.0000000001Z"}', False),
    ("timestamp before year 1", EV, '{"tTimestamp": "0001-01-01T00:00:00+00:01"}', False),
    ("timestamp on February 30", EV, '{"tTimestamp": "2021-02-30T00:00:00Z"}', False),
    ("timestamp with trailing data", EV, '{"tTimestamp": "2020-01-01T00:00:00Zx"}', False),
    ("timestamp from a number", EV, '{"tTimestamp": 0}', False),
    ("duration without s", EV, '{"tDuration": "1"}', False),
    ("duration out of range", EV, '{"tDuration": "315576000001s"}', False),
    ("duration garbage", EV, '{"tDuration": "1.x s"}', False),
    ("duration at the most negative int64", EV, '{"tDuration": "-9223372036854775808s"}', False),
    ("duration with mixed signs", "google.protobuf.Duration", '"-0.5s"'.replace("-0.5", "1.-5"), False),
    ("field mask with an underscore", EV, '{"tFieldMask": "foo_bar"}', False),
    ("struct not an object", EV, '{"tStruct": [1]}', False),
    ("wrapper from the wrong type", EV, '{"tInt32Wrapper": "x"}', False),
    ("wrapper as an object", EV, '{"tBoolWrapper": {"value": true}}', False),
    ("any without @type", MS, '{"tAny": {"value": 1}}', False),
    ("any of an unknown type", MS, '{"tAny": {"@type": "type.googleapis.com/no.such.Type"}}', False),
    ("any with an unknown field", MS, '{"tAny": {"@type": "type.googleapis.com/switchboard.testing.v1.Everything.Nested", "nope": 1}}', False),
    ("message not an object", EV, '{"fNested": 5}', False),
    ("top-level not an object", EV, '[1]', False),
    ("nesting past the depth limit", "google.protobuf.Value", deep_list(51), False),
    ("nested messages past the depth limit", MS, '{"recursive": ' * 100 + '{}' + '}' * 100, False),
    ("ignoring unknown fields still checks types", EV, '{"fInt32": "x", "nope": 1}', True),
]


def encode_case(name, type_name, js):
    m = new(type_name)
    json_format.ParseDict(js, m)
    out = json_format.MessageToDict(m)
    return {"name": name, "type": type_name, "binary": m.SerializeToString(deterministic=True).hex(), "json": out}


def decode_case(name, type_name, text, ignore):
    m = new(type_name)
    json_format.Parse(text, m, ignore_unknown_fields=ignore)
    return {"name": name, "type": type_name, "json": text, "ignoreUnknownFields": ignore,
            "binary": m.SerializeToString(deterministic=True).hex()}


def reject_case(name, type_name, text, ignore):
    m = new(type_name)
    try:
        json_format.Parse(text, m, ignore_unknown_fields=ignore)
    except json_format.ParseError as e:
        return {"name": name, "type": type_name, "json": text, "ignoreUnknownFields": ignore, "python": str(e)[:200]}
    raise SystemExit(f"reject case {name!r}: Python accepted it")


def goldens():
    return {
        "encode": [encode_case(*c) for c in ENCODE],
        "decode": [decode_case(*c) for c in DECODE],
        "reject": [reject_case(*c) for c in REJECT],
    }


def main():
    if len(sys.argv) != 3 or sys.argv[1] != "--write":
        raise SystemExit(__doc__)
    text = json.dumps(goldens(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
