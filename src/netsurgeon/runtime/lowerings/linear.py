"""Linear algebra, reshaping and per-sample reductions (ndl-mel.md §B.9.3).

Shapes are numpy order; a frame value carries a leading frames axis (see codegen). Where an
op's axis could be read two ways, the lowering checks it against the validated output shape.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from math import prod

from netsurgeon.errors import EvaluationError
from netsurgeon.graph import Node
from netsurgeon.ops._shapes import pad_rank
from netsurgeon.ops.reshaping import reduced_sample_axes, slice_range, transpose_permutation
from netsurgeon.runtime.codegen import one_row
from netsurgeon.runtime.lowerings import lowering


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


def _rows_out(em, node, expr: str, o: int) -> str:
    """A (frames, o) product as the node's value: as it is where the node may be held as
    rows (``Arg.rows``), else reshaped to (frames, *sample)."""
    out = tuple(node.shape)
    if out == (o,):
        return expr
    if em.rows_ok and one_row(out):
        em.out_rows = True
        return expr
    return f"{expr}.reshape(-1, {_dims(out)})"


@lowering("Times", accepts_sparse=True, takes_rows=(1,))
def _times(em, node, args):
    """CNTK Times(A, B) = in numpy order B @ A with A's leading dims contracted."""
    a, b = args
    out_rank = node.attrs["output_rank"]
    k_rank = len(a.shape) - out_rank
    k = prod(a.shape[:k_rank])
    o = prod(a.shape[k_rank:])
    out = tuple(node.shape)
    if b.sparse:
        if a.dynamic:
            raise EvaluationError("Times of a frame-varying A with a sparse B is not supported",
                                  node=node.name)
        w = a.expr if len(a.shape) == 2 and k_rank == 1 else f"{a.expr}.reshape({k}, {o})"
        expr = f"torch.sparse.mm({b.expr}, {w})"
        return expr if out == (o,) else f"{expr}.reshape(-1, {_dims(out)})"
    if not a.dynamic and b.dynamic:
        w = _matrix(em, a, k_rank)
        x = b.expr if len(b.shape) == 1 or b.rows else f"{b.expr}.reshape(-1, {k})"
        return _rows_out(em, node, f"torch.matmul({x}, {w})", o)
    return (f"K.times_general({a.expr}, {b.full}, {k}, {a.dynamic}, {b.dynamic}, "
            f"({_dims(out)}{',' if len(out) == 1 else ''}))")


def _matrix(em, w, k_rank: int) -> str:
    """A constant weight as the (K, O) matrix of ``x @ W`` (reshaped once at inference)."""
    if len(w.shape) == 2 and k_rank == 1:
        return w.expr
    k, o = prod(w.shape[:k_rank]), prod(w.shape[k_rank:])
    return em.static(f"{w.expr}.reshape({k}, {o})", w.node.name)


def matmul_weights(nodes: Iterable[Node], sparse_ops: Container[str] = ()) -> list[Node]:
    """The weights among ``nodes``' inputs that Times / TimesPlus multiply as the matrix W of
    ``x @ W`` as they are: a constant (K, O) A of ``Times(A, x)`` (output rank 1) with a dense
    frame-valued x. A module (``to_torch``, the Trainer's) holds the trainable ones
    column-major, ``nn.Linear``'s layout: BLAS reads W as the transpose of a row-major (O, K)
    matrix and autograd returns W's gradient in that layout, 3-5 % of a small dense network's
    training step faster on the CPU than row-major. An x that is an input of ``sparse_ops``
    keeps W row-major (``torch.sparse.mm`` and its gradient are slower column-major)."""
    out = []
    for n in nodes:
        if n.op not in ("Times", "TimesPlus") or len(n.inputs) < 2:
            continue
        w, x = n.inputs[0], n.inputs[1]
        if w is None or x is None or w.dynamic or not x.dynamic or w.shape is None \
                or len(w.shape) != 2 or n.attrs["output_rank"] != 1 \
                or x.op in sparse_ops:
            continue
        if w not in out:
            out.append(w)
    return out


