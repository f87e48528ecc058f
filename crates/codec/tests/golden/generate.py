#!/usr/bin/python3
"""Golden-vector generator for the Sluice AMQP 1.0 codec (crates/codec).

Encodes AMQP 1.0 values and sample messages with Apache Qpid Proton (the
Debian package python3-qpid-proton) and writes them, together with the
expected decoded form, to ``vectors.json`` next to this script.  The Rust
tests in crates/codec/tests/ decode every ``hex`` and compare it with the
recorded typed form (and may re-encode it).

Rerun from the repository root with the system Python that has proton:

    /usr/bin/python3 crates/codec/tests/golden/generate.py

The output is deterministic: no clock, no random UUIDs, a fixed vector order
and a fixed JSON layout, so rerunning it must produce a byte-identical file.

JSON format (a contract with the Rust test):

    {"generator": "...", "vectors": [
      {"name": "uint_max", "kind": "value", "hex": "70ffffffff",
       "expected": <typed>},
      {"name": "msg_props", "kind": "message", "hex": "...",
       "sections": [<typed>, ...], "fields": {...}}, ...]}

``<typed>`` is ``[type, payload]``:
  ["null", null], ["boolean", true|false],
  ["ubyte"|"ushort"|"uint"|"byte"|"short"|"int", <JSON number>],
  ["ulong"|"long"|"timestamp", "<decimal string>"],
  ["float"|"double", "<hex of the IEEE bits, big-endian>"],
  ["decimal32"|"decimal64"|"decimal128", "<hex, wire order>"],
  ["char", "<the character>"], ["uuid", "<32 lowercase hex>"],
  ["binary", "<lowercase hex>"], ["string", "..."], ["symbol", "..."],
  ["list", [<typed>, ...]], ["map", [[<typed key>, <typed value>], ...]],
  ["array", {"type": "<element type>", "descriptor": null|<typed>,
             "items": [<typed>, ...]}],
  ["described", {"descriptor": <typed>, "value": <typed>}].

Every ``expected``/``sections`` value is produced by decoding proton's own
output with a fresh ``proton.Data`` and walking the tree using the wire types
proton reports (``to_typed``).  For values the script also asserts that this
agrees with the typed value that was put, that proton re-encodes the decoded
tree to the same bytes, and (top level) that float/double bits match the wire.
"""

import json
import os
import struct
import sys
import uuid

import proton
from proton import Data, Message

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vectors.json")


# ---------------------------------------------------------------------------
# Typed-value constructors (the JSON form)
# ---------------------------------------------------------------------------

class T:
    """Build ``[type, payload]`` values in the JSON contract form."""

    null = staticmethod(lambda: ["null", None])
    boolean = staticmethod(lambda b: ["boolean", bool(b)])
    ubyte = staticmethod(lambda n: ["ubyte", n])
    ushort = staticmethod(lambda n: ["ushort", n])
    uint = staticmethod(lambda n: ["uint", n])
    ulong = staticmethod(lambda n: ["ulong", str(n)])
    byte = staticmethod(lambda n: ["byte", n])
    short = staticmethod(lambda n: ["short", n])
    int = staticmethod(lambda n: ["int", n])
    long = staticmethod(lambda n: ["long", str(n)])
    timestamp = staticmethod(lambda ms: ["timestamp", str(ms)])
    float = staticmethod(lambda x: ["float", struct.pack(">f", x).hex()])
    double = staticmethod(lambda x: ["double", struct.pack(">d", x).hex()])
    float_bits = staticmethod(lambda h: ["float", h])
    double_bits = staticmethod(lambda h: ["double", h])
    decimal32 = staticmethod(lambda h: ["decimal32", h])
    decimal64 = staticmethod(lambda h: ["decimal64", h])
    decimal128 = staticmethod(lambda h: ["decimal128", h])
    char = staticmethod(lambda c: ["char", c])
    uuid = staticmethod(lambda s: ["uuid", uuid.UUID(s).hex])
    binary = staticmethod(lambda b: ["binary", bytes(b).hex()])
    string = staticmethod(lambda s: ["string", s])
    symbol = staticmethod(lambda s: ["symbol", s])
    list = staticmethod(lambda *items: ["list", list(items)])
    map = staticmethod(lambda *pairs: ["map", [list(p) for p in pairs]])
    described = staticmethod(
        lambda desc, value: ["described", {"descriptor": desc, "value": value}])

    @staticmethod
    def array(elem_type, items, descriptor=None):
        return ["array", {"type": elem_type, "descriptor": descriptor,
                          "items": list(items)}]


