"""Reshaping: Reshape, Slice, RowStack, RowRepeat, TransposeDimensions, Diagonal, Crop, Cast,
ReconcileDynamicAxis, as ``runtime/lowerings/linear`` and ``misc`` compute them (a lower-rank
input is padded with 1s in front first, as the shape rules do)."""

from __future__ import annotations

from math import prod

import numpy as np

from netsurgeon.formats.onnx._layer import export_entry
from netsurgeon.formats.onnx.export_context import refuse
from netsurgeon.ops._shapes import pad_rank
from netsurgeon.ops.reshaping import slice_range, transpose_permutation


@export_entry("Reshape", "LegacyReshape")
def _reshape(ctx, node, args):
    x = args[0]
    if prod(x.shape) != prod(node.shape):
        raise refuse(node, f"reshaping {x.shape} to {node.shape} changes the number of elements "
                           "per sample")
    return ctx.reshape(x, node.shape, node.op)


@export_entry("Slice")
def _slice(ctx, node, args):
    x = args[0]
    attrs = node.attrs
    rank = len(node.shape)
    shape = pad_rank(x.shape, rank)
    lead = 1 if x.dynamic else 0
    strides = attrs["stride_multiplier"] or (1,) * len(attrs["axis"])
    starts, ends, axes, steps = [], [], [], []
    for begin, end, axis, stride in zip(attrs["begin"], attrs["end"], attrs["axis"], strides):
        i = rank + axis
        lo, hi = slice_range(shape[i], begin, end)
        starts.append(lo)
        ends.append(hi)
        axes.append(i + lead)
        steps.append(stride)
    xs = ctx.reshape(x, shape, "padded")
    return ctx.add("Slice", [xs, ctx.ints(starts), ctx.ints(ends), ctx.ints(axes),
                             ctx.ints(steps)], "Slice")


@export_entry("RowStack")
def _row_stack(ctx, node, args):
    """Concatenate along ``axis``; size-1 axes of inputs broadcast (CNTK does)."""
    out = tuple(node.shape)
    rank = len(out)
    axis = rank + node.attrs["axis"]
    shapes = [pad_rank(a.shape, rank) for a in args]
    if sum(s[axis] for s in shapes) != out[axis]:
        raise refuse(node, f"input shapes {[tuple(a.shape) for a in args]} do not concatenate "
                           f"to {out} on axis {node.attrs['axis']}")
    padded = _as_pad(ctx, node, args, shapes, axis)
    if padded is not None:
        return padded
    parts = []
    for a, s in zip(args, shapes):
        e = ctx.reshape(a, s, "padded")
        full = tuple(out[i] if i != axis else s[i] for i in range(rank))
        if node.dynamic and not a.dynamic:
            e = ctx.add("Expand", [e, ctx.with_frames(full)], "expand")
        elif full != s:
            e = ctx.add("Expand", [e, ctx.ints(((1,) if a.dynamic else ()) + full)], "expand")
        parts.append(e)
    return ctx.add("Concat", parts, "RowStack", axis=axis + (1 if node.dynamic else 0))


def _uniform(node) -> float | None:
    """The one value every element of a constant node holds (through transposes and
    reshapes of it), else None."""
    while node.value is None and node.op in ("TransposeDimensions", "Reshape", "LegacyReshape") \
            and len(node.inputs) == 1 and node.inputs[0] is not None:
        node = node.inputs[0]
    if node.value is None or node.dynamic:
        return None
    arr = np.asarray(node.value)
    if arr.size == 0 or arr.dtype.kind != "f" or not np.all(arr == arr.flat[0]):
        return None
    return float(arr.flat[0])


