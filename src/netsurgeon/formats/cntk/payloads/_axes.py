"""Ops that pick, move or reduce axes: Slice, TransposeDimensions, ReduceElements, reshapes.

Axes follow the registry convention: CNTK's 1-based axis k is ``-k`` (numpy counts from the
end); a CNTK permutation is turned into numpy transpose axes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netsurgeon.formats.cntk._binary import BinaryReader, BinaryWriter, CntkFormatError
from netsurgeon.formats.cntk._codec import Codec, key
from netsurgeon.formats.cntk._context import Parts, ReadContext, WriteContext
from netsurgeon.formats.cntk._fields import F, FieldCodec
from netsurgeon.formats.cntk._layer import CNTK_V1
from netsurgeon.formats.cntk.payloads._common import write_legacy_shape

if TYPE_CHECKING:
    from netsurgeon.graph import Node
    from netsurgeon.ops import OpSpec

__all__ = ["SliceCodec", "TransposeCodec", "ReduceElementsCodec", "LegacyReshapeCodec"]


def _read_num_axes(r: BinaryReader, op: str, *, least: int, axis_bytes: int) -> int:
    """An i32 ``numAxes`` of at least ``least`` whose axes (``axis_bytes`` each) fit in the rest."""
    at = r.pos
    n = r.i32("numAxes")
    if n < least or n > r.remaining // axis_bytes:
        raise r.error(f"{op} numAxes is {n}", at)
    return n


def _needs(node: Node, what: str, version: int) -> CntkFormatError:
    return CntkFormatError(f"{node.op} '{node.name}' {what} needs model version >= {version}; "
                           "write a newer version", node=node.name)


class SliceCodec(Codec):
    """v>=22 i32 numAxes; per axis: i64 begin, i64 length, v>=3 i32 axis, v>=27 i32 stride.

    Attributes (one entry per sliced axis): ``begin``, ``end`` (= begin + stored length),
    ``axis`` (registry convention: -k is CNTK axis k), ``stride_multiplier``.
    """

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        v = ctx.version
        n = _read_num_axes(r, "Slice", least=1, axis_bytes=16) if v >= 22 else 1
        begins, ends, axes, strides = [], [], [], []
        for _ in range(n):
            begin = r.i64("beginIndex")
            length = r.i64("length")
            begins.append(begin)
            ends.append(begin + length)
            axes.append(-r.i32("axis") if v >= 3 else -1)
            strides.append(r.i32("strideMultiplier") if v >= 27 else 1)
        parts.attrs.update(begin=tuple(begins), end=tuple(ends), axis=tuple(axes),
                           stride_multiplier=tuple(strides))
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        v = ctx.version
        a = node.attrs
        begins, ends, axes = a["begin"], a["end"], a["axis"]
        strides = a["stride_multiplier"] or (1,) * len(begins)
        n = len(begins)
        if not n or len(ends) != n or len(axes) != n or len(strides) != n:
            raise CntkFormatError(f"Slice '{node.name}': begin, end, axis and stride_multiplier "
                                  "need one value per sliced axis", node=node.name)
        if v >= 22:
            w.i32(n)
        elif n != 1:
            raise _needs(node, f"over {n} axes", 22)
        for i in range(n):
            w.i64(begins[i])
            w.i64(ends[i] - begins[i])
            if v >= 3:
                w.i32(-axes[i])
            if v >= 27:
                w.i32(strides[i])
            elif strides[i] != 1:
                raise _needs(node, "with a stride", 27)


class TransposeCodec(Codec):
    """v>=3: i32 axis1, i32 axis2 (1-based); v>=25 with both 0: u64 n, n x u64 permutation.

    Attributes: ``axes`` (two registry axes, -k = CNTK axis k) or ``permutation`` (numpy
    transpose axes).
    """

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        if ctx.version < 3:
            return parts
        a1, a2 = r.i32("axis1"), r.i32("axis2")
        if ctx.version >= 25 and a1 == 0 and a2 == 0:
            n = r.count("permutation length", 8)
            perm = [int(p) for p in r.array("<u8", n, "permutation")]
            if sorted(perm) != list(range(n)):
                raise r.error(f"{perm} is not a permutation of 0..{n - 1}", r.pos - 8 * n)
            parts.attrs["permutation"] = tuple(n - 1 - perm[n - 1 - j] for j in range(n))
            return parts
        parts.attrs["axes"] = (-a1, -a2)
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        if ctx.version < 3:
            return
        np_perm = node.attrs["permutation"]
        if np_perm:
            if ctx.version < 25:
                raise _needs(node, "with a permutation", 25)
            n = len(np_perm)
            w.i32(0)
            w.i32(0)
            w.u64(n)
            for i in range(n):
                w.u64(n - 1 - np_perm[n - 1 - i])
            return
        axes = node.attrs["axes"]
        if len(axes) != 2:
            raise CntkFormatError(f"TransposeDimensions '{node.name}' swaps two axes, not "
                                  f"{len(axes)} ({axes}); give two or a permutation",
                                  node=node.name)
        w.i32(-axes[0])
        w.i32(-axes[1])


class LegacyReshapeCodec(Codec):
    """u64 numTargetRows, then a legacy-accepting shape (the target image shape); the file
    field ``legacy_shape`` marks the W,H,C form."""

    own_fields = ("legacy_shape",)
    _LEGACY = key("legacy_shape")

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        parts.attrs["num_rows"] = r.u64("numTargetRows")
        dims, legacy = r.legacy_shape("target image shape")
        parts.attrs["target_shape"] = tuple(reversed(dims))
        if legacy:
            parts.file_fields[self._LEGACY] = True
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        w.u64(node.attrs["num_rows"])
        dims = [int(d) for d in reversed(node.attrs["target_shape"])]
        write_legacy_shape(w, dims, bool(node.file_fields.get(self._LEGACY, False)))


class ReduceElementsCodec(Codec):
    """v>=27 i32 numAxes (else 1); numAxes x i32 axis; wstr operation; v>=24 bool keepDimensions."""

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        n = _read_num_axes(r, "ReduceElements", least=0, axis_bytes=4) if ctx.version >= 27 else 1
        parts.attrs["axes"] = tuple(-r.i32("axis") for _ in range(n))
        parts.attrs["operation"] = r.wstr("reduction operation")
        if ctx.version >= 24:
            parts.attrs["keep_dimensions"] = r.bool("keepDimensions")
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        axes = node.attrs["axes"]
        if ctx.version >= 27:
            w.i32(len(axes))
        elif len(axes) != 1:
            raise _needs(node, f"over {len(axes)} axes", 27)
        for ax in axes:
            w.i32(-ax)
        w.wstr(node.attrs["operation"])
        if ctx.version >= 24:
            w.bool(node.attrs["keep_dimensions"])


CNTK_V1.add("Slice", SliceCodec())
CNTK_V1.add("TransposeDimensions", TransposeCodec())
CNTK_V1.add("LegacyReshape", LegacyReshapeCodec())
CNTK_V1.add("ReduceElements", ReduceElementsCodec())
CNTK_V1.add("RowStack", FieldCodec(F("spliceDim", "i32", since=3, attr="axis", conv="axis")))
CNTK_V1.add("RowRepeat", FieldCodec(F("numRepeat", "u64", attr="num_repeats")))
CNTK_V1.add("Reshape", FieldCodec(
    F("beginAxis", "i32", attr="begin_axis", conv="axis"),
    F("endAxis", "i32", attr="end_axis", conv="axis"),
    F("replacementShape", "shape", attr="shape"),
))
