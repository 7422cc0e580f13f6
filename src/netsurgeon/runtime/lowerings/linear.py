"""Linear algebra, reshaping and per-sample reductions (ndl-mel.md §B.9.3).

Shapes are numpy order; a frame value carries a leading frames axis (see codegen). Where an
op's axis could be read two ways, the lowering checks it against the validated output shape.
"""

from __future__ import annotations

import math

from netsurgeon.errors import EvaluationError
from netsurgeon.runtime.lowerings import attr, lowering


def _prod(dims) -> int:
    return int(math.prod(int(d) for d in dims))


def _dims(shape) -> str:
    return ", ".join(str(int(d)) for d in shape)


def reshape(arg, shape) -> str:
    """Reshape ``arg``'s sample to ``shape`` (keeping the frame axis)."""
    shape = tuple(shape)
    if tuple(arg.shape) == shape:
        return arg.expr
    if arg.dynamic:
        return f"{arg.expr}.reshape(-1{', ' if shape else ''}{_dims(shape)})"
    return f"{arg.expr}.reshape({_dims(shape) if shape else ''}{',' if len(shape) == 1 else ''})"


@lowering("Times", accepts_sparse=True)
def _times(em, node, args):
    """CNTK Times(A, B) = in numpy order B @ A with A's leading dims contracted."""
    a, b = args
    out_rank = int(attr(node, "output_rank", default=1))
    k_rank = len(a.shape) - out_rank
    k = _prod(a.shape[:k_rank])
    o = _prod(a.shape[k_rank:])
    out = tuple(node.shape)
    if b.sparse:
        if a.dynamic:
            raise EvaluationError("Times of a frame-varying A with a sparse B is not supported",
                                  node=node.name)
        w = a.expr if len(a.shape) == 2 and k_rank == 1 else f"{a.expr}.reshape({k}, {o})"
        expr = f"torch.sparse.mm({b.expr}, {w})"
        return expr if out == (o,) else f"{expr}.reshape(-1, {_dims(out)})"
    if not a.dynamic and b.dynamic:
        w = a.expr if len(a.shape) == 2 and k_rank == 1 else \
            em.static(f"{a.expr}.reshape({k}, {o})", a.node.name)
        x = b.expr if len(b.shape) == 1 else f"{b.expr}.reshape(-1, {k})"
        expr = f"torch.matmul({x}, {w})"
        if out == (o,) and len(b.shape) == 1:
            return expr
        return f"{expr}.reshape(-1, {_dims(out)})"
    return (f"K.times_general({a.expr}, {b.expr}, {k}, {a.dynamic}, {b.dynamic}, "
            f"({_dims(out)}{',' if len(out) == 1 else ''}))")


@lowering("TransposeTimes")
def _transpose_times(em, node, args):
    a, b = args
    if a.dynamic:
        raise EvaluationError("TransposeTimes with a frame-varying A is not supported",
                              node=node.name)
    # numpy A (m, k) = CNTK [k x m]; per sample Aᵀ·x is, in numpy order, x (k,) @ A(m, k).T
    w = f"{a.expr}.reshape({a.shape[0] if len(a.shape) == 2 else 1}, -1).t()"
    expr = f"torch.matmul({b.expr}.reshape(-1, {_prod(a.shape[-1:])}), {w})"
    return f"{expr}.reshape({'-1, ' if node.dynamic else ''}{_dims(node.shape)})"


@lowering("DiagTimes")
def _diag_times(em, node, args):
    d, b = args
    return f"{b.expr} * {d.expr}.reshape(-1)"


@lowering("LookupTable", accepts_sparse=True)
def _lookup(em, node, args):
    w, x = args
    vocab, dim = w.shape
    xs = f"{x.expr}.to_dense()" if x.sparse else x.expr
    if _prod(x.shape) == vocab and x.sparse:
        return f"torch.sparse.mm({x.expr}, {w.expr})"
    return f"torch.matmul({xs}.reshape(-1, {vocab}), {w.expr}).reshape(-1, {_dims(node.shape)})"


@lowering("KhatriRaoProduct")
def _khatri_rao(em, node, args):
    a, b = args
    # CNTK column [m]⊗[n] -> [m·n] with a's index fastest: numpy (n, m) flattened
    return (f"({b.expr}.reshape(-1, {_prod(b.shape)}, 1) * "
            f"{a.expr}.reshape(-1, 1, {_prod(a.shape)})).reshape(-1, {_dims(node.shape)})")


