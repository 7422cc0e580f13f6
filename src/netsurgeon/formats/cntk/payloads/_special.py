"""Irregular payloads: delays, RNG state (Dropout, RandomSample), NCE's optional field, Cast."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from netsurgeon.formats.cntk._binary import BinaryReader, BinaryWriter, CntkFormatError, wide
from netsurgeon.formats.cntk._codec import PRECISION, Codec, key
from netsurgeon.formats.cntk._context import DTYPE_TAGS, Parts, ReadContext, WriteContext
from netsurgeon.formats.cntk._fields import F, FieldCodec
from netsurgeon.formats.cntk._layer import CNTK_V1
from netsurgeon.formats.cntk.payloads._common import cntk_dims

if TYPE_CHECKING:
    from netsurgeon.graph import Node
    from netsurgeon.ops import OpSpec

__all__ = ["DelayCodec", "RngCodec", "NceCodec", "CastCodec"]


class DelayCodec(Codec):
    """i32 timeStep; v>=4 shape | v<=3 u64 rows, u64 cols; v>=2 elem initialStateValue.

    The stored sample shape becomes the node's declared shape (numpy order); the dummy column
    count of v <= 3 files is the file field ``legacy_cols`` when it is not 1.
    """

    own_fields = ("legacy_cols",)
    _COLS = key("legacy_cols")

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        parts.attrs["time_step"] = r.i32("timeStep")
        if ctx.version >= 4:
            dims = r.shape("sample shape")
        else:
            dims = [r.u64("rows")]
            cols = r.u64("cols")
            if cols != 1:
                parts.file_fields[self._COLS] = cols
        parts.shape = tuple(reversed(dims))
        if ctx.version >= 2:
            parts.attrs["initial_state"] = r.elem(ctx.dtype, "initialStateValue")
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        w.i32(node.attrs["time_step"])
        dims = cntk_dims(node)
        if ctx.version >= 4:
            w.shape(dims)
        else:
            w.u64(math.prod(dims))
            w.u64(node.file_fields.get(self._COLS, 1))
        if ctx.version >= 2:
            w.elem(ctx.dtype_of(node), node.attrs["initial_state"])


class RngCodec(FieldCodec):
    """Leading fields, then the RNG state (v16: seed width 4 or 8 bytes; v>=17: u64, u64).

    For v16 the seed width is decided by where the next record starts (a precision tag or
    ENodeList must follow); 8 bytes (Linux builds) when both fit. A 4-byte seed is the file
    field ``seed_width``.
    """

    _WIDTH = key("seed_width")
    _NEXT_RECORD = tuple(wide(text) for text in ("float", "double", "half", "ENodeList"))

    def __init__(self, *fields: F) -> None:
        super().__init__(*fields)
        self.own_fields = (*self.own_fields, "seed_width")

    @classmethod
    def _next_record_at(cls, r: BinaryReader, at: int) -> bool:
        return any(r.buf[at:at + len(data)] == data for data in cls._NEXT_RECORD)

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = super().read(r, ctx, spec)
        if ctx.version < 16:
            return parts
        width = 8
        if ctx.version == 16 and not self._next_record_at(r, r.pos + 16) and \
                self._next_record_at(r, r.pos + 12):
            width = 4
        parts.attrs["rng_seed"] = r.u64("rngSeed") if width == 8 else r.u32("rngSeed")
        parts.attrs["rng_offset"] = r.u64("rngOffset")
        parts.canonical = False  # attributes beyond the field list: the network checks them
        if width == 4:
            parts.file_fields[self._WIDTH] = 4
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        super().write(w, ctx, node, spec)
        if ctx.version < 16:
            return
        seed = node.attrs["rng_seed"]
        if ctx.version == 16 and node.file_fields.get(self._WIDTH) == 4:
            w.u32(seed)
        else:
            w.u64(seed)
        w.u64(node.attrs["rng_offset"])


_NCE_MODES = ("softmax", "unnormalized", "none")


class NceCodec(Codec):
    """i32 evalMode (0 softmax, 1 unnormalized, 2 none); a value > 2 means an old file
    without the field (CNTK rewinds 4 bytes and uses none: the file field
    ``eval_mode_absent``)."""

    own_fields = ("eval_mode_absent",)
    _ABSENT = key("eval_mode_absent")

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        if r.remaining >= 4:
            mode = r.i32("evalMode")
            if 0 <= mode <= 2:
                parts.attrs["eval_mode"] = _NCE_MODES[mode]
                return parts
            r.pos -= 4
        parts.file_fields[self._ABSENT] = True
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        if node.file_fields.get(self._ABSENT):
            return
        mode = node.attrs["eval_mode"].lower()
        if mode not in _NCE_MODES:
            raise CntkFormatError(f"eval_mode {mode!r} of '{node.name}' must be one of "
                                  f"{', '.join(_NCE_MODES)}", node=node.name)
        w.i32(_NCE_MODES.index(mode))


#: Cast's ``precision`` attribute -> the precision tag word, and back
_TAG_WORDS = {"float": "float", "double": "double", "float16": "half"}
_PRECISION_OF = {v: k for k, v in _TAG_WORDS.items()}


class CastCodec(Codec):
    """Empty payload; the target type is the first half of the two-type precision tag
    ``"<own type>,<input type>"`` (v31 only)."""

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        parts.attrs["precision"] = _PRECISION_OF[ctx.tag.split(",")[0]]
        return parts

    def check(self, node: Node, ctx: WriteContext) -> None:
        if ctx.version < 31:
            raise CntkFormatError(f"Cast node '{node.name}' needs model version 31; write "
                                  "version 31 or remove the Cast", node=node.name)

    def precision_tag(self, node: Node, ctx: WriteContext) -> str:
        tag = node.file_fields.get(PRECISION)
        if tag:
            return str(tag)
        target = _TAG_WORDS.get(node.attrs["precision"])
        if target is None:
            raise CntkFormatError(f"Cast '{node.name}' has precision {node.attrs['precision']!r}"
                                  "; CNTK casts to float, double or float16", node=node.name)
        source = node.inputs[0].dtype if node.inputs and node.inputs[0] is not None else "float32"
        return f"{target},{DTYPE_TAGS.get(source, 'float')}"


CNTK_V1.add(("PastValue", "FutureValue"), DelayCodec())
CNTK_V1.add("Dropout", RngCodec())
CNTK_V1.add(("RandomSample", "RandomSampleInclusionFrequency"), RngCodec(
    F("allowDuplicates", "bool", attr="allow_duplicates"),
    F("numSamples", "u64", attr="num_samples"),
))
CNTK_V1.add("NCEBasedCrossEntropyWithSoftmax", NceCodec())
CNTK_V1.add("Cast", CastCodec())
