"""Convolution and pooling (ndl-mel.md §B.9.7).

Attributes keep the convolution-base block of the v1 file (cntk-model-format.md §7.1) in
numpy order: ``kernel_shape``, ``map_count``, ``strides``, ``sharing``, ``auto_padding``,
``lower_pad``, ``upper_pad``, ``output_shape`` and ``dilation`` are the reverse of the CNTK
lists. A per-axis list of length 1 applies to every axis (CNTK's rule).

:func:`conv_geometry` is the one place that turns these attributes into per-axis numbers
(CNTK order) for a given input; shape rules and kernels both use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from math import prod
from typing import Any

from netsurgeon.errors import ArgumentError
from netsurgeon.ops._build import NDL, define
from netsurgeon.ops._category import Category as C
from netsurgeon.ops._convert import (
    NodeOption,
    as_bool,
    layout_name,
    np_bools,
    np_shape,
    pool_kind_name,
)
from netsurgeon.ops._registry import OpRegistry
from netsurgeon.ops._shapes import fill_zeros
from netsurgeon.ops._spec import (
    AttrSpec,
    Form,
    FunctionSpec,
    NodeRecipe,
    Param,
    Shape,
    ShapeContext,
    fmt_shape,
)
from netsurgeon.ops.elementwise import broken_function

__all__ = ["register", "CONV_BASE_ATTRS", "AxisGeometry", "conv_geometry", "split_padding",
           "image_dims",
           "image_from_dims"]

CONV_BASE_ATTRS = {
    "kernel_shape": AttrSpec("ints", (1,), "kernel shape, numpy order (file kernelShape)"),
    "map_count": AttrSpec("ints", (0,), "output feature maps, numpy order; (0,) = infer from W "
                          "(file mapCount)"),
    "strides": AttrSpec("ints", (1,), "stride per axis, numpy order (file strides)"),
    "sharing": AttrSpec("bools", (True,), "weight sharing per axis, numpy order; False = "
                        "locally connected (file list<bool>)"),
    "auto_padding": AttrSpec("bools", (True,), "automatic padding per axis, numpy order "
                             "(file list<bool> autoPadding)"),
    "lower_pad": AttrSpec("ints", (0,), "explicit lower padding, numpy order"),
    "upper_pad": AttrSpec("ints", (0,), "explicit upper padding, numpy order"),
    "pool_kind": AttrSpec("str", "none", "none, max or average (file i32 0/1/2)"),
    "image_layout": AttrSpec("str", "CHW", "CHW or HWC (file i32 1/0)"),
    "max_temp_mem_size_in_samples": AttrSpec("int", 0, "workspace limit (file u64)"),
    "transpose": AttrSpec("bool", False, "deconvolution (file v >= 9)"),
    "output_shape": AttrSpec("ints", (0,), "output shape of a transposed convolution, numpy "
                             "order; (0,) = computed (file v >= 20)"),
    "ceil_out_dim": AttrSpec("bool", False, "round output sizes up (file v >= 21)"),
    "pool_include_pad": AttrSpec("bool", False, "average pooling counts padding (file v >= 23)"),
}

#: pooling keeps its input's maps: CNTK stores a map count of 1 (every real file holds (1,)),
#: and CNTK 2.7 computes 0 output elements from a stored 0
_POOL_MAPS = {"map_count": AttrSpec("ints", (1,), "map count; pooling keeps the input's maps "
                                    "(file mapCount, always 1)")}

CONV_ATTRS = {
    **CONV_BASE_ATTRS,
    "convolution_2d": AttrSpec("bool", False, "legacy 2-D convolution (NDL 7-argument form; "
                               "file bool convolution2D, v >= 5); W is [outC x kW·kH·inC]. "
                               "Files v < 5 store kW, kH, sW, sH, mapCount, layout, zeroPad, "
                               "maxTemp instead of the base block: read them as kernel_shape="
                               "(1, kH, kW), strides=(1, sH, sW), map_count=(mapCount, 1, 1), "
                               "auto_padding=(zeroPad,), convolution_2d=True"),
    "dilation": AttrSpec("ints", (1,), "dilation per axis, numpy order (file v >= 18)"),
}

LEGACY_POOL_ATTRS = {
    "window_width": AttrSpec("int", 1, "pooling window width (file u32)"),
    "window_height": AttrSpec("int", 1, "pooling window height (file u64)"),
    "horizontal_subsample": AttrSpec("int", 1, "horizontal stride (file u64)"),
    "vertical_subsample": AttrSpec("int", 1, "vertical stride (file u64)"),
    "image_layout": AttrSpec("str", "HWC", "CHW or HWC (file u32 1/0)"),
}


def image_dims(ctx: ShapeContext, shape: Shape, layout: str) -> tuple[int, int, int]:
    """(width, height, channels) of a numpy-order image shape in ``layout``.

    CHW/cudnn images are CNTK ``[W x H x C]`` = numpy (C, H, W); HWC/legacy images are CNTK
    ``[C x W x H]`` = numpy (H, W, C). Lower ranks are padded with 1s as CNTK did.
    """
    s = (1,) * (3 - len(shape)) + tuple(shape) if len(shape) < 3 else tuple(shape)
    if len(s) > 3:
        ctx.fail(f"an image input must have rank <= 3, not {fmt_shape(shape)}")
    if layout_name(layout) == "CHW":
        c, h, w = s
    else:
        h, w, c = s
    return w, h, c


def image_from_dims(width: int, height: int, channels: int, layout: str) -> Shape:
    """numpy-order image shape from (W, H, C) in ``layout``."""
    if layout_name(layout) == "CHW":
        return (channels, height, width)
    return (height, width, channels)


@dataclass(frozen=True)
class AxisGeometry:
    """One input axis of a convolution/pooling, CNTK order."""

    input: int
    kernel: int
    stride: int
    auto_pad: bool
    lower: int
    upper: int
    dilation: int
    sharing: bool
    reduced: bool  # a kernel axis added to reach the input rank (reduced over)


def _per_axis(values: Any, i: int, default: Any) -> Any:
    vals = list(reversed(tuple(values or ())))  # CNTK order
    if not vals:
        return default
    if len(vals) == 1:
        return vals[0]
    return vals[i] if i < len(vals) else vals[-1]


def split_padding(k: int, total: int) -> tuple[int, int]:
    """Low/high split of ``total`` auto-padding cells for an (effective) kernel of ``k``: the
    low side gets ⌊(k−1)/2⌋, the rest goes at the end — CNTK's rule for odd and even kernels
    alike (checked against CNTK 2.7: windows 2 and 4, strides 1–3, and v2 AveragePooling)."""
    lo = min((k - 1) // 2, total)
    return lo, total - lo


def conv_geometry(input_shape: Shape, attrs: Any, *, pooling: bool = False) -> list[AxisGeometry]:
    """Per-axis geometry, CNTK order, of an N-d convolution or pooling on ``input_shape``.

    A kernel of lower rank than the input is completed as CNTK did: convolution reduces over
    the missing axes (kernel = stride = input dim, no padding), pooling leaves them alone
    (kernel = stride = 1).
    """
    dims = tuple(reversed(tuple(input_shape)))
    kernel = tuple(reversed(tuple(attrs["kernel_shape"])))
    out = []
    for i, d in enumerate(dims):
        if i < len(kernel):
            out.append(AxisGeometry(
                input=d, kernel=int(kernel[i]),
                stride=int(_per_axis(attrs["strides"], i, 1)),
                auto_pad=bool(_per_axis(attrs["auto_padding"], i, not pooling)),
                lower=int(_per_axis(attrs["lower_pad"], i, 0)),
                upper=int(_per_axis(attrs["upper_pad"], i, 0)),
                dilation=int(_per_axis(attrs.get("dilation", (1,)), i, 1)),  # pooling: none
                sharing=bool(_per_axis(attrs["sharing"], i, True)),
                reduced=False))
        else:
            k = 1 if pooling else d
            out.append(AxisGeometry(input=d, kernel=k, stride=k, auto_pad=False, lower=0, upper=0,
                                    dilation=1, sharing=True, reduced=True))
    return out


@dataclass(frozen=True)
class LegacyConv2d:
    """The geometry of CNTK's legacy 7-argument 2-D convolution (W is [K x kW·kH·C])."""

    hwc: bool
    c_in: int
    c_out: int
    kernel: tuple[int, int]  # (kh, kw)
    strides: tuple[int, int]  # (sh, sw)
    pad: bool


