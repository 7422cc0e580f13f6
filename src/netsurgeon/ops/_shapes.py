"""Shape arithmetic shared by the shape rules, all in numpy order (trailing axis = CNTK's first)."""

from __future__ import annotations

from math import prod

from netsurgeon.ops._spec import Shape, ShapeContext, fmt_shape

__all__ = ["same_as_input", "broadcast", "broadcast_rule", "times_shape", "scalar",
           "complete_dims", "fill_zeros", "axis_index", "pad_rank", "permissive"]


def same_as_input(index: int = 0):
    """Rule: the output has input ``index``'s shape."""

    def rule(ctx: ShapeContext) -> Shape:
        return tuple(ctx.shapes[index])

    rule.__name__ = f"same_as_input_{index}"
    return rule


def broadcast(ctx: ShapeContext, shapes: list[Shape]) -> Shape:
    """CNTK broadcasting in numpy order: align on the *trailing* axis (CNTK's first), size-1
    or missing dimensions broadcast, 0 is unknown and takes the other side's size."""
    rank = max((len(s) for s in shapes), default=0)
    out = [1] * rank
    for s in shapes:
        padded = (1,) * (rank - len(s)) + tuple(s)
        for i, d in enumerate(padded):
            if d == out[i] or d == 1:
                continue
            if out[i] in (1, 0):
                out[i] = d if d != 0 or out[i] == 1 else out[i]
            elif d == 0:
                continue
            else:
                ctx.fail(f"dimension mismatch on axis {i - rank}: {out[i]} vs {d}")
    return tuple(out)


def broadcast_rule(ctx: ShapeContext) -> Shape:
    """Rule: element-wise with broadcasting over all inputs.

    A learnable input with unknown (0) dimensions (BrainScript ``ParameterTensor{(0:1)}``)
    is completed from the output's dimensions on the same axes.
    """
    out = broadcast(ctx, ctx.shapes)
    for i, s in enumerate(ctx.shapes):
        if 0 in s and ctx.learnable(i) and ctx.input_ops[i]:
            offset = len(out) - len(s)
            done = tuple(out[offset + j] if d == 0 else d for j, d in enumerate(s))
            if 0 not in done:
                ctx.refine(i, done)
    return out


def scalar(ctx: ShapeContext) -> Shape:
    """Rule: a one-element output ``(1,)`` (criteria, SumElements)."""
    return (1,)


def times_shape(ctx: ShapeContext, a: Shape, b: Shape, output_rank: int, a_index: int = 0,
                b_index: int = 1) -> Shape:
    """Shape of CNTK ``Times(A, B)`` in numpy order.

    CNTK: A = [O..., K...] with len(O) = outputRank, B = [K..., R...], result [O..., R...].
    numpy (reversed): A = (K'..., O'...), B = (R'..., K'...), result = (R'..., O'...).
    Unknown (0) dimensions of a learnable A are completed from B.
    """
    if output_rank > len(a):
        ctx.fail(f"outputRank {output_rank} exceeds the rank of the first input")
    k_rank = len(a) - output_rank
    if k_rank == 0:
        ctx.fail("the first input has no dimension left to contract")
    a_k = tuple(a[:k_rank])
    # B's trailing k_rank dims are contracted; B may fold them (CNTK flattens B's leading dims).
    if len(b) >= k_rank and _fits(a_k, tuple(b[len(b) - k_rank:])):
        b_k = tuple(b[len(b) - k_rank:])
        rest = tuple(b[: len(b) - k_rank])
    elif prod(b) != 0 and 0 not in a_k and prod(a_k) == prod(b):
        b_k, rest = a_k, ()
    elif 0 not in a_k and len(b) >= 1 and 0 not in b and prod(a_k) and prod(b) % prod(a_k) == 0 \
            and _suffix_product(b, prod(a_k)) is not None:
        cut = _suffix_product(b, prod(a_k))
        b_k, rest = a_k, tuple(b[:cut])
    else:
        ctx.fail(
            f"the first input's column dimensions {tuple(reversed(a_k))} (CNTK order) do not match "
            f"the second input's row dimensions {tuple(reversed(b))}"
        )
    full_k = tuple(bk if ak == 0 else ak for ak, bk in zip(a_k, b_k))
    if full_k != a_k:
        ctx.refine(a_index, full_k + tuple(a[k_rank:]))
    return rest + tuple(a[k_rank:])


def _fits(want: Shape, have: Shape) -> bool:
    return len(want) == len(have) and all(w in (0, h) for w, h in zip(want, have))


def _suffix_product(shape: Shape, size: int) -> int | None:
    """Index i such that prod(shape[i:]) == size, or None."""
    acc = 1
    for i in range(len(shape) - 1, -1, -1):
        acc *= shape[i]
        if acc == size:
            return i
        if acc > size:
            return None
    return None


def fill_zeros(shape: Shape, count: int) -> Shape | None:
    """``shape`` with its single 0 dimension set so that the product is ``count``; None if
    that is impossible (several zeros, or ``count`` not a multiple of the known part)."""
    shape = tuple(shape)
    zeros = [i for i, d in enumerate(shape) if d == 0]
    if not zeros:
        return shape if prod(shape) == count else None
    known = prod(d for d in shape if d != 0)
    if len(zeros) != 1 or known == 0 or count % known:
        return None
    out = list(shape)
    out[zeros[0]] = count // known
    return tuple(out)


def complete_dims(ctx: ShapeContext, index: int, shape: Shape, count: int) -> Shape:
    """Input ``index``'s shape completed to ``count`` elements, or a ShapeError naming it."""
    done = fill_zeros(shape, count)
    if done is None:
        ctx.fail(f"cannot infer input {index} ({ctx.input_names[index]}) of shape "
                 f"{fmt_shape(shape)} to hold {count} elements")
    return done


def axis_index(ctx: ShapeContext, rank: int, axis: int) -> int:
    """Non-negative numpy index of the registry axis ``axis`` (``-k`` = CNTK axis k)."""
    if axis >= 0 or -axis > rank:
        ctx.fail(f"axis {axis} (CNTK axis {-axis}) is out of range for a rank-{rank} input")
    return rank + axis


def pad_rank(shape: Shape, rank: int) -> Shape:
    """Prepend 1s (CNTK: append trailing 1 dims) up to ``rank``."""
    shape = tuple(shape)
    return (1,) * (rank - len(shape)) + shape if len(shape) < rank else shape


def permissive(ctx: ShapeContext) -> Shape:
    """Rule for ops whose output shape netsurgeon does not model: the first input's shape,
    else the node's declared shape, else (1,)."""
    if ctx.shapes:
        return tuple(ctx.shapes[0])
    if ctx.declared is not None:
        return tuple(ctx.declared)
    return (1,)
