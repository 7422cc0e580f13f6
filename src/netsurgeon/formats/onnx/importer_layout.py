"""ONNX ops that move, copy or pick sample elements: Split, Pad, Tile, Expand, Gather,
DepthToSpace, SpaceToDepth and nearest-neighbour Resize/Upsample, as registry Slice,
RowStack, Reshape and TransposeDimensions (and a product with ones to broadcast).

Every index, size and pad must be a constant, and none may touch a batch axis; the one
exception is Gather of a constant table by computed indices (an embedding lookup).
"""

from __future__ import annotations

from math import prod
from typing import Any

import numpy as np

from netsurgeon.formats.onnx.importer_common import (
    Attrs,
    Converter,
    Inputs,
    const,
    data,
    ints,
    out,
)
from netsurgeon.formats.onnx.importer_graph import Builder, Value
from netsurgeon.graph import Node

__all__ = ["CONVERTERS"]


def _text(at: Attrs, key: str, default: str) -> str:
    value = at.get(key, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def _input(ins: Inputs, index: int) -> Value | None:
    return ins[index] if len(ins) > index else None


def _slice(b: Builder, name: str, x: Node, index: int, lo: int, hi: int) -> Node:
    """x[lo:hi] along numpy sample axis ``index`` (the whole axis: x itself)."""
    shape = tuple(x.shape or ())
    d = shape[index]
    if (lo, hi) == (0, d):
        return x
    return b.add(name, "Slice", [x], begin=(lo,), end=(0 if hi == d else hi,),
                 axis=(b.registry_axis(index, len(shape)),), stride_multiplier=(1,))


def _stack(b: Builder, name: str, parts: list[Node], index: int) -> Node:
    """The parts joined along numpy sample axis ``index`` (one part: a Pass)."""
    if len(parts) == 1:
        return b.add(name, "Pass", parts)
    rank = len(parts[0].shape or ())
    return b.add(name, "RowStack", parts, axis=b.registry_axis(index, rank))


def _filled(b: Builder, name: str, shape: tuple[int, ...], value: float) -> Node:
    """A constant (multiplier 0) of ``shape`` holding ``value``."""
    return b.param(Value(name, array=np.full(shape, value, np.float32)), name=name,
                   multiplier=0.0)


def _per_sample_axis(b: Builder, x: Value, values: list[int], what: str,
                     neutral: int) -> list[int]:
    """ONNX per-axis values (one per full axis) as per sample axis; batch axes must hold
    ``neutral``."""
    k = b.lead(x)
    if len(values) != b.full_rank(x):
        raise b.error(f"{what} {values} need one value per axis ({b.full_rank(x)})")
    if any(v != neutral for v in values[:k]):
        raise b.error(f"{what} {values} change the batch axis; netsurgeon ops act per sample")
    return values[k:]


# ---- Split --------------------------------------------------------------------------------
def _split(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    x = data(b, ins[0])
    index = b.sample_axis(x, int(at.get("axis", 0)))
    d, count = x.shape[index], len(n.output)
    if "split" in at:
        sizes = [int(s) for s in at["split"]]
    elif _input(ins, 1) is not None:
        sizes = ints(b, ins[1], "split")
    elif "num_outputs" in at:  # opset 18: ceil-sized parts, the last one smaller
        part = -(-d // int(at["num_outputs"]))
        sizes = [min(part, d - i * part) for i in range(count)]
    else:
        sizes = [d // count] * count if d % count == 0 else []
    if len(sizes) != count or sum(sizes) != d or min(sizes) < 1:
        raise b.error(f"cannot split axis {index} of samples {list(x.shape)} into {count} "
                      f"parts of {sizes or 'equal size'}")
    values, lo = [], 0
    for name, size in zip(n.output, sizes):
        if name:
            node = _slice(b, name, x.node, index, lo, lo + size)
            if node is x.node:
                node = b.add(name, "Pass", [x.node])
            values.append(Value(name, node=node))
        lo += size
    return values


# ---- Pad ----------------------------------------------------------------------------------
def _pad(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """Constant, edge, reflect and wrap padding (negative pads crop) of sample axes."""
    x = data(b, ins[0])
    mode = _text(at, "mode", "constant")
    if "pads" in at:  # opset < 11
        pads, value = [int(p) for p in at["pads"]], float(at.get("value", 0.0))
    else:
        pads = ints(b, ins[1], "pads")
        given = _input(ins, 2)
        value = float(const(b, given, "constant value").reshape(-1)[0]) if given else 0.0
    rank = b.full_rank(x)
    axes = [int(a) + rank if int(a) < 0 else int(a) for a in ints(b, ins[3], "axes")] \
        if _input(ins, 3) is not None else list(range(rank))
    if len(pads) != 2 * len(axes):
        raise b.error(f"pads {pads} need two values per padded axis ({len(axes)})")
    full = [(0, 0)] * rank
    for a, lo, hi in zip(axes, pads[:len(axes)], pads[len(axes):]):
        full[a] = (lo, hi)
    k = b.lead(x)
    if any(p != (0, 0) for p in full[:k]):
        raise b.error(f"pads {pads} pad the batch axis; netsurgeon ops act per sample")
    if mode not in ("constant", "edge", "reflect", "wrap"):
        raise b.error(f"Pad mode '{mode}' is not supported")
    node, last = x.node, max((i for i, p in enumerate(full[k:]) if p != (0, 0)), default=-1)
    for index, (lo, hi) in enumerate(full[k:]):
        if (lo, hi) == (0, 0):
            continue
        name = n.output[0] if index == last else f"{n.output[0]}.axis{index}"
        node = _pad_axis(b, name, node, index, lo, hi, mode, value)
    if last < 0:
        node = b.add(n.output[0], "Pass", [x.node])
    return out(n, node)


def _pad_axis(b: Builder, name: str, x: Node, index: int, lo: int, hi: int, mode: str,
              value: float) -> Node:
    shape = tuple(x.shape or ())
    d = shape[index]
    if d + min(lo, 0) + min(hi, 0) < 1:
        raise b.error(f"pads ({lo}, {hi}) crop all of axis {index} ({d})")
    if lo < 0 or hi < 0:  # crop first, then pad what is positive
        x = _slice(b, name + ".cropped", x, index, max(-lo, 0), d - max(-hi, 0))
        lo, hi = max(lo, 0), max(hi, 0)
        shape, d = tuple(x.shape or ()), tuple(x.shape or ())[index]
        if (lo, hi) == (0, 0):
            return b.add(name, "Pass", [x])
    if mode == "reflect" and max(lo, hi) >= d:
        raise b.error(f"reflect pads ({lo}, {hi}) need more than {max(lo, hi)} elements on "
                      f"axis {index} ({d})")
    before = _pad_block(b, f"{name}.before", x, index, lo, mode, value, low=True)
    after = _pad_block(b, f"{name}.after", x, index, hi, mode, value, low=False)
    return _stack(b, name, [p for p in (before, x, after) if p is not None], index)


def _pad_block(b: Builder, name: str, x: Node, index: int, width: int, mode: str,
               value: float, low: bool) -> Node | None:
    """The ``width`` elements padded before (``low``) or after ``x`` on axis ``index``."""
    if width == 0:
        return None
    shape = tuple(x.shape or ())
    d = shape[index]
    if mode == "constant":
        return _filled(b, name, shape[:index] + (width,) + shape[index + 1:], value)
    if mode == "wrap":
        if width > d:
            raise b.error(f"wrap pad {width} is longer than axis {index} ({d})")
        return _slice(b, name, x, index, d - width, d) if low else \
            _slice(b, name, x, index, 0, width)
    if mode == "edge":
        edge = _slice(b, name + ".edge", x, index, 0, 1) if low else \
            _slice(b, name + ".edge", x, index, d - 1, d)
        ones = (width,) + (1,) * (len(shape) - index - 1)
        return b.add(name, "ElementTimes", [edge, _filled(b, name + ".ones", ones, 1.0)])
    # reflect: x[width], ..., x[1] before; x[d-2], ..., x[d-1-width] after
    picks = range(width, 0, -1) if low else range(d - 2, d - 2 - width, -1)
    parts = [_slice(b, f"{name}.{i}", x, index, i, i + 1) for i in picks]
    return _stack(b, name, parts, index)


# ---- Tile, Expand -------------------------------------------------------------------------
def _tile(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    x = data(b, ins[0])
    repeats = _per_sample_axis(b, x, ints(b, ins[1], "repeats"), "repeats", 1)
    if min(repeats, default=1) < 1:
        raise b.error(f"repeats {repeats} must be positive")
    tiled = [i for i, r in enumerate(repeats) if r > 1]
    node = x.node
    for i in tiled:
        name = n.output[0] if i == tiled[-1] else f"{n.output[0]}.axis{i}"
        node = _stack(b, name, [node] * repeats[i], i)
    if not tiled:
        node = b.add(n.output[0], "Pass", [x.node])
    return out(n, node)


def _expand(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """Broadcast to ``shape`` as ElementTimes with ones (exact)."""
    x = data(b, ins[0])
    target = ints(b, ins[1], "shape")
    batch = bool(ins[1] is not None and ins[1].batch)
    k, sample = b.lead(x), list(x.shape)
    full = k + len(sample)
    if len(target) > full:
        raise b.error(f"shape {target} adds axes in front of the batch axis")
    aligned = [1] * (full - len(target)) + target
    if any(t not in (1, 0 if batch else 1) for t in aligned[:k]):
        raise b.error(f"shape {target} expands the batch axis; netsurgeon ops act per sample")
    result = []
    for d, t in zip(sample, aligned[k:]):
        if t != d and 1 not in (t, d):
            raise b.error(f"cannot expand samples {sample} to {target}")
        result.append(max(d, t))
    if result == sample:
        return out(n, b.add(n.output[0], "Pass", [x.node]))
    ones = _filled(b, n.output[0] + ".ones", tuple(result), 1.0)
    return out(n, b.add(n.output[0], "ElementTimes", [x.node, ones]))


# ---- Gather -------------------------------------------------------------------------------
def _gather(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """Gather by constant indices along a sample axis: Slices of the runs of consecutive
    indices, joined by RowStack, reshaped to the indices' shape."""
    source, given = ins[0], ins[1]
    assert source is not None and given is not None
    if source.is_const:
        return _lookup(b, n, source, given, int(at.get("axis", 0)))
    x = data(b, source)
    index = b.sample_axis(x, int(at.get("axis", 0)))
    d = x.shape[index]
    indices = np.asarray(const(b, given, "indices")).astype(np.int64)
    flat = [int(i) + d if i < 0 else int(i) for i in indices.reshape(-1)]
    if any(not 0 <= i < d for i in flat) or not flat:
        raise b.error(f"indices {indices.reshape(-1).tolist()} are out of range for axis "
                      f"{index} ({d})")
    runs: list[list[int]] = []
    for i in flat:
        if runs and i == runs[-1][1]:
            runs[-1][1] += 1
        else:
            runs.append([i, i + 1])
    shape = tuple(x.shape[:index]) + tuple(indices.shape) + tuple(x.shape[index + 1:])
    name = n.output[0]
    parts = [_slice(b, f"{name}.part{j}", x.node, index, lo, hi) for j, (lo, hi) in
             enumerate(runs)]
    joined = _stack(b, name + ".gathered", parts, index) if len(parts) > 1 else parts[0]
    if tuple(joined.shape or ()) == shape and joined is not x.node:
        return out(n, b.add(name, "Pass", [joined]))
    return out(n, b.add(name, "Reshape", [joined], shape=shape))


def _lookup(b: Builder, n: Any, table: Value, indices: Value, axis: int) -> list[Value]:
    """Gather of rows of a constant table (V, ...) by computed indices: an embedding lookup,
    as the one-hot rows Equal(index, 0..V−1) times the table (Times contracts the V axis), so
    the table stays a learnable parameter; a negative index counts from the end."""
    if indices.is_const:
        raise b.error("all inputs are constants (not folded)")
    shape = tuple(table.shape)
    if axis not in (0, -len(shape)) or len(shape) < 2:
        raise b.error(f"Gather of a constant {list(shape)} is supported along axis 0 of a "
                      "table of rank 2 or more (an embedding lookup) only")
    name, rows = n.output[0], shape[0]
    index = indices.node
    assert index is not None
    wrap = b.add(name + ".negative", "Less", [index, b.scalar(name + ".zero", 0.0)])
    index = b.add(name + ".index", "Plus", [index, b.add(
        name + ".wrap", "ElementTimes", [wrap, b.scalar(name + ".rows", float(rows))])])
    column = b.add(name + ".column", "Reshape", [index], shape=tuple(index.shape or ()) + (1,))
    positions = b.param(Value(name + ".positions", array=np.arange(rows, dtype=np.float32)),
                        multiplier=0.0)
    onehot = b.add(name + ".onehot", "Equal", [column, positions])
    matrix = b.param(table, (rows, prod(shape[1:])))
    looked = b.add(name + ".times" if len(shape) > 2 else name, "Times", [matrix, onehot])
    if len(shape) > 2:
        looked = b.add(name, "Reshape", [looked],
                       shape=tuple(index.shape or ()) + shape[1:])
    return out(n, looked)


# ---- DepthToSpace, SpaceToDepth -----------------------------------------------------------
def _rearranged(b: Builder, n: Any, x: Value, split: tuple[int, ...], permutation: tuple[int, ...],
                result: tuple[int, ...]) -> list[Value]:
    name = n.output[0]
    parts = b.add(name + ".split", "Reshape", [x.node], shape=split)
    moved = b.add(name + ".moved", "TransposeDimensions", [parts], permutation=permutation)
    return out(n, b.add(name, "Reshape", [moved], shape=result))


def _image(b: Builder, x: Value, size: int, op: str) -> tuple[int, int, int]:
    if len(x.shape) != 3 or size < 1:
        raise b.error(f"{op} needs (C, H, W) samples and a positive blocksize, not "
                      f"{list(x.shape)} and {size}")
    c, h, w = x.shape
    return c, h, w


def _depth_to_space(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    x = data(b, ins[0])
    s = int(at["blocksize"])
    c, h, w = _image(b, x, s, "DepthToSpace")
    if c % (s * s):
        raise b.error(f"{c} channels are not a multiple of blocksize² ({s * s})")
    depth = c // (s * s)
    if _text(at, "mode", "DCR") == "DCR":
        split, permutation = (s, s, depth, h, w), (2, 3, 0, 4, 1)
    else:
        split, permutation = (depth, s, s, h, w), (0, 3, 1, 4, 2)
    return _rearranged(b, n, x, split, permutation, (depth, h * s, w * s))


def _space_to_depth(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    x = data(b, ins[0])
    s = int(at["blocksize"])
    c, h, w = _image(b, x, s, "SpaceToDepth")
    if h % s or w % s:
        raise b.error(f"{h}×{w} is not a multiple of blocksize {s}")
    # DCR: channel (block row, block column, c); CRD (opset 28): (c, block row, block column)
    permutation = (0, 2, 4, 1, 3) if _text(at, "mode", "DCR") == "CRD" else (2, 4, 0, 1, 3)
    return _rearranged(b, n, x, (c, h // s, s, w // s, s), permutation,
                       (c * s * s, h // s, w // s))


# ---- Resize, Upsample ---------------------------------------------------------------------
#: (coordinate_transformation_mode, nearest_mode) pairs for which nearest-neighbour resizing
#: by an integer factor s reads input element floor(i / s) for output element i
_REPEATING = {("half_pixel", "round_prefer_floor"), ("half_pixel", "round_prefer_ceil"),
              ("pytorch_half_pixel", "round_prefer_floor"),
              ("pytorch_half_pixel", "round_prefer_ceil"), ("asymmetric", "floor"),
              ("tf_half_pixel_for_nn", "floor")}


def _resize(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """Nearest-neighbour resizing by integer factors: each element repeated s times along
    each spatial axis (Reshape to (C, H, 1, W, 1), ElementTimes with ones, Reshape)."""
    x = data(b, ins[0])
    mode = _text(at, "mode", "nearest")
    if n.op_type == "Upsample":
        pair = ("asymmetric", "floor")
        scales_value = at.get("scales")
        factors = [float(s) for s in scales_value] if scales_value is not None else \
            [float(s) for s in const(b, ins[1], "scales").reshape(-1)]
    else:
        pair = (_text(at, "coordinate_transformation_mode", "half_pixel"),
                _text(at, "nearest_mode", "round_prefer_floor"))
        scales, sizes = (_input(ins, 2), _input(ins, 3)) if b.opset >= 11 else (ins[1], None)
        full = [0] * b.lead(x) + list(x.shape)
        if sizes is not None:  # the batch size is the input's, whatever the file declares
            factors = [t / d if d else 1.0 for t, d in
                       zip(ints(b, sizes, "sizes"), full)]
        else:
            factors = [float(s) for s in const(b, scales, "scales").reshape(-1)]
        if "axes" in at:
            chosen = [int(a) + len(full) if int(a) < 0 else int(a) for a in at["axes"]]
            padded = [1.0] * len(full)
            for a, f in zip(chosen, factors):
                padded[a] = f
            factors = padded
    if mode != "nearest" or pair not in _REPEATING:
        raise b.error(f"{n.op_type} is supported as nearest-neighbour resizing by integer "
                      f"factors only (mode '{mode}', {pair[0]}, {pair[1]})")
    if any(f != int(f) or f < 1 for f in factors):
        raise b.error(f"scales {factors} are not positive integers")
    repeats = _per_sample_axis(b, x, [int(f) for f in factors], "scales", 1)
    if not repeats or repeats[0] != 1:
        raise b.error(f"scales {factors} resize the channel axis")
    if all(r == 1 for r in repeats):
        return out(n, b.add(n.output[0], "Pass", [x.node]))
    shape, name = tuple(x.shape), n.output[0]
    split = (shape[0],) + tuple(v for d in shape[1:] for v in (d, 1))
    ones = (1,) + tuple(v for r in repeats[1:] for v in (1, r))
    spread = b.add(name + ".split", "Reshape", [x.node], shape=split)
    repeated = b.add(name + ".repeated", "ElementTimes",
                     [spread, _filled(b, name + ".ones", ones, 1.0)])
    result = tuple(d * r for d, r in zip(shape, repeats))
    assert prod(result) == prod(repeated.shape or ())
    return out(n, b.add(name, "Reshape", [repeated], shape=result))


CONVERTERS: dict[str, Converter] = {
    "Split": _split,
    "Pad": _pad,
    "Tile": _tile,
    "Expand": _expand,
    "Gather": _gather,
    "DepthToSpace": _depth_to_space,
    "SpaceToDepth": _space_to_depth,
    "Resize": _resize,
    "Upsample": _resize,
}