@lowering("CosDistance")
def _cos(em, node, args):
    a, b = args
    return (f"F.cosine_similarity({a.expr}.reshape(-1, {_prod(a.shape)}), "
            f"{b.expr}.reshape(-1, {_prod(b.shape)}), dim=1, eps=1e-12).reshape(-1, 1)")


@lowering("Reshape", "LegacyReshape", "ReshapeDimensions")
def _reshape(em, node, args):
    """Every reshape is a view of the sample: numpy order keeps CNTK's memory order."""
    x = args[0]
    if _prod(x.shape) != _prod(node.shape):
        raise EvaluationError(
            f"reshaping {x.shape} to {node.shape} changes the number of elements per sample "
            "(folding samples into the frame axis is not supported)", node=node.name)
    return reshape(x, node.shape)


def _slice_axis(node, x) -> int:
    """The numpy sample axis a Slice cuts: the one whose size differs, else the attribute."""
    diff = [i for i, (p, q) in enumerate(zip(x.shape, node.shape)) if p != q]
    if len(diff) == 1:
        return diff[0]
    axis = attr(node, "axis", default=-1)
    if isinstance(axis, (list, tuple)):
        axis = axis[0]
    axis = int(axis)
    return axis if axis >= 0 else len(x.shape) + axis


@lowering("Slice")
def _slice(em, node, args):
    x = args[0]
    if len(x.shape) != len(node.shape):
        raise EvaluationError("Slice changes the rank; not supported", node=node.name)
    diff = [i for i, (p, q) in enumerate(zip(x.shape, node.shape)) if p != q]
    if not diff:
        return x.expr
    begins = attr(node, "begin", "begin_index", "begin_indices", default=0)
    begins = list(begins) if isinstance(begins, (list, tuple)) else [begins]
    axes = attr(node, "axis", "axes", default=None)
    axes = list(axes) if isinstance(axes, (list, tuple)) else ([axes] if axes is not None else [])
    index = [":"] * len(x.shape)
    if len(diff) == 1 and len(begins) == 1:
        pairs = [(diff[0], int(begins[0]))]
    else:
        if len(axes) != len(begins):
            raise EvaluationError("Slice: cannot tell which axes are cut", node=node.name)
        pairs = [(int(a) % len(x.shape), int(b)) for a, b in zip(axes, begins)]
    for ax, begin in pairs:
        size = x.shape[ax]
        start = begin if begin >= 0 else size + begin
        index[ax] = f"{start}:{start + node.shape[ax]}"
    lead = ":, " if x.dynamic else ""
    return f"{x.expr}[{lead}{', '.join(index)}]"


@lowering("RowStack")
def _row_stack(em, node, args):
    """Concatenate along ``axis`` (numpy); size-1 axes of inputs broadcast (CNTK does)."""
    rank = len(node.shape)
    out = tuple(node.shape)
    shapes = [(1,) * (rank - len(a.shape)) + tuple(a.shape) for a in args]
    candidates = [j for j in range(rank)
                  if sum(s[j] for s in shapes) == out[j]
                  and all(s[i] in (1, out[i]) for s in shapes for i in range(rank) if i != j)]
    if not candidates:
        raise EvaluationError("RowStack: input shapes do not concatenate to the output",
                              node=node.name)
    want = int(attr(node, "axis", default=-1)) % rank
    axis = want if want in candidates else candidates[-1]
    dyn = [a for a in args if a.dynamic]
    parts = []
    for a, s in zip(args, shapes):
        e = reshape(a, s)
        full = tuple(out[i] if i != axis else s[i] for i in range(rank))
        if node.dynamic and not a.dynamic:
            e = f"{e}.expand({dyn[0].expr}.shape[0], {_dims(full)})"
        elif full != s:
            e = f"{e}.expand({'-1, ' if a.dynamic else ''}{_dims(full)})"
        parts.append(e)
    dim = axis + (1 if node.dynamic else 0)
    return f"torch.cat([{', '.join(parts)}], {dim})"


@lowering("RowRepeat")
def _row_repeat(em, node, args):
    x = args[0]
    n = node.shape[-1] // x.shape[-1]
    reps = ", ".join(["1"] * (len(x.shape) - 1 + (1 if x.dynamic else 0)) + [str(n)])
    return f"{x.expr}.repeat({reps})"