def legacy_conv2d(input_shape: Shape, output_shape: Shape, attrs: Any) -> LegacyConv2d:
    """The legacy convolution of ``input_shape`` (an image, CHW or HWC) as the runtime and
    the exporters compute it; the caller checks the input is an image (rank 3)."""
    hwc = attrs["image_layout"] == "HWC"
    kernel, strides = attrs["kernel_shape"], attrs["strides"]
    return LegacyConv2d(
        hwc=hwc, c_in=input_shape[2] if hwc else input_shape[0],
        c_out=output_shape[2] if hwc else output_shape[0],
        kernel=(kernel[-2] if len(kernel) > 1 else kernel[-1], kernel[-1]),
        strides=(strides[-2] if len(strides) > 1 else strides[-1], strides[-1]),
        pad=bool(attrs["auto_padding"][-1]))


def channel_kernel_fits(channel: AxisGeometry, channels: int, *, pooling: bool,
                        transpose: bool = False) -> bool:
    """Whether the kernel's extent over the channel axis (numpy axis 0, ``conv_geometry``'s
    last entry) is one the runtime and the exporters compute: all channels for a
    convolution (one output map per filter), one channel for pooling."""
    c = channel
    if pooling:
        return c.reduced or (c.kernel == 1 and c.stride == 1)
    return c.reduced or transpose or (
        c.kernel == channels and not c.auto_pad and c.lower == c.upper == 0)