def _as_pad(ctx, node, args, shapes, axis: int) -> str | None:
    """A frame value stacked with constant blocks of one value (a shortcut's zero channels)
    as one Pad of it, else None: no broadcast of the constant to every frame, and nothing
    onnxruntime cannot move transposes through."""
    dynamic = [i for i, a in enumerate(args) if a.dynamic]
    out = tuple(node.shape)
    if not node.dynamic or len(dynamic) != 1 or len(args) < 2:
        return None
    k = dynamic[0]
    if any(shapes[k][i] != out[i] for i in range(len(out)) if i != axis):
        return None
    values = {_uniform(a.node) for i, a in enumerate(args) if i != k}
    if len(values) != 1 or None in values:
        return None
    before = sum(s[axis] for s in shapes[:k])
    after = sum(s[axis] for s in shapes[k + 1:])
    lo = [0] * (len(out) + 1)
    hi = [0] * (len(out) + 1)
    lo[axis + 1], hi[axis + 1] = before, after
    x = ctx.reshape(args[k], shapes[k], "padded")
    return ctx.add("Pad", [x, ctx.ints(lo + hi), ctx.scalar(values.pop(), "value")], "RowStack",
                   mode="constant")


@export_entry("RowRepeat")
def _row_repeat(ctx, node, args):
    x = args[0]
    shape = tuple(x.shape) or (1,)
    reps = [1] * (len(shape) - 1 + (1 if x.dynamic else 0)) + [node.attrs["num_repeats"]]
    return ctx.add("Tile", [ctx.reshape(x, shape, "padded"), ctx.ints(reps)], "RowRepeat")


@export_entry("TransposeDimensions")
def _transpose(ctx, node, args):
    """Output axis i takes input axis permutation[i], or the swap of the two ``axes``."""
    x = args[0]
    perm, shape = transpose_permutation(x.shape, node.attrs)
    if tuple(shape[p] for p in perm) != tuple(node.shape):
        raise refuse(node, f"permutation {perm} of {x.shape} does not give the validated "
                           f"{node.shape}")
    xs = ctx.reshape(x, shape, "padded")
    full = [0, *(p + 1 for p in perm)] if x.dynamic else perm
    return ctx.add("Transpose", [xs], "TransposeDimensions", perm=full)


@export_entry("Diagonal")
def _diagonal(ctx, node, args):
    x = args[0]
    if len(x.shape) != 2:
        raise refuse(node, "Diagonal needs a matrix")
    n, m = x.shape
    flat = ctx.reshape(x, (n * m,), "flat")
    index = ctx.const(np.arange(min(n, m), dtype=np.int64) * (m + 1), "diagonal", np.int64)
    picked = ctx.add("Gather", [flat, index], "gather", axis=1 if x.dynamic else 0)
    return ctx.reshape(ctx.view(x, picked, (min(n, m),)), node.shape, "Diagonal")


@export_entry("Crop")
def _crop(ctx, node, args):
    x = args[0]
    h, w = node.shape[-2:]
    if len(args) not in (2, 4):
        raise refuse(node, "Crop needs 2 or 4 inputs")
    ox, oy = node.attrs["x_offset"], node.attrs["y_offset"]
    if ox > 1e300 or oy > 1e300:
        raise refuse(node, "Crop without explicit offsets (automatic from the node graph) is "
                           "not supported; give xOffset/yOffset")
    ox, oy = int(ox), int(oy)
    rank = len(x.shape) + (1 if x.dynamic else 0)
    return ctx.add("Slice", [x.name, ctx.ints([oy, ox]), ctx.ints([oy + h, ox + w]),
                             ctx.ints([rank - 2, rank - 1])], "Crop")


CASTS = {"float": np.float32, "double": np.float64, "float16": np.float16}


@export_entry("Cast")
def _cast(ctx, node, args):
    precision = node.attrs["precision"]
    if precision not in CASTS:
        raise refuse(node, f"Cast precision {precision!r} is unknown; use float, double or "
                           "float16")
    to = ctx.helper.np_dtype_to_tensor_dtype(np.dtype(CASTS[precision]))
    return ctx.add("Cast", [args[0].name], "Cast", to=to)


@export_entry("ReconcileDynamicAxis")
def _reconcile(ctx, node, args):
    data, layout = args
    if data.dynamic or not layout.dynamic:
        return data.name
    rows = ctx.add("Shape", [layout.name], "rows", start=0, end=1)
    shape = ctx.add("Concat", [rows, ctx.ints(data.shape)], "shape", axis=0)
    return ctx.add("Expand", [data.name, shape], "ReconcileDynamicAxis")
