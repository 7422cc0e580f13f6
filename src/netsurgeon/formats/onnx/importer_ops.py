"""ONNX ops as registry ops: element-wise, linear algebra and reshaping.

Each converter is ``fn(builder, onnx_node, inputs, attrs) -> [Value per output]``; inputs are
:class:`~netsurgeon.formats.onnx.importer_graph.Value` (None for an omitted optional input),
attributes are plain Python values. A converter names its final node after the ONNX output
and the helper nodes of a composition ``<output>.<role>`` (``y.times``, ``y.alpha``). The
table of op_type -> netsurgeon ops is in docs/onnx-import.md.
"""

from __future__ import annotations

from math import prod
from typing import Any

import numpy as np

from netsurgeon.formats.onnx.importer_conv import CONVERTERS as CONV_CONVERTERS
from netsurgeon.formats.onnx.importer_graph import Builder, Value
from netsurgeon.formats.onnx.importer_scan import scan

__all__ = ["CONVERTERS"]

Inputs = list[Value | None]
Attrs = dict[str, Any]

UNARY = {
    "Relu": "RectifiedLinear", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Exp": "Exp",
    "Log": "Log", "Abs": "Abs", "Neg": "Negate", "Sqrt": "Sqrt", "Reciprocal": "Reciprocal",
    "Floor": "Floor", "Sin": "Sin", "Cos": "Cosine", "Sinh": "Sinh", "Cosh": "Cosh",
    "Asin": "Asin", "Acos": "Acos", "Identity": "Pass", "Dropout": "Pass",
}
BINARY = {
    "Add": "Plus", "Sub": "Minus", "Mul": "ElementTimes", "Equal": "Equal", "Less": "Less",
    "Greater": "Greater", "LessOrEqual": "LessEqual", "GreaterOrEqual": "GreaterEqual",
}
REDUCE = {"ReduceMean": "Mean", "ReduceSum": "Sum", "ReduceMax": "Max", "ReduceMin": "Min",
          "ReduceProd": "Prod", "ReduceLogSumExp": "LogSum"}


def _out(n: Any, node: Any) -> list[Value]:
    return [Value(n.output[0], node=node)]


def _data(b: Builder, v: Value | None) -> Value:
    if v is None or v.is_const:
        raise b.error("the input must be computed from the model's inputs")
    return v


def _const(b: Builder, v: Value | None, what: str) -> np.ndarray:
    if v is None or not v.is_const:
        raise b.error(f"the {what} must be a constant")
    assert v.array is not None
    return v.array


def _out_rank(b: Builder, values: list[Value]) -> int:
    """Sample rank of an element-wise result; node operands must agree on the full rank."""
    nodes = [v for v in values if not v.is_const]
    ranks = {len(v.shape) for v in nodes}
    if len(ranks) > 1:
        raise b.error(f"operands of sample shapes {[list(v.shape) for v in nodes]} broadcast "
                      "across the batch axis")
    return ranks.pop()


