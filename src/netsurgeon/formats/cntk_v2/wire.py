"""The CNTK v2 model file as Python values: decode and encode ``CNTK.proto.Dictionary``.

A CNTK 2.x ``Function.save`` file is one protobuf ``CNTK.proto.Dictionary`` (cntk-v2-format.md
§2), or, for models of 2 GiB and more, the large-file variant: the magic ``ktnc``, a u32
metadata length M, M bytes of Dictionary whose tensors have no values, then the raw tensor
data (§8). This module turns either into a :class:`Model` whose ``top`` is a plain ``dict``
and back, and nothing more: what the Dictionary *means* (functions, variables) is the
reader's business.

Each ``DictionaryValue`` becomes a Python value whose type says which ``value_type`` it had,
so that ``encode(decode(data))`` writes the same types again (CNTK's reader is strict about
them, §2.2):

====================  =========================================================
value_type            Python value
====================  =========================================================
None                  ``None``
Bool                  ``bool``
Int (int32)           :class:`Int` (an ``int``)
SizeT (uint64)        :class:`SizeT` (an ``int``)
Float (float32)       :class:`Float` (a ``float`` holding a float32 value)
Double                ``float``
String                ``str``
NDShape               :class:`Shape` (a ``tuple`` of dims in CNTK order)
Axis                  :class:`Axis`
Vector                ``list``
Dictionary            ``dict[str, value]``, in wire order
NDArrayView           :class:`Tensor`
====================  =========================================================

When encoding, a plain ``int`` is written as SizeT and a plain ``float`` as Double (the types
CNTK uses for most attributes); a ``tuple`` or ``list`` is a Vector; a numpy array is an
NDArrayView of its dtype. Use :class:`Int` and :class:`Float` where CNTK wants those.

The schema is written here in Python (``descriptor_pb2`` built by code, in a private
descriptor pool): no ``protoc``, no generated module. Two variants are built from one
listing. The *canonical* one is the spec's listing (``map<string, DictionaryValue> data``,
``repeated float`` values). The one used for decoding and encoding has the same wire format
but keeps what the canonical one loses or makes slow: ``data`` is a ``repeated DataEntry``
(upb iterates a map in hash order, so a map loses the entry order and with it byte-identical
re-encoding), and the float and double values are ``repeated bytes`` (a packed field is one
length-delimited record, so each arrives as the raw little-endian bytes that
``np.frombuffer`` reads without a Python float per element). Float tensors of 4 KiB and
more are not parsed by protobuf at all: they become views of the input (:func:`_cut`).

Re-encoding is byte-identical for files in CNTK's layout (fields in number order, packed
values, one version number throughout, §2.1): all CNTK 2.x files. Unknown fields are skipped,
as CNTK does, and every nested ``version`` field is written as the Dictionary's.

Untrusted input: any defect is a :class:`WireError` (a ``FormatError``) naming the file, the
byte offset and the path of the value concerned (``inputs[3].value``). Nothing is allocated
beyond what the input's size can hold: shapes are checked against the values present (or
the tail left) before any array exists. A file that protobuf refuses is walked again by a
small pure-Python scanner to find where and why (that costs time only on the error path).
Nesting is limited by protobuf (upb): 100 messages below the top, which is 33 levels of
Dictionary in Dictionary (3 messages each) or 49 of Vector in Vector; :func:`encode`
refuses what could not be read back.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, EncodeError

from netsurgeon.errors import FormatError
from netsurgeon.formats._protobuf import MAX_VARINT_BYTES, read_varint
from netsurgeon.formats.cntk_v2.detect import HEAD_BYTES, LARGE_MAGIC, looks_v2
from netsurgeon.formats.cntk_v2.values import U64 as _U64
from netsurgeon.formats.cntk_v2.values import (
    Axis,
    Float,
    Int,
    Model,
    Shape,
    SizeT,
    Tensor,
    Value,
)

__all__ = [
    "Int", "SizeT", "Float", "Shape", "Axis", "Tensor", "Model", "Value", "WireError",
    "decode", "encode", "encode_parts", "looks_v2", "proto_classes",
    "LARGE_MAGIC", "HEAD_BYTES", "MAX_DEPTH", "LARGE_THRESHOLD",
]

MAX_DEPTH = 100  # nested messages below the top Dictionary that protobuf (upb) parses
LARGE_THRESHOLD = 2**31 - 1  # CNTK writes the large variant from INT32_MAX bytes on (§8)
_LEN = struct.Struct("<I")
_FLOAT32_MAX = float(np.finfo(np.float32).max)


# ---- errors -----------------------------------------------------------------------------
class WireError(FormatError):
    """A CNTK v2 file (or value to encode) that is not a valid ``CNTK.proto.Dictionary``.

    Attributes:
        path: the file (``where``).
        offset: byte offset of the problem, or None when unknown (encoding).
        approx: True when the offset is only an upper bound ("at or before byte N").
        what: the value concerned, as a path (``inputs[3].value``), or the part being read.
    """

    def __init__(self, message: str, *, path: str | None = None, offset: int | None = None,
                 approx: bool = False, what: str | None = None) -> None:
        self.path, self.offset, self.approx, self.what = path, offset, approx, what
        parts = [path] if path else []
        if offset is not None:
            parts.append(f"{'at or before ' if approx else ''}byte {offset}")
        if what:
            parts.append(f"in {what}")
        super().__init__((", ".join(parts) + ": " if parts else "") + message)


class _Bad(Exception):
    """Internal: a defect found deep in a value; the path is collected while unwinding."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.steps: list[str | int] = []  # innermost first


def _path_text(steps: list[str | int]) -> str:
    if len(steps) > 12:
        steps = [*steps[:4], f"({len(steps) - 8} more levels)", *steps[-4:]]
    text = ""
    for step in steps:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text or "the top Dictionary"


