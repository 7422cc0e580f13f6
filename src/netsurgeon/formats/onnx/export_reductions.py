"""Per-sample normalizations and reductions: Softmax, LogSoftmax, Hardmax, SumColumnElements,
SumElements, MatrixL1Reg, MatrixL2Reg, ReduceElements, PerDimMeanVar(De)Normalization, as
``runtime/lowerings/linear`` computes them. A sample is one column in CNTK: the softmaxes run
over all its elements."""

from __future__ import annotations

from math import prod

from netsurgeon.formats.onnx._layer import export_entry
from netsurgeon.formats.onnx.export_context import refuse
from netsurgeon.ops.reshaping import reduced_sample_axes


def _per_sample(op: str):
    def entry(ctx, node, args):
        x = args[0]
        if len(x.shape) == 1:
            return ctx.add(op, [x.name], op, axis=-1)
        n = prod(x.shape)
        flat = ctx.add("Reshape", [x.name, ctx.ints((-1, n) if x.dynamic else (1, n))], "flat")
        y = ctx.add(op, [flat], op, axis=-1)
        return ctx.add("Reshape", [y, ctx.ints((-1, *x.shape) if x.dynamic else x.shape)],
                       "sample")
    return entry


export_entry("Softmax")(_per_sample("Softmax"))
export_entry("LogSoftmax")(_per_sample("LogSoftmax"))
export_entry("Hardmax")(_per_sample("Hardmax"))


def masked_total(ctx, dynamic: bool, name: str, sample_rank: int = 0) -> str:
    """The sum of ``name`` (element-wise in a frame value of ``sample_rank`` sample axes)
    over the real frames, or over all of a value without frames, shaped (1,) as CNTK's
    legacy criteria."""
    mask = ctx.mask() if dynamic else None
    if mask is not None:
        col = ctx.add("Reshape", [mask, ctx.ints((-1,) + (1,) * sample_rank)], "mask_col")
        name = ctx.add("Mul", [name, col], "real")
    total = ctx.add("ReduceSum", [name], "sum", keepdims=0)
    return ctx.add("Reshape", [total, ctx.ints([1])], "total")


@export_entry("SumColumnElements")
def _sum_columns(ctx, node, args):
    x = args[0]
    if not x.dynamic:
        return ctx.add("Reshape", [ctx.add("ReduceSum", [x.name], "sum", keepdims=0),
                                   ctx.ints([1])], "SumColumnElements")
    flat = ctx.add("Reshape", [x.name, ctx.ints((-1, prod(x.shape)))], "flat")
    return ctx.add("ReduceSum", [flat, ctx.ints([1])], "SumColumnElements", keepdims=1)


@export_entry("SumElements", uses_mask=True)
def _sum_elements(ctx, node, args):
    return masked_total(ctx, args[0].dynamic, args[0].name, len(args[0].shape))


@export_entry("MatrixL1Reg", uses_mask=True)
def _l1(ctx, node, args):
    return masked_total(ctx, args[0].dynamic, ctx.add("Abs", [args[0].name], "abs"),
                        len(args[0].shape))


@export_entry("MatrixL2Reg", uses_mask=True)
def _l2(ctx, node, args):
    x = args[0]
    sq = ctx.add("Mul", [x.name, x.name], "square")
    return ctx.add("Sqrt", [masked_total(ctx, x.dynamic, sq, len(x.shape))], "MatrixL2Reg")


@export_entry("PerDimMeanVarNormalization")
def _mvn(ctx, node, args):
    x, m, s = args
    return ctx.add("Mul", [ctx.add("Sub", [x.name, m.name], "centred"), s.name], node.op)


@export_entry("PerDimMeanVarDeNormalization")
def _mvdn(ctx, node, args):
    x, m, s = args
    return ctx.add("Add", [ctx.add("Div", [x.name, s.name], "scaled"), m.name], node.op)


_REDUCTIONS = {"sum": "ReduceSum", "plus": "ReduceSum", "mean": "ReduceMean",
               "max": "ReduceMax", "min": "ReduceMin", "prod": "ReduceProd",
               "logsum": "ReduceLogSumExp", "argmax": "ArgMax", "argmin": "ArgMin"}


@export_entry("ReduceElements")
def _reduce(ctx, node, args):
    """Reduce the sample axes of ``axes`` (0 or 1: all of them, -k: CNTK axis k), kept as
    size 1, then reshaped to the validated output."""
    x = args[0]
    op = _REDUCTIONS.get(node.attrs["operation"].lower())
    if op is None:
        raise refuse(node, f"operation {node.attrs['operation']!r} is not supported; use one of "
                           "Sum, Mean, Max, Min, Prod, LogSum, Argmax, Argmin")
    rank = len(x.shape)
    axes = reduced_sample_axes(node.attrs["axes"], rank)
    if axes is None:
        raise refuse(node, "reducing over the sequence or batch axis is not supported; "
                           "reduce sample axes")
    off = 1 if x.dynamic else 0
    if op in ("ArgMax", "ArgMin"):  # the index along one axis (first on ties), as a float
        if len(axes) != 1:
            raise refuse(node, f"{node.attrs['operation']} over {len(axes)} sample axes is not "
                               "supported; reduce one axis (or a rank-1 sample)")
        index = ctx.add(op, [x.name], op, axis=axes[0] + off, keepdims=1, select_last_index=0)
        out = ctx.add("Cast", [index], "index", to=ctx.elem)
    else:
        out = ctx.add(op, [x.name, ctx.ints([a + off for a in axes])], op, keepdims=1)
    kept = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    return ctx.reshape(ctx.view(x, out, kept), node.shape, "ReduceElements")