# ---- element-wise -----------------------------------------------------------------------
def _unary(op: str):
    def convert(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
        if b.uses(n, 1):
            raise b.error("the mask output of Dropout is not supported")
        if len(ins) > 2 and ins[2] is not None and (
                not ins[2].is_const or bool(np.asarray(ins[2].array).reshape(-1)[0])):
            raise b.error("training-mode Dropout is not supported")
        return _out(n, b.add(n.output[0], op, [_data(b, ins[0]).node]))

    return convert


def _binary(op: str):
    def convert(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
        values = [v for v in ins if v is not None]
        rank = _out_rank(b, values)
        x, y = (b.operand(v, rank) for v in values)
        return _out(n, b.add(n.output[0], op, [x, y]))

    return convert


def _div(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """x / y = x · (1/y): a constant divisor is inverted once (a constant, multiplier 0)."""
    x, y = ins[0], ins[1]
    assert x is not None and y is not None
    rank = _out_rank(b, [x, y])
    if y.is_const:
        assert y.array is not None
        inverse = (1 / y.array.astype(np.float64)).astype(np.float32)
        inv = b.operand(Value(n.output[0] + ".reciprocal", array=inverse), rank)
    else:
        inv = b.add(n.output[0] + ".reciprocal", "Reciprocal", [b.operand(y, rank)])
    return _out(n, b.add(n.output[0], "ElementTimes", [b.operand(x, rank), inv]))


def _sum(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    values = [v for v in ins if v is not None]
    rank = _out_rank(b, values)
    acc = b.operand(values[0], rank)
    for i, v in enumerate(values[1:], 1):
        name = n.output[0] if i == len(values) - 1 else f"{n.output[0]}.sum{i}"
        acc = b.add(name, "Plus", [acc, b.operand(v, rank)])
    return _out(n, acc)


def _clip_node(b: Builder, name: str, x: Any, lo: float, hi: float) -> Any:
    return b.add(name, "Clip", [b.scalar(name + ".min", lo), b.scalar(name + ".max", hi), x])


def _clip(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    x = _data(b, ins[0])
    lo, hi = float(at.get("min", -np.inf)), float(at.get("max", np.inf))
    if len(ins) > 1 and ins[1] is not None:
        lo = float(_const(b, ins[1], "min").reshape(-1)[0])
    if len(ins) > 2 and ins[2] is not None:
        hi = float(_const(b, ins[2], "max").reshape(-1)[0])
    return _out(n, _clip_node(b, n.output[0], x.node, lo, hi))


def _hard_sigmoid_node(b: Builder, name: str, x: Any, alpha: float, beta: float) -> Any:
    """max(0, min(1, alpha·x + beta)) = Clip(0, 1, Plus(ElementTimes(x, alpha), beta))."""
    scaled = b.add(name + ".scaled", "ElementTimes", [x, b.scalar(name + ".alpha", alpha)])
    shifted = b.add(name + ".shifted", "Plus", [scaled, b.scalar(name + ".beta", beta)])
    return _clip_node(b, name, shifted, 0.0, 1.0)


def _hard_sigmoid(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    x = _data(b, ins[0])
    alpha, beta = float(at.get("alpha", 0.2)), float(at.get("beta", 0.5))
    return _out(n, _hard_sigmoid_node(b, n.output[0], x.node, alpha, beta))


def _hard_swish(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """x · HardSigmoid(x) with alpha 1/6, beta 1/2."""
    x = _data(b, ins[0])
    gate = _hard_sigmoid_node(b, n.output[0] + ".gate", x.node, 1 / 6, 0.5)
    return _out(n, b.add(n.output[0], "ElementTimes", [x.node, gate]))


def _leaky_relu(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """max(x, 0) + alpha·min(x, 0) = Relu(x) - alpha·Relu(-x)."""
    x = _data(b, ins[0]).node
    out, alpha = n.output[0], float(at.get("alpha", 0.01))
    pos = b.add(out + ".pos", "RectifiedLinear", [x])
    neg = b.add(out + ".neg", "RectifiedLinear", [b.add(out + ".negated", "Negate", [x])])
    scaled = b.add(out + ".scaled", "ElementTimes", [neg, b.scalar(out + ".alpha", alpha)])
    return _out(n, b.add(out, "Minus", [pos, scaled]))


def _softmax(op: str):
    def convert(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
        x = _data(b, ins[0])
        opset = b.opset
        axis = int(at.get("axis", 1 if opset < 13 else -1))
        index = b.sample_axis(x, axis)
        shape = x.shape
        # netsurgeon's Softmax normalises over the whole sample
        whole = index == 0 if opset < 13 else prod(shape) == shape[index]
        if not whole:
            raise b.error(f"{n.op_type} over axis {axis} of samples {list(shape)} is not "
                          "supported (netsurgeon's Softmax normalises the whole sample)")
        return _out(n, b.add(n.output[0], op, [x.node]))

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
    return _out(n, b.add(n.output[0], "Times", [b.node(w), x.node]))


def _gemm(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """alpha·A·op(B) + beta·C: Times (TransposeTimes for transB) [+ ElementTimes] [+ Plus]."""
    a, w = ins[0], ins[1]
    assert a is not None and w is not None
    if a.is_const or not w.is_const or at.get("transA", 0):
        raise b.error("Gemm is supported as data @ constant matrix (transA = 0) only")
    out = n.output[0]
    alpha, beta = float(at.get("alpha", 1.0)), float(at.get("beta", 1.0))
    c = ins[2] if len(ins) > 2 else None
    steps = [name for name, needed in (("times", True), ("scaled", alpha != 1.0),
                                       ("plus", c is not None)) if needed]
    names = {s: (out if s == steps[-1] else f"{out}.{s}") for s in steps}
    op = "TransposeTimes" if at.get("transB", 0) else "Times"
    y = b.add(names["times"], op, [b.node(w), a.node])
    if alpha != 1.0:
        y = b.add(names["scaled"], "ElementTimes", [y, b.scalar(out + ".alpha", alpha)])
    if c is not None:
        bias = b.operand(c, 1)
        if beta != 1.0:
            bias = b.add(out + ".bias", "ElementTimes", [bias, b.scalar(out + ".beta", beta)])
        y = b.add(names["plus"], "Plus", [y, bias])
    return _out(n, y)


# ---- reshaping ----------------------------------------------------------------------------
def _reshape_to(b: Builder, n: Any, x: Value, sample: tuple[int, ...]) -> list[Value]:
    node = b.add(n.output[0], "Reshape", [x.node], shape=tuple(int(d) for d in sample))
    return _out(n, node)


def _reshape(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    x = _data(b, ins[0])
    target = [int(t) for t in _const(b, ins[1], "shape").reshape(-1)]
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
    if m != k and tuple(sample) == tuple(x.shape) and n.output[0] not in b.outputs:
        return [Value(n.output[0], node=x.node, lead=m)]  # frames <-> sequences: same node
    out = _reshape_to(b, n, x, tuple(sample))
    out[0].lead = m
    return out


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
    x = _data(b, ins[0])
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
        return [int(a) for a in _const(b, ins[1], "axes").reshape(-1)]
    return []


def _squeeze(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    x = _data(b, ins[0])
    axes = {b.sample_axis(x, a) for a in _axes_list(b, ins, at)} or \
        {i for i, d in enumerate(x.shape) if d == 1}
    if any(x.shape[i] != 1 for i in axes):
        raise b.error(f"cannot squeeze axes of size other than 1 from {list(x.shape)}")
    return _reshape_to(b, n, x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


def _unsqueeze(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    x = _data(b, ins[0])
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
    x = _data(b, ins[0])
    rank = b.full_rank(x)
    perm = [int(p) for p in at.get("perm", range(rank - 1, -1, -1))]
    k = b.lead(x)
    if perm[:k] != list(range(k)):
        raise b.error(f"perm {perm} moves the batch axis")
    sample = tuple(p - k for p in perm[k:])
    node = b.add(n.output[0], "TransposeDimensions", [x.node], permutation=sample)
    return _out(n, node)


def _concat(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    values = [v for v in ins if v is not None]
    data = next((v for v in values if not v.is_const), None)
    if data is None:
        raise b.error("all inputs are constants (not folded)")
    rank = _out_rank(b, values)
    index = b.sample_axis(data, int(at["axis"]))
    nodes = [b.operand(v, rank) for v in values]
    node = b.add(n.output[0], "RowStack", nodes, axis=b.registry_axis(index, rank))
    return _out(n, node)


def _reduce(operation: str):
    def convert(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
        x = _data(b, ins[0])
        axes = _axes_list(b, ins, at)
        if not axes:
            if at.get("noop_with_empty_axes", 0):
                return _out(n, b.add(n.output[0], "Pass", [x.node]))
            if operation == "Sum" and not at.get("keepdims", 1):
                # the sum over the whole minibatch (a criterion's total): SumElements, (1,)
                return [Value(n.output[0], node=b.add(n.output[0], "SumElements", [x.node]),
                              lead=0)]
            raise b.error("reducing over all axes includes the batch axis")
        rank = len(x.shape)
        codes = tuple(sorted({b.registry_axis(b.sample_axis(x, a), rank) for a in axes}))
        node = b.add(n.output[0], "ReduceElements", [x.node], operation=operation, axes=codes,
                     keep_dimensions=bool(at.get("keepdims", 1)))
        return _out(n, node)

    return convert


def _arg_extreme(operation: str):
    """ArgMax/ArgMin (first index on ties) over one sample axis: ReduceElements Argmax/Argmin,
    the index as a float value (netsurgeon computes in float; a Cast to float after it is a
    Pass)."""
    def convert(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
        x = _data(b, ins[0])
        if int(at.get("select_last_index", 0)):
            raise b.error(f"{n.op_type} with select_last_index 1 is not supported (netsurgeon's "
                          "index is the first extremum)")
        index = b.sample_axis(x, int(at.get("axis", 0)))
        node = b.add(n.output[0], "ReduceElements", [x.node], operation=operation,
                     axes=(b.registry_axis(index, len(x.shape)),),
                     keep_dimensions=bool(at.get("keepdims", 1)))
        return _out(n, node)

    return convert


def _not(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """Not of a 0/1 value (a comparison's result, float here): Minus(1, x), exact."""
    x = _data(b, ins[0]).node
    return _out(n, b.add(n.output[0], "Minus", [b.scalar(n.output[0] + ".one", 1.0), x]))


def _slice(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """ONNX Slice (positive steps) of sample axes as registry Slice (clamped begin/end;
    end 0 = to the end)."""
    x = _data(b, ins[0])
    if "starts" in at:  # opset < 10
        starts, ends = list(at["starts"]), list(at["ends"])
        axes, steps = list(at.get("axes", range(len(starts)))), [1] * len(starts)
    else:
        starts = [int(v) for v in _const(b, ins[1], "starts").reshape(-1)]
        ends = [int(v) for v in _const(b, ins[2], "ends").reshape(-1)]
        axes = [int(v) for v in _const(b, ins[3], "axes").reshape(-1)] \
            if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
        steps = [int(v) for v in _const(b, ins[4], "steps").reshape(-1)] \
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
        return _out(n, b.add(n.output[0], "Pass", [x.node]))
    return _out(n, b.add(n.output[0], "Slice", [x.node], begin=tuple(begin), end=tuple(end),
                         axis=tuple(codes), stride_multiplier=tuple(strides)))


def _extreme(low: bool):
    """Max/Min of data with one scalar constant: Clip with that bound (exact)."""
    def convert(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
        values = [v for v in ins if v is not None]
        data = [v for v in values if not v.is_const]
        consts = [v for v in values if v.is_const]
        if len(data) == 1 and len(values) == 1:
            return _out(n, b.add(n.output[0], "Pass", [data[0].node]))
        if len(data) != 1 or len(consts) != 1 or consts[0].array.size != 1:  # type: ignore
            raise b.error(f"{n.op_type} is supported of one computed value and one scalar "
                          "constant only")
        c = float(np.asarray(consts[0].array).reshape(-1)[0])
        lo, hi = (-np.inf, c) if low else (c, np.inf)
        return _out(n, _clip_node(b, n.output[0], data[0].node, lo, hi))

    return convert


_POWERS = {1.0: "Pass", 2.0: "square", 0.5: "Sqrt", -1.0: "Reciprocal"}


def _pow(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """x ** c for a constant c of 1, 2 (x·x), 0.5 (Sqrt) or -1 (Reciprocal): exact."""
    x = _data(b, ins[0])
    y = _const(b, ins[1], "exponent")
    op = _POWERS.get(float(y.reshape(-1)[0])) if y.size == 1 else None
    if op is None:
        raise b.error("Pow is supported with a constant exponent of 1, 2, 0.5 or -1 only")
    if op == "square":
        return _out(n, b.add(n.output[0], "ElementTimes", [x.node, x.node]))
    return _out(n, b.add(n.output[0], op, [x.node]))


def _cast(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    if int(at.get("to", 1)) not in (1, 10, 11):  # float, float16, double: all float32 here
        raise b.error("Cast of computed values to a non-float type is not supported")
    return _out(n, b.add(n.output[0], "Pass", [_data(b, ins[0]).node]))


CONVERTERS = {
    **{k: _unary(v) for k, v in UNARY.items()},
    **{k: _binary(v) for k, v in BINARY.items()},
    **{k: _reduce(v) for k, v in REDUCE.items()},
    **CONV_CONVERTERS,
    "Div": _div,
    "Sum": _sum,
    "Clip": _clip,
    "HardSigmoid": _hard_sigmoid,
    "HardSwish": _hard_swish,
    "LeakyRelu": _leaky_relu,
    "Softmax": _softmax("Softmax"),
    "LogSoftmax": _softmax("LogSoftmax"),
    "MatMul": _matmul,
    "Gemm": _gemm,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Transpose": _transpose,
    "Concat": _concat,
    "Cast": _cast,
    "Slice": _slice,
    "Max": _extreme(False),
    "Min": _extreme(True),
    "Pow": _pow,
    "ArgMax": _arg_extreme("Argmax"),
    "ArgMin": _arg_extreme("Argmin"),
    "Not": _not,
    "Scan": scan,
}
