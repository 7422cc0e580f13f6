"""Linear algebra ops (ndl-mel.md §B.9.3): Times and its variants, DiagTimes,
KhatriRaoProduct, the cosine distances and LookupTable."""

from __future__ import annotations

from math import prod

from netsurgeon.ops._build import BOTH, NDL, define, inputs_form, simple_function
from netsurgeon.ops._category import Category as C
from netsurgeon.ops._convert import NodeOption
from netsurgeon.ops._registry import OpRegistry
from netsurgeon.ops._shapes import broadcast, complete_dims, times_shape
from netsurgeon.ops._spec import AttrSpec, FunctionSpec, Param, Shape, ShapeContext, fmt_shape

__all__ = ["register", "TIMES_ATTRS"]

TIMES_ATTRS = {
    "output_rank": AttrSpec("int", 1, "number of leading CNTK dims of A kept in the output "
                            "(numpy: trailing dims of A); file field outputRank"),
    "infer_input_rank_to_map": AttrSpec("int", -1, "CNTK inferInputRankToMap: -1 = not "
                                        "specified; k >= 0 = when inferring A's shape keep k "
                                        "input-mapping dims (file v >= 12)"),
}

_TIMES_OPTIONS = {
    "outputRank": Param("output_rank", "int", 1, aliases=("outputRank",)),
    "inferInputRankToMap": Param("infer_input_rank_to_map", "int", -1,
                                 aliases=("inferInputRankToMap",)),
}
_TIMES_NODE = (NodeOption("outputRank", "output_rank", "int"),
               NodeOption("inferInputRankToMap", "infer_input_rank_to_map", "int"))


def _times(ctx: ShapeContext) -> Shape:
    a, b = tuple(ctx.shapes[0]), tuple(ctx.shapes[1])
    output_rank = int(ctx.attrs["output_rank"])
    map_rank = int(ctx.attrs["infer_input_rank_to_map"])
    k_rank = len(a) - output_rank
    if map_rank >= 0 and k_rank > 0 and 0 in a[:k_rank] and 0 not in b:
        # CNTK: A's unknown input dims become all of B's dims but its last map_rank CNTK dims
        # (numpy: B's first map_rank dims are kept as map dims), changing A's rank if needed.
        if map_rank > len(b) or map_rank == len(b):
            ctx.fail(f"infer_input_rank_to_map={map_rank} leaves no dimension of the second "
                     f"input to contract")
        known = [d for d in a[:k_rank] if d != 0]
        reduction = tuple(b[map_rank:])
        if known and tuple(reduction[len(reduction) - len(known):]) != tuple(known):
            ctx.fail("the first input's known input dims do not match the second input")
        a = reduction + a[k_rank:]
        ctx.refine(0, a, change_rank=True)
    return times_shape(ctx, a, b, output_rank)


def _transpose_times(ctx: ShapeContext) -> Shape:
    """Aᵀ·B: CNTK A is [k x m] (numpy (m, k)) or [k] (numpy (k,)); Aᵀ is [m x k]."""
    a = tuple(ctx.shapes[0])
    if not 1 <= len(a) <= 2:
        ctx.fail("the first input of TransposeTimes must have rank 1 or 2")
    if len(a) == 1:
        a_t: Shape = (a[0], 1)
    else:
        a_t = (a[1], a[0])

    b = tuple(ctx.shapes[1])
    k = a_t[0]
    if len(b) == 0:
        ctx.fail("the second input has rank 0")
    if k == 0:
        k = b[-1]
        ctx.refine(0, (k,) if len(a) == 1 else (a[0], k))
    elif b[-1] not in (k, 0) and prod(b) != k:
        ctx.fail(f"A's row dimension {k} does not match B's row dimension {b[-1]}")
    rest = tuple(b[:-1]) if b[-1] == k else ()
    return rest + ((a_t[1],) if len(a) == 2 else (1,))


def _diag_times(ctx: ShapeContext) -> Shape:
    d, b = ctx.shapes
    n = prod(d)
    if not b:
        ctx.fail("the second input has rank 0")
    if n != b[-1] and 0 not in d:
        ctx.fail(f"the diagonal has {n} elements but the second input has {b[-1]} rows")
    if 0 in d:
        ctx.refine(0, complete_dims(ctx, 0, d, b[-1]))
    return tuple(b)


def _khatri_rao(ctx: ShapeContext) -> Shape:
    a, b = ctx.shapes
    return (prod(a) * prod(b),)


def _cos_distance(ctx: ShapeContext) -> Shape:
    a, b = ctx.shapes
    if prod(a) != prod(b) and 0 not in a and 0 not in b:
        ctx.fail(f"inputs have different sizes {fmt_shape(a)} and {fmt_shape(b)}")
    return (1,)


