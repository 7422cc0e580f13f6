"""ONNX element-wise ops as registry ops or exact compositions of them.

ONNX activations netsurgeon has no op for are composed of registry ops so that the values are
the ones ONNX defines (``Elu`` = ``Relu(x) + α·(Exp(min(x, 0)) − 1)``, ``Sign`` =
``Greater(x, 0) − Less(x, 0)``, ...); a composition's helper nodes are named
``<output>.<role>``. Where an untaken branch could overflow (``Exp`` of a large ``x``), the
composition clips its argument first, so gradients stay finite in training too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from netsurgeon.formats.onnx.importer_common import (
    Attrs,
    Converter,
    Inputs,
    clip_node,
    const,
    data,
    out,
    out_rank,
)
from netsurgeon.formats.onnx.importer_graph import Builder, Value
from netsurgeon.graph import Node

__all__ = ["CONVERTERS"]

UNARY = {
    "Relu": "RectifiedLinear", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "Exp": "Exp",
    "Log": "Log", "Abs": "Abs", "Neg": "Negate", "Sqrt": "Sqrt", "Reciprocal": "Reciprocal",
    "Floor": "Floor", "Sin": "Sin", "Cos": "Cosine", "Sinh": "Sinh", "Cosh": "Cosh",
    "Asin": "Asin", "Acos": "Acos", "Tan": "Tan", "Atan": "Atan", "Asinh": "Asinh",
    "Atanh": "Atanh", "Identity": "Pass", "Dropout": "Pass",
}
BINARY = {
    "Add": "Plus", "Sub": "Minus", "Mul": "ElementTimes", "Equal": "Equal", "Less": "Less",
    "Greater": "Greater", "LessOrEqual": "LessEqual", "GreaterOrEqual": "GreaterEqual",
}


def _unary(op: str) -> Converter:
    def convert(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
        if b.uses(n, 1):
            raise b.error("the mask output of Dropout is not supported")
        if len(ins) > 2 and ins[2] is not None and (
                not ins[2].is_const or bool(np.asarray(ins[2].array).reshape(-1)[0])):
            raise b.error("training-mode Dropout is not supported")
        return out(n, b.add(n.output[0], op, [data(b, ins[0]).node]))

    return convert


def _binary(op: str) -> Converter:
    def convert(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
        values = [v for v in ins if v is not None]
        rank = out_rank(b, values)
        x, y = (b.operand(v, rank) for v in values)
        return out(n, b.add(n.output[0], op, [x, y]))

    return convert


def _div(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """x / y = x · (1/y): a constant divisor is inverted once (a constant, multiplier 0)."""
    x, y = ins[0], ins[1]
    assert x is not None and y is not None
    rank = out_rank(b, [x, y])
    if y.is_const:
        assert y.array is not None
        inverse = (1 / y.array.astype(np.float64)).astype(np.float32)
        inv = b.operand(Value(n.output[0] + ".reciprocal", array=inverse), rank)
    else:
        inv = b.add(n.output[0] + ".reciprocal", "Reciprocal", [b.operand(y, rank)])
    return out(n, b.add(n.output[0], "ElementTimes", [b.operand(x, rank), inv]))


def _fold_operands(b: Builder, n: Any, ins: Inputs, op: str, name: str) -> Node:
    """``op`` applied pairwise left to right over the variadic inputs (Sum, Max, ...); the
    last node is named ``name``, the others ``<output>.<op>1``, ``.2``, ..."""
    values = [v for v in ins if v is not None]
    rank = out_rank(b, values)
    acc = b.operand(values[0], rank)
    for i, v in enumerate(values[1:], 1):
        step = name if i == len(values) - 1 else f"{n.output[0]}.{op.lower()}{i}"
        acc = _pair(b, step, op, acc, b.operand(v, rank))
    return acc


def _pair(b: Builder, name: str, op: str, x: Node, y: Node) -> Node:
    if op in ("Max", "Min"):  # If(Greater(x, y), x, y): the larger (smaller) value, exactly
        test = b.add(name + ".test", "Greater" if op == "Max" else "Less", [x, y])
        return b.add(name, "If", [test, x, y])
    return b.add(name, op, [x, y])


def _sum(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    return out(n, _fold_operands(b, n, ins, "Plus", n.output[0]))


def _mean(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    count = sum(v is not None for v in ins)
    if count == 1:
        return out(n, b.add(n.output[0], "Pass", [data(b, ins[0]).node]))
    total = _fold_operands(b, n, ins, "Plus", n.output[0] + ".sum")
    scale = b.scalar(n.output[0] + ".count", 1.0 / count)
    return out(n, b.add(n.output[0], "ElementTimes", [total, scale]))


def _extreme(op: str) -> Converter:
    """Max/Min: with one scalar constant a Clip with that bound, else a chain of If."""
    def convert(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
        values = [v for v in ins if v is not None]
        nodes = [v for v in values if not v.is_const]
        consts = [v for v in values if v.is_const]
        if len(values) == 1:
            return out(n, b.add(n.output[0], "Pass", [data(b, values[0]).node]))
        if len(nodes) == 1 and len(consts) == 1 and consts[0].shape in ((), (1,)):
            c = float(np.asarray(consts[0].array).reshape(-1)[0])
            lo, hi = (-np.inf, c) if op == "Min" else (c, np.inf)
            return out(n, clip_node(b, n.output[0], nodes[0].node, lo, hi))
        return out(n, _fold_operands(b, n, ins, op, n.output[0]))

    return convert


def _clip(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    x = data(b, ins[0])
    lo, hi = float(at.get("min", -np.inf)), float(at.get("max", np.inf))
    if len(ins) > 1 and ins[1] is not None:
        lo = float(const(b, ins[1], "min").reshape(-1)[0])
    if len(ins) > 2 and ins[2] is not None:
        hi = float(const(b, ins[2], "max").reshape(-1)[0])
    return out(n, clip_node(b, n.output[0], x.node, lo, hi))


def _where(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """Where(cond, x, y) = If(cond, x, y) (a boolean constant becomes 0/1)."""
    values = [v for v in ins if v is not None]
    rank = out_rank(b, values)
    cond, x, y = (b.operand(v, rank) for v in values)
    return out(n, b.add(n.output[0], "If", [cond, x, y]))


# ---- compositions of one input ------------------------------------------------------------
def _scaled(b: Builder, name: str, x: Node, factor: float) -> Node:
    if factor == 1.0:
        return x
    return b.add(name, "ElementTimes", [x, b.scalar(name + ".factor", factor)])


def _neg_part(b: Builder, name: str, x: Node) -> Node:
    """min(x, 0), which keeps Exp of it finite."""
    return clip_node(b, name, x, -np.inf, 0.0)


def _expm1_neg(b: Builder, name: str, x: Node, alpha: float, inner: float = 1.0) -> Node:
    """α·(Exp(min(x, 0)·inner) − 1): the negative branch of Elu/Selu/Celu (0 for x ≥ 0)."""
    neg = _scaled(b, name + ".divided", _neg_part(b, name + ".negpart", x), inner)
    exp = b.add(name + ".exp", "Exp", [neg])
    minus1 = b.add(name + ".expm1", "Minus", [exp, b.scalar(name + ".one", 1.0)])
    return _scaled(b, name + ".scaled", minus1, alpha)


def _elu_node(b: Builder, name: str, x: Node, alpha: float, inner: float = 1.0) -> Node:
    pos = b.add(name + ".pos", "RectifiedLinear", [x])
    return b.add(name, "Plus", [pos, _expm1_neg(b, name + ".neg", x, alpha, inner)])


def _elu(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """Relu(x) + α·(Exp(min(x, 0)) − 1)."""
    return out(n, _elu_node(b, n.output[0], data(b, ins[0]).node, float(at.get("alpha", 1.0))))


def _celu(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """Relu(x) + α·(Exp(min(x, 0)/α) − 1)."""
    alpha = float(at.get("alpha", 1.0))
    return out(n, _elu_node(b, n.output[0], data(b, ins[0]).node, alpha, 1.0 / alpha))


def _selu(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """γ·Elu_α(x)."""
    x = data(b, ins[0]).node
    alpha, gamma = float(at.get("alpha", 1.67326319217681884765625)), \
        float(at.get("gamma", 1.05070102214813232421875))
    elu = _elu_node(b, n.output[0] + ".elu", x, alpha)
    return out(n, b.add(n.output[0], "ElementTimes", [elu, b.scalar(n.output[0] + ".gamma",
                                                                   gamma)]))


def _softplus_node(b: Builder, name: str, x: Node) -> Node:
    """log(exp(x) + 1) = LogPlus(x, 0), without overflow."""
    return b.add(name, "LogPlus", [x, b.scalar(name + ".zero", 0.0)])


def _softplus(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    return out(n, _softplus_node(b, n.output[0], data(b, ins[0]).node))


def _softsign(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """x · Reciprocal(1 + |x|)."""
    x, name = data(b, ins[0]).node, n.output[0]
    denominator = b.add(name + ".denominator", "Plus",
                        [b.add(name + ".abs", "Abs", [x]), b.scalar(name + ".one", 1.0)])
    inverse = b.add(name + ".reciprocal", "Reciprocal", [denominator])
    return out(n, b.add(name, "ElementTimes", [x, inverse]))


def _mish(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """x · Tanh(Softplus(x))."""
    x, name = data(b, ins[0]).node, n.output[0]
    gate = b.add(name + ".tanh", "Tanh", [_softplus_node(b, name + ".softplus", x)])
    return out(n, b.add(name, "ElementTimes", [x, gate]))


def _gelu(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """The tanh approximation: 0.5·x·(1 + Tanh(√(2/π)·(x + 0.044715·x³)))."""
    if at.get("approximate", "none") != "tanh":
        raise b.error("Gelu is supported with approximate='tanh' only (netsurgeon has no erf)")
    x, name = data(b, ins[0]).node, n.output[0]
    cube = b.add(name + ".cube", "ElementTimes", [b.add(name + ".square", "ElementTimes",
                                                        [x, x]), x])
    inner = b.add(name + ".inner", "Plus", [x, _scaled(b, name + ".cubic", cube, 0.044715)])
    t = b.add(name + ".tanh", "Tanh", [_scaled(b, name + ".arg", inner,
                                               float(np.sqrt(2 / np.pi)))])
    half = _scaled(b, name + ".half", b.add(name + ".onePlus", "Plus",
                                            [t, b.scalar(name + ".one", 1.0)]), 0.5)
    return out(n, b.add(name, "ElementTimes", [x, half]))


def _sign(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """Greater(x, 0) − Less(x, 0): 1, 0 or −1."""
    x, name = data(b, ins[0]).node, n.output[0]
    zero = b.scalar(name + ".zero", 0.0)
    positive = b.add(name + ".positive", "Greater", [x, zero])
    negative = b.add(name + ".negative", "Less", [x, zero])
    return out(n, b.add(name, "Minus", [positive, negative]))


def _ceil(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """−Floor(−x)."""
    x, name = data(b, ins[0]).node, n.output[0]
    floor = b.add(name + ".floor", "Floor", [b.add(name + ".negated", "Negate", [x])])
    return out(n, b.add(name, "Negate", [floor]))


def _hard_sigmoid_node(b: Builder, name: str, x: Node, alpha: float, beta: float) -> Node:
    """max(0, min(1, alpha·x + beta)) = Clip(0, 1, Plus(ElementTimes(x, alpha), beta))."""
    scaled = b.add(name + ".scaled", "ElementTimes", [x, b.scalar(name + ".alpha", alpha)])
    shifted = b.add(name + ".shifted", "Plus", [scaled, b.scalar(name + ".beta", beta)])
    return clip_node(b, name, shifted, 0.0, 1.0)


def _hard_sigmoid(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    x = data(b, ins[0])
    alpha, beta = float(at.get("alpha", 0.2)), float(at.get("beta", 0.5))
    return out(n, _hard_sigmoid_node(b, n.output[0], x.node, alpha, beta))


def _hard_swish(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """x · HardSigmoid(x) with alpha 1/6, beta 1/2."""
    x = data(b, ins[0])
    gate = _hard_sigmoid_node(b, n.output[0] + ".gate", x.node, 1 / 6, 0.5)
    return out(n, b.add(n.output[0], "ElementTimes", [x.node, gate]))


def _relu_minus_scaled(b: Builder, name: str, x: Node, slope: Node) -> Node:
    """max(x, 0) + slope·min(x, 0) = Relu(x) − slope·Relu(−x) (exact)."""
    pos = b.add(name + ".pos", "RectifiedLinear", [x])
    neg = b.add(name + ".neg", "RectifiedLinear", [b.add(name + ".negated", "Negate", [x])])
    return b.add(name, "Minus", [pos, b.add(name + ".scaled", "ElementTimes", [neg, slope])])


def _leaky_relu(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    x, name = data(b, ins[0]).node, n.output[0]
    alpha = b.scalar(name + ".alpha", float(at.get("alpha", 0.01)))
    return out(n, _relu_minus_scaled(b, name, x, alpha))


def _prelu(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """PRelu(x, slope): the constant slope (learnable) broadcasts per ONNX."""
    x, slope = data(b, ins[0]), ins[1]
    if slope is None or not slope.is_const:
        raise b.error("the slope must be a constant (an initializer)")
    shape = tuple(x.shape)
    if b.opset < 7 and len(slope.shape) == 1 and len(shape) > 1 and slope.shape[0] == shape[0]:
        # opset 6 and older: a 1-D slope is per channel, not trailing-aligned
        return out(n, _relu_minus_scaled(b, n.output[0], x.node,
                                         b.param(slope, (shape[0],) + (1,) * (len(shape) - 1))))
    return out(n, _relu_minus_scaled(b, n.output[0], x.node, b.operand(slope, len(shape))))


def _thresholded_relu(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """If(Greater(x, α), x, 0)."""
    x, name = data(b, ins[0]).node, n.output[0]
    test = b.add(name + ".test", "Greater", [x, b.scalar(name + ".alpha",
                                                         float(at.get("alpha", 1.0)))])
    return out(n, b.add(name, "If", [test, x, b.scalar(name + ".zero", 0.0)]))


def _not(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """Not of a 0/1 value (a comparison's result, float here): Minus(1, x), exact."""
    x = data(b, ins[0]).node
    return out(n, b.add(n.output[0], "Minus", [b.scalar(n.output[0] + ".one", 1.0), x]))


_POWERS = {1.0: "Pass", 2.0: "square", 0.5: "Sqrt", -1.0: "Reciprocal"}


def _pow(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """x ** c for a constant c of 1, 2 (x·x), 0.5 (Sqrt) or -1 (Reciprocal), exactly and as
    the CNTK v1 ops those are; any other exponent is the Pow op."""
    x = data(b, ins[0])
    y = ins[1]
    exponent = y.array if y is not None and y.is_const else None
    op = _POWERS.get(float(exponent.reshape(-1)[0])) \
        if exponent is not None and exponent.size == 1 else None
    if op is None:
        return _binary("Pow")(b, n, ins, at)
    if op == "square":
        return out(n, b.add(n.output[0], "ElementTimes", [x.node, x.node]))
    return out(n, b.add(n.output[0], op, [x.node]))


def _cast(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    if int(at.get("to", 1)) not in (1, 10, 11):  # float, float16, double: all float32 here
        raise b.error("Cast of computed values to a non-float type is not supported")
    return out(n, b.add(n.output[0], "Pass", [data(b, ins[0]).node]))


CONVERTERS: dict[str, Converter] = {
    **{k: _unary(v) for k, v in UNARY.items()},
    **{k: _binary(v) for k, v in BINARY.items()},
    "Div": _div,
    "Sum": _sum,
    "Mean": _mean,
    "Max": _extreme("Max"),
    "Min": _extreme("Min"),
    "Clip": _clip,
    "Where": _where,
    "Elu": _elu,
    "Celu": _celu,
    "Selu": _selu,
    "Softplus": _softplus,
    "Softsign": _softsign,
    "Mish": _mish,
    "Gelu": _gelu,
    "Sign": _sign,
    "Ceil": _ceil,
    "HardSigmoid": _hard_sigmoid,
    "HardSwish": _hard_swish,
    "LeakyRelu": _leaky_relu,
    "PRelu": _prelu,
    "ThresholdedRelu": _thresholded_relu,
    "Not": _not,
    "Pow": _pow,
    "Cast": _cast,
}