@lowering("TransposeDimensions")
def _transpose(em, node, args):
    x = args[0]
    rank = len(x.shape)
    perm = attr(node, "permutation", "perm", default=None)
    if perm:
        perm = [int(p) for p in perm]
    else:
        a1, a2 = attr(node, "axes", default=(-1, -2))
        a1, a2 = int(a1) % rank, int(a2) % rank
        perm = list(range(rank))
        perm[a1], perm[a2] = perm[a2], perm[a1]
    got = tuple(x.shape[p] for p in perm)
    if got != tuple(node.shape):
        raise EvaluationError(f"TransposeDimensions: permutation {perm} of {x.shape} gives "
                              f"{got}, not the validated {node.shape}", node=node.name)
    if x.dynamic:
        return f"{x.expr}.permute(0, {', '.join(str(p + 1) for p in perm)})"
    return f"{x.expr}.permute({', '.join(str(p) for p in perm)})"


def _per_sample(fn: str):
    def lower(em, node, args):
        x = args[0]
        n = _prod(x.shape)
        if len(x.shape) == 1:
            return f"{fn}({x.expr}, -1)"
        if not x.dynamic:
            return f"{fn}({x.expr}.reshape(-1), -1).reshape({_dims(x.shape)})"
        return f"{fn}({x.expr}.reshape(-1, {n}), -1).reshape({x.expr}.shape)"
    return lower


lowering("Softmax")(_per_sample("torch.softmax"))
lowering("LogSoftmax")(_per_sample("torch.log_softmax"))


@lowering("Hardmax")
def _hardmax(em, node, args):
    x = args[0]
    n = _prod(x.shape)
    flat = f"{x.expr}.reshape(-1, {n})" if x.dynamic else f"{x.expr}.reshape(1, {n})"
    return (f"F.one_hot({flat}.argmax(1), {n}).to({x.expr}.dtype)"
            f".reshape({'-1, ' if x.dynamic else ''}{_dims(x.shape)})")


@lowering("SumColumnElements")
def _sum_columns(em, node, args):
    x = args[0]
    if not x.dynamic:
        return f"{x.expr}.sum().reshape(1)"
    return f"{x.expr}.reshape(-1, {_prod(x.shape)}).sum(1, keepdim=True)"


@lowering("SumElements", uses_mask=True)
def _sum_elements(em, node, args):
    x = args[0]
    if not x.dynamic:
        return f"{x.expr}.sum().reshape(1)"
    return f"K.masked_sum({x.expr}, {em.mask})"


@lowering("MatrixL1Reg", uses_mask=True)
def _l1(em, node, args):
    x = args[0]
    return f"K.masked_sum(torch.abs({x.expr}), {em.mask})" if x.dynamic else \
        f"torch.abs({x.expr}).sum().reshape(1)"


@lowering("MatrixL2Reg", uses_mask=True)
def _l2(em, node, args):
    x = args[0]
    inner = f"K.masked_sum({x.expr} * {x.expr}, {em.mask})" if x.dynamic else \
        f"({x.expr} * {x.expr}).sum().reshape(1)"
    return f"torch.sqrt({inner})"


@lowering("PerDimMeanVarNormalization")
def _mvn(em, node, args):
    x, m, s = args
    return f"({x.expr} - {m.expr}) * {s.expr}"


@lowering("PerDimMeanVarDeNormalization")
def _mvdn(em, node, args):
    x, m, s = args
    return f"{x.expr} / {s.expr} + {m.expr}"


@lowering("ReduceElements", uses_mask=True)
def _reduce(em, node, args):
    x = args[0]
    op = str(attr(node, "operation", "reduction", default="Sum")).lower()
    fn = {"sum": "sum", "plus": "sum", "mean": "mean", "max": "amax", "min": "amin",
          "prod": "prod", "logsum": "logsumexp"}.get(op)
    if fn is None:
        raise EvaluationError(f"ReduceElements: operation {op!r} is not supported", node=node.name)
    # reduce the sample axes whose size becomes 1 in the output
    rank = len(x.shape)
    out = (1,) * (rank - len(node.shape)) + tuple(node.shape)
    axes = [i for i in range(rank) if out[i] == 1 and x.shape[i] != 1] or list(range(rank))
    off = 1 if x.dynamic else 0
    dims = ", ".join(str(a + off) for a in axes)
    expr = f"{x.expr}.{fn}(dim=({dims},), keepdim=True)" if fn != "prod" else \
        f"{x.expr}.reshape({'-1, ' if x.dynamic else ''}-1).prod(-1)"
    return reshape(type(x)(expr, x.node, x.dynamic, tuple(out) if fn != "prod" else (1,)),
                   node.shape)
