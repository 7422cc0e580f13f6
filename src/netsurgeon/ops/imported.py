"""Ops that only imported models need: what no composition of CNTK's ops computes sensibly.

``GroupedConvolution`` is ONNX's ``Conv`` with ``group > 1`` (depthwise and grouped
convolutions, MobileNet's building block). CNTK's v1 Convolution has no groups: a kernel spans
all input channels. Composing it from per-group Slice + Convolution + RowStack computes the
same values but needs ``group`` convolutions per layer (576 for a MobileNetV3 depthwise
layer), so it is one op here, evaluated by one grouped ``torch`` convolution. It is not in CNTK
v1 files (the cntk_v1 layer derives ``Unsupported``) nor in BrainScript's core library.

Attributes are numpy order over the *spatial* axes of a ``(C, *spatial)`` sample, as the other
convolution ops keep them.
"""

from __future__ import annotations

from math import prod

from netsurgeon.ops._build import define
from netsurgeon.ops._category import Category as C
from netsurgeon.ops._registry import OpRegistry
from netsurgeon.ops._spec import AttrSpec, Shape, ShapeContext, fmt_shape

__all__ = ["register", "GROUPED_CONV_ATTRS", "per_axis"]

GROUPED_CONV_ATTRS = {
    "kernel_shape": AttrSpec("ints", (1,), "spatial kernel shape, numpy order"),
    "strides": AttrSpec("ints", (1,), "stride per spatial axis, numpy order"),
    "dilation": AttrSpec("ints", (1,), "dilation per spatial axis, numpy order"),
    "lower_pad": AttrSpec("ints", (0,), "padding before each spatial axis, numpy order"),
    "upper_pad": AttrSpec("ints", (0,), "padding after each spatial axis, numpy order"),
    "groups": AttrSpec("int", 1, "channel groups: input and output channels are split into "
                       "this many groups, each convolved with its own kernels"),
}


def per_axis(values: tuple[int, ...], rank: int) -> tuple[int, ...]:
    """``values`` for ``rank`` spatial axes: a list of length 1 applies to every axis."""
    values = tuple(int(v) for v in values)
    if len(values) == 1:
        return values * rank
    if len(values) != rank:
        raise ValueError(f"{values} needs one entry per spatial axis ({rank})")
    return values


def _grouped_convolution(ctx: ShapeContext) -> Shape:
    """W (M, C/groups, *kernel), x (C, *spatial) -> (M, *out)."""
    w, x = tuple(ctx.shapes[0]), tuple(ctx.shapes[1])
    groups = int(ctx.attrs["groups"])
    kernel = tuple(int(k) for k in ctx.attrs["kernel_shape"])
    rank = len(kernel)
    if len(x) != rank + 1 or len(w) != rank + 2:
        ctx.fail(f"needs x (C, *spatial) and W (M, C/groups, *kernel) of spatial rank {rank}, "
                 f"not x {fmt_shape(x)} and W {fmt_shape(w)}")
    if groups < 1 or x[0] % groups or w[0] % groups or w[1] * groups != x[0]:
        ctx.fail(f"{groups} groups do not fit {x[0]} input channels and W {fmt_shape(w)}")
    if w[2:] != kernel:
        ctx.fail(f"W {fmt_shape(w)} does not hold kernels {fmt_shape(kernel)}")
    out = [int(w[0])]
    for i, (size, k, s, d, lo, hi) in enumerate(zip(
            x[1:], kernel, per_axis(ctx.attrs["strides"], rank),
            per_axis(ctx.attrs["dilation"], rank), per_axis(ctx.attrs["lower_pad"], rank),
            per_axis(ctx.attrs["upper_pad"], rank))):
        n = (size + lo + hi - (k - 1) * d - 1) // max(s, 1) + 1
        if s < 1 or n < 1:
            ctx.fail(f"kernel {k} (stride {s}, dilation {d}) does not fit spatial axis {i} "
                     f"of {size}")
        out.append(n)
    assert prod(out) > 0
    return tuple(out)


def register(ops: OpRegistry) -> None:
    """Register the ops of imported models."""
    define(ops, "GroupedConvolution", (2, 2), _grouped_convolution, inputs=("W", "x"),
           attrs=GROUPED_CONV_ATTRS, categories={C.CONVOLUTION},
           doc="Grouped (e.g. depthwise) convolution, as ONNX Conv with group > 1: W "
               "(M, C/groups, *kernel) on x (C, *spatial); explicit padding, no bias.")
