"""Declarative payload layouts: a codec that is a list of typed, version-gated fields.

Most CNTK payloads are a fixed sequence of scalars, strings and shapes whose presence depends
only on the model version (cntk-model-format.md §7). :class:`FieldCodec` reads and writes such
a sequence from one description, so reading and writing cannot drift apart.

A field either maps onto a registry attribute (``attr=``), converted to netsurgeon's
conventions (numpy-order shapes, negative numpy axes, enum names), or has no attribute and is
kept as the file field ``cntk_v1.<name>``; such a field says how to derive it for a node that
never came from a file (``derive=``). Attribute defaults are the registry's: a codec never has
its own.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from netsurgeon.formats.cntk._binary import (
    U32,
    U64,
    BinaryReader,
    BinaryWriter,
    CntkFormatError,
    dims_struct,
)
from netsurgeon.formats.cntk._codec import Codec, key
from netsurgeon.formats.cntk._context import Parts, ReadContext, WriteContext
from netsurgeon.graph._batch import canonical_kinds

if TYPE_CHECKING:
    from netsurgeon.graph import Node
    from netsurgeon.ops import OpSpec

__all__ = ["F", "FieldCodec", "CONVERTERS", "read_kind", "read_fields", "decode_fields",
           "canonical_for", "canonical_types", "types_match", "write_kind", "write_field",
           "raw_value", "raw_to_parts"]

#: kinds read and written by the reader/writer method of the same name
_DIRECT = frozenset({"u64", "i64", "u32", "i32", "f32", "f64", "bool", "wstr", "nstr", "shape"})


# ---- raw kinds ----------------------------------------------------------------------------
def read_kind(r: BinaryReader, kind: str, what: str, ctx: ReadContext) -> Any:
    """Read one value of field kind ``kind`` (``u64``, ``i32``, ``shape``, ...); ``what``
    names it in errors."""
    if kind in _DIRECT:
        return getattr(r, kind)(what)
    if kind == "elem":
        return r.elem(ctx.dtype, what)
    if kind == "bools":
        n = r.count(f"{what} count", 1)
        data = r.buf[r.pos:r.pos + n]
        if not n or max(data) <= 1:
            r.pos += n
            return [b == 1 for b in data]
        return [r.bool(what) for _ in range(n)]  # raises at the bad byte
    if kind == "u64s":
        n = r.count(f"{what} count", 8)
        return [int(v) for v in r.array("<u8", n, what)]
    raise AssertionError(kind)


def write_kind(w: BinaryWriter, kind: str, value: Any, what: str, dtype: Any = None) -> None:
    """Write ``value`` as field kind ``kind`` (the inverse of :func:`read_kind`); ``dtype``
    is the element type of ``elem`` fields; ``what`` names the field in errors."""
    try:
        if kind in ("wstr", "nstr"):
            getattr(w, kind)(str(value))
        elif kind == "shape":
            w.shape([int(d) for d in value])
        elif kind in _DIRECT:
            getattr(w, kind)(value)
        elif kind == "elem":
            w.elem(dtype, value)
        elif kind in ("bools", "u64s"):
            values = list(value)
            if not values:
                raise CntkFormatError(f"{what}: CNTK cannot read back an empty list; give one "
                                      "value per axis")
            w.u64(len(values))
            for v in values:
                (w.bool if kind == "bools" else w.u64)(v)
        else:
            raise AssertionError(kind)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CntkFormatError(f"{what}: cannot store {value!r} as {kind}: {exc}") from None


# ---- converters between raw CNTK values and attribute values ---------------------------------
def _dims_in(raw: Any) -> tuple[int, ...]:
    return tuple(map(int, reversed(raw)))


def _dims_out(value: Any) -> list[int]:
    return [int(d) for d in reversed(tuple(value))]


def _bools_in(raw: Any) -> tuple[bool, ...]:
    return tuple(map(bool, reversed(raw)))


def _bools_out(value: Any) -> list[bool]:
    return [bool(b) for b in reversed(tuple(value))]


def _axis(value: Any) -> int:
    """CNTK axis k (1-based; special codes <= 0) <-> registry axis -k (its own inverse)."""
    return -int(value)


def _enum(table: dict[int, str], aliases: dict[str, int] | None = None
          ) -> tuple[Callable[[int], str], Callable[[Any], int]]:
    back = {v.lower(): k for k, v in table.items()} | (aliases or {})
    choices = ", ".join(f"{k} ({v})" for k, v in table.items())

    def into(raw: int) -> str:
        if raw not in table:
            raise CntkFormatError(f"{raw} is not one of {choices}")
        return table[raw]

    def out(value: Any) -> int:
        found = back.get(str(value).lower())
        if found is None:
            raise CntkFormatError(f"value {value!r} must be one of {', '.join(table.values())}")
        return found

    return into, out


#: name -> (raw -> attribute, attribute -> raw)
CONVERTERS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "dims": (_dims_in, _dims_out),
    "bools": (_bools_in, _bools_out),
    "axis": (_axis, _axis),
    "pool_kind": _enum({0: "none", 1: "max", 2: "average"}),
    "image_layout": _enum({0: "HWC", 1: "CHW"}, {"cudnn": 1, "legacy": 0}),
    "int": (int, int),
    "float": (float, float),
    "bool": (bool, bool),
    "bool_int": (bool, lambda value: 1 if value else 0),
    "str": (str, str),
    "tuple": (tuple, list),
}

_BY_KIND = {"shape": "dims", "bools": "bools", "u64s": "tuple", "f32": "float", "f64": "float",
            "elem": "float", "bool": "bool", "wstr": "str", "nstr": "str"}


@dataclass(frozen=True)
class F:
    """One payload field.

    Args:
        name: CNTK's field name (the file-field key of a field without attribute is
            ``cntk_v1.<name>``).
        kind: ``u64 i64 u32 i32 f32 f64 bool elem wstr nstr shape bools u64s``.
        since: present when the model version is >= since.
        until: present when the model version is < until.
        attr: the registry attribute it maps onto (every op using the codec declares it).
        conv: converter name in :data:`CONVERTERS` (default: by kind).
        derive: for a field without attribute, the raw value written when the node has no
            file field for it (a constant or ``callable(node)``).
    """

    name: str
    kind: str
    since: int = 0
    until: int = 1 << 30
    attr: str | None = None
    conv: str | None = None
    derive: Any = None

    def active(self, version: int) -> bool:
        return self.since <= version < self.until

    @cached_property
    def key(self) -> str:
        return key(self.name)

    def converter(self) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
        return CONVERTERS[self.conv or _BY_KIND.get(self.kind, "int")]

    @cached_property
    def into(self) -> Callable[[Any], Any]:
        """The converter from the raw value to the attribute value."""
        return self.converter()[0]


def raw_to_parts(r: BinaryReader, fields: tuple[F, ...], raw: dict[str, Any], parts: Parts) -> None:
    """Store each raw field under its registry attribute (converted) or as a file field."""
    attrs = parts.attrs
    for f in fields:
        if f.name not in raw:
            continue
        value = raw[f.name]
        if f.attr is None:
            parts.file_fields[f.key] = tuple(value) if isinstance(value, list) else value
            continue
        try:
            attrs[f.attr] = f.into(value)
        except CntkFormatError as exc:
            raise r.error(f"{f.name}: {exc.message}") from None


# ---- one-pass reading of a field list ------------------------------------------------------
#: struct codes of the fixed-size kinds (``elem`` is the node's element type)
_CODES = {"u64": "Q", "i64": "q", "u32": "I", "i32": "i", "f32": "f", "f64": "d", "bool": "B"}
_ELEM_CODES = {2: "e", 4: "f", 8: "d"}
#: (fields, version, element size) -> steps: (struct, names, bool names) for a run of fixed-size
#: fields, or (None, name, kind) for one variable-size field
_PLANS: dict[tuple[int, int, int], tuple[tuple[Any, Any, Any], ...]] = {}


def _plan(fields: tuple[F, ...], version: int, elem_size: int) -> tuple[tuple[Any, Any, Any], ...]:
    plan_key = (id(fields), version, elem_size)
    found = _PLANS.get(plan_key)
    if found is not None:
        return found
    steps: list[tuple[Any, Any, Any]] = []
    codes: list[str] = []
    names: list[str] = []

    def close() -> None:
        if codes:
            bools = tuple(n for n, c in zip(names, codes) if c == "B")
            steps.append((struct.Struct("<" + "".join(codes)), tuple(names), bools))
            codes.clear()
            names.clear()

    for f in fields:
        if not f.active(version):
            continue
        code = _ELEM_CODES.get(elem_size) if f.kind == "elem" else _CODES.get(f.kind)
        if code is None:
            close()
            steps.append((None, f.name, f.kind))
        else:
            codes.append(code)
            names.append(f.name)
    close()
    found = _PLANS[plan_key] = tuple(steps)
    _KEEP.append(fields)  # the plan is keyed by id(fields): keep the tuple alive
    return found


_KEEP: list[tuple[F, ...]] = []


def read_fields(r: BinaryReader, fields: tuple[F, ...], ctx: ReadContext) -> dict[str, Any]:
    """The raw values of the ``fields`` active in ``ctx.version``, by field name.

    Each run of fixed-size fields is one ``unpack_from``; when a run does not fit in the
    bytes left or a bool holds neither 0 nor 1, the fields are read again one by one from
    the first, which raises the error with its exact offset.
    """
    start = r.pos
    buf = r.buf
    size = r.size
    raw: dict[str, Any] = {}
    for st, names, extra in _plan(fields, ctx.version, ctx.dtype.itemsize):
        if st is None:
            if extra == "shape":  # inline: the most common variable-size field
                pos = r.pos
                if pos + 4 <= size:
                    (rank,) = U32.unpack_from(buf, pos)
                    if rank <= 16 and pos + 4 + 4 * rank <= size:
                        raw[names] = list(dims_struct(rank).unpack_from(buf, pos + 4))
                        r.pos = pos + 4 + 4 * rank
                        continue
            raw[names] = read_kind(r, extra, names, ctx)
            continue
        pos = r.pos
        if pos + st.size > size:
            break
        values = st.unpack_from(buf, pos)
        raw.update(zip(names, values))
        for name in extra:
            flag = raw[name]
            if flag > 1:
                break
            raw[name] = flag == 1
        else:
            r.pos = pos + st.size
            continue
        break
    else:
        return raw
    r.pos = start
    return {f.name: read_kind(r, f.kind, f.name, ctx) for f in fields if f.active(ctx.version)}


# ---- one-pass decoding of a field list into attributes --------------------------------------
_INT_CODES = frozenset("QqIi")
_FLOAT_CODES = frozenset("fde")
#: step kinds of a decoder: a run of fixed-size fields, a shape, a bool list, anything else
_RUN, _SHAPE, _BOOLS, _OTHER = range(4)
#: (fields, version, element size) -> decoder steps
_DECODERS: dict[tuple[int, int, int], tuple[tuple[Any, ...], ...]] = {}


def _target(f: F, code: str | None) -> tuple[str | None, str, Any]:
    """(attribute or None, file-field key, converter or None where the raw value is already
    the attribute's) of field ``f`` whose raw struct code is ``code``."""
    if f.attr is None:
        return None, f.key, None
    into = f.into
    same = ((into is int and code in _INT_CODES) or (into is float and code in _FLOAT_CODES)
            or (into is bool and code == "B"))
    return f.attr, f.key, None if same else into


def _decoder(fields: tuple[F, ...], version: int, elem_size: int) -> tuple[tuple[Any, ...], ...]:
    """The steps :func:`decode_fields` runs for ``fields`` in ``version`` (cached)."""
    plan_key = (id(fields), version, elem_size)
    found = _DECODERS.get(plan_key)
    if found is not None:
        return found
    steps: list[tuple[Any, ...]] = []
    by_name = {f.name: f for f in fields}
    for st, names, bools in _plan(fields, version, elem_size):
        if st is None:
            f = by_name[names]
            if f.kind == "shape":
                steps.append((_SHAPE, f.name, *_target(f, None), f.into is _dims_in))
            elif f.kind == "bools":
                steps.append((_BOOLS, f.name, *_target(f, None), f.into is _bools_in))
            else:
                steps.append((_OTHER, f.name, *_target(f, None), f.kind))
            continue
        codes = st.format[1:]
        targets = tuple((*_target(by_name[n], c), c == "B") for n, c in zip(names, codes))
        steps.append((_RUN, st, targets, bool(bools)))
    found = _DECODERS[plan_key] = tuple(steps)
    return found


def decode_fields(r: BinaryReader, fields: tuple[F, ...], ctx: ReadContext,
                  parts: Parts) -> bool:
    """The ``fields`` active in ``ctx.version`` decoded straight into ``parts`` (attributes
    converted, the rest as file fields), as :func:`read_fields` and :func:`raw_to_parts`
    do together, in one pass with the per-field work planned once per field list.

    Returns False, with ``r.pos`` where it was, for anything unusual (too few bytes left, a
    bool that is neither 0 nor 1, an empty bool list, a value a converter refuses): the
    caller then reads with a fresh ``Parts`` the slow way, which raises the error at its exact
    offset. ``parts`` may hold some of the fields then.
    """
    start = pos = r.pos
    buf = r.buf
    size = r.size
    attrs = parts.attrs
    ff = parts.file_fields
    for step in _decoder(fields, ctx.version, ctx.dtype.itemsize):
        kind = step[0]
        if kind == _RUN:
            _, st, targets, has_bools = step
            if pos + st.size > size:
                r.pos = start
                return False
            values = st.unpack_from(buf, pos)
            pos += st.size
            for (attr, fkey, into, is_bool), value in zip(targets, values):
                if is_bool:
                    if value > 1:
                        r.pos = start
                        return False
                    value = value == 1
                if attr is None:
                    ff[fkey] = value
                elif into is None:
                    attrs[attr] = value
                else:
                    try:
                        attrs[attr] = into(value)
                    except (CntkFormatError, TypeError, ValueError):
                        r.pos = start
                        return False
            continue
        _, name, attr, fkey, into, extra = step
        if kind == _SHAPE:
            if pos + 4 > size:
                r.pos = start
                return False
            (rank,) = U32.unpack_from(buf, pos)
            if rank > 16 or pos + 4 + 4 * rank > size:
                r.pos = start
                return False
            dims = dims_struct(rank).unpack_from(buf, pos + 4)
            pos += 4 + 4 * rank
            if attr is None:
                ff[fkey] = dims
                continue
            value = dims[::-1] if extra else into(list(dims))
        elif kind == _BOOLS:
            if pos + 8 > size:
                r.pos = start
                return False
            (n,) = U64.unpack_from(buf, pos)
            data = buf[pos + 8:pos + 8 + n]
            if not n or len(data) != n or max(data) > 1:
                r.pos = start
                return False
            pos += 8 + n
            if attr is None:
                ff[fkey] = tuple(b == 1 for b in data)
                continue
            value = tuple(map(bool, data[::-1])) if extra else into([b == 1 for b in data])
        else:
            r.pos = pos
            raw = read_kind(r, extra, name, ctx)  # an error here is the slow path's error
            pos = r.pos
            if attr is None:
                ff[fkey] = tuple(raw) if isinstance(raw, list) else raw
                continue
            if into is None:
                value = raw
            else:
                try:
                    value = into(raw)
                except (CntkFormatError, TypeError, ValueError):
                    r.pos = start
                    return False
        attrs[attr] = value
    r.pos = pos
    return True


#: converter name -> the exact type of the attribute values it makes (``(item,)``: a tuple)
_MAKES: dict[str, Any] = {"dims": (int,), "bools": (bool,), "axis": int, "pool_kind": str,
                          "image_layout": str, "int": int, "float": float, "bool": bool,
                          "bool_int": bool, "str": str}
#: (id(decoder), version, id(spec)) -> (decoder, spec, whether its attributes are canonical)
_CANONICAL: dict[tuple[int, int, int], tuple[Any, Any, bool]] = {}


def _makes(f: F) -> Any:
    """The exact type of the attribute value :func:`decode_fields` makes for ``f`` (None
    when it depends on the value)."""
    conv = f.conv or _BY_KIND.get(f.kind, "int")
    if conv == "tuple":
        return (int,) if f.kind == "u64s" else None
    return _MAKES.get(conv)


def types_match(spec: OpSpec, makes: dict[str, Any]) -> bool:
    """Whether every attribute in ``makes`` (attribute -> the exact type of the values a
    decoder makes for it) is one of ``spec``'s and that type is its canonical one."""
    kinds = canonical_kinds(spec)
    return all(t is not None and kinds.get(a) == t for a, t in makes.items())


def canonical_types(decoder: Any, version: int, spec: OpSpec,
                    makes: Callable[..., dict[str, Any]], *args: Any) -> bool:
    """Whether the attributes a one-pass ``decoder`` (a field list, a codec) makes in
    ``version`` are ``spec``'s in canonical form (:func:`types_match` of ``makes(*args)``,
    called only the first time), so the network takes them unchecked; decided once per
    decoder, version and op (the entry holds the decoder and the spec, so their ids stay
    theirs)."""
    k = (id(decoder), version, id(spec))
    found = _CANONICAL.get(k)
    if found is None:
        found = _CANONICAL[k] = (decoder, spec, types_match(spec, makes(*args)))
    return found[2]


def canonical_for(fields: tuple[F, ...], ctx: ReadContext, spec: OpSpec) -> bool:
    """:func:`canonical_types` of :func:`decode_fields` over ``fields``."""
    return canonical_types(fields, ctx.version, spec, _field_makes, fields, ctx.version)


def _field_makes(fields: tuple[F, ...], version: int) -> dict[str, Any]:
    return {f.attr: _makes(f) for f in fields if f.attr is not None and f.active(version)}


def raw_value(f: F, node: Node) -> Any:
    """The raw value of field ``f`` for ``node``: its file field, else from the attribute,
    else derived."""
    stored = node.file_fields.get(f.key)
    if stored is not None:
        return stored
    if f.attr is not None:
        return f.converter()[1](node.attrs[f.attr])
    return f.derive(node) if callable(f.derive) else f.derive


_FROM_NODE: Any = object()


def write_field(w: BinaryWriter, f: F, node: Node, ctx: WriteContext,
                value: Any = _FROM_NODE) -> None:
    """Write field ``f`` of ``node``: ``value``, by default :func:`raw_value`. An error
    names the node and the field."""
    if value is _FROM_NODE:
        value = raw_value(f, node)
    try:
        write_kind(w, f.kind, value, f"{node.name}: {f.name}", ctx.dtype_of(node))
    except CntkFormatError as exc:
        if exc.node is None:
            exc.node = node.name
        raise


class FieldCodec(Codec):
    """A payload that is a plain sequence of version-gated fields."""

    def __init__(self, *fields: F) -> None:
        self.fields = tuple(fields)
        self.own_fields = tuple(f.name for f in self.fields if f.attr is None)

    @property
    def attrs(self) -> frozenset[str]:
        """The registry attributes the fields map onto."""
        return frozenset(f.attr for f in self.fields if f.attr is not None)

    def read_raw(self, r: BinaryReader, ctx: ReadContext) -> dict[str, Any]:
        return read_fields(r, self.fields, ctx)

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        if decode_fields(r, self.fields, ctx, parts):
            parts.canonical = canonical_for(self.fields, ctx, spec)
            return parts
        parts = Parts()
        raw_to_parts(r, self.fields, self.read_raw(r, ctx), parts)
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        for f in self.fields:
            if f.active(ctx.version):
                write_field(w, f, node, ctx)

    def __repr__(self) -> str:
        return f"<FieldCodec {', '.join(f.name for f in self.fields) or '(empty)'}>"
