"""Products: Times (any output_rank), TransposeTimes, DiagTimes, LookupTable, KhatriRaoProduct,
CosDistance, as ``runtime/lowerings/linear`` computes them (numpy order: CNTK Times(A, B) is
``B @ A`` with A's leading dims contracted)."""

from __future__ import annotations

from math import prod

from netsurgeon.formats.onnx._layer import ONNX, export_entry
from netsurgeon.formats.onnx.export_context import refuse
from netsurgeon.ops import Unsupported


def _framed(ctx, node, name: str, shape) -> str:
    """``name`` (rows, ...) reshaped to the node's value: ``(-1, *shape)`` or ``shape``."""
    dims = (-1, *shape) if node.dynamic else tuple(shape)
    return ctx.add("Reshape", [name, ctx.ints(dims)], node.op)


@export_entry("Times")
def _times(ctx, node, args):
    a, b = args
    k_rank = len(a.shape) - node.attrs["output_rank"]
    k, o = prod(a.shape[:k_rank]), prod(a.shape[k_rank:])
    out = tuple(node.shape)
    if not a.dynamic and b.dynamic:
        w = a.name if len(a.shape) == 2 and k_rank == 1 else ctx.reshape(a, (k, o), "matrix")
        if prod(b.shape) == k:  # one row per frame: the product is the (frames, o) matrix
            x = ctx.rows(b)
            y = ctx.add("MatMul", [x, w], "MatMul")
            value = ctx.unflat(node, y)
            if ctx.scope is ctx.main:
                ctx.products[value] = (x, w)  # a Plus of a bias may make it one Gemm
            return value
        x = ctx.add("Reshape", [b.name, ctx.ints((-1, k))], "rows")
        return _framed(ctx, node, ctx.add("MatMul", [x, w], "MatMul"), out)
    # the general case (the runtime's K.times_general): either side may carry frames
    am = ctx.add("Reshape", [a.name, ctx.ints((0, k, -1) if a.dynamic else (k, -1))], "a")
    bm = ctx.add("Reshape", [b.name, ctx.ints((0, -1, k) if b.dynamic else (-1, k))], "b")
    y = ctx.add("MatMul", [bm, am], "MatMul")
    return _framed(ctx, node, y, out)


@export_entry("TransposeTimes")
def _transpose_times(ctx, node, args):
    a, b = args
    if a.dynamic:
        return _frame_transpose_times(ctx, node, a, b)
    w = ctx.add("Reshape", [a.name, ctx.ints((a.shape[0] if len(a.shape) == 2 else 1, -1))],
                "a")
    wt = ctx.add("Transpose", [w], "a_t", perm=[1, 0])
    x = ctx.add("Reshape", [b.name, ctx.ints((-1, prod(a.shape[-1:])))], "rows")
    return _framed(ctx, node, ctx.add("MatMul", [x, wt], "MatMul"), node.shape)


def _frame_transpose_times(ctx, node, a, b) -> str:
    """Aᵀ·B per frame (the runtime's ``_frame_transpose_times``): B (n, k) · A (m, k)ᵀ."""
    if len(a.shape) > 2 or len(b.shape) > 2:
        raise refuse(node, "TransposeTimes of frame-varying operands of rank > 2 is not "
                           "supported")
    k = a.shape[-1]
    m = a.shape[0] if len(a.shape) == 2 else 1
    n = b.shape[0] if len(b.shape) == 2 else 1
    at = ctx.add("Transpose", [ctx.add("Reshape", [a.name, ctx.ints((-1, m, k))], "a")],
                 "a_t", perm=[0, 2, 1])
    bs = ctx.add("Reshape", [b.name, ctx.ints((-1 if b.dynamic else 1, n, k))], "b")
    return _framed(ctx, node, ctx.add("MatMul", [bs, at], "MatMul"), node.shape)


@export_entry("DiagTimes")
def _diag_times(ctx, node, args):
    d, b = args
    return ctx.add("Mul", [b.name, ctx.add("Reshape", [d.name, ctx.ints([-1])], "diag")],
                   "DiagTimes")


@export_entry("LookupTable")
def _lookup(ctx, node, args):
    w, x = args
    vocab = w.shape[0]
    rows = ctx.add("Reshape", [x.name, ctx.ints((-1, vocab))], "rows")
    y = ctx.add("MatMul", [rows, w.name], "MatMul")
    return ctx.add("Reshape", [y, ctx.ints((-1, *node.shape))], "LookupTable")


@export_entry("KhatriRaoProduct")
def _khatri_rao(ctx, node, args):
    a, b = args
    bs = ctx.add("Reshape", [b.name, ctx.ints((-1, prod(b.shape), 1))], "b")
    as_ = ctx.add("Reshape", [a.name, ctx.ints((-1, 1, prod(a.shape)))], "a")
    y = ctx.add("Mul", [bs, as_], "outer")
    return ctx.add("Reshape", [y, ctx.ints((-1, *node.shape))], "KhatriRaoProduct")


@export_entry("CosDistance")
def _cos(ctx, node, args):
    """torch's cosine_similarity: a·b / sqrt(max(|a|²·|b|², eps²)), eps = 1e-12."""
    a, b = (ctx.add("Reshape", [v.name, ctx.ints((-1, prod(v.shape)))], "rows") for v in args)
    one = ctx.ints([1])
    dot = ctx.add("ReduceSum", [ctx.add("Mul", [a, b], "ab"), one], "dot", keepdims=1)
    na = ctx.add("ReduceSumSquare", [a, one], "aa", keepdims=1)
    nb = ctx.add("ReduceSumSquare", [b, one], "bb", keepdims=1)
    den = ctx.add("Sqrt", [ctx.add("Max", [ctx.add("Mul", [na, nb], "aabb"),
                                           ctx.scalar(1e-24, "eps2")], "clamped")], "norms")
    return ctx.add("Div", [dot, den], "CosDistance")


ONNX.add("CosDistanceWithNegativeSamples", Unsupported(
    "the cyclic shift over the frames of the minibatch is not exported to ONNX yet"))