# ---- schema -----------------------------------------------------------------------------
_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "uint64": _F.TYPE_UINT64, "int32": _F.TYPE_INT32, "sint32": _F.TYPE_SINT32,
    "bool": _F.TYPE_BOOL, "float": _F.TYPE_FLOAT, "double": _F.TYPE_DOUBLE,
    "string": _F.TYPE_STRING, "bytes": _F.TYPE_BYTES,
}
_ENUMS = {
    "NDArrayView.DataType": [("Unknown", 0), ("Float", 1), ("Double", 2), ("Float16", 4),
                             ("Int8", 5), ("Int16", 6)],
    "NDArrayView.StorageFormat": [("Dense", 0), ("SparseCSC", 1), ("SparseBlockCol", 2)],
    "DictionaryValue.Type": [(n, i) for i, n in enumerate(
        "None Bool Int SizeT Float Double String NDShape Axis Vector Dictionary "
        "NDArrayView".split())],
}


def _listing(canonical: bool) -> dict[str, list[tuple]]:
    """Messages of §2 as ``(field, number, type, repeated, oneof)``; a type is a scalar
    name, an enum or a message (dotted names are nested). ``canonical=False`` gives the
    wire-identical variant this module decodes with (see the module docstring)."""
    packed_real = "float" if canonical else "bytes"
    packed_double = "double" if canonical else "bytes"
    return {
        "NDShape": [("shape_dim", 1, "uint64", True, None)],
        "Axis": [("static_axis_idx", 1, "int32", False, None), ("name", 2, "string", False, None),
                 ("is_ordered_dynamic_axis", 3, "bool", False, None)],
        "NDArrayView.FloatValues": [("value", 1, packed_real, True, None)],
        "NDArrayView.DoubleValues": [("value", 1, packed_double, True, None)],
        "NDArrayView.BytesValue": [("value", 1, "bytes", False, None)],
        "NDArrayView.IntValues": [("value", 1, "sint32", True, None)],
        "NDArrayView": [
            ("data_type", 1, "NDArrayView.DataType", False, None),
            ("storage_format", 2, "NDArrayView.StorageFormat", False, None),
            ("shape", 3, "NDShape", False, None),
            ("float_values", 4, "NDArrayView.FloatValues", False, "values"),
            ("double_values", 5, "NDArrayView.DoubleValues", False, "values"),
            ("bytes_value", 6, "NDArrayView.BytesValue", False, "values"),
            ("sint32_values", 7, "NDArrayView.IntValues", False, "values")],
        "Vector": [("value", 1, "DictionaryValue", True, None)],
        "Dictionary.DataEntry": [("key", 1, "string", False, None),
                                 ("value", 2, "DictionaryValue", False, None)],
        "Dictionary": [("version", 1, "uint64", False, None),
                       ("data", 2, "Dictionary.DataEntry", True, None)],
        "DictionaryValue": [("version", 1, "uint64", False, None),
                            ("value_type", 2, "DictionaryValue.Type", False, None)] + [
            (name, number, kind, False, "value") for number, (name, kind) in enumerate([
                ("bool_value", "bool"), ("int_value", "int32"), ("size_t_value", "uint64"),
                ("float_value", "float"), ("double_value", "double"),
                ("string_value", "string"), ("nd_shape_value", "NDShape"),
                ("axis_value", "Axis"), ("vector_value", "Vector"),
                ("dictionary_value", "Dictionary"), ("nd_array_view_value", "NDArrayView")],
                start=3)],
    }


def _file_proto(canonical: bool) -> descriptor_pb2.FileDescriptorProto:
    """The FileDescriptorProto of package ``CNTK.proto`` (proto3), built by code."""
    fp = descriptor_pb2.FileDescriptorProto(
        name="CNTK/proto/cntk_v2.proto" if canonical else "CNTK/proto/cntk_v2_wire.proto",
        package="CNTK.proto", syntax="proto3")
    messages: dict[str, descriptor_pb2.DescriptorProto] = {}
    listing = _listing(canonical)
    for dotted in sorted(listing, key=lambda n: n.count(".")):  # outer messages first
        outer, _, inner = dotted.rpartition(".")
        holder = messages[outer].nested_type if outer else fp.message_type
        messages[dotted] = holder.add(name=inner)
    for dotted, values in _ENUMS.items():
        outer, _, inner = dotted.rpartition(".")
        enum = messages[outer].enum_type.add(name=inner)
        for name, number in values:
            enum.value.add(name=name, number=number)
    for dotted, fields in listing.items():
        _add_fields(messages[dotted], fields, listing)
    if canonical:
        messages["Dictionary.DataEntry"].options.map_entry = True
    return fp