# Wire type name <-> proton type constant.
TYPE_CODES = {
    "null": Data.NULL, "boolean": Data.BOOL,
    "ubyte": Data.UBYTE, "ushort": Data.USHORT, "uint": Data.UINT,
    "ulong": Data.ULONG, "byte": Data.BYTE, "short": Data.SHORT,
    "int": Data.INT, "long": Data.LONG, "float": Data.FLOAT,
    "double": Data.DOUBLE, "decimal32": Data.DECIMAL32,
    "decimal64": Data.DECIMAL64, "decimal128": Data.DECIMAL128,
    "char": Data.CHAR, "timestamp": Data.TIMESTAMP, "uuid": Data.UUID,
    "binary": Data.BINARY, "string": Data.STRING, "symbol": Data.SYMBOL,
    "list": Data.LIST, "map": Data.MAP, "array": Data.ARRAY,
    "described": Data.DESCRIBED,
}
TYPE_NAMES = {code: name for name, code in TYPE_CODES.items()}


# ---------------------------------------------------------------------------
# typed -> proton.Data (explicit put_* calls)
# ---------------------------------------------------------------------------

def put_typed(d, v):
    kind, p = v
    if kind == "null":
        d.put_null()
    elif kind == "boolean":
        d.put_bool(p)
    elif kind == "ubyte":
        d.put_ubyte(p)
    elif kind == "ushort":
        d.put_ushort(p)
    elif kind == "uint":
        d.put_uint(p)
    elif kind == "ulong":
        d.put_ulong(int(p))
    elif kind == "byte":
        d.put_byte(p)
    elif kind == "short":
        d.put_short(p)
    elif kind == "int":
        d.put_int(p)
    elif kind == "long":
        d.put_long(int(p))
    elif kind == "timestamp":
        d.put_timestamp(int(p))
    elif kind == "float":
        d.put_float(struct.unpack(">f", bytes.fromhex(p))[0])
    elif kind == "double":
        d.put_double(struct.unpack(">d", bytes.fromhex(p))[0])
    elif kind == "decimal32":
        d.put_decimal32(int(p, 16))
    elif kind == "decimal64":
        d.put_decimal64(int(p, 16))
    elif kind == "decimal128":
        d.put_decimal128(bytes.fromhex(p))
    elif kind == "char":
        d.put_char(p)
    elif kind == "uuid":
        d.put_uuid(uuid.UUID(hex=p))
    elif kind == "binary":
        d.put_binary(bytes.fromhex(p))
    elif kind == "string":
        d.put_string(p)
    elif kind == "symbol":
        d.put_symbol(p)
    elif kind == "list":
        d.put_list()
        d.enter()
        for item in p:
            put_typed(d, item)
        d.exit()
    elif kind == "map":
        d.put_map()
        d.enter()
        for key, value in p:
            put_typed(d, key)
            put_typed(d, value)
        d.exit()
    elif kind == "array":
        d.put_array(p["descriptor"] is not None, TYPE_CODES[p["type"]])
        d.enter()
        if p["descriptor"] is not None:
            put_typed(d, p["descriptor"])
        for item in p["items"]:
            put_typed(d, item)
        d.exit()
    elif kind == "described":
        d.put_described()
        d.enter()
        put_typed(d, p["descriptor"])
        put_typed(d, p["value"])
        d.exit()
    else:
        raise ValueError("unknown type %r" % kind)


# ---------------------------------------------------------------------------
# proton.Data -> typed (walks the decoded tree, using proton's wire types)
# ---------------------------------------------------------------------------

