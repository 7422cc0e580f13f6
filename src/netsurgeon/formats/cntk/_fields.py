"""Declarative payload layouts: a codec that is a list of typed, version-gated fields.

Most CNTK payloads are a fixed sequence of scalars, strings and shapes whose presence depends
only on the model version (cntk-model-format.md §7). :class:`FieldCodec` reads and writes such
a sequence from one description, so reading and writing cannot drift apart.

Each field maps onto a registry attribute when the op declares it (``attr=``), converted to
netsurgeon's conventions (numpy-order shapes, negative numpy axes, enum names); otherwise its
raw CNTK value is kept under ``cntk_<field>`` so the writer can reproduce the bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netsurgeon.formats.cntk._binary import BinaryReader, BinaryWriter, CntkFormatError
from netsurgeon.formats.cntk._context import Parts, ReadContext, WriteContext

if TYPE_CHECKING:
    from netsurgeon.graph import Node
    from netsurgeon.ops import OpSpec

__all__ = ["F", "FieldCodec", "Codec", "NoMap", "CONVERTERS", "read_kind", "write_kind",
           "write_field"]


class NoMap(Exception):
    """Raised by a converter when a raw value has no attribute form (kept as cntk_<field>)."""


class Codec:
    """Base of every payload codec: read a node's payload, write it back for a version."""

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        return Parts()

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        return None

    def prepare(self, node: Node, ctx: WriteContext) -> None:
        """Called for every node before anything is written (may set overrides)."""
        return None

    def check(self, node: Node, ctx: WriteContext) -> None:
        """Raise CntkFormatError if ``node`` cannot be stored at ``ctx.version``."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


# ---- raw kinds ----------------------------------------------------------------------------
def read_kind(r: BinaryReader, kind: str, what: str, ctx: ReadContext) -> Any:
    """Read one value of field kind ``kind`` (``u64``, ``i32``, ``shape``, ...); ``what``
    names it in errors."""
    if kind == "u64":
        return r.u64(what)
    if kind == "i64":
        return r.i64(what)
    if kind == "u32":
        return r.u32(what)
    if kind == "i32":
        return r.i32(what)
    if kind == "f32":
        return r.f32(what)
    if kind == "f64":
        return r.f64(what)
    if kind == "bool":
        return r.bool(what)
    if kind == "elem":
        return r.elem(ctx.dtype, what)
    if kind == "wstr":
        return r.wstr(what)
    if kind == "nstr":
        return r.nstr(what)
    if kind == "shape":
        return r.shape(what)
    if kind == "bools":
        n = r.count(f"{what} count", 1)
        return [r.bool(what) for _ in range(n)]
    if kind == "u64s":
        n = r.count(f"{what} count", 8)
        return [int(v) for v in r.array("<u8", n, what)]
    raise AssertionError(kind)


def write_kind(w: BinaryWriter, kind: str, value: Any, what: str, dtype: Any = None) -> None:
    """Write ``value`` as field kind ``kind`` (the inverse of :func:`read_kind`); ``dtype``
    is the element type of ``elem`` fields; ``what`` names the field in errors."""
    try:
        if kind == "u64":
            w.u64(value)
        elif kind == "i64":
            w.i64(value)
        elif kind == "u32":
            w.u32(value)
        elif kind == "i32":
            w.i32(value)
        elif kind == "f32":
            w.f32(value)
        elif kind == "f64":
            w.f64(value)
        elif kind == "bool":
            w.bool(value)
        elif kind == "elem":
            w.elem(dtype, value)
        elif kind == "wstr":
            w.wstr(str(value))
        elif kind == "nstr":
            w.nstr(str(value))
        elif kind == "shape":
            w.shape([int(d) for d in value])
        elif kind == "bools":
            values = list(value)
            if not values:
                raise CntkFormatError(f"{what}: CNTK cannot read back an empty list; give one "
                                      "value per axis")
            w.u64(len(values))
            for v in values:
                w.bool(v)
        elif kind == "u64s":
            values = list(value)
            if not values:
                raise CntkFormatError(f"{what}: CNTK cannot read back an empty list")
            w.u64(len(values))
            for v in values:
                w.u64(v)
        else:
            raise AssertionError(kind)
    except (TypeError, ValueError, OverflowError) as exc:
        raise CntkFormatError(f"{what}: cannot store {value!r} as {kind}: {exc}") from None


# ---- converters between raw CNTK values and attribute values ---------------------------------
def _dims_in(raw: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in reversed(raw))


def _dims_out(value: Any) -> list[int]:
    if isinstance(value, int):
        return [value]
    return [int(d) for d in reversed(tuple(value))]


def _bools_in(raw: Any) -> tuple[bool, ...]:
    return tuple(bool(b) for b in reversed(raw))


def _bools_out(value: Any) -> list[bool]:
    if isinstance(value, bool):
        return [value]
    return [bool(b) for b in reversed(tuple(value))]


def _axis_in(raw: int) -> int:
    """CNTK axis k (1-based; special codes <= 0) -> registry axis -k (always ``-x``)."""
    return -int(raw)


def _axis_out(value: int) -> int:
    return -int(value)


def _enum(table: dict[int, str]) -> tuple[Callable[[int], str], Callable[[Any], int]]:
    back = {v.lower(): k for k, v in table.items()}

    def into(raw: int) -> str:
        if raw not in table:
            raise NoMap
        return table[raw]

    def out(value: Any) -> int:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        key = str(value).lower()
        if key not in back:
            raise CntkFormatError(f"value {value!r} must be one of {', '.join(table.values())}")
        return back[key]

    return into, out


_POOL_IN, _POOL_OUT = _enum({0: "none", 1: "max", 2: "average"})
_LAYOUT_IN, _LAYOUT_OUT_BASE = _enum({0: "HWC", 1: "CHW"})
_BOOL_INT_IN = bool


def _bool_int_out(value: Any) -> int:
    return 1 if value else 0


def _layout_out(value: Any) -> int:
    if isinstance(value, str) and value.lower() == "cudnn":
        return 1
    if isinstance(value, str) and value.lower() == "legacy":
        return 0
    return _LAYOUT_OUT_BASE(value)


#: name -> (raw -> attribute, attribute -> raw)
CONVERTERS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "dims": (_dims_in, _dims_out),
    "bools": (_bools_in, _bools_out),
    "axis": (_axis_in, _axis_out),
    "pool_kind": (_POOL_IN, _POOL_OUT),
    "image_layout": (_LAYOUT_IN, _layout_out),
    "int": (int, int),
    "float": (float, float),
    "bool": (bool, bool),
    "bool_int": (_BOOL_INT_IN, _bool_int_out),
    "str": (str, str),
    "list": (list, list),
    "tuple": (tuple, list),
}


@dataclass(frozen=True)
class F:
    """One payload field.

    Args:
        name: CNTK's field name (the fallback attribute is ``cntk_<name>``).
        kind: ``u64 i64 u32 i32 f32 f64 bool elem wstr nstr shape bools u64s``.
        since: present when the model version is >= since.
        until: present when the model version is < until.
        attr: registry attribute it maps onto, if the op declares it.
        conv: converter name in :data:`CONVERTERS` (default: by kind).
        default: raw value written when the node has neither attribute (callable(node) allowed).
    """

    name: str
    kind: str
    since: int = 0
    until: int = 1 << 30
    attr: str | None = None
    conv: str | None = None
    default: Any = None

    def active(self, version: int) -> bool:
        return self.since <= version < self.until

    @property
    def fallback(self) -> str:
        return "cntk_" + self.name

    def converter(self) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
        if self.conv:
            return CONVERTERS[self.conv]
        return {
            "shape": CONVERTERS["dims"], "bools": CONVERTERS["bools"], "u64s": CONVERTERS["list"],
            "f32": CONVERTERS["float"], "f64": CONVERTERS["float"], "elem": CONVERTERS["float"],
            "bool": CONVERTERS["bool"], "wstr": CONVERTERS["str"], "nstr": CONVERTERS["str"],
        }.get(self.kind, CONVERTERS["int"])


def raw_to_attrs(fields: tuple[F, ...], raw: dict[str, Any], spec: OpSpec, attrs: dict[str, Any]) -> None:
    """Store each raw field under its registry attribute (converted) or cntk_<name>."""
    for f in fields:
        if f.name not in raw:
            continue
        value = raw[f.name]
        if f.attr and f.attr in spec.attrs:
            try:
                attrs[f.attr] = f.converter()[0](value)
                continue
            except NoMap:
                pass
        attrs[f.fallback] = list(value) if isinstance(value, (list, tuple)) else value


def attr_to_raw(f: F, node: Node) -> Any:
    """The raw value of field ``f`` for ``node`` (attribute, then cntk_<name>, then default)."""
    attrs = node.attrs
    if f.fallback in attrs:
        return attrs[f.fallback]
    if f.attr and f.attr in attrs and attrs[f.attr] is not None:
        return f.converter()[1](attrs[f.attr])
    if callable(f.default):
        return f.default(node)
    if f.default is None:
        raise CntkFormatError(
            f"{node.op} node '{node.name}' has no '{f.attr or f.fallback}' attribute, which the "
            f"CNTK file needs", node=node.name)
    return f.default


_FROM_ATTRS: Any = object()


def write_field(w: BinaryWriter, f: F, node: Node, ctx: WriteContext,
                value: Any = _FROM_ATTRS) -> None:
    """Write field ``f`` of ``node``: ``value``, by default the attribute's (:func:`attr_to_raw`).
    A write error names the node and the field."""
    if value is _FROM_ATTRS:
        value = attr_to_raw(f, node)
    write_kind(w, f.kind, value, f"{node.name}: {f.name}", ctx.dtype_of(node))


class FieldCodec(Codec):
    """A payload that is a plain sequence of version-gated fields."""

    def __init__(self, *fields: F) -> None:
        self.fields = tuple(fields)

    def read_raw(self, r: BinaryReader, ctx: ReadContext, fields: tuple[F, ...] | None = None) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        for f in fields or self.fields:
            if f.active(ctx.version):
                raw[f.name] = read_kind(r, f.kind, f.name, ctx)
        return raw

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        raw_to_attrs(self.fields, self.read_raw(r, ctx), spec, parts.attrs)
        return parts

    def write_fields(self, w: BinaryWriter, ctx: WriteContext, node: Node, fields: tuple[F, ...]) -> None:
        for f in fields:
            if f.active(ctx.version):
                write_field(w, f, node, ctx)

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        self.write_fields(w, ctx, node, self.fields)

    def __repr__(self) -> str:
        return f"<FieldCodec {', '.join(f.name for f in self.fields) or '(empty)'}>"