def _axis_out(ctx: ShapeContext, g: AxisGeometry, ceil_out: bool) -> int:
    dim = g.input + (g.kernel - 1 if g.auto_pad else g.lower + g.upper)
    effective = (g.kernel - 1) * g.dilation + 1
    if g.stride <= 0:
        ctx.fail("strides must be positive")
    precise = (dim - effective) / g.stride + 1
    out = math.ceil(precise) if ceil_out else math.floor(precise)
    if out < 1:
        ctx.fail(f"kernel {g.kernel} (stride {g.stride}) does not fit an input axis of "
                 f"{g.input}")
    return int(out)


def _convolution(ctx: ShapeContext) -> Shape:
    w, x = tuple(ctx.shapes[0]), tuple(ctx.shapes[1])
    if ctx.attrs["convolution_2d"]:
        return _convolution_2d(ctx, w, x)
    if len(tuple(ctx.attrs["kernel_shape"])) > len(x):
        ctx.fail(f"kernel_shape {fmt_shape(tuple(ctx.attrs['kernel_shape']))} has a higher "
                 f"rank than the input {fmt_shape(x)}")
    geo = conv_geometry(x, ctx.attrs)
    given = tuple(ctx.attrs["output_shape"])
    if ctx.attrs["transpose"] and not (given and 0 not in given):
        return _transposed_convolution(ctx, w, x)
    if not all(g.sharing for g in geo) and not ctx.attrs["transpose"]:
        return _local_convolution(ctx, w, geo)
    kernel_full = tuple(g.kernel for g in geo)  # CNTK order
    maps = tuple(reversed(tuple(ctx.attrs["map_count"])))
    map_total = prod(maps)
    if map_total == 0:
        if 0 in w or prod(kernel_full) == 0 or prod(w) % prod(kernel_full):
            ctx.fail(f"cannot infer the map count: W {fmt_shape(w)} is not a multiple of the "
                     f"kernel {fmt_shape(tuple(reversed(kernel_full)))}")
        map_total = prod(w) // prod(kernel_full)
        maps = (map_total,)
    want = prod(kernel_full) * map_total
    if 0 in w:
        expected = tuple(reversed(kernel_full + maps))
        if len(w) == len(expected) and all(a in (0, b) for a, b in zip(w, expected)):
            ctx.refine(0, expected)
        else:
            done = fill_zeros(w, want)
            if done is None:
                ctx.fail(f"cannot infer W {fmt_shape(w)} as kernel {fmt_shape(expected)}")
            ctx.refine(0, done)
    elif prod(w) != want and all(g.sharing for g in geo):
        ctx.fail(f"W {fmt_shape(w)} must hold kernel x map count = {want} values (kernel "
                 f"{fmt_shape(tuple(reversed(kernel_full)))}, {map_total} maps)")
    ceil_out = bool(ctx.attrs["ceil_out_dim"])
    if ctx.attrs["transpose"]:
        return given  # the requested output shape (computed shapes: _transposed_convolution)
    out = [_axis_out(ctx, g, ceil_out) for g in geo]
    if len(maps) == len(out):
        out = [o * m for o, m in zip(out, maps)]
    else:
        out[-1] *= map_total
    return tuple(reversed(out))