def to_typed(d):
    """Convert the current node of ``d`` to the typed JSON form."""
    t = d.type()
    name = TYPE_NAMES[t]
    if t == Data.NULL:
        return [name, None]
    if t == Data.BOOL:
        return [name, bool(d.get_bool())]
    if t in (Data.UBYTE, Data.USHORT, Data.UINT, Data.BYTE, Data.SHORT, Data.INT):
        getter = {Data.UBYTE: d.get_ubyte, Data.USHORT: d.get_ushort,
                  Data.UINT: d.get_uint, Data.BYTE: d.get_byte,
                  Data.SHORT: d.get_short, Data.INT: d.get_int}[t]
        return [name, int(getter())]
    if t == Data.ULONG:
        return [name, str(int(d.get_ulong()))]
    if t == Data.LONG:
        return [name, str(int(d.get_long()))]
    if t == Data.TIMESTAMP:
        return [name, str(int(d.get_timestamp()))]
    if t == Data.FLOAT:
        return [name, struct.pack(">f", d.get_float()).hex()]
    if t == Data.DOUBLE:
        return [name, struct.pack(">d", d.get_double()).hex()]
    if t == Data.DECIMAL32:
        return [name, int(d.get_decimal32()).to_bytes(4, "big").hex()]
    if t == Data.DECIMAL64:
        return [name, int(d.get_decimal64()).to_bytes(8, "big").hex()]
    if t == Data.DECIMAL128:
        return [name, bytes(d.get_decimal128()).hex()]
    if t == Data.CHAR:
        return [name, str(d.get_char())]
    if t == Data.UUID:
        return [name, d.get_uuid().hex]
    if t == Data.BINARY:
        return [name, bytes(d.get_binary()).hex()]
    if t == Data.STRING:
        return [name, str(d.get_string())]
    if t == Data.SYMBOL:
        return [name, str(d.get_symbol())]
    if t == Data.LIST:
        count = d.get_list()
        items = []
        d.enter()
        for _ in range(count):
            assert d.next() is not None
            items.append(to_typed(d))
        assert d.next() is None
        d.exit()
        return [name, items]
    if t == Data.MAP:
        count = d.get_map()  # number of keys + values
        assert count % 2 == 0
        pairs = []
        d.enter()
        for _ in range(count // 2):
            assert d.next() is not None
            key = to_typed(d)
            assert d.next() is not None
            pairs.append([key, to_typed(d)])
        assert d.next() is None
        d.exit()
        return [name, pairs]
    if t == Data.ARRAY:
        count, described, elem_type = d.get_array()
        descriptor = None
        items = []
        d.enter()
        if described:
            assert d.next() is not None
            descriptor = to_typed(d)
        for _ in range(count):
            assert d.next() == elem_type
            items.append(to_typed(d))
        assert d.next() is None
        d.exit()
        return [name, {"type": TYPE_NAMES[elem_type], "descriptor": descriptor,
                       "items": items}]
    if t == Data.DESCRIBED:
        d.enter()
        assert d.next() is not None
        descriptor = to_typed(d)
        assert d.next() is not None
        value = to_typed(d)
        assert d.next() is None
        d.exit()
        return [name, {"descriptor": descriptor, "value": value}]
    raise ValueError("unhandled proton type %r" % t)


def decode_all(buf, check_reencode=True):
    """Decode every top-level value in ``buf`` (each with a fresh Data).

    With ``check_reencode`` proton must re-encode its decoded tree to the same
    bytes.  That holds for ``Data.encode()`` output but not for messages:
    ``Message.encode()`` uses a more compact encoder (list8/map8 etc.) than
    ``Data.encode()`` (always list32/map32/array32).
    """
    out = []
    offset = 0
    while offset < len(buf):
        d = Data()
        n = d.decode(buf[offset:])
        assert n > 0
        d.rewind()
        assert d.next() is not None
        out.append(to_typed(d))
        assert d.next() is None, "more than one value decoded at once"
        if check_reencode:
            assert d.encode() == buf[offset:offset + n]
        offset += n
    return out


# ---------------------------------------------------------------------------
# Value vectors
# ---------------------------------------------------------------------------

INF, NAN = float("inf"), float("nan")
U1 = "123e4567-e89b-12d3-a456-426614174000"
U2 = "00112233-4455-6677-8899-aabbccddeeff"


def value_cases():
    v = []

    def add(name, typed):
        v.append((name, typed))

    # -- null / boolean
    add("null", T.null())
    add("boolean_true", T.boolean(True))
    add("boolean_false", T.boolean(False))

    # -- unsigned integers
    for n in (0, 1, 127, 128, 255):
        add("ubyte_%d" % n, T.ubyte(n))
    for n in (0, 1, 255, 256, 65535):
        add("ushort_%d" % n, T.ushort(n))
    for label, n in (("0", 0), ("1", 1), ("255", 255), ("256", 256),
                     ("65535", 65535), ("max", 2**32 - 1)):
        add("uint_" + label, T.uint(n))
    for label, n in (("0", 0), ("1", 1), ("255", 255), ("256", 256),
                     ("u32max", 2**32 - 1), ("2pow32", 2**32), ("max", 2**64 - 1)):
        add("ulong_" + label, T.ulong(n))

    # -- signed integers
    for label, n in (("0", 0), ("1", 1), ("max", 127), ("neg1", -1), ("min", -128)):
        add("byte_" + label, T.byte(n))
    for label, n in (("0", 0), ("127", 127), ("128", 128), ("255", 255), ("256", 256),
                     ("neg1", -1), ("neg129", -129), ("max", 32767), ("min", -32768)):
        add("short_" + label, T.short(n))
    for label, n in (("0", 0), ("1", 1), ("127", 127), ("128", 128), ("255", 255),
                     ("256", 256), ("neg1", -1), ("neg128", -128), ("neg129", -129),
                     ("max", 2**31 - 1), ("min", -2**31)):
        add("int_" + label, T.int(n))
    for label, n in (("0", 0), ("1", 1), ("127", 127), ("128", 128), ("255", 255),
                     ("256", 256), ("neg1", -1), ("neg128", -128), ("neg129", -129),
                     ("2pow53p1", 2**53 + 1), ("max", 2**63 - 1), ("min", -2**63)):
        add("long_" + label, T.long(n))

    # -- floating point (bits recorded exactly)
    add("float_0", T.float(0.0))
    add("float_neg0", T.float(-0.0))
    add("float_1", T.float(1.0))
    add("float_neg1_5", T.float(-1.5))
    add("float_pi", T.float_bits("40490fdb"))
    add("float_max", T.float_bits("7f7fffff"))
    add("float_min_subnormal", T.float_bits("00000001"))
    add("float_inf", T.float(INF))
    add("float_neg_inf", T.float(-INF))
    add("float_nan", T.float_bits("7fc00000"))
    add("double_0", T.double(0.0))
    add("double_neg0", T.double(-0.0))
    add("double_1", T.double(1.0))
    add("double_neg1_5", T.double(-1.5))
    add("double_pi", T.double(3.141592653589793))
    add("double_max", T.double_bits("7fefffffffffffff"))
    add("double_min_subnormal", T.double_bits("0000000000000001"))
    add("double_inf", T.double(INF))
    add("double_neg_inf", T.double(-INF))
    add("double_nan", T.double_bits("7ff8000000000000"))

    # -- decimals (opaque IEEE 754 decimal bits, wire order)
    add("decimal32_zero", T.decimal32("22500000"))
    add("decimal32_bytes", T.decimal32("01020304"))
    add("decimal32_ff", T.decimal32("ffffffff"))
    add("decimal64_zero", T.decimal64("2238000000000000"))
    add("decimal64_bytes", T.decimal64("0102030405060708"))
    add("decimal128_zero", T.decimal128("22080000000000000000000000000000"))
    add("decimal128_bytes", T.decimal128(bytes(range(16)).hex()))

    # -- char (UTF-32 code point)
    for label, c in (("a", "a"), ("nul", "\x00"), ("e_acute", "\u00e9"),
                     ("euro", "\u20ac"), ("emoji", "\U0001F600"), ("max", "\U0010FFFF")):
        add("char_" + label, T.char(c))

    # -- timestamp (ms since the Unix epoch, signed)
    for label, n in (("0", 0), ("2023", 1700000000000), ("neg1", -1),
                     ("max", 2**63 - 1), ("min", -2**63)):
        add("timestamp_" + label, T.timestamp(n))

    # -- uuid
    add("uuid_nil", T.uuid("00000000-0000-0000-0000-000000000000"))
    add("uuid_fixed", T.uuid(U1))
    add("uuid_bytes", T.uuid(U2))
    add("uuid_max", T.uuid("ffffffff-ffff-ffff-ffff-ffffffffffff"))

    # -- binary
    add("binary_empty", T.binary(b""))
    add("binary_1", T.binary(b"\x00"))
    add("binary_small", T.binary(b"\x01\x02\x03\xff"))
    add("binary_255", T.binary(bytes(range(255))))
    add("binary_256", T.binary(bytes(range(256))))
    add("binary_300", T.binary(bytes(i % 251 for i in range(300))))

    # -- string
    add("string_empty", T.string(""))
    add("string_hello", T.string("hello"))
    add("string_nul", T.string("a\x00b"))
    add("string_latin1", T.string("h\u00e9llo w\u00f6rld"))
    add("string_cjk", T.string("\u65e5\u672c\u8a9e"))
    add("string_emoji", T.string("\U0001F600\U0001F44D\U0001F3FD"))
    add("string_255", T.string("x" * 255))
    add("string_256", T.string("y" * 256))
    add("string_multibyte_400", T.string("\u00e9" * 200))  # 200 chars, 400 bytes
    add("string_emoji_long", T.string("\U0001F680" * 70))  # 280 bytes

    # -- symbol
    add("symbol_empty", T.symbol(""))
    add("symbol_a", T.symbol("a"))
    add("symbol_amqp", T.symbol("amqp:accepted:list"))
    add("symbol_255", T.symbol("s" * 255))
    add("symbol_256", T.symbol("t" * 256))
    add("symbol_300", T.symbol("x-opt-" + "k" * 294))

    # -- lists
    add("list_empty", T.list())
    add("list_one_uint", T.list(T.uint(1)))
    add("list_mixed", T.list(T.null(), T.boolean(True), T.uint(7), T.long(-2),
                             T.string("str"), T.symbol("sym"), T.double(2.5),
                             T.binary(b"\xde\xad")))
    add("list_nested", T.list(T.list(), T.list(T.uint(1), T.list(T.string("deep")))))
    add("list_over_255_bytes",
        T.list(*[T.string("item-%02d-abcdefgh" % i) for i in range(20)]))
    add("list_256_nulls", T.list(*[T.null()] * 256))
    add("list_300_booleans", T.list(*[T.boolean(i % 3 == 0) for i in range(300)]))

    # -- maps
    add("map_empty", T.map())
    add("map_symbol_keys", T.map((T.symbol("a"), T.uint(1)),
                                 (T.symbol("b"), T.string("two")),
                                 (T.symbol("c"), T.null())))
    add("map_string_keys", T.map((T.string("key1"), T.int(-5)),
                                 (T.string("key2"), T.boolean(False))))
    add("map_mixed_keys", T.map((T.ulong(1), T.string("ulong key")),
                                (T.symbol("sym"), T.string("symbol key")),
                                (T.string("str"), T.string("string key")),
                                (T.int(-1), T.string("int key")),
                                (T.boolean(True), T.string("bool key")),
                                (T.null(), T.string("null key"))))
    add("map_nested", T.map((T.symbol("outer"),
                             T.map((T.symbol("inner"),
                                    T.map((T.string("x"), T.list(T.uint(1), T.uint(2)))))))))
    add("map_over_255_bytes",
        T.map(*[(T.symbol("key-%02d" % i), T.string("value-%02d-xxxxxxxxxx" % i))
                for i in range(16)]))

    # -- arrays
    add("array_uint", T.array("uint", [T.uint(0), T.uint(1), T.uint(255), T.uint(2**32 - 1)]))
    add("array_uint_empty", T.array("uint", []))
    add("array_ulong", T.array("ulong", [T.ulong(0), T.ulong(2**64 - 1)]))
    add("array_int", T.array("int", [T.int(-1), T.int(0), T.int(2**31 - 1)]))
    add("array_long", T.array("long", [T.long(-2**63), T.long(5)]))
    add("array_ubyte", T.array("ubyte", [T.ubyte(0), T.ubyte(255)]))
    add("array_short", T.array("short", [T.short(-32768), T.short(32767)]))
    add("array_boolean", T.array("boolean", [T.boolean(True), T.boolean(False),
                                             T.boolean(True)]))
    add("array_null", T.array("null", [T.null(), T.null()]))
    add("array_float", T.array("float", [T.float(1.5), T.float(-INF)]))
    add("array_double", T.array("double", [T.double(0.1), T.double(-0.0)]))
    add("array_char", T.array("char", [T.char("a"), T.char("\U0001F600")]))
    add("array_timestamp", T.array("timestamp", [T.timestamp(0), T.timestamp(1700000000000)]))
    add("array_uuid", T.array("uuid", [T.uuid(U1), T.uuid(U2)]))
    add("array_binary", T.array("binary", [T.binary(b""), T.binary(b"\x01\x02")]))
    add("array_symbol", T.array("symbol", [T.symbol("amqp:accepted:list"),
                                           T.symbol("amqp:rejected:list")]))
    add("array_symbol_empty", T.array("symbol", []))
    add("array_symbol_over_255_bytes",
        T.array("symbol", [T.symbol("capability-%02d-xxxxxxxx" % i) for i in range(12)]))
    add("array_symbol_long_item", T.array("symbol", [T.symbol("a"), T.symbol("z" * 300)]))
    add("array_string", T.array("string", [T.string("one"), T.string(""),
                                           T.string("\u00fcml\u00e4ut")]))
    add("array_list", T.array("list", [T.list(), T.list(T.uint(1), T.string("a"))]))
    add("array_map", T.array("map", [T.map((T.symbol("k"), T.uint(1))), T.map()]))
    add("array_of_arrays", T.array("array", [T.array("uint", [T.uint(1), T.uint(2)]),
                                             T.array("symbol", [T.symbol("x")])]))
    add("array_uint_300", T.array("uint", [T.uint(i) for i in range(300)]))
    add("array_described_ulong",
        T.array("list", [T.list(T.uint(1)), T.list(T.string("x"), T.null())],
                descriptor=T.ulong(0x70)))
    add("array_described_symbol",
        T.array("string", [T.string("a"), T.string("b")],
                descriptor=T.symbol("example:str")))
    add("array_described_empty", T.array("uint", [], descriptor=T.ulong(0x13)))

    # -- described values
    add("described_ulong_list",
        T.described(T.ulong(0x10), T.list(T.string("container-1"), T.string("host"))))
    add("described_ulong0_null", T.described(T.ulong(0), T.null()))
    add("described_ulong_domain",
        T.described(T.ulong(0x0000468C00000001), T.binary(b"\x00\x01")))
    add("described_symbol_string",
        T.described(T.symbol("com.example:thing"), T.string("payload")))
    add("described_symbol_map",
        T.described(T.symbol("apache.org:selector-filter:string"),
                    T.map((T.symbol("k"), T.long(1)))))
    add("described_nested",
        T.described(T.ulong(1), T.described(T.symbol("inner"),
                                            T.described(T.ulong(2), T.uint(3)))))
    add("described_in_list",
        T.list(T.described(T.ulong(0x24), T.list()),
               T.described(T.ulong(0x25), T.list(T.uint(1)))))

    # -- deep nesting
    deep = T.uint(42)
    for _ in range(20):
        deep = T.list(deep)
    add("list_nested_20", deep)
    deep = T.string("leaf")
    for i in range(10):
        deep = T.map((T.symbol("level-%d" % i), deep))
    add("map_nested_10", deep)
    deep = T.array("uint", [T.uint(7)])
    for _ in range(4):
        deep = T.array("array", [deep])
    add("array_nested_5", deep)
    return v


def value_vector(name, typed):
    d = Data()
    put_typed(d, typed)
    buf = d.encode()
    decoded = decode_all(buf)
    assert decoded == [typed], "%s: put %r but decoded %r" % (name, typed, decoded)
    if typed[0] in ("float", "double"):
        assert buf[1:].hex() == typed[1], name  # exact bits on the wire
    return {"name": name, "kind": "value", "hex": buf.hex(), "expected": decoded[0]}


# ---------------------------------------------------------------------------
# Message vectors
# ---------------------------------------------------------------------------

SECTION_KINDS = {0x70: "header", 0x71: "delivery-annotations",
                 0x72: "message-annotations", 0x73: "properties",
                 0x74: "application-properties", 0x75: "data",
                 0x76: "amqp-sequence", 0x77: "amqp-value", 0x78: "footer"}
BODY_KINDS = {0x75: "data", 0x76: "sequence", 0x77: "value"}
HEADER_FIELDS = ["durable", "priority", "ttl_ms", "first_acquirer", "delivery_count"]
HEADER_DEFAULTS = {"durable": False, "priority": 4, "ttl_ms": 0,
                   "first_acquirer": False, "delivery_count": 0}
PROPERTY_FIELDS = ["message_id", "user_id", "to", "subject", "reply_to",
                   "correlation_id", "content_type", "content_encoding",
                   "expiry_time_ms", "creation_time_ms", "group_id",
                   "group_sequence", "reply_to_group_id"]
# fields -> proton.Message attribute names (times are set in ms, see below)
MESSAGE_ATTRS = {"durable": "durable", "priority": "priority",
                 "first_acquirer": "first_acquirer",
                 "delivery_count": "delivery_count", "message_id": "id",
                 "user_id": "user_id", "to": "address", "subject": "subject",
                 "reply_to": "reply_to", "correlation_id": "correlation_id",
                 "content_type": "content_type",
                 "content_encoding": "content_encoding", "group_id": "group_id",
                 "group_sequence": "group_sequence",
                 "reply_to_group_id": "reply_to_group_id"}
MS_ATTRS = {"ttl_ms": "ttl", "expiry_time_ms": "expiry_time",
            "creation_time_ms": "creation_time"}


def id_typed(value):
    """message-id / correlation-id as the typed form proton puts on the wire."""
    if isinstance(value, int):
        return T.ulong(value)
    if isinstance(value, uuid.UUID):
        return T.uuid(str(value))
    if isinstance(value, bytes):
        return T.binary(value)
    return T.string(value)


def plain(typed):
    """Typed scalar -> plain JSON for the ``fields`` spot checks."""
    kind, p = typed
    if kind in ("ulong", "long", "timestamp"):
        return int(p)
    return p  # numbers, booleans, strings, symbols; binary stays lowercase hex


def fields_from_sections(sections):
    """Extract the ``fields`` object from decoded sections (non-default only)."""
    fields = {}
    body_kind = "none"
    for section in sections:
        assert section[0] == "described" and section[1]["descriptor"][0] == "ulong"
        code = int(section[1]["descriptor"][1])
        assert code in SECTION_KINDS, code
        value = section[1]["value"]
        if code in (0x70, 0x73):
            assert value[0] == "list"
            names = HEADER_FIELDS if code == 0x70 else PROPERTY_FIELDS
            for fname, item in zip(names, value[1]):
                if item[0] == "null":
                    continue
                if fname in ("message_id", "correlation_id"):
                    fields[fname] = item
                elif HEADER_DEFAULTS.get(fname, object()) != plain(item):
                    fields[fname] = plain(item)
        if code in BODY_KINDS:
            body_kind = BODY_KINDS[code]
    fields["body_kind"] = body_kind
    return fields


def message_vector(name, body=None, inferred=False, properties=None,
                   annotations=None, instructions=None, body_kind=None, **fields):
    """Build a proton.Message from ``fields`` (keys as in the JSON ``fields``)."""
    msg = Message(body=body, inferred=inferred)
    if properties is not None:
        msg.properties = properties
    if annotations is not None:
        msg.annotations = annotations
    if instructions is not None:
        msg.instructions = instructions
    for key, value in fields.items():
        if key in MS_ATTRS:
            secs = value / 1000
            assert int(secs * 1000) == value, "%s not exact in seconds" % key
            setattr(msg, MS_ATTRS[key], secs)
        else:
            setattr(msg, MESSAGE_ATTRS[key], value)
    buf = msg.encode()
    sections = decode_all(buf, check_reencode=False)

    expected = {}
    for key, value in fields.items():
        if key in ("message_id", "correlation_id"):
            expected[key] = id_typed(value)
        elif key == "user_id":
            expected[key] = value.hex()
        else:
            expected[key] = value
    expected["body_kind"] = body_kind
    got = fields_from_sections(sections)
    assert got == expected, "%s: fields %r != %r" % (name, got, expected)

    # proton's Message must decode its own output back to the same bytes
    again = Message()
    again.decode(buf)
    again.inferred = inferred
    assert again.encode() == buf, name
    return {"name": name, "kind": "message", "hex": buf.hex(),
            "sections": sections, "fields": dict(sorted(got.items()))}


def message_vectors():
    from proton import (ubyte, ushort, uint, ulong, byte, short, int32, float32,
                        symbol, char, timestamp, Described)
    out = []
    m = lambda name, **kw: out.append(message_vector(name, **kw))

    m("msg_empty", body_kind="none")
    m("msg_body_string", body="hello world", body_kind="value")
    m("msg_header_all", durable=True, priority=7, ttl_ms=5000,
      first_acquirer=True, delivery_count=3, body="h", body_kind="value")
    m("msg_header_durable", durable=True, body_kind="none")
    m("msg_header_priority_0", priority=0, body_kind="none")
    m("msg_header_ttl_small", ttl_ms=10, delivery_count=1, body_kind="none")
    m("msg_id_ulong", message_id=5, body_kind="none")
    m("msg_id_ulong_large", message_id=2**64 - 1, body_kind="none")
    m("msg_id_uuid", message_id=uuid.UUID(U1), body_kind="none")
    m("msg_id_string", message_id="msg-0001", body_kind="none")
    m("msg_id_binary", message_id=b"\x00\x01\x02\xff", body_kind="none")
    m("msg_properties_all",
      message_id="id-1", user_id=b"guest", to="queue1", subject="s",
      reply_to="reply-queue", correlation_id=uuid.UUID(U2),
      content_type="text/plain", content_encoding="gzip",
      expiry_time_ms=1700000005000, creation_time_ms=1700000000000,
      group_id="group-a", group_sequence=9, reply_to_group_id="group-b",
      body="payload", body_kind="value")
    m("msg_correlation_ulong", correlation_id=77, to="q", body_kind="none")
    m("msg_correlation_binary", correlation_id=b"corr", body_kind="none")
    m("msg_app_properties",
      properties={"str": "value", "long": 42, "neg": -7, "int": int32(-100000),
                  "uint": uint(4000000000), "ubyte": ubyte(200),
                  "ushort": ushort(65535), "byte": byte(-3), "short": short(-300),
                  "ulong": ulong(2**64 - 1), "bool": True, "double": 1.25,
                  "float": float32(0.5), "ts": timestamp(1700000000000),
                  "uuid": uuid.UUID(U1), "bin": b"\x01\x02", "sym": symbol("s"),
                  "char": char("\u00e9"), "null": None,
                  "unicode-\u00e9": "\U0001F600"},
      to="queue1", body="with props", body_kind="value")
    m("msg_delivery_annotations",
      instructions={symbol("x-opt-trace"): "abc", "x-opt-hops": int32(2)},
      body_kind="none")
    m("msg_message_annotations",
      annotations={"x-opt-jms-dest": ubyte(0), "x-opt-partition-key": "pk-1",
                   symbol("x-opt-enqueued-time"): timestamp(1700000000000),
                   symbol("x-opt-sequence-number"): 123456789,
                   ulong(42): "ulong key"},
      body="annotated", body_kind="value")
    m("msg_all_sections",
      durable=True, priority=9, ttl_ms=60000,
      instructions={"x-opt-di": "d"},
      annotations={"x-opt-ma": symbol("v")},
      message_id=1, to="topic/a", subject="subj",
      properties={"k": "v", "n": 1},
      body=b"\x00data\xff", inferred=True, body_kind="data")
    m("msg_body_binary_data", body=b"binary body", inferred=True, body_kind="data")
    m("msg_body_binary_empty_data", body=b"", inferred=True, body_kind="data")
    m("msg_body_binary_value", body=b"binary body", inferred=False, body_kind="value")
    m("msg_body_sequence", body=[1, "two", symbol("three"), None], inferred=True,
      body_kind="sequence")
    m("msg_body_sequence_empty", body=[], inferred=True, body_kind="sequence")
    m("msg_body_list_value", body=[1, "two", 3.0], inferred=False, body_kind="value")
    m("msg_body_map_value",
      body={"a": 1, symbol("b"): [True, False], "c": {"nested": None}},
      body_kind="value")
    m("msg_body_null_value", body=None, body_kind="none")
    m("msg_body_uint_value", body=uint(7), body_kind="value")
    m("msg_body_described_value",
      body=Described(symbol("com.example:body"), "described body"), body_kind="value")
    m("msg_body_unicode_value", body="\u65e5\u672c\u8a9e \U0001F600", body_kind="value")
    m("msg_body_100_bytes", body=bytes(range(100)), inferred=True, body_kind="data")
    m("msg_body_64k", body=bytes(range(256)) * 256, inferred=True, durable=True,
      message_id=65536, body_kind="data")
    return out


# ---------------------------------------------------------------------------

def main():
    vectors = [value_vector(name, typed) for name, typed in value_cases()]
    vectors += message_vectors()
    names = [v["name"] for v in vectors]
    assert len(names) == len(set(names)), "duplicate vector names"

    generator = "Apache Qpid Proton %s (python3-qpid-proton; proton.Data / " \
                "proton.Message) via crates/codec/tests/golden/generate.py" \
                % ".".join(map(str, proton.VERSION))
    # One vector per line keeps diffs readable; key order within a vector is
    # fixed (name, kind, hex, expected | sections, fields).
    lines = ['{"generator": %s, "vectors": [' % json.dumps(generator)]
    for i, vec in enumerate(vectors):
        sep = "," if i + 1 < len(vectors) else ""
        lines.append("  " + json.dumps(vec, ensure_ascii=False) + sep)
    lines.append("]}")
    text = "\n".join(lines) + "\n"
    json.loads(text)  # sanity: valid JSON
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print("wrote %d vectors (%d bytes) to %s" % (len(vectors), len(text.encode()), OUT),
          file=sys.stderr)


if __name__ == "__main__":
    main()
