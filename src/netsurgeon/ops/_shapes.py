"""Shape arithmetic shared by the shape rules, all in numpy order (trailing axis = CNTK's first)."""

from __future__ import annotations

from netsurgeon.ops._spec import Shape, ShapeContext

__all__ = ["same_as_input", "broadcast", "broadcast_rule", "times_shape", "scalar", "prod"]


def prod(dims) -> int:
    out = 1
    for d in dims:
        out *= int(d)
    return out


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
    """Rule: element-wise with broadcasting over all inputs."""
    return broadcast(ctx, ctx.shapes)


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