@lowering("TimesPlus", takes_rows=(1,))
def _times_plus(em, node, args):
    """FuseLinear's ``Plus(Times(W, x), b)``: one ``torch.addmm(b, x, W)``."""
    w, x, b = args
    k_rank = len(w.shape) - node.attrs["output_rank"]
    k, o = prod(w.shape[:k_rank]), prod(w.shape[k_rank:])
    if w.dynamic or not x.dynamic or b.dynamic or prod(x.shape) != k or prod(b.shape) != o \
            or prod(node.shape) != o:
        raise EvaluationError("TimesPlus needs a constant W, a frame-valued x and a constant "
                              "bias of the output's size (as FuseLinear makes it)",
                              node=node.name)
    xs = x.expr if len(x.shape) == 1 or x.rows else f"{x.expr}.reshape(-1, {k})"
    # addmm broadcasts a (1, O) bias as it does an (O,) one (the same sums, forward and
    # backward), so it goes in as is: a reshape would add a view to each training step's graph
    bs = b.expr if tuple(b.shape) in ((o,), (1, o)) else \
        em.static(f"{b.expr}.reshape({o})", b.node.name)
    return _rows_out(em, node, f"torch.addmm({bs}, {xs}, {_matrix(em, w, k_rank)})", o)


@lowering("TransposeTimes")
def _transpose_times(em, node, args):
    a, b = args
    if a.dynamic:
        return _frame_transpose_times(node, a, b)
    # numpy A (m, k) = CNTK [k x m]; per sample Aᵀ·x is, in numpy order, x (k,) @ A(m, k).T
    w = f"{a.expr}.reshape({a.shape[0] if len(a.shape) == 2 else 1}, -1).t()"
    expr = f"torch.matmul({b.expr}.reshape(-1, {prod(a.shape[-1:])}), {w})"
    return f"{expr}.reshape({'-1, ' if node.dynamic else ''}{_dims(node.shape)})"


def _frame_transpose_times(node, a, b) -> str:
    """Aᵀ·B per frame (v2 criteria blocks: TransposeTimes(labels, p)): numpy A (m, k) and
    B (n, k) of each frame (rank 1: m or n is 1) give B·Aᵀ, numpy (n, m)."""
    if len(a.shape) > 2 or len(b.shape) > 2:
        raise EvaluationError("TransposeTimes of frame-varying operands of rank > 2 is not "
                              "supported", node=node.name)
    k = a.shape[-1]
    m = a.shape[0] if len(a.shape) == 2 else 1
    n = b.shape[0] if len(b.shape) == 2 else 1
    bs = f"{b.expr}.reshape(-1, {n}, {k})" if b.dynamic else \
        f"{b.expr}.reshape(1, {n}, {k})"
    expr = f"torch.matmul({bs}, {a.expr}.reshape(-1, {m}, {k}).transpose(1, 2))"
    return f"{expr}.reshape(-1, {_dims(node.shape)})"


@lowering("DiagTimes")
def _diag_times(em, node, args):
    d, b = args
    return f"{b.expr} * {d.expr}.reshape(-1)"


@lowering("LookupTable", accepts_sparse=True)
def _lookup(em, node, args):
    w, x = args
    vocab, dim = w.shape
    xs = f"{x.expr}.to_dense()" if x.sparse else x.expr
    if prod(x.shape) == vocab and x.sparse:
        return f"torch.sparse.mm({x.expr}, {w.expr})"
    return f"torch.matmul({xs}.reshape(-1, {vocab}), {w.expr}).reshape(-1, {_dims(node.shape)})"


@lowering("KhatriRaoProduct")
def _khatri_rao(em, node, args):
    a, b = args
    # CNTK column [m]⊗[n] -> [m·n] with a's index fastest: numpy (n, m) flattened
    return (f"({b.expr}.reshape(-1, {prod(b.shape)}, 1) * "
            f"{a.expr}.reshape(-1, 1, {prod(a.shape)})).reshape(-1, {_dims(node.shape)})")