def _cos_neg(ctx: ShapeContext) -> Shape:
    a, b = ctx.shapes[0], ctx.shapes[1]
    if prod(a) != prod(b) and 0 not in a and 0 not in b:
        ctx.fail(f"inputs have different sizes {fmt_shape(a)} and {fmt_shape(b)}")
    neg = int(ctx.attrs["num_negative_samples"])
    return (neg + 1,) if neg > 0 else (0,)


def _lookup(ctx: ShapeContext) -> Shape:
    """W numpy (V, d) = CNTK [d x V]; x holds k stacked one-hot words of V: output (d·k,)."""
    w, x = ctx.shapes
    if len(w) != 2:
        ctx.fail("the embedding matrix must have rank 2 (CNTK [d x V])")
    vocab, dim = w
    size = prod(x)
    if vocab == 0:
        ctx.refine(0, (size, dim))
        vocab = size
    if vocab == 0 or size % vocab:
        ctx.fail(f"the input size {size} is not a multiple of the vocabulary size {vocab}")
    return (dim * (size // vocab),)


def _times_plus(ctx: ShapeContext) -> Shape:
    """Times of the first two inputs, broadcast with the bias (the fused Plus)."""
    return broadcast(ctx, [_times(ctx), tuple(ctx.shapes[2])])


def register(ops: OpRegistry) -> None:
    """Register the linear-algebra ops."""
    ab = ("A", "B")
    define(ops, "Times", (2, 2), _times, inputs=ab, attrs=TIMES_ATTRS,
           categories={C.LINEAR}, node_options=_TIMES_NODE,
           functions=(simple_function("Times", "Times", "A", "B", options=_TIMES_OPTIONS),),
           doc="Matrix product A·B; numpy order: x @ W.")
    define(ops, "TransposeTimes", (2, 2), _transpose_times, inputs=ab, attrs=TIMES_ATTRS,
           categories={C.LINEAR}, node_options=_TIMES_NODE,
           functions=(simple_function("TransposeTimes", "TransposeTimes", "A", "B",
                                      options=_TIMES_OPTIONS),),
           doc="Aᵀ·B.")
    define(ops, "QuantizedTimes", (2, 2), _times, inputs=ab,
           attrs={**TIMES_ATTRS,
                  "bit_shift_a": AttrSpec("int", 1, "quantization bit shift of A"),
                  "bit_shift_b": AttrSpec("int", 1, "quantization bit shift of B")},
           categories={C.LINEAR},
           node_options=(*_TIMES_NODE, NodeOption("bitShiftA", "bit_shift_a", "int"),
                         NodeOption("bitShiftB", "bit_shift_b", "int")),
           has_math=False, doc="Times with quantized operands (stored, not evaluated).")
    define(ops, "DiagTimes", (2, 2), _diag_times, inputs=("d", "B"), categories={C.LINEAR},
           functions=(simple_function("DiagTimes", "DiagTimes", "d", "B"),),
           doc="diag(d)·B: row i of B (numpy: last axis) scaled by d[i].")
    define(ops, "KhatriRaoProduct", (2, 2), _khatri_rao, inputs=ab, categories={C.LINEAR},
           functions=(simple_function("KhatriRaoProduct", "KhatriRaoProduct", "A", "B",
                                      aliases=("ColumnwiseCrossProduct",)),),
           doc="Column-wise Kronecker product: (m,), (n,) -> (m·n,).")
    define(ops, "CosDistance", (2, 2), _cos_distance, inputs=("a", "b"), categories={C.LINEAR},
           functions=(simple_function("CosDistance", "CosDistance", "a", "b",
                                      aliases=("CosDist",)),),
           doc="Per-sample cosine similarity, output (1,).")
    define(ops, "CosDistanceWithNegativeSamples", (4, 4), _cos_neg,
           inputs=("a", "b", "shift", "num_negative"), categories={C.LINEAR},
           attrs={"num_negative_samples": AttrSpec(
               "int", 0, "not stored in files: the value of input 3, recorded by builders so "
               "the output shape (numNeg+1,) can be inferred; 0 = unknown")},
           functions=(FunctionSpec(
               "CosDistanceWithNegativeSamples", "CosDistanceWithNegativeSamples",
               (inputs_form("a", "b", "shift", "num_negative"),),
               aliases=("CosWithNegSamples",), languages=BOTH),),
           doc="Cosine of a against b and numNeg shifted copies of b: (numNeg+1,).")
    define(ops, "LookupTable", (2, 2), _lookup, inputs=("W", "x"), categories={C.LINEAR},
           functions=(simple_function("LookupTable", "LookupTable", "W", "x", languages=NDL),),
           doc="Embedding lookup W·x per stacked one-hot word.")
    define(ops, "TimesPlus", (3, 3), _times_plus, inputs=("A", "B", "bias"), attrs=TIMES_ATTRS,
           categories={C.LINEAR}, internal=True,
           doc="Plus(Times(A, B), bias) as one node (one torch.addmm); made by the FuseLinear "
               "pass for code generation only, never by a language or a file.")
