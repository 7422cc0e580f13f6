"""The convolution family: the convolution-base block, legacy 2-D convolution and pooling."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from netsurgeon.formats.cntk._binary import BinaryReader, BinaryWriter
from netsurgeon.formats.cntk._context import Parts, ReadContext, WriteContext
from netsurgeon.formats.cntk._fields import (
    F,
    FieldCodec,
    canonical_for,
    decode_fields,
    raw_to_parts,
    raw_value,
    write_field,
)
from netsurgeon.formats.cntk._layer import CNTK_V1

if TYPE_CHECKING:
    from netsurgeon.graph import Node
    from netsurgeon.ops import OpSpec

__all__ = ["ConvolutionBaseCodec"]

_CONV_BASE = (
    F("kernelShape", "shape", since=5, attr="kernel_shape"),
    F("mapCount", "shape", since=5, attr="map_count"),
    F("strides", "shape", since=5, attr="strides"),
    F("sharing", "bools", since=5, attr="sharing"),
    F("autoPadding", "bools", since=5, attr="auto_padding"),
    F("lowerPad", "shape", since=5, attr="lower_pad"),
    F("upperPad", "shape", since=5, attr="upper_pad"),
    F("poolKind", "i32", since=5, attr="pool_kind", conv="pool_kind"),
    F("imageLayout", "i32", since=5, attr="image_layout", conv="image_layout"),
    F("maxTempMemSizeInSamples", "u64", since=5, attr="max_temp_mem_size_in_samples"),
    F("transpose", "bool", since=9, attr="transpose"),
    F("outputShape", "shape", since=20, attr="output_shape"),
    F("ceilOutDim", "bool", since=21, attr="ceil_out_dim"),
    F("poolIncludePad", "bool", since=23, attr="pool_include_pad"),
)
_PER_AXIS = ("sharing", "autoPadding")


class ConvolutionBaseCodec(FieldCodec):
    """The convolution-base block, then the op's own tail fields.

    CNTK never reads back an empty list: an empty ``sharing``/``auto_padding`` of a new
    network is written as one entry per kernel axis, each the registry default's. A file
    that held an empty list (CNTK could not have read it) keeps it as a file field.
    """

    def __init__(self, *tail: F) -> None:
        super().__init__(*_CONV_BASE, *tail)
        self.own_fields = (*self.own_fields, *_PER_AXIS)

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        if decode_fields(r, self.fields, ctx, parts):  # refuses an empty per-axis list
            parts.canonical = canonical_for(self.fields, ctx, spec)
            return parts
        parts = Parts()
        raw = self.read_raw(r, ctx)
        for f in self.fields:
            if f.name in _PER_AXIS and f.name in raw and not raw[f.name]:
                parts.file_fields[f.key] = ()
                del raw[f.name]
        raw_to_parts(r, self.fields, raw, parts)
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        for f in self.fields:
            if not f.active(ctx.version):
                continue
            value = raw_value(f, node)
            if f.name in _PER_AXIS and not value and f.key not in node.file_fields:
                default = spec.attrs[f.attr].default
                value = [default[0]] * len(node.attrs["kernel_shape"])
            write_field(w, f, node, ctx, value)


def _cntk_dim(attr: str, index: int, missing: int) -> Callable[[Node], int]:
    """A legacy (v < 5) 2-D field from CNTK axis ``index`` of an N-d attribute (``missing``
    where the attribute has fewer axes)."""
    def get(node: Node) -> int:
        dims = [int(v) for v in reversed(node.attrs[attr])]
        return dims[index] if index < len(dims) else missing
    return get


def _legacy_layout(node: Node) -> int:
    return 1 if node.attrs["image_layout"] in ("CHW", "cudnn") else 0


def _zero_padding(node: Node) -> bool:
    padding = node.attrs["auto_padding"]
    return bool(padding[-1]) if padding else False


_LEGACY_CONV = (  # version < 5: the old 2-D convolution, derived from the N-d attributes
    F("kernelWidth", "u64", until=5, derive=_cntk_dim("kernel_shape", 0, 1)),
    F("kernelHeight", "u64", until=5, derive=_cntk_dim("kernel_shape", 1, 1)),
    F("horizontalSubsample", "u64", until=5, derive=_cntk_dim("strides", 0, 1)),
    F("verticalSubsample", "u64", until=5, derive=_cntk_dim("strides", 1, 1)),
    F("outputChannels", "u32", until=5, derive=_cntk_dim("map_count", 0, 0)),
    F("legacyImageLayout", "u32", until=5, derive=_legacy_layout),
    F("zeroPadding", "bool", until=5, derive=_zero_padding),
    F("legacyMaxTempMemSizeInSamples", "u64", until=5,
      derive=lambda node: node.attrs["max_temp_mem_size_in_samples"]),
)

CNTK_V1.add("Convolution", ConvolutionBaseCodec(
    *_LEGACY_CONV,
    F("convolution2D", "bool", since=5, attr="convolution_2d"),
    F("dilation", "shape", since=18, attr="dilation"),
))
CNTK_V1.add(("Pooling", "MaxUnpooling", "ConvolutionSequenceShape"), ConvolutionBaseCodec())
CNTK_V1.add(("MaxPooling", "AveragePooling"), FieldCodec(
    F("windowWidth", "u32", attr="window_width"),
    F("imageLayout", "u32", attr="image_layout", conv="image_layout"),
    F("windowHeight", "u64", attr="window_height"),
    F("horizontalSubsample", "u64", attr="horizontal_subsample"),
    F("verticalSubsample", "u64", attr="vertical_subsample"),
))
CNTK_V1.add("ROIPooling", FieldCodec(
    F("roiOutputShape", "shape", attr="roi_output_shape"),
    F("poolKind", "i32", since=26, attr="pool_kind", conv="pool_kind"),
    F("spatialScale", "f64", since=26, attr="spatial_scale"),
))