def transposed_axis_out(x: int, kernel: int, stride: int, dilation: int, auto_pad: bool,
                        lower: int, upper: int) -> int:
    """Output size of one axis of a transposed convolution whose operand axis holds ``x``
    positions (the map count already divided out): the size whose forward convolution gives
    ``x`` back — CNTK's ``ConvolveGeometry::ComputeInputShape``, the inverse of
    out = ⌊(in + pad − k)/stride⌋ + 1 (ndl-mel.md §B.9.7) with pad = (k−1)·dilation under
    auto-padding and lower + upper otherwise: (x−1)·stride + 1 auto-padded, else
    (x−1)·stride + (k−1)·dilation + 1 − lower − upper."""
    if auto_pad:
        return (x - 1) * stride + 1
    return (x - 1) * stride + (kernel - 1) * dilation + 1 - lower - upper


def _transposed_convolution(ctx: ShapeContext, w: Shape, x: Shape) -> Shape:
    """A transposed convolution (deconvolution) without a requested output shape.

    The attributes describe the *forward* convolution from the output to x (bs-library.md
    §2.5, cntk-v2-format.md §4.3): the kernel spans the output's axes, its last (channel)
    extent being the output channel count, and the map count is x's channel count
    (``ConvolutionTransposeLayer{numOutputChannels, filterShape, numInputChannels}`` passes
    kernel ``filterShape ++ numOutputChannels`` and ``mapDims = numInputChannels``; W is
    ``[filterShape x numOutputChannels x numInputChannels]``). A map count of 0 is x's
    channel count; a kernel without the channel axis takes that extent from W. Each axis of
    x is divided by its map count and sized by :func:`transposed_axis_out`.
    """
    dims = tuple(reversed(x))  # CNTK order
    rank = len(dims)
    kernel = [int(k) for k in reversed(tuple(ctx.attrs["kernel_shape"]))]
    maps = tuple(int(m) for m in reversed(tuple(ctx.attrs["map_count"])))
    if prod(maps) == 0:
        maps = (dims[-1],)
    map_total = prod(maps)

    def map_of(i: int) -> int:
        if len(maps) > 1:
            return maps[i] if i < len(maps) else 1
        return maps[0] if i == rank - 1 else 1

    if len(kernel) < rank:
        if len(kernel) < rank - 1:
            ctx.fail(f"kernel_shape {fmt_shape(tuple(ctx.attrs['kernel_shape']))} of a "
                     f"transposed convolution must cover every axis of the output but the "
                     f"channel axis (input {fmt_shape(x)})")
        per = prod(kernel) * map_total
        if 0 in w or per == 0 or prod(w) % per:
            ctx.fail(f"cannot infer the output channels: W {fmt_shape(w)} is not a multiple of "
                     f"the kernel {fmt_shape(tuple(reversed(kernel)))} x {map_total} maps; give "
                     "the kernel with the output channel count last (CNTK order)")
        kernel.append(prod(w) // per)
    want = prod(kernel) * map_total
    expected = tuple(reversed(tuple(kernel) + maps))
    if 0 in w:
        if len(w) == len(expected) and all(a in (0, b) for a, b in zip(w, expected)):
            ctx.refine(0, expected)
        else:
            done = fill_zeros(w, want)
            if done is None:
                ctx.fail(f"cannot infer W {fmt_shape(w)} as kernel x maps "
                         f"{fmt_shape(expected)}")
            ctx.refine(0, done)
    elif prod(w) != want:
        ctx.fail(f"W {fmt_shape(w)} must hold kernel x map count = {want} values (kernel "
                 f"{fmt_shape(tuple(reversed(kernel)))}, {map_total} maps = the input's "
                 "channels)")
    out = []
    for i, d in enumerate(dims):
        m = map_of(i)
        if m <= 0 or d % m:
            ctx.fail(f"input axis of {d} is not a multiple of the map count {m} (a transposed "
                     f"convolution's map count is its input's channel count)")
        stride = int(_per_axis(ctx.attrs["strides"], i, 1))
        if stride <= 0:
            ctx.fail("strides must be positive")
        size = transposed_axis_out(
            d // m, kernel[i], stride, int(_per_axis(ctx.attrs.get("dilation", (1,)), i, 1)),
            bool(_per_axis(ctx.attrs["auto_padding"], i, True)),
            int(_per_axis(ctx.attrs["lower_pad"], i, 0)),
            int(_per_axis(ctx.attrs["upper_pad"], i, 0)))
        if size < 1:
            ctx.fail(f"the padding leaves no output on an axis of {d} (kernel {kernel[i]}, "
                     f"stride {stride})")
        if kernel[i] > size:  # CNTK: "requires that kernel dim <= input dim"
            ctx.fail(f"kernel {kernel[i]} is larger than the output axis of {size} it is "
                     f"computed for (CNTK axis {i + 1})"
                     + ("; auto-padding the channel axis leaves 1 channel: use autoPadding "
                        "false for it, e.g. (true:true:false)" if i == rank - 1 else ""))
        out.append(size)
    return tuple(reversed(out))


def _local_convolution(ctx: ShapeContext, w: Shape, geo: list[AxisGeometry]) -> Shape:
    """A locally connected convolution (``sharing`` false on some axis).

    As CNTK's ConvolveGeometry, W holds one kernel per *kernel index*, kernels contiguous;
    per CNTK axis i the index ranges over the axis' output size when it is unshared and over
    ``mapCount(i)`` when it is shared. So W is numpy ``reversed(kernel ++ K)`` with
    K_i = out_i (unshared) or mapCount(i) (shared); e.g. a CHW image, kernel spanning the
    channels, unshared spatial axes: numpy (M, outH, outW, C, kH, kW). A W of any shape with
    that many elements is accepted (CNTK reads it in memory order); a W with unknown (0)
    dimensions is inferred as that shape. A map count of 0 is inferred from W's size.
    """
    ceil_out = bool(ctx.attrs["ceil_out_dim"])
    positions = [_axis_out(ctx, g, ceil_out) for g in geo]
    kernel_full = tuple(g.kernel for g in geo)  # CNTK order
    maps = tuple(reversed(tuple(ctx.attrs["map_count"])))
    map_total = prod(maps)
    per_map = prod(kernel_full) * prod(p for p, g in zip(positions, geo) if not g.sharing)
    if map_total == 0:
        if 0 in w or per_map == 0 or prod(w) % per_map:
            ctx.fail(f"cannot infer the map count: W {fmt_shape(w)} is not a multiple of kernel "
                     f"x unshared output positions = {per_map}")
        map_total = prod(w) // per_map
        maps = (map_total,)
    last = len(geo) - 1

    def map_of(i: int) -> int:
        if len(maps) == len(geo):
            return int(maps[i])
        return map_total if i == last else 1

    out = [p * map_of(i) for i, p in enumerate(positions)]
    count = [o if not g.sharing else map_of(i) for i, (o, g) in enumerate(zip(out, geo))]
    expected = tuple(reversed(kernel_full + tuple(count)))
    if 0 in w:
        if len(w) == len(expected) and all(a in (0, b) for a, b in zip(w, expected)):
            ctx.refine(0, expected)
        else:
            done = fill_zeros(w, prod(expected))
            if done is None:
                ctx.fail(f"cannot infer W {fmt_shape(w)} as the locally connected kernels "
                         f"{fmt_shape(expected)}")
            ctx.refine(0, done)
    elif prod(w) != prod(expected):
        ctx.fail(f"W {fmt_shape(w)} must hold {prod(expected)} values for a locally connected "
                 f"convolution: one kernel {fmt_shape(tuple(reversed(kernel_full)))} per map "
                 f"and unshared output position, numpy {fmt_shape(expected)}")
    return tuple(reversed(out))


def _convolution_2d(ctx: ShapeContext, w: Shape, x: Shape) -> Shape:
    layout = ctx.attrs["image_layout"]
    width, height, channels = image_dims(ctx, x, layout)
    kernel = tuple(reversed(tuple(ctx.attrs["kernel_shape"])))
    strides = tuple(reversed(tuple(ctx.attrs["strides"])))
    kw, kh = int(kernel[0]), int(kernel[1] if len(kernel) > 1 else 1)
    sw, sh = int(strides[0]), int(strides[1] if len(strides) > 1 else strides[0])
    pad = bool(_per_axis(ctx.attrs["auto_padding"], 0, False))
    maps = prod(tuple(ctx.attrs["map_count"]))
    cols = kw * kh * channels
    if maps == 0:
        if 0 in w or cols == 0 or prod(w) % cols:
            ctx.fail(f"cannot infer the output channels from W {fmt_shape(w)}")
        maps = prod(w) // cols
    if 0 in w:
        ctx.refine(0, fill_zeros(w, maps * cols) if len(w) != 2 else
                   tuple(a if a else b for a, b in zip(w, (cols, maps))))
    elif prod(w) != maps * cols:
        ctx.fail(f"W {fmt_shape(w)} must be CNTK [{maps} x {cols}] (outChannels x kW·kH·inC)")
    if pad:
        ow, oh = -(-width // sw), -(-height // sh)
    else:
        if width < kw or height < kh:
            ctx.fail(f"kernel {kw}x{kh} is larger than the image {width}x{height}")
        ow, oh = (width - kw) // sw + 1, (height - kh) // sh + 1
    return image_from_dims(ow, oh, maps, layout)


def _pooling(ctx: ShapeContext) -> Shape:
    x = tuple(ctx.shapes[0])
    if len(tuple(ctx.attrs["kernel_shape"])) > len(x):
        ctx.fail(f"kernel_shape {fmt_shape(tuple(ctx.attrs['kernel_shape']))} has a higher "
                 f"rank than the input {fmt_shape(x)}")
    geo = conv_geometry(x, ctx.attrs, pooling=True)
    ceil_out = bool(ctx.attrs["ceil_out_dim"])
    return tuple(reversed([_axis_out(ctx, g, ceil_out) for g in geo]))


def _unpooling(ctx: ShapeContext) -> Shape:
    return tuple(ctx.shapes[1])


def _legacy_pooling(ctx: ShapeContext) -> Shape:
    layout = ctx.attrs["image_layout"]
    width, height, channels = image_dims(ctx, tuple(ctx.shapes[0]), layout)
    ww, wh = int(ctx.attrs["window_width"]), int(ctx.attrs["window_height"])
    hs, vs = int(ctx.attrs["horizontal_subsample"]), int(ctx.attrs["vertical_subsample"])
    if width < ww or height < wh:
        ctx.fail(f"window {ww}x{wh} is larger than the image {width}x{height}")
    return image_from_dims((width - ww) // hs + 1, (height - wh) // vs + 1, channels, layout)


def _roi_pooling(ctx: ShapeContext) -> Shape:
    x, rois = tuple(ctx.shapes[0]), tuple(ctx.shapes[1])
    _, _, channels = image_dims(ctx, x, "CHW")
    if rois and rois[-1] not in (0, 4):
        ctx.fail(f"ROIs must hold 4 coordinates per region, not {fmt_shape(rois)}")
    return rois[:-1] + (channels,) + tuple(ctx.attrs["roi_output_shape"])


# ---- NDL functions ---------------------------------------------------------------------
def _shape_opt(bound: dict[str, Any], key: str, default: Any) -> tuple[int, ...]:
    v = bound.get(key)
    return np_shape(default if v is None else v)


def _base_from_ndl(bound: dict[str, Any], *, pooling: bool) -> dict[str, Any]:
    attrs = {
        "strides": _shape_opt(bound, "stride", 1),
        "auto_padding": np_bools(
            True if bound.get("autoPadding") is None else bound["autoPadding"]),
        "lower_pad": _shape_opt(bound, "lowerPad", 0),
        "upper_pad": _shape_opt(bound, "upperPad", 0),
        "image_layout": layout_name(bound.get("imageLayout") or "CHW"),
        "max_temp_mem_size_in_samples": int(bound.get("maxTempMemSizeInSamples") or 0),
        "ceil_out_dim": as_bool(bound.get("ceilOutDim") or False),
        "pool_include_pad": as_bool(bound.get("poolIncludePad") or False),
    }
    if not pooling:
        attrs.update(
            map_count=_shape_opt(bound, "mapCount", 0),
            sharing=np_bools(True if bound.get("sharing") is None else bound["sharing"]),
            transpose=as_bool(bound.get("transpose") or False),
            output_shape=_shape_opt(bound, "outputShape", 0),
            dilation=_shape_opt(bound, "dilation", 1),
        )
    return attrs


def _make_convolution(fn: FunctionSpec, bound: dict[str, Any], form: Form) -> NodeRecipe:
    recipe = NodeRecipe(op="Convolution", inputs=[bound.get("W"), bound.get("x")])
    if "kernelWidth" in bound:  # legacy 2-D form
        kw, kh = int(bound["kernelWidth"]), int(bound["kernelHeight"])
        recipe.attrs.update(
            kernel_shape=(1, kh, kw), map_count=(int(bound["outputChannels"]), 1, 1),
            strides=(1, int(bound["verticalSubsample"]), int(bound["horizontalSubsample"])),
            sharing=(True,), auto_padding=(as_bool(bound.get("zeroPadding") or False),),
            lower_pad=(0,), upper_pad=(0,), convolution_2d=True,
            image_layout=layout_name(bound.get("imageLayout") or "HWC"),
            max_temp_mem_size_in_samples=int(bound.get("maxTempMemSizeInSamples") or 0))
        return recipe
    kernel = bound.get("kernelShape")
    if kernel is None:
        raise ArgumentError("Convolution: the kernel shape is missing; use Convolution(W, x, "
                         "kernelShape) or Convolution(W, x, kW, kH, outChannels, hStride, "
                         "vStride)")
    recipe.attrs.update(kernel_shape=np_shape(kernel), **_base_from_ndl(bound, pooling=False))
    return recipe


def _make_pooling(fn: FunctionSpec, bound: dict[str, Any], form: Form) -> NodeRecipe:
    inputs = [bound.get("x")] + ([bound.get("poolInput")] if fn.op == "MaxUnpooling" else [])
    recipe = NodeRecipe(op=fn.op, inputs=inputs)
    kind = pool_kind_name(bound["poolKind"]) if fn.op == "Pooling" else "max"
    recipe.attrs.update(kernel_shape=np_shape(bound["kernelShape"]), pool_kind=kind,
                        **_base_from_ndl(bound, pooling=True))
    return recipe


def _make_legacy_pooling(fn: FunctionSpec, bound: dict[str, Any], form: Form) -> NodeRecipe:
    return NodeRecipe(op=fn.op, inputs=[bound.get("x")], attrs={
        "window_width": int(bound["windowWidth"]), "window_height": int(bound["windowHeight"]),
        "horizontal_subsample": int(bound["horizontalSubsample"]),
        "vertical_subsample": int(bound["verticalSubsample"]),
        "image_layout": layout_name(bound.get("imageLayout") or "HWC")})


_ARRAY_OPTIONS = {
    "stride": Param("stride", "shape", None),
    "autoPadding": Param("autoPadding", "any", None),
    "lowerPad": Param("lowerPad", "shape", None),
    "upperPad": Param("upperPad", "shape", None),
    "imageLayout": Param("imageLayout", "text", None),
    "maxTempMemSizeInSamples": Param("maxTempMemSizeInSamples", "int", 0),
    "ceilOutDim": Param("ceilOutDim", "bool", False),
    "poolIncludePad": Param("poolIncludePad", "bool", False, aliases=("includePad",)),
}
_CONV_OPTIONS = {
    **_ARRAY_OPTIONS,
    "mapCount": Param("mapCount", "shape", None),
    "sharing": Param("sharing", "any", None),
    "outputShape": Param("outputShape", "shape", None),
    "transpose": Param("transpose", "bool", False),
    "dilation": Param("dilation", "shape", None),
    "zeroPadding": Param("zeroPadding", "bool", False),
    "kernelShape": Param("kernelShape", "shape", None),
}

_BASE_NODE = (
    NodeOption("kernelShape", "kernel_shape", "shape"),
    NodeOption("strideShape", "strides", "shape", aliases=("stride",)),
    NodeOption("dimPadding", "auto_padding", "bools", aliases=("autoPadding",)),
    NodeOption("dimPadLower", "lower_pad", "shape", aliases=("lowerPad",)),
    NodeOption("dimPadUpper", "upper_pad", "shape", aliases=("upperPad",)),
    NodeOption("imageLayout", "image_layout", "layout"),
    NodeOption("maxTempMemSizeInSamples", "max_temp_mem_size_in_samples", "int"),
)
_POOL_NODE = (
    *_BASE_NODE,
    NodeOption("pool", "pool_kind", "pool", aliases=("poolKind",)),
    NodeOption("ceilOut", "ceil_out_dim", "bool", aliases=("ceilOutDim",)),
    NodeOption("poolIncludePad", "pool_include_pad", "bool", aliases=("includePad",)),
)


def _convolution_plus(ctx: ShapeContext) -> Shape:
    """Convolution of the first two inputs, broadcast with the per-channel bias."""
    from netsurgeon.ops._shapes import broadcast

    return broadcast(ctx, [_convolution(ctx), tuple(ctx.shapes[2])])


def register(ops: OpRegistry) -> None:
    """Register convolution and pooling ops."""
    conv_forms = (
        Form((Param("W", "input"), Param("x", "input"), Param("kernelShape", "shape", None))),
        Form((Param("W", "input"), Param("x", "input"), Param("kernelWidth", "int"),
              Param("kernelHeight", "int"), Param("outputChannels", "int"),
              Param("horizontalSubsample", "int"), Param("verticalSubsample", "int"))),
    )
    define(ops, "Convolution", (2, 2), _convolution, inputs=("W", "x"), attrs=CONV_ATTRS,
           categories={C.CONVOLUTION},
           node_options=(*_BASE_NODE,
                         NodeOption("mapCount", "map_count", "shape", aliases=("mapDims",)),
                         NodeOption("dimSharing", "sharing", "bools", aliases=("sharing",)),
                         NodeOption("dimDilation", "dilation", "shape", aliases=("dilation",)),
                         NodeOption("transpose", "transpose", "bool"),
                         NodeOption("dimOutputShape", "output_shape", "shape",
                                    aliases=("outputShape",))),
           functions=(FunctionSpec("Convolution", "Convolution", conv_forms, _CONV_OPTIONS,
                                   ("Convolve",), _make_convolution, languages=NDL,
                                   doc="(W, x, kernelShape) N-d form, or the legacy 2-D "
                                       "(W, x, kW, kH, outChannels, hStride, vStride)"),),
           doc="Convolution (or deconvolution with transpose) of x with the kernels W.")
    define(ops, "ConvolutionPlus", (3, 3), _convolution_plus, inputs=("W", "x", "bias"),
           attrs=CONV_ATTRS, categories={C.CONVOLUTION}, internal=True,
           doc="Plus(Convolution(W, x), bias) as one node (the bias added by the convolution "
               "kernel); made by the FuseLinear pass for code generation only.")
    define(ops, "Pooling", (1, 1), _pooling, inputs=("x",),
           attrs={**CONV_BASE_ATTRS, **_POOL_MAPS,
                  "pool_kind": AttrSpec("str", "max", "max, average or none (file i32 1/2/0)")},
           categories={C.POOLING}, node_options=_POOL_NODE,
           functions=(FunctionSpec("Pooling", "Pooling", (Form((
               Param("x", "input"), Param("poolKind", "text"), Param("kernelShape", "shape"))),),
               _ARRAY_OPTIONS, make=_make_pooling, languages=NDL),),
           doc="N-d max/average pooling.")
    define(ops, "MaxUnpooling", (2, 2), _unpooling, inputs=("x", "pool_input"),
           attrs={**CONV_BASE_ATTRS, **_POOL_MAPS,
                  "pool_kind": AttrSpec("str", "max", "always max")},
           categories={C.POOLING}, node_options=_POOL_NODE,
           functions=(FunctionSpec("MaxUnpooling", "MaxUnpooling", (Form((
               Param("x", "input"), Param("poolInput", "input"),
               Param("kernelShape", "shape"))),),
               _ARRAY_OPTIONS, make=_make_pooling, languages=NDL),),
           doc="Inverse of max pooling: the output has pool_input's shape.")
    define(ops, "ConvolutionSequenceShape", (1, 1), lambda ctx: (1,), inputs=("x",),
           attrs=CONV_BASE_ATTRS, categories={C.CONVOLUTION}, has_math=False,
           doc="Sequence-length helper of sequential convolution (stored, not evaluated).")
    for name, doc in (("MaxPooling", "Legacy 2-D max pooling, no padding."),
                      ("AveragePooling", "Legacy 2-D average pooling, no padding.")):
        define(ops, name, (1, 1), _legacy_pooling, inputs=("x",), attrs=LEGACY_POOL_ATTRS,
               categories={C.POOLING},
               node_options=(NodeOption("windowWidth", "window_width", "int"),
                             NodeOption("windowHeight", "window_height", "int"),
                             NodeOption("horizontalSubsample", "horizontal_subsample", "int"),
                             NodeOption("verticalSubsample", "vertical_subsample", "int"),
                             NodeOption("imageLayout", "image_layout", "layout")),
               functions=(FunctionSpec(name, name, (Form((
                   Param("x", "input"), Param("windowWidth", "int"),
                   Param("windowHeight", "int"), Param("horizontalSubsample", "int"),
                   Param("verticalSubsample", "int"))),),
                   {"imageLayout": Param("imageLayout", "text", "HWC")},
                   make=_make_legacy_pooling, languages=NDL),),
               doc=doc)
    define(ops, "ROIPooling", (2, 2), _roi_pooling, inputs=("x", "rois"),
           attrs={"roi_output_shape": AttrSpec("ints", (1, 1), "pooled (height, width) per "
                                               "region, numpy order (file shape)"),
                  "pool_kind": AttrSpec("str", "max", "max or average (file v >= 26)"),
                  "spatial_scale": AttrSpec("float", 0.0625, "ROI to feature-map scale (file "
                                            "v >= 26; before: 1/16)")},
           categories={C.POOLING},
           node_options=(NodeOption("roiOutputShape", "roi_output_shape", "shape"),
                         NodeOption("pool", "pool_kind", "pool"),
                         NodeOption("featureScale", "spatial_scale", "float",
                                    aliases=("spatialScale",))),
           functions=(broken_function("ROIPooling"),),
           doc="Region-of-interest pooling (NDL cannot create it; files and BrainScript can).")