@lowering("CosDistance")
def _cos(em, node, args):
    a, b = args
    return (f"F.cosine_similarity({a.expr}.reshape(-1, {prod(a.shape)}), "
            f"{b.expr}.reshape(-1, {prod(b.shape)}), dim=1, eps=1e-12).reshape(-1, 1)")


@lowering("Reshape", "LegacyReshape")
def _reshape(em, node, args):
    """Every reshape is a view of the sample: numpy order keeps CNTK's memory order."""
    x = args[0]
    if prod(x.shape) != prod(node.shape):
        raise EvaluationError(
            f"reshaping {x.shape} to {node.shape} changes the number of elements per sample "
            "(folding samples into the frame axis is not supported)", node=node.name)
    return reshape(x, node.shape)


@lowering("Slice")
def _slice(em, node, args):
    """Exactly the registry's slice: per (begin, end, axis, stride) of the attributes, with
    ``ops.reshaping.slice_range``'s bounds (a lower-rank input is padded with 1s first)."""
    x = args[0]
    attrs = node.attrs
    rank = len(node.shape)
    shape = pad_rank(x.shape, rank)
    index = [":"] * rank
    strides = attrs["stride_multiplier"] or (1,) * len(attrs["axis"])
    for begin, end, axis, stride in zip(attrs["begin"], attrs["end"], attrs["axis"], strides):
        i = rank + axis
        lo, hi = slice_range(shape[i], begin, end)
        index[i] = f"{lo}:{hi}" + (f":{stride}" if stride > 1 else "")
    lead = ":, " if x.dynamic else ""
    return f"{reshape(x, shape)}[{lead}{', '.join(index)}]"


@lowering("RowStack")
def _row_stack(em, node, args):
    """Concatenate along ``axis`` (registry convention, -k = CNTK axis k); size-1 axes of
    inputs broadcast (CNTK does)."""
    out = tuple(node.shape)
    rank = len(out)
    axis = rank + node.attrs["axis"]
    shapes = [pad_rank(a.shape, rank) for a in args]
    if sum(s[axis] for s in shapes) != out[axis]:
        raise EvaluationError(f"RowStack: input shapes {[tuple(a.shape) for a in args]} do not "
                              f"concatenate to {out} on axis {node.attrs['axis']}",
                              node=node.name)
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
    n = node.attrs["num_repeats"]
    shape = tuple(x.shape) or (1,)
    reps = ", ".join(["1"] * (len(shape) - 1 + (1 if x.dynamic else 0)) + [str(n)])
    return f"{reshape(x, shape)}.repeat({reps})"


@lowering("TransposeDimensions")
def _transpose(em, node, args):
    """numpy ``permute`` by ``permutation`` (output axis i takes input axis p[i]) or the swap
    of the two ``axes``; an input of lower rank is padded with 1s first, as the shape rule."""
    x = args[0]
    perm, shape = transpose_permutation(x.shape, node.attrs)
    got = tuple(shape[p] for p in perm)
    if got != tuple(node.shape):
        raise EvaluationError(f"TransposeDimensions: permutation {perm} of {x.shape} gives "
                              f"{got}, not the validated {node.shape}", node=node.name)
    xs = reshape(x, shape)
    if x.dynamic:
        return f"{xs}.permute(0, {', '.join(str(p + 1) for p in perm)})"
    return f"{xs}.permute({', '.join(str(p) for p in perm)})"


def _per_sample(fn: str):
    def lower(em, node, args):
        x = args[0]
        n = prod(x.shape)
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
    n = prod(x.shape)
    flat = f"{x.expr}.reshape(-1, {n})" if x.dynamic else f"{x.expr}.reshape(1, {n})"
    return (f"F.one_hot({flat}.argmax(1), {n}).to({x.expr}.dtype)"
            f".reshape({'-1, ' if x.dynamic else ''}{_dims(x.shape)})")