def _add_fields(msg: descriptor_pb2.DescriptorProto, fields: list[tuple],
                listing: Mapping[str, Any]) -> None:
    oneofs: dict[str, int] = {}
    for name, number, kind, repeated, oneof in fields:
        f = msg.field.add(name=name, number=number, json_name=_json_name(name),
                          label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
        if kind in _SCALARS:
            f.type = _SCALARS[kind]
            if repeated and kind not in ("string", "bytes"):
                f.options.packed = True
        else:
            f.type = _F.TYPE_ENUM if kind in _ENUMS else _F.TYPE_MESSAGE
            f.type_name = ".CNTK.proto." + kind
        if oneof is not None:
            if oneof not in oneofs:
                oneofs[oneof] = len(msg.oneof_decl)
                msg.oneof_decl.add(name=oneof)
            f.oneof_index = oneofs[oneof]


def _json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


@lru_cache(maxsize=2)
def proto_classes(canonical: bool = True) -> dict[str, type]:
    """The message classes of §2 by name (``Dictionary``, ``DictionaryValue``, ``NDArrayView``,
    ``NDArrayView.FloatValues``...), from a private descriptor pool.

    ``canonical=True``: the spec's listing as is (a map, repeated floats), for comparing
    with other protobuf tools. ``canonical=False``: the wire-identical variant that
    :func:`decode` and :func:`encode` use."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file_proto(canonical))
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName("CNTK.proto."
                                                                            + name))
            for name in _listing(canonical)}


# ---- decoding ---------------------------------------------------------------------------
_TYPE_NAMES = _ENUMS["DictionaryValue.Type"]
_MEMBER_OF_TYPE = {code: member for code, member in enumerate([
    None, "bool_value", "int_value", "size_t_value", "float_value", "double_value",
    "string_value", "nd_shape_value", "axis_value", "vector_value", "dictionary_value",
    "nd_array_view_value"])}
_SCALAR_READ: dict[str, Any] = {
    "bool_value": bool, "int_value": Int, "size_t_value": SizeT, "float_value": Float,
    "double_value": float, "string_value": str,
}
_VALUES_OF_DTYPE = {1: "float_values", 2: "double_values", 4: "float_values",
                    5: "bytes_value", 6: "sint32_values"}
_DTYPE_NAMES = {v: k for k, v in _ENUMS["NDArrayView.DataType"]}
_SPECIAL_DIM = 2**63  # dims from here on are the special values of §2.3
_CUT_MIN = 4096  # float payloads of a plain file from this many bytes on are not parsed


def decode(data: bytes | bytearray | memoryview, *, where: str = "") -> Model:
    """Decode a CNTK v2 model file held in ``data`` (plain or large variant).

    ``where`` names the file in error messages. Every defect raises :class:`WireError`.
    Float and double tensors of 4 KiB and more are read-only views of ``data`` (keep it
    unchanged while they are in use), in a plain file as in a large one: protobuf parses
    the file with those payloads cut out (:func:`_cut`), so it neither copies nor holds
    them, and the Python value tree is all that is built."""
    where = where or "<bytes>"
    view = data if isinstance(data, bytes) else memoryview(data).cast("B").toreadonly()
    size = len(view)
    if size == 0:
        raise WireError("empty input: not a CNTK v2 model", path=where, offset=0)
    if bytes(view[:4]) == LARGE_MAGIC:
        return _decode_large(view, where)
    cut = _cut(view)
    if cut is not None:
        model = _decode_cut(view, cut)
        if model is not None:
            return model
    msg = _parse(view, 0, size, where)
    return Model(_walk(_Decoder(view), msg, view, 0, where), int(msg.version), False)


def _parse(meta: Any, base: int, size: int, where: str) -> Any:
    try:
        return proto_classes(False)["Dictionary"].FromString(meta)
    except DecodeError as exc:
        raise _scan_error(bytes(meta), base, size, where, str(exc)) from None


def _walk(decoder: _Decoder, msg: Any, meta: Any, base: int, where: str) -> dict[str, Any]:
    try:
        return decoder.dictionary(msg, 0)
    except _Bad as bad:
        raise _located(bad, meta, base, where) from None


def _decode_large(view: Any, where: str) -> Model:
    """The large-file variant (§8): M bytes of Dictionary, then the tensor blocks."""
    size = len(view)
    if size < 8:
        raise WireError(f"truncated large-file header: {size} bytes, 8 needed", path=where,
                        offset=size, what="the large-file header")
    (m,) = _LEN.unpack(bytes(view[4:8]))
    if 8 + m > size:
        raise WireError(f"metadata length {m} runs past the end of the file ({size} bytes)",
                        path=where, offset=4, what="the large-file header")
    meta = bytes(view[8:8 + m])
    msg = _parse(meta, 8, size, where)
    decoder = _Decoder(view, tail=8 + m)
    top = _walk(decoder, msg, meta, 8, where)
    if decoder.tail != size:
        raise WireError(f"{size - decoder.tail} bytes after the last tensor block", path=where,
                        offset=decoder.tail, what="the tensor data")
    return Model(top, int(msg.version), True)


def _decode_cut(view: Any, cut: _Cut) -> Model | None:
    """The model read from a plain file's cut metadata, or None when that is not exactly
    the file's reading (the caller then reads the file as it is, with its own errors)."""
    try:
        msg = proto_classes(False)["Dictionary"].FromString(cut.meta)
        decoder = _Decoder(view, cut=cut)
        top = decoder.dictionary(msg, 0)
    except (DecodeError, _Bad):
        return None
    if len(decoder.used) != len(cut.blocks):
        return None
    return Model(top, int(msg.version), False)


def _located(bad: _Bad, meta: Any, base: int, where: str) -> WireError:
    steps = list(reversed(bad.steps))
    offset = bad.offset
    if offset is None:
        found = _locate(bytes(meta), steps)
        offset = None if found is None else base + found
    return WireError(bad.message, path=where, offset=offset, what=_path_text(steps))


class _Decoder:
    """One decode: the Dictionary tree into Python values; tensor data from the message,
    from the cut payloads of a plain file, or from the tail of a large one."""

    def __init__(self, data: Any, tail: int | None = None, cut: _Cut | None = None) -> None:
        self.data = data
        self.tail = tail  # file offset of the next large-file block
        self.cut = cut
        self.used: set[int] = set()  # the cut payloads taken
        self.read = {
            "nd_shape_value": self.shape, "axis_value": self.axis,
            "vector_value": self.vector, "dictionary_value": self.dictionary,
            "nd_array_view_value": self.tensor,
        }

    def dictionary(self, msg: Any, depth: int) -> dict[str, Any]:
        """A Dictionary, in wire order (a repeated key keeps its first place and its last
        value, as protobuf's map does). This loop and the next are the hot path: a
        DictionaryValue whose member is the one its type names is read inline."""
        if depth > MAX_DEPTH:
            raise _Bad(f"Dictionaries and Vectors nested deeper than {MAX_DEPTH}")
        out: dict[str, Any] = {}
        member_of, scalar, read = _MEMBER_OF_TYPE, _SCALAR_READ, self.read
        key = ""
        try:
            for entry in msg.data:
                key = entry.key
                dv = entry.value
                member = member_of.get(dv.value_type, "?")
                held = dv.WhichOneof("value")
                if held is None or held != member:
                    out[key] = self.unusual(dv, member, held, depth)
                    continue
                conv = scalar.get(held)
                out[key] = (conv(getattr(dv, held)) if conv is not None
                            else read[held](getattr(dv, held), depth + 1))
        except _Bad as bad:
            bad.steps.append(key)
            raise
        return out

    def vector(self, msg: Any, depth: int) -> list[Any]:
        """A Vector (read like :meth:`dictionary`)."""
        if depth > MAX_DEPTH:
            raise _Bad(f"Dictionaries and Vectors nested deeper than {MAX_DEPTH}")
        out: list[Any] = []
        member_of, scalar, read = _MEMBER_OF_TYPE, _SCALAR_READ, self.read
        try:
            for dv in msg.value:
                member = member_of.get(dv.value_type, "?")
                held = dv.WhichOneof("value")
                if held is None or held != member:
                    out.append(self.unusual(dv, member, held, depth))
                    continue
                conv = scalar.get(held)
                out.append(conv(getattr(dv, held)) if conv is not None
                           else read[held](getattr(dv, held), depth + 1))
        except _Bad as bad:
            bad.steps.append(len(out))
            raise
        return out

    def unusual(self, dv: Any, member: str | None, held: str | None, depth: int) -> Any:
        """A DictionaryValue of type None, or whose member is missing or another one. A
        missing member reads as its proto3 default, as in CNTK; another member, or an
        unknown type, is an error."""
        if held is not None or member == "?":
            raise _Bad(_type_mismatch(dv.value_type, held))
        if member is None:
            return None
        conv = _SCALAR_READ.get(member)
        if conv is not None:
            return conv(getattr(dv, member))
        return self.read[member](getattr(dv, member), depth + 1)

    @staticmethod
    def shape(msg: Any, depth: int) -> Shape:
        return tuple.__new__(Shape, msg.shape_dim)

    @staticmethod
    def axis(msg: Any, depth: int) -> Axis:
        return Axis(msg.static_axis_idx, msg.name, msg.is_ordered_dynamic_axis)

    def tensor(self, nd: Any, depth: int) -> Tensor:
        dt = nd.data_type
        member = _VALUES_OF_DTYPE.get(dt)
        if member is None:
            raise _Bad(f"NDArrayView data_type {dt} ({_DTYPE_NAMES.get(dt, 'unknown')}) is "
                       "not a tensor type")
        if nd.storage_format != 0:
            raise _Bad(f"NDArrayView storage_format {nd.storage_format} is sparse; only "
                       "Dense (0) can be stored (CNTK cannot serialize sparse values)")
        dims = tuple(nd.shape.shape_dim)
        count = _element_count(dims)
        held = nd.WhichOneof("values")
        if held is not None and held != member:
            raise _Bad(f"NDArrayView of data_type {_DTYPE_NAMES[dt]} holds {held}")
        if held is None:
            flat = np.empty(0, Tensor.DTYPES[dt])
        elif held in ("float_values", "double_values"):
            flat = self.floats(getattr(nd, held), dt, count)
        else:
            flat = _inline(getattr(nd, held), held)
        if flat.size != count:
            flat = self.tail_block(dt, count, flat.size)
        return Tensor(dt, tuple.__new__(Shape, dims), flat.reshape(dims[::-1]))

    def floats(self, sub: Any, dt: int, count: int) -> np.ndarray:
        """Float/double values: a view of a cut payload (see :func:`_cut`) if the message
        holds its marker, else the packed bytes the message holds."""
        chunks = sub.value
        raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        dtype = "<f8" if dt == Tensor.DOUBLE else "<f4"
        cut = self.cut
        if cut is not None and len(raw) == _MARKER_SIZE and raw[:8] == cut.nonce:
            flat = self.cut_payload(int.from_bytes(raw[8:], "little"), dtype, count)
        else:
            flat = _packed(raw, sub, dtype, count)
        if dt == Tensor.FLOAT16:
            with np.errstate(over="ignore"):
                flat = flat.astype(np.float16)
        return flat

    def cut_payload(self, k: int, dtype: str, count: int) -> np.ndarray:
        blocks = self.cut.blocks  # type: ignore[union-attr]
        if k >= len(blocks) or k in self.used:
            raise _Bad("a cut payload is not where it was cut")  # read the file as it is
        a, b = blocks[k]
        if b - a != count * np.dtype(dtype).itemsize:
            raise _Bad("a cut payload does not fit its shape")  # read the file as it is
        self.used.add(k)
        return np.frombuffer(self.data, dtype, count, a)

    def tail_block(self, dt: int, count: int, inline: int) -> np.ndarray:
        """The values of a tensor of a large file, from the tail (§8), in file order."""
        if self.tail is None or inline:
            raise _Bad(f"the NDArrayView holds {inline} values but its shape needs {count}")
        if dt not in (Tensor.FLOAT, Tensor.DOUBLE):
            raise _Bad(f"a {_DTYPE_NAMES[dt]} tensor in a large file: CNTK writes such tails "
                       "so they cannot be read back (only Float and Double work, §8)")
        dtype = Tensor.DTYPES[dt]
        n = count * dtype.itemsize
        left = len(self.data) - self.tail
        if n > left:
            raise _Bad(f"truncated tensor data: {count} {_DTYPE_NAMES[dt]} values need {n} "
                       f"bytes, {left} remain", self.tail)
        if count == 0:
            return np.empty(0, dtype)
        flat = np.frombuffer(self.data, dtype, count, self.tail)
        self.tail += n
        return flat


# ---- a plain file's big payloads, cut out of the protobuf parse -------------------------
_MARKER_SIZE = 16  # 8 random bytes (per decode) + the payload's index, u64 LE
_DESCEND = {  # the sub-messages that can hold float payloads, by field number
    "Dictionary": {2: "DataEntry"}, "DataEntry": {2: "DictionaryValue"},
    "DictionaryValue": {11: "Vector", 12: "Dictionary", 13: "NDArrayView"},
    "Vector": {1: "DictionaryValue"}, "NDArrayView": {4: "Values", 5: "Values"},
    "Values": {1: None},  # FloatValues/DoubleValues: field 1 is the packed payload
}


@dataclass
class _Cut:
    """A plain file's Dictionary with its big float payloads replaced by markers."""

    meta: bytes  # what protobuf parses
    blocks: list[tuple[int, int]]  # the payloads' [start, end) in the file, by marker index
    nonce: bytes  # the first 8 bytes of every marker


def _cut(data: Any) -> _Cut | None:
    """The file with each float/double payload of ``_CUT_MIN`` bytes or more replaced by a
    16-byte marker and the lengths of the messages around it fixed, or None (nothing to
    cut, or bytes the scan does not understand: then the file is parsed as it is).

    Why: protobuf would copy every payload into its own memory, and reading it back out
    copies it again; cut, the parse is of the small metadata and each tensor is a view of
    the file. The scan follows the schema but enters only records of ``_CUT_MIN`` bytes or
    more, so it looks at a few hundred records, not at every value. It is exact: a marker
    is a payload the parse of the cut bytes puts where the parse of the file would have put
    the payload itself, and :func:`_decode_cut` accepts the result only if every marker
    ends up, once, in a tensor whose shape needs exactly that many bytes."""
    if len(data) < _CUT_MIN:
        return None
    cutter = _Cutter(data)
    try:
        pieces = cutter.message(0, len(data), "Dictionary", 0)
    except (_Bad, IndexError, RecursionError):
        return None
    if not cutter.blocks:
        return None
    return _Cut(b"".join(pieces), cutter.blocks, cutter.nonce)


class _Cutter:
    def __init__(self, data: Any) -> None:
        self.data = data
        self.blocks: list[tuple[int, int]] = []
        self.nonce = os.urandom(8)

    def message(self, a: int, b: int, kind: str, depth: int) -> list[Any]:
        """The pieces that make up the new payload of the message ``data[a:b]``."""
        data, fields = self.data, _DESCEND[kind]
        pieces: list[Any] = []
        keep = pos = a  # data[keep:pos] is unchanged so far
        while pos < b:  # 1-byte tags, lengths and varints inline: the common case
            at = pos
            tag = data[pos]
            if tag < 0x80:
                pos += 1
            else:
                tag, pos = _varint(data, at, b)
            if tag & 7 != 2:
                if tag & 7 == 0 and pos < b and data[pos] < 0x80:
                    pos += 1
                else:
                    pos = _skip(data, pos, b, tag, at)
                continue
            if pos < b and data[pos] < 0x80:
                n, body = data[pos], pos + 1
            else:
                n, body = _varint(data, pos, b)
            end = body + n
            if end > b:
                raise _Bad("truncated", at)
            if n >= _CUT_MIN and (tag >> 3) in fields:
                inner = self.inner(body, end, fields[tag >> 3], depth)
                pieces.append(data[keep:pos])
                pieces.append(_varint_bytes(sum(map(len, inner))))
                pieces.extend(inner)
                keep = end
            pos = end
        pieces.append(data[keep:b])
        return pieces

    def inner(self, body: int, end: int, kind: str | None, depth: int) -> list[Any]:
        if kind is None:  # a payload: its marker
            self.blocks.append((body, end))
            return [self.nonce + (len(self.blocks) - 1).to_bytes(8, "little")]
        if depth >= MAX_DEPTH:
            raise _Bad("too deep")
        return self.message(body, end, kind, depth + 1)


def _varint_bytes(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _type_mismatch(code: int, held: str | None) -> str:
    if code not in _MEMBER_OF_TYPE:
        return f"unknown value_type {code}"
    name = _TYPE_NAMES[code][0]
    return f"value_type {code} ({name}) but the value holds {held or 'nothing'}"


def _element_count(dims: tuple[int, ...]) -> int:
    for d in dims:
        if d >= _SPECIAL_DIM:
            raise _Bad(f"tensor shape {list(dims)} has a special (inferred/free/unknown) "
                       "dimension")
    return math.prod(dims)


def _inline(sub: Any, member: str) -> np.ndarray:
    """Int8 or Int16 values held in the message, as a flat array."""
    if member == "bytes_value":
        return np.frombuffer(sub.value, np.int8)
    return _int16(np.array(sub.value, dtype=np.int64))


def _packed(raw: bytes, sub: Any, dtype: str, count: int) -> np.ndarray:
    """Packed float/double values (``raw``: the bytes of the message's records)."""
    itemsize = 8 if dtype == "<f8" else 4
    if len(raw) % itemsize:
        member = "double_values" if itemsize == 8 else "float_values"
        raise _Bad(f"{member} has {len(raw)} bytes, not a whole number of {itemsize}-byte "
                   "values")
    flat = np.frombuffer(raw, dtype)
    if flat.size != count:
        flat = _unpacked(sub, "double_values" if itemsize == 8 else "float_values", flat)
    return flat


def _unpacked(sub: Any, member: str, packed: np.ndarray) -> np.ndarray:
    """Values written one record each (legal protobuf, never by CNTK): upb keeps them as
    unknown fields of the bytes variant; the canonical schema reads them."""
    name = "NDArrayView.DoubleValues" if member == "double_values" else "NDArrayView.FloatValues"
    try:
        values = proto_classes(True)[name].FromString(sub.SerializeToString()).value
    except DecodeError:
        return packed
    if len(values) == packed.size:
        return packed
    if packed.size:
        raise _Bad(f"{member} mixes packed and unpacked records")
    return np.array(values, dtype=packed.dtype)


def _int16(values: np.ndarray) -> np.ndarray:
    if values.size and (values.min() < -32768 or values.max() > 32767):
        raise _Bad("an Int16 tensor holds a value outside the int16 range")
    return values.astype("<i2")


# ---- the error path: where protobuf's parse failed, and where a value is ----------------
_WIRE = {"v": 0, "f8": 1, "s": 2, "b": 2, "f4": 5, "pv": 0, "p4": 5, "p8": 1}
_SCAN = {
    "Dictionary": {1: "v", 2: "DataEntry"},
    "DataEntry": {1: "s", 2: "DictionaryValue"},
    "DictionaryValue": {1: "v", 2: "v", 3: "v", 4: "v", 5: "v", 6: "f4", 7: "f8", 8: "s",
                        9: "NDShape", 10: "Axis", 11: "Vector", 12: "Dictionary",
                        13: "NDArrayView"},
    "Vector": {1: "DictionaryValue"},
    "NDShape": {1: "pv"},
    "Axis": {1: "v", 2: "s", 3: "v"},
    "NDArrayView": {1: "v", 2: "v", 3: "NDShape", 4: "FloatValues", 5: "DoubleValues",
                    6: "BytesValue", 7: "IntValues"},
    "FloatValues": {1: "p4"}, "DoubleValues": {1: "p8"}, "BytesValue": {1: "b"},
    "IntValues": {1: "pv"},
}


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    found = read_varint(data, pos, end)
    if found is None:
        if end - pos >= MAX_VARINT_BYTES:
            raise _Bad("bad wire data: a varint longer than 10 bytes", pos)
        raise _Bad("truncated varint", pos)
    return found


def _records(data: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """Wire records of one message: ``(field, wire type, a, b, tag offset)`` where a
    varint's value is ``a`` and a length-delimited, fixed or group payload is
    ``data[a:b]``."""
    while pos < end:
        at = pos
        tag, pos = _varint(data, pos, end)
        number, wt = tag >> 3, tag & 7
        if number == 0 or number >= 1 << 29:
            raise _Bad(f"bad wire data: field number {number}", at)
        if wt == 0:
            value, pos = _varint(data, pos, end)
            yield number, wt, value, pos, at
            continue
        start = pos
        pos = _skip(data, pos, end, tag, at)
        if wt == 2:
            start = _varint(data, start, end)[1]
        yield number, wt, start, pos, at


def _skip(data: bytes, pos: int, end: int, tag: int, at: int) -> int:
    """The offset after the payload of the record with ``tag`` whose payload is at ``pos``."""
    number, wt = tag >> 3, tag & 7
    if wt == 0:
        return _varint(data, pos, end)[1]
    if wt == 2:
        n, pos = _varint(data, pos, end)
    elif wt in (1, 5):
        n = 8 if wt == 1 else 4
    elif wt == 3:
        return _skip_group(data, pos, end, number, at)
    else:
        raise _Bad(f"bad wire data: wire type {wt} (field {number})", at)
    if n > end - pos:
        raise _Bad(f"truncated: field {number} needs {n} bytes, {end - pos} remain", at)
    return pos + n


def _skip_group(data: bytes, pos: int, end: int, number: int, at: int) -> int:
    while pos < end:
        inner = pos
        tag, pos = _varint(data, pos, end)
        if tag & 7 == 4:
            if tag >> 3 != number:
                raise _Bad(f"bad wire data: group {number} ended by field {tag >> 3}", inner)
            return pos
        pos = _skip(data, pos, end, tag, inner)
    raise _Bad(f"truncated: group {number} has no end", at)


def _scan_error(meta: bytes, base: int, size: int, where: str, reason: str) -> WireError:
    """The WireError for a Dictionary protobuf refused: found again by :func:`_scan`."""
    steps: list[str | int] = []
    try:
        _scan(meta, 0, len(meta), "Dictionary", 0, steps)
    except _Bad as bad:
        offset = None if bad.offset is None else base + bad.offset
        return WireError(bad.message, path=where, offset=offset, what=_path_text(steps))
    except RecursionError:
        pass
    return WireError(f"bad wire data ({reason})", path=where, offset=size, approx=True)


def _scan(data: bytes, start: int, end: int, name: str, depth: int,
          steps: list[str | int]) -> None:
    """Check one message like upb does; leaves ``steps`` at the value where it failed."""
    fields = _SCAN[name]
    index = 0
    key: str | None = None
    for number, wt, a, b, at in _records(data, start, end):
        kind = fields.get(number)
        if kind is None or kind not in _SCAN and _WIRE[kind] != wt and not (
                kind[0] == "p" and wt == 2):
            continue  # unknown field, or a known one with another wire type: skipped
        if kind in _SCAN:
            if wt != 2:
                continue
            if depth + 1 > MAX_DEPTH:
                raise _Bad(f"nesting deeper than {MAX_DEPTH} messages (protobuf's limit)", at)
            inner = key if name == "DataEntry" else index if name == "Vector" else None
            if inner is not None or name in ("DataEntry", "Vector"):
                steps.append("?" if inner is None else inner)
            _scan(data, a, b, kind, depth + 1, steps)
            if name in ("DataEntry", "Vector"):
                steps.pop()
            index += name == "Vector"
        elif kind == "s":
            text = _utf8(data, a, b)
            key = text if name == "DataEntry" else key
        else:
            _payload(data, kind, wt, a, b, at)


def _utf8(data: bytes, a: int, b: int) -> str:
    try:
        return data[a:b].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Bad("bad wire data: a string is not valid UTF-8", a + exc.start) from None


def _payload(data: bytes, kind: str, wt: int, a: int, b: int, at: int) -> None:
    if kind in ("p4", "p8") and wt == 2 and (b - a) % (4 if kind == "p4" else 8):
        raise _Bad(f"bad wire data: packed values of {b - a} bytes are not whole", a)
    if kind == "pv" and wt == 2:
        pos = a
        while pos < b:
            pos = _varint(data, pos, b)[1]


def _locate(data: bytes, steps: list[str | int]) -> int | None:
    """Offset of the record of the DictionaryValue at ``steps`` in a well-formed
    Dictionary (the last match wins, as in protobuf), or None."""
    try:
        span = (0, len(data))
        at: int | None = None
        for i, step in enumerate(steps):
            if i:  # inside a DictionaryValue: its Dictionary or Vector member
                span = _last(data, span, 12 if isinstance(step, str) else 11)[:2]
            span, at = _entry(data, span, step)
        return at
    except (_Bad, TypeError, IndexError, UnicodeDecodeError):
        return None


def _last(data: bytes, span: tuple[int, int], number: int) -> tuple[int, int, int]:
    found = None
    for f, wt, a, b, at in _records(data, *span):
        if f == number and wt == 2:
            found = (a, b, at)
    if found is None:
        raise IndexError(number)
    return found


def _entry(data: bytes, span: tuple[int, int], step: str | int) -> tuple[tuple[int, int], int]:
    """The value record of map entry ``step`` (a Dictionary) or element ``step`` (a Vector)."""
    matches = []
    for f, wt, a, b, at in _records(data, *span):
        if f != (2 if isinstance(step, str) else 1) or wt != 2:
            continue
        if isinstance(step, int):
            matches.append(((a, b), at))
            continue
        key = _last(data, (a, b), 1)
        if data[key[0]:key[1]].decode("utf-8") == step:
            value = _last(data, (a, b), 2)
            matches.append(((value[0], value[1]), value[2]))
    return matches[step] if isinstance(step, int) else matches[-1]


# ---- encoding ---------------------------------------------------------------------------
def encode(obj: Model | Mapping[str, Any], *, version: int | None = None,
           large: bool | None = None) -> bytes:
    """The file bytes of a :class:`Model` or of a top Dictionary given as a mapping.

    ``version`` (the Dictionary and DictionaryValue version fields) defaults to the model's,
    or 2 (CNTK 2.0 and later). ``large``: True writes the large-file variant, False a plain
    file; None keeps a model's own variant, and picks the large one when the file would
    reach 2 GiB (as CNTK does). Bad values raise :class:`WireError` with their path."""
    return b"".join(encode_parts(obj, version=version, large=large))


def encode_parts(obj: Model | Mapping[str, Any], *, version: int | None = None,
                 large: bool | None = None) -> list[bytes | memoryview]:
    """:func:`encode` as a list of buffers to write one after another (a large file's
    tensors are views of their arrays, not copies)."""
    top = obj.top if isinstance(obj, Model) else obj
    if version is None:
        version = obj.version if isinstance(obj, Model) else 2
    if not isinstance(version, int) or not 0 <= version < _U64:
        raise WireError(f"version {version!r} is not a uint64")
    if not isinstance(top, Mapping):
        raise WireError(f"the top Dictionary is a {type(top).__name__}, not a mapping")
    encoder = _Encoder(int(version))
    msg = proto_classes(False)["Dictionary"]()
    try:
        encoder.dictionary(msg, top, 0)
        large = encoder.choose(msg, large, isinstance(obj, Model) and obj.large)
        return encoder.parts(msg, large)
    except _Bad as bad:
        steps = list(reversed(bad.steps))
        raise WireError(bad.message, what=_path_text(steps) if steps else None) from None


@dataclass
class _Encoder:
    """One encode: Python values into messages; tensor values are filled in at the end,
    once the variant (plain or large) is known."""

    version: int
    tensors: list[tuple[Any, int, np.ndarray]] = field(default_factory=list)

    def dictionary(self, msg: Any, mapping: Mapping[str, Any], depth: int) -> None:
        _check_depth(depth)
        msg.version = self.version
        data = msg.data
        for key, value in mapping.items():
            try:
                if not isinstance(key, str):
                    raise _Bad(f"key {key!r} is not a str")
                entry = data.add()
                try:
                    entry.key = key
                except ValueError as exc:
                    raise _Bad(f"key {key!r} cannot be encoded: {exc}") from None
                self.value(entry.value, value, depth + 2)
            except _Bad as bad:
                bad.steps.append(key if isinstance(key, str) else repr(key))
                raise

    def vector(self, msg: Any, items: Any, depth: int) -> None:
        _check_depth(depth)
        msg.SetInParent()
        values = msg.value
        for i, item in enumerate(items):
            try:
                self.value(values.add(), item, depth + 1)
            except _Bad as bad:
                bad.steps.append(i)
                raise

    def value(self, dv: Any, v: Any, depth: int) -> None:
        _check_depth(depth)
        dv.version = self.version
        kind = _kind_of(v)
        dv.value_type = kind
        if kind == 0:
            return
        if kind <= 6:
            try:
                setattr(dv, _MEMBER_OF_TYPE[kind], _scalar(kind, v))
            except (ValueError, TypeError, OverflowError) as exc:
                raise _Bad(f"cannot encode {type(v).__name__} {_short(v)}: {exc}") from None
        elif kind == 7:
            _shape(dv.nd_shape_value, v)
        elif kind == 8:
            _axis(dv.axis_value, v)
        elif kind == 9:
            self.vector(dv.vector_value, v, depth + 1)
        elif kind == 10:
            self.dictionary(dv.dictionary_value, v, depth + 1)
        else:
            self.tensor(dv.nd_array_view_value, v, depth + 1)

    def tensor(self, nd: Any, v: Any, depth: int) -> None:
        _check_depth(depth + 1)
        if not isinstance(v, Tensor):
            try:
                v = Tensor.of(v)
            except FormatError as exc:
                raise _Bad(exc.message) from None
        t = v
        array = np.asarray(t.array)
        dtype = Tensor.DTYPES.get(t.data_type)
        if dtype is None:
            raise _Bad(f"tensor data_type {t.data_type!r} is not one of "
                       f"{sorted(Tensor.DTYPES)}")
        if array.dtype != dtype:
            raise _Bad(f"a {_DTYPE_NAMES[t.data_type]} tensor holds a {array.dtype} array")
        if tuple(reversed(array.shape)) != tuple(t.shape):
            raise _Bad(f"tensor shape {list(t.shape)} (CNTK order) does not match its array "
                       f"{array.shape} (numpy order)")
        nd.data_type = t.data_type
        _shape(nd.shape, t.shape)
        self.tensors.append((nd, t.data_type, array))

    def choose(self, msg: Any, large: bool | None, was_large: bool) -> bool:
        """Plain or large: as asked, else the model's, else large from 2 GiB on."""
        if large is None:
            large = was_large or self.size_bound(msg) >= LARGE_THRESHOLD
        if large:
            for _nd, dt, _ in self.tensors:
                if dt not in (Tensor.FLOAT, Tensor.DOUBLE):
                    raise _Bad(f"a large file cannot hold a {_DTYPE_NAMES[dt]} tensor: CNTK "
                               "writes and reads only Float and Double tails (§8)")
        elif self.size_bound(msg) >= LARGE_THRESHOLD:
            raise _Bad("the model reaches 2 GiB: only the large-file variant can hold it "
                       "(encode with large=True)")
        return bool(large)

    def size_bound(self, msg: Any) -> int:
        per = {1: 4, 2: 8, 4: 4, 5: 1, 6: 3}
        return msg.ByteSize() + sum(a.size * per[dt] + 16 for _, dt, a in self.tensors)

    def parts(self, msg: Any, large: bool) -> list[bytes | memoryview]:
        if not large:
            for nd, dt, array in self.tensors:
                _fill(nd, dt, array)
            try:
                return [msg.SerializeToString()]
            except EncodeError as exc:
                raise _Bad(f"protobuf cannot serialize the Dictionary: {exc}") from None
        meta = msg.SerializeToString()
        if len(meta) >= 2**32:
            raise _Bad(f"the metadata ({len(meta)} bytes) does not fit the u32 length field")
        tail = [memoryview(np.ascontiguousarray(a, Tensor.DTYPES[dt])).cast("B")
                for _, dt, a in self.tensors if a.size]
        return [LARGE_MAGIC + _LEN.pack(len(meta)), meta, *tail]


def _check_depth(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _Bad(f"nested deeper than protobuf can read back ({MAX_DEPTH} messages)")


_KIND_OF_TYPE: dict[type, int] = {
    type(None): 0, bool: 1, Int: 2, SizeT: 3, int: 3, Float: 4, float: 5, str: 6,
    Shape: 7, Axis: 8, list: 9, tuple: 9, dict: 10, Tensor: 11, np.ndarray: 11,
}


def _kind_of(v: Any) -> int:
    kind = _KIND_OF_TYPE.get(type(v))
    if kind is not None:
        return kind
    for cls, code in _KIND_OF_TYPE.items():  # subclasses, in table order (bool before int)
        if isinstance(v, cls):
            return code
    if isinstance(v, Mapping):
        return 10
    if isinstance(v, (np.bool_, np.integer, np.floating)):
        return 1 if isinstance(v, np.bool_) else 3 if isinstance(v, np.integer) else (
            4 if isinstance(v, np.float32) else 5)
    raise _Bad(f"a value of type {type(v).__name__} cannot be a DictionaryValue")


def _scalar(kind: int, v: Any) -> Any:
    if kind == 1:
        return bool(v)
    if kind == 4 and math.isfinite(v) and abs(float(v)) > _FLOAT32_MAX:
        raise _Bad(f"Float value {float(v)!r} is beyond float32 (use a plain float: Double)")
    if kind in (4, 5):
        return float(v)
    if kind == 6:
        return v
    v = int(v)
    low, high = (-(2**31), 2**31) if kind == 2 else (0, _U64)
    if not low <= v < high:
        hint = "; use Int for a negative int32" if kind == 3 and v < 0 else ""
        raise _Bad(f"{'Int' if kind == 2 else 'SizeT'} value {v} is out of range{hint}")
    return v


def _shape(msg: Any, dims: Any) -> None:
    msg.SetInParent()
    try:
        msg.shape_dim.extend(int(d) for d in dims)
    except (ValueError, TypeError) as exc:
        raise _Bad(f"shape {list(dims)!r} has a dim that is not a uint64: {exc}") from None


def _axis(msg: Any, axis: Axis) -> None:
    msg.SetInParent()
    try:
        index = int(axis.static_index)
        if not -(2**31) <= index < 2**31:
            raise ValueError("not an int32")
        msg.static_axis_idx = index
        msg.name = axis.name
        msg.is_ordered_dynamic_axis = bool(axis.ordered)
    except (ValueError, TypeError) as exc:
        raise _Bad(f"cannot encode {axis!r}: {exc}") from None


def _fill(nd: Any, dt: int, array: np.ndarray) -> None:
    """The values of a tensor inside its message (a plain file)."""
    member = _VALUES_OF_DTYPE[dt]
    sub = getattr(nd, member)
    sub.SetInParent()
    if not array.size:
        return
    if dt == Tensor.INT8:
        sub.value = array.tobytes()
    elif dt == Tensor.INT16:
        sub.value.extend(array.ravel().tolist())
    else:  # float16 is stored widened to float32 (§5)
        wide = np.ascontiguousarray(array, "<f8" if dt == Tensor.DOUBLE else "<f4")
        sub.value.append(wide.tobytes())


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


# ---- detection --------------------------------------------------------------------------
