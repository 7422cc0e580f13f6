"""ONNX ops as registry ops: linear algebra, reshaping and reductions, and the table of all
converters (element-wise ops are in importer_elementwise, Conv/pooling/normalisation in
importer_conv and importer_norm, Split/Pad/Tile/Gather/... in importer_layout).

A converter names its final node after the ONNX output and the helper nodes of a composition
``<output>.<role>`` (``y.times``, ``y.alpha``). The table of op_type -> netsurgeon ops is in
docs/onnx-import.md.
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
    out,
    out_rank,
)
from netsurgeon.formats.onnx.importer_conv import CONVERTERS as CONV_CONVERTERS
from netsurgeon.formats.onnx.importer_elementwise import CONVERTERS as ELEMENTWISE_CONVERTERS
from netsurgeon.formats.onnx.importer_graph import Builder, Value
from netsurgeon.formats.onnx.importer_layout import CONVERTERS as LAYOUT_CONVERTERS
from netsurgeon.formats.onnx.importer_norm import CONVERTERS as NORM_CONVERTERS
from netsurgeon.formats.onnx.importer_scan import scan

__all__ = ["CONVERTERS"]

# op_type -> (ReduceElements operation, op before it, op after it)
REDUCE: dict[str, tuple[str, str | None, str | None]] = {
    "ReduceMean": ("Mean", None, None), "ReduceSum": ("Sum", None, None),
    "ReduceMax": ("Max", None, None), "ReduceMin": ("Min", None, None),
    "ReduceProd": ("Prod", None, None), "ReduceLogSumExp": ("LogSum", None, None),
    "ReduceL1": ("Sum", "Abs", None), "ReduceL2": ("Sum", "square", "Sqrt"),
    "ReduceSumSquare": ("Sum", "square", None), "ReduceLogSum": ("Sum", None, "Log"),
}


def _softmax(op: str) -> Converter:
    """Softmax, LogSoftmax, Hardmax: the registry op when they normalise the whole sample,
    else composed over the axes they normalise (opset < 13: ``axis`` to the last, coerced to
    one; opset ≥ 13: ``axis`` alone): LogSoftmax = x − ReduceElements(LogSum, keep),
    Softmax = Exp of that, Hardmax = Equal(index, ReduceElements(Argmax)) over one axis."""
    def convert(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
        x = data(b, ins[0])
        axis = int(at.get("axis", 1 if b.opset < 13 else -1))
        index = b.sample_axis(x, axis)
        shape = tuple(x.shape)
        indices = list(range(index, len(shape))) if b.opset < 13 else [index]
        if len(indices) == len(shape) or prod(shape[i] for i in indices) == prod(shape):
            return out(n, b.add(n.output[0], op, [x.node]))  # the whole sample
        codes = tuple(b.registry_axis(i, len(shape)) for i in indices)
        name = n.output[0]
        if op == "Hardmax":
            if len(indices) > 1:
                raise b.error(f"Hardmax over axes {indices} of samples {list(shape)} is not "
                              "supported (one axis, or the whole sample)")
            top = b.add(name + ".argmax", "ReduceElements", [x.node], operation="Argmax",
                        axes=codes, keep_dimensions=True)
            positions = np.arange(shape[index], dtype=np.float32).reshape(
                (-1,) + (1,) * (len(shape) - index - 1))
            where = b.param(Value(name + ".positions", array=positions), multiplier=0.0)
            return out(n, b.add(name, "Equal", [top, where]))
        total = b.add(name + ".logsum", "ReduceElements", [x.node], operation="LogSum",
                      axes=codes, keep_dimensions=True)
        log = b.add(name if op == "LogSoftmax" else name + ".log", "Minus", [x.node, total])
        return out(n, log if op == "LogSoftmax" else b.add(name, "Exp", [log]))

    return convert


# ---- linear algebra -----------------------------------------------------------------------
def _matmul(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    x, w = ins[0], ins[1]
    assert x is not None and w is not None
    if x.is_const or not w.is_const:
        raise b.error("MatMul is supported as data @ constant matrix only")
    if len(w.shape) != 2 or not x.shape:
        raise b.error(f"MatMul of samples {list(x.shape)} with {list(w.shape)}: the constant "
                      "must be a matrix")
    return out(n, b.add(n.output[0], "Times", [b.node(w), x.node]))


def _gemm(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """alpha·A·op(B) + beta·C: Times (TransposeTimes for transB) [+ ElementTimes] [+ Plus]."""
    a, w = ins[0], ins[1]
    assert a is not None and w is not None
    if a.is_const or not w.is_const or at.get("transA", 0):
        raise b.error("Gemm is supported as data @ constant matrix (transA = 0) only")
    target = n.output[0]
    alpha, beta = float(at.get("alpha", 1.0)), float(at.get("beta", 1.0))
    c = ins[2] if len(ins) > 2 else None
    steps = [name for name, needed in (("times", True), ("scaled", alpha != 1.0),
                                       ("plus", c is not None)) if needed]
    names = {s: (target if s == steps[-1] else f"{target}.{s}") for s in steps}
    op = "TransposeTimes" if at.get("transB", 0) else "Times"
    y = b.add(names["times"], op, [b.node(w), a.node])
    if alpha != 1.0:
        y = b.add(names["scaled"], "ElementTimes", [y, b.scalar(target + ".alpha", alpha)])
    if c is not None:
        bias = b.operand(c, 1)
        if beta != 1.0:
            bias = b.add(target + ".bias", "ElementTimes", [bias, b.scalar(target + ".beta", beta)])
        y = b.add(names["plus"], "Plus", [y, bias])
    return out(n, y)


# ---- reshaping ----------------------------------------------------------------------------
def _reshape_to(b: Builder, n: Any, x: Value, sample: tuple[int, ...]) -> list[Value]:
    node = b.add(n.output[0], "Reshape", [x.node], shape=tuple(int(d) for d in sample))
    return out(n, node)


def _reshape(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    x = data(b, ins[0])
    target = [int(t) for t in const(b, ins[1], "shape").reshape(-1)]
    allowzero = int(at.get("allowzero", 0))
    k = b.lead(x)
    m = _new_lead(b, target, allowzero, k) if b.sequences else k
    lead, rest = target[:m], target[m:]
    if len(lead) < m:
        raise b.error(f"shape {target} drops the batch axis")
    free = [i for i, t in enumerate(rest) if t == -1]
    if not b.sequences:
        for i, t in enumerate(lead):
            declared = b.batch_dims[i] if i < len(b.batch_dims) else None
            keeps = (t == 0 and not allowzero) or (t == -1 and not free) or t == declared
            if not keeps:
                raise b.error(f"shape {target} changes the batch axis {i}; netsurgeon "
                              "reshapes samples only")
    size = prod(x.shape)
    full = [None] * k + list(x.shape)
    sample = [full[m + i] if t == 0 and not allowzero and m + i < len(full) else t
              for i, t in enumerate(rest)]
    if None in sample or (0 in sample and not allowzero):
        raise b.error(f"shape {target} copies a dimension the input does not have")
    if len(free) > 1:
        raise b.error(f"shape {target} has more than one -1")
    if free:
        known = prod(d for d in sample if d != -1)
        if known == 0 or size % known:
            raise b.error(f"cannot reshape samples {list(x.shape)} to {target}")
        sample[free[0]] = size // known
    if prod(sample) != size:
        raise b.error(f"shape {target} moves elements of samples {list(x.shape)} across the "
                      "batch axis; netsurgeon reshapes samples only")
    if m != k and tuple(sample) == tuple(x.shape) and n.output[0] not in b.outputs:
        return [Value(n.output[0], node=x.node, lead=m)]  # frames <-> sequences: same node
    result = _reshape_to(b, n, x, tuple(sample))
    result[0].lead = m
    return result


def _new_lead(b: Builder, target: list[int], allowzero: int, k: int) -> int:
    """Sequence models: the batch axes of a Reshape's result. Leading 0s are the batch and
    time axes (from Shape), a leading -1 folds them into frames (batch·time)."""
    if k == 0:
        return 0
    m = 0
    while m < min(2, len(target)) and target[m] == 0 and not allowzero:
        m += 1
    if m == 0 and target and target[0] == -1 and -1 not in target[1:]:
        m = 1
    if m == 0 or (m == 2 and k == 0):
        raise b.error(f"shape {target} changes the batch and time axes; netsurgeon reshapes "
                      "samples only")
    return m


def _flatten(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    x = data(b, ins[0])
    k = b.lead(x)
    if int(at.get("axis", 1)) != k:
        raise b.error(f"Flatten axis {at.get('axis', 1)} folds sample axes into the batch; "
                      f"only axis {k} (keep the batch, flatten each sample) is "
                      "supported")
    return _reshape_to(b, n, x, (prod(x.shape),))


def _axes_list(b: Builder, ins: Inputs, at: Attrs) -> list[int]:
    if "axes" in at:
        return [int(a) for a in at["axes"]]
    if len(ins) > 1 and ins[1] is not None:
        return [int(a) for a in const(b, ins[1], "axes").reshape(-1)]
    return []


def _squeeze(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    x = data(b, ins[0])
    axes = {b.sample_axis(x, a) for a in _axes_list(b, ins, at)} or \
        {i for i, d in enumerate(x.shape) if d == 1}
    if any(x.shape[i] != 1 for i in axes):
        raise b.error(f"cannot squeeze axes of size other than 1 from {list(x.shape)}")
    return _reshape_to(b, n, x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


def _unsqueeze(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    x = data(b, ins[0])
    axes = _axes_list(b, ins, at)
    rank = b.full_rank(x) + len(axes)
    full = sorted(a + rank if a < 0 else a for a in axes)
    k = b.lead(x)
    if any(a < k for a in full):
        raise b.error("Unsqueeze in front of the batch axis is not supported")
    shape = list(x.shape)
    for a in full:
        shape.insert(a - k, 1)
    return _reshape_to(b, n, x, tuple(shape))


def _transpose(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    x = data(b, ins[0])
    rank = b.full_rank(x)
    perm = [int(p) for p in at.get("perm", range(rank - 1, -1, -1))]
    k = b.lead(x)
    if perm[:k] != list(range(k)):
        raise b.error(f"perm {perm} moves the batch axis")
    sample = tuple(p - k for p in perm[k:])
    node = b.add(n.output[0], "TransposeDimensions", [x.node], permutation=sample)
    return out(n, node)


def _concat(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    values = [v for v in ins if v is not None]
    data = next((v for v in values if not v.is_const), None)
    if data is None:
        raise b.error("all inputs are constants (not folded)")
    rank = out_rank(b, values)
    index = b.sample_axis(data, int(at["axis"]))
    nodes = [b.operand(v, rank) for v in values]
    node = b.add(n.output[0], "RowStack", nodes, axis=b.registry_axis(index, rank))
    return out(n, node)


def _reduce(operation: str, before: str | None = None, after: str | None = None) -> Converter:
    """ReduceElements(operation) over sample axes, of ``before(x)`` (Abs, a square), followed
    by ``after`` (Sqrt, Log): ReduceL1 = Sum of Abs, ReduceL2 = Sqrt of the Sum of squares."""
    def convert(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
        x = data(b, ins[0])
        axes = _axes_list(b, ins, at)
        if not axes and at.get("noop_with_empty_axes", 0):
            return out(n, b.add(n.output[0], "Pass", [x.node]))
        name = n.output[0] + ".reduced" if after else n.output[0]
        source = x.node
        if before == "square":
            source = b.add(n.output[0] + ".square", "ElementTimes", [x.node, x.node])
        elif before:
            source = b.add(n.output[0] + "." + before.lower(), before, [x.node])
        if not axes:
            if operation == "Sum" and not at.get("keepdims", 1) and not (before or after):
                # the sum over the whole minibatch (a criterion's total): SumElements, (1,)
                return [Value(n.output[0], node=b.add(n.output[0], "SumElements", [x.node]),
                              lead=0)]
            raise b.error("reducing over all axes includes the batch axis")
        rank = len(x.shape)
        codes = tuple(sorted({b.registry_axis(b.sample_axis(x, a), rank) for a in axes}))
        node = b.add(name, "ReduceElements", [source], operation=operation, axes=codes,
                     keep_dimensions=bool(at.get("keepdims", 1)))
        if after:
            node = b.add(n.output[0], after, [node])
        return out(n, node)

    return convert


def _arg_extreme(operation: str):
    """ArgMax/ArgMin (first index on ties) over one sample axis: ReduceElements Argmax/Argmin,
    the index as a float value (netsurgeon computes in float; a Cast to float after it is a
    Pass)."""
    def convert(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
        x = data(b, ins[0])
        if int(at.get("select_last_index", 0)):
            raise b.error(f"{n.op_type} with select_last_index 1 is not supported (netsurgeon's "
                          "index is the first extremum)")
        index = b.sample_axis(x, int(at.get("axis", 0)))
        node = b.add(n.output[0], "ReduceElements", [x.node], operation=operation,
                     axes=(b.registry_axis(index, len(x.shape)),),
                     keep_dimensions=bool(at.get("keepdims", 1)))
        return out(n, node)

    return convert


def _slice(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """ONNX Slice (positive steps) of sample axes as registry Slice (clamped begin/end;
    end 0 = to the end)."""
    x = data(b, ins[0])
    if "starts" in at:  # opset < 10
        starts, ends = list(at["starts"]), list(at["ends"])
        axes, steps = list(at.get("axes", range(len(starts)))), [1] * len(starts)
    else:
        starts = [int(v) for v in const(b, ins[1], "starts").reshape(-1)]
        ends = [int(v) for v in const(b, ins[2], "ends").reshape(-1)]
        axes = [int(v) for v in const(b, ins[3], "axes").reshape(-1)] \
            if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
        steps = [int(v) for v in const(b, ins[4], "steps").reshape(-1)] \
            if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    rank = len(x.shape)
    begin, end, codes, strides = [], [], [], []
    for s0, e0, a, st in zip(starts, ends, axes, steps):
        i = b.sample_axis(x, int(a))
        d = x.shape[i]
        if st < 1:
            raise b.error(f"Slice with step {st} is not supported (positive steps only)")
        lo = min(max(s0 + d if s0 < 0 else s0, 0), d)
        hi = min(max(e0 + d if e0 < 0 else e0, 0), d)
        if hi <= lo:
            raise b.error(f"Slice [{s0}:{e0}] of axis {a} ({d}) is empty")
        if (lo, hi, st) == (0, d, 1):
            continue
        begin.append(lo)
        end.append(0 if hi == d else hi)
        codes.append(b.registry_axis(i, rank))
        strides.append(st)
    if not codes:
        return out(n, b.add(n.output[0], "Pass", [x.node]))
    return out(n, b.add(n.output[0], "Slice", [x.node], begin=tuple(begin), end=tuple(end),
                         axis=tuple(codes), stride_multiplier=tuple(strides)))


CONVERTERS: dict[str, Converter] = {
    **ELEMENTWISE_CONVERTERS,
    **{k: _reduce(*v) for k, v in REDUCE.items()},
    **CONV_CONVERTERS,
    **NORM_CONVERTERS,
    **LAYOUT_CONVERTERS,
    "Softmax": _softmax("Softmax"),
    "LogSoftmax": _softmax("LogSoftmax"),
    "Hardmax": _softmax("Hardmax"),
    "MatMul": _matmul,
    "Gemm": _gemm,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Transpose": _transpose,
    "Concat": _concat,
    "Slice": _slice,
    "ArgMax": _arg_extreme("Argmax"),
    "ArgMin": _arg_extreme("Argmin"),
    "Scan": scan,
}