@lowering("SumColumnElements")
def _sum_columns(em, node, args):
    x = args[0]
    if not x.dynamic:
        return f"{x.expr}.sum().reshape(1)"
    return f"{x.expr}.reshape(-1, {prod(x.shape)}).sum(1, keepdim=True)"


def _total(em, x, expr: str) -> str:
    """The sum of ``expr`` (element-wise in ``x``) over the real frames, or over all of a
    value without frames, shaped (1,)."""
    if x.dynamic:
        return f"K.masked_sum({expr}, {em.mask})"
    return f"{expr if expr.isidentifier() else f'({expr})'}.sum().reshape(1)"


@lowering("SumElements", uses_mask=True)
def _sum_elements(em, node, args):
    return _total(em, args[0], args[0].expr)


@lowering("MatrixL1Reg", uses_mask=True)
def _l1(em, node, args):
    return _total(em, args[0], f"torch.abs({args[0]})")


@lowering("MatrixL2Reg", uses_mask=True)
def _l2(em, node, args):
    x = args[0]
    return f"torch.sqrt({_total(em, x, f'{x} * {x}')})"


@lowering("PerDimMeanVarNormalization")
def _mvn(em, node, args):
    x, m, s = args
    return f"({x.expr} - {m.expr}) * {s.expr}"


@lowering("PerDimMeanVarDeNormalization")
def _mvdn(em, node, args):
    x, m, s = args
    return f"{x.expr} / {s.expr} + {m.expr}"


_REDUCTIONS = {"sum": "sum", "plus": "sum", "mean": "mean", "max": "amax", "min": "amin",
               "prod": "prod", "logsum": "logsumexp", "argmax": "argmax", "argmin": "argmin"}


def reduced_axes(node, rank: int) -> list[int]:
    """numpy sample axes a ReduceElements reduces, from its ``axes`` codes as the registry's
    shape rule reads them (0 or 1: every sample axis; -k: CNTK axis k)."""
    axes = reduced_sample_axes(node.attrs["axes"], rank)
    if axes is None:
        raise EvaluationError("ReduceElements over the sequence or batch axis is not "
                              "supported by the PyTorch runtime; reduce sample axes",
                              node=node.name)
    return axes


def arg_axis(node, op: str, axes: list[int]) -> int:
    """The one sample axis an Argmax/Argmin reduces (the index along it, first extremum on
    ties, as CNTK): one axis, or all axes of a rank-1 sample."""
    if len(axes) != 1:
        raise EvaluationError(f"ReduceElements: {op} over {len(axes)} sample axes is not "
                              "supported; reduce one axis (or a rank-1 sample)",
                              node=node.name)
    return axes[0]


@lowering("ReduceElements")
def _reduce(em, node, args):
    """Reduce the sample axes of ``axes`` with ``operation`` (kept as size 1, then reshaped
    to the validated output, so ``keep_dimensions`` false drops them)."""
    x = args[0]
    op = node.attrs["operation"]
    fn = _REDUCTIONS.get(op.lower())
    if fn is None:
        raise EvaluationError(f"ReduceElements: operation {op!r} is not supported; use one of "
                              "Sum, Mean, Max, Min, Prod, LogSum, Argmax, Argmin",
                              node=node.name)
    rank = len(x.shape)
    axes = reduced_axes(node, rank)
    off = 1 if x.dynamic else 0
    if fn in ("argmax", "argmin"):
        dim = arg_axis(node, op, axes) + off
        expr = f"{x.expr}.{fn}(dim={dim}, keepdim=True).to({x.expr}.dtype)"
    elif fn == "prod":  # torch.prod reduces one dimension at a time
        expr = x.expr + "".join(f".prod({a + off}, keepdim=True)" for a in axes)
    else:
        expr = f"{x.expr}.{fn}(dim=({', '.join(str(a + off) for a in axes)},), keepdim=True)"
    kept = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    return reshape(type(x)(expr, x.node, x.dynamic, kept), node.shape)
