"""Element-wise ops with CNTK broadcasting (numpy order), as ``runtime/lowerings/elementwise``.

ONNX broadcasts like numpy; the one adjustment is the runtime's: a frame value whose sample
rank is below the output's gets size-1 sample axes in front (:func:`aligned`).
"""

from __future__ import annotations

from math import prod

from netsurgeon.formats.onnx._layer import ONNX, Export, export_entry

#: op -> ONNX op of one input (None: the value passes through)
UNARY = {
    "Sigmoid": "Sigmoid", "StableSigmoid": "Sigmoid", "Tanh": "Tanh", "RectifiedLinear": "Relu",
    "Abs": "Abs", "Acos": "Acos", "Asin": "Asin", "Cosh": "Cosh", "Cosine": "Cos", "Sin": "Sin",
    "Sinh": "Sinh", "Exp": "Exp", "Log": "Log", "Floor": "Floor", "Sqrt": "Sqrt",
    "Reciprocal": "Reciprocal", "Negate": "Neg", "Tan": "Tan", "Atan": "Atan", "Asinh": "Asinh",
    "Atanh": "Atanh", "ExponentialLinearUnit": "Elu",
    "Pass": None, "LabelsToGraph": None, "StopGradient": None,
    "Trace": None,  # logging is not reproduced; the value passes through
    "Dropout": None,  # identity at inference
}

#: op -> (ONNX op, its result is boolean and cast back to the float type, negate it first)
BINARY = {
    "Plus": ("Add", False, False), "Minus": ("Sub", False, False),
    "ElementTimes": ("Mul", False, False), "Pow": ("Pow", False, False),
    "Equal": ("Equal", True, False), "NotEqual": ("Equal", True, True),
    "Less": ("Less", True, False), "LessEqual": ("LessOrEqual", True, False),
    "Greater": ("Greater", True, False), "GreaterEqual": ("GreaterOrEqual", True, False),
}


def aligned(ctx, node, args) -> list[str]:
    """Input tensor names reshaped so ONNX broadcasting equals CNTK's (see the runtime's)."""
    rank = len(node.shape or ())
    out = []
    for a in args:
        if a.dynamic and len(a.shape) < rank and node.dynamic:
            out.append(ctx.reshape(a, (1,) * (rank - len(a.shape)) + tuple(a.shape), "align"))
        else:
            out.append(a.name)
    return out


def unary(op: str | None) -> Export:
    """The entry of a unary element-wise op (``None``: identity)."""

    def fn(ctx, node, args):
        if op is None:
            return args[0].name
        twin = ctx.twin(args[0]) if len(args[0].shape) > 1 else None
        if twin is not None:  # on the (frames, size) matrix, whose own twin the result is
            return ctx.unflat(node, ctx.add(op, [twin], op))
        return ctx.add(op, [args[0].name], op)

    return Export(fn)


def _on_rows(ctx, node, op: str, args) -> str | None:
    """A frame value and a one-element constant on the value's (frames, size) matrix (when
    there is one without a Reshape), else None; a Plus of a Times by a constant matrix and a
    bias row is one Gemm (the dense layer)."""
    if not node.dynamic or len(args) != 2 or not node.shape or ctx.scope is not ctx.main:
        return None
    size = prod(node.shape)
    for i, (x, c) in enumerate((args, args[::-1])):
        if not x.dynamic or c.dynamic or prod(x.shape) != size:
            continue
        if op == "Add" and ctx.uses.get(x.node) == 1 and x.name in ctx.products and \
                tuple(x.shape) == tuple(node.shape) and c.shape and \
                c.shape[-1] == prod(c.shape) and c.shape[-1] in (1, x.shape[-1]):
            rows, w = ctx.products[x.name]
            bias = c.name if len(c.shape) == 1 else ctx.reshape(c, (c.shape[-1],), "bias")
            return ctx.unflat(node, ctx.add("Gemm", [rows, w, bias], "Gemm"))
        twin = ctx.twin(x)
        if twin is not None and prod(c.shape) == 1 and len(c.shape) <= 2:
            return ctx.unflat(node, ctx.add(op, [twin, c.name] if i == 0 else [c.name, twin],
                                            op))
    return None


def binary(op: str, boolean: bool, negate: bool) -> Export:
    """The entry of a binary element-wise op."""

    def fn(ctx, node, args):
        if not boolean:
            found = _on_rows(ctx, node, op, args)
            if found is not None:
                return found
        out = ctx.add(op, aligned(ctx, node, args), op)
        if negate:
            out = ctx.add("Not", [out], "not")
        return ctx.add("Cast", [out], "cast", to=ctx.elem) if boolean else out

    return Export(fn)


for _name, _op in UNARY.items():
    ONNX.add(_name, unary(_op))
for _name, _spec in BINARY.items():
    ONNX.add(_name, binary(*_spec))


@export_entry("LogPlus")
def _log_plus(ctx, node, args):
    """log(e^a + e^b) = max(a, b) + softplus(-|a - b|) (torch.logaddexp's stable form)."""
    a, b = aligned(ctx, node, args)
    top = ctx.add("Max", [a, b], "max")
    gap = ctx.add("Neg", [ctx.add("Abs", [ctx.add("Sub", [a, b], "diff")], "abs")], "neg")
    return ctx.add("Add", [top, ctx.add("Softplus", [gap], "softplus")], "LogPlus")


@export_entry("StraightThrough")
def _straight_through(ctx, node, args):
    """+1 where x > 0, else -1 (CNTK's forward value)."""
    x = args[0].name
    positive = ctx.add("Greater", [x, ctx.scalar(0.0, "zero")], "positive")
    return ctx.add("Where", [positive, ctx.scalar(1.0, "one"), ctx.scalar(-1.0, "minus_one")],
                   "StraightThrough")


@export_entry("Clip")
def _clip(ctx, node, args):
    lo, hi, x = aligned(ctx, node, args)
    return ctx.add("Min", [ctx.add("Max", [x, lo], "lower"), hi], "Clip")


@export_entry("If")
def _if(ctx, node, args):
    c, a, b = aligned(ctx, node, args)
    zero = ctx.scalar(0.0, "zero")
    cond = ctx.add("Not", [ctx.add("Equal", [c, zero], "is_zero")], "cond")
    return ctx.add("Where", [cond, a, b], "If")
