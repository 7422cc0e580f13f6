"""Reshaping, slicing, stacking, reductions and dynamic-axis ops (ndl-mel.md §B.9.3).

Axis attributes follow the registry convention: numpy axis ``-k`` is CNTK axis ``k``
(see :mod:`netsurgeon.ops._convert`).
"""

from __future__ import annotations

from math import prod
from typing import Any

from netsurgeon.errors import ArgumentError
from netsurgeon.ops._build import NDL, define, simple_function
from netsurgeon.ops._category import Category as C
from netsurgeon.ops._convert import NodeOption, layout_name
from netsurgeon.ops._registry import OpRegistry
from netsurgeon.ops._shapes import axis_index, fill_zeros, pad_rank, same_as_input, scalar
from netsurgeon.ops._spec import (
    AttrSpec,
    Form,
    FunctionSpec,
    NodeRecipe,
    Param,
    Shape,
    ShapeContext,
    fmt_shape,
)

__all__ = ["register", "slice_range", "reshape_span", "np_permutation", "cntk_permutation",
           "image_shape_or_empty"]


# ---- Slice ------------------------------------------------------------------------------

def reduced_sample_axes(codes: Any, rank: int) -> list[int] | None:
    """The numpy sample axes a ReduceElements with axis ``codes`` reduces (0 or 1: every
    sample axis; -k: CNTK axis k), or None when it reduces the sequence or batch axis
    (codes 2, 3), which neither the runtime nor the exporters compute."""
    axes: set[int] = set()
    for code in codes:
        if code in (0, 1):
            axes.update(range(rank))
        elif code in (2, 3):
            return None
        else:
            axes.add(rank + code)
    return sorted(axes)


def transpose_permutation(input_shape: Shape, attrs: Any) -> tuple[list[int], tuple[int, ...]]:
    """TransposeDimensions as a numpy permutation: (perm, the input shape padded with 1s to the
    permutation's rank); output axis i takes input axis perm[i]. From ``permutation``, or the
    swap of the two ``axes`` (negative, numpy order)."""
    perm = list(attrs["permutation"])
    if perm:
        rank = len(perm)
    else:
        a1, a2 = attrs["axes"][:2]
        rank = max(len(input_shape), -a1, -a2)
        perm = list(range(rank))
        perm[rank + a1], perm[rank + a2] = perm[rank + a2], perm[rank + a1]
    return perm, tuple(pad_rank(tuple(input_shape), rank))

def slice_range(dim: int, begin: int, end: int) -> tuple[int, int]:
    """CNTK's slice bounds on an axis of size ``dim``: negative begin counts from the end,
    and an end <= 0 counts from the end too (so ``end=0`` means "to the end")."""
    b = begin + dim if begin < 0 else begin
    e = end + dim if end <= 0 else end
    return b, e


def _slice(ctx: ShapeContext) -> Shape:
    x = tuple(ctx.shapes[0])
    begins = tuple(ctx.attrs["begin"])
    ends = tuple(ctx.attrs["end"])
    axes = tuple(ctx.attrs["axis"])
    strides = tuple(ctx.attrs["stride_multiplier"]) or (1,) * len(axes)
    if not (len(begins) == len(ends) == len(axes) == len(strides)):
        ctx.fail("begin, end, axis and stride_multiplier must have one entry per sliced axis")
    rank = max([len(x)] + [-a for a in axes if a < 0])
    out = list(pad_rank(x, rank))
    for b, e, a, s in zip(begins, ends, axes, strides):
        i = axis_index(ctx, rank, a)
        dim = out[i]
        if dim == 0:
            ctx.fail(f"cannot slice CNTK axis {-a}: its dimension is not known yet")
        lo, hi = slice_range(dim, int(b), int(e))
        if not (0 <= lo < hi <= dim):
            ctx.fail(f"slice [{b}, {e}) is out of range for CNTK axis {-a} of dimension {dim}")
        step = max(int(s), 1)
        out[i] = (hi - lo + step - 1) // step
    return tuple(out)


def _make_row_slice(fn: FunctionSpec, bound: dict[str, Any], form: Form) -> NodeRecipe:
    start, count = int(bound["start"]), int(bound["numRows"])
    return NodeRecipe(op="Slice", inputs=[bound.get("x")],
                      attrs={"begin": (start,), "end": (start + count,), "axis": (-1,),
                             "stride_multiplier": (1,)})


def _finish_slice(recipe: NodeRecipe, bound: dict[str, Any]) -> None:
    n = max(len(recipe.attrs.get(k, ())) for k in ("begin", "end", "axis")) or 1
    for key, default in (("begin", 0), ("end", 0), ("axis", -1), ("stride_multiplier", 1)):
        val = tuple(recipe.attrs.get(key, ()))
        if len(val) < n:
            fill = val[-1] if val and key == "axis" else default
            recipe.attrs[key] = val + (fill,) * (n - len(val))


# ---- RowStack ---------------------------------------------------------------------------
def _row_stack(ctx: ShapeContext) -> Shape:
    axis = int(ctx.attrs["axis"])
    if not ctx.shapes:
        ctx.fail("needs at least one input")
    rank = max([len(s) for s in ctx.shapes] + [-axis])
    padded = [pad_rank(s, rank) for s in ctx.shapes]
    i = axis_index(ctx, rank, axis)
    out = list(padded[0])
    out[i] = 0
    for s in padded:
        for j, d in enumerate(s):
            if j == i:
                continue
            if out[j] in (0,):
                out[j] = d
            elif d == 1 or out[j] == 1:  # CNTK broadcasts size-1 axes (ResNet's channel padding)
                out[j] = max(out[j], d)
            elif d not in (0, out[j]):
                ctx.fail(f"inputs differ on CNTK axis {rank - j} ({out[j]} vs {d}); only the "
                         f"spliced axis {-axis} may differ")
    out[i] = sum(s[i] for s in padded)
    return tuple(out)


# ---- RowRepeat --------------------------------------------------------------------------
def _row_repeat(ctx: ShapeContext) -> Shape:
    x = tuple(ctx.shapes[0]) or (1,)
    n = int(ctx.attrs["num_repeats"])
    return x[:-1] + (x[-1] * n,)


# ---- LegacyReshape / Reshape --------------------------------------------------------------
def image_shape_or_empty(width: int, height: int, channels: int, layout: str) -> Shape:
    """numpy-order image shape as CNTK's ImageDimensions::AsTensorShape gives it."""
    layout = layout_name(layout)
    if layout == "CHW":
        return (channels, height, width)
    return (height, width, channels)


def _legacy_reshape(ctx: ShapeContext) -> Shape:
    rows = int(ctx.attrs["num_rows"])
    target = tuple(ctx.attrs["target_shape"])
    size = prod(ctx.shapes[0])
    if rows <= 0:
        ctx.fail("num_rows must be positive")
    if size and size % rows and rows % size:
        ctx.fail(f"cannot reinterpret {size} rows per sample as {rows}")
    if target and 0 not in target:
        if prod(target) != rows:
            ctx.fail(f"image shape {fmt_shape(target)} does not hold {rows} rows")
        return target
    return (rows,)


def _make_legacy_reshape(fn: FunctionSpec, bound: dict[str, Any], form: Form) -> NodeRecipe:
    target = image_shape_or_empty(
        int(bound.get("imageWidth", 0)), int(bound.get("imageHeight", 0)),
        int(bound.get("imageChannels", 0)), bound.get("imageLayout", "HWC"))
    return NodeRecipe(op="LegacyReshape", inputs=[bound.get("x")],
                      attrs={"num_rows": int(bound["numRows"]), "target_shape": target})


def _finish_legacy_reshape(recipe: NodeRecipe, bound: dict[str, Any]) -> None:
    a = recipe.attrs
    dims = (a.pop("_w", 0), a.pop("_h", 0), a.pop("_c", 0), a.pop("_layout", "HWC"))
    a["target_shape"] = image_shape_or_empty(*dims)


def reshape_span(rank: int, begin_axis: int, end_axis: int) -> tuple[int, int]:
    """numpy index range [start, stop) of a sample of ``rank`` that Reshape replaces.

    ``begin_axis``/``end_axis`` are the registry axes (CNTK beginAxis/endAxis negated, 0 =
    not given: from the first / to the last CNTK axis). CNTK replaces its 0-based dims
    [beginAxis-1, endAxis-1); in numpy order that is [rank-(endAxis-1), rank-(beginAxis-1)).
    """
    b = -begin_axis
    e = -end_axis
    lo = b - 1 if b > 0 else 0
    hi = e - 1 if e > 0 else rank
    return rank - hi, rank - lo


def _reshape(ctx: ShapeContext) -> Shape:
    x = tuple(ctx.shapes[0])
    new = tuple(ctx.attrs["shape"])
    start, stop = reshape_span(len(x), int(ctx.attrs["begin_axis"]),
                               int(ctx.attrs["end_axis"]))
    if not (0 <= start <= stop <= len(x)):
        ctx.fail(f"axis range begin_axis={ctx.attrs['begin_axis']} "
                 f"end_axis={ctx.attrs['end_axis']} is out of range")
    part = prod(x[start:stop])
    if 0 in x[start:stop]:
        return x[:start] + new + x[stop:]
    done = fill_zeros(new, part)
    if done is None:
        ctx.fail(f"cannot reshape {fmt_shape(x[start:stop])} ({part} elements) into "
                 f"{fmt_shape(new)}")
    return x[:start] + done + x[stop:]


# ---- TransposeDimensions ------------------------------------------------------------------
def np_permutation(cntk_perm: tuple[int, ...]) -> tuple[int, ...]:
    """CNTK's 0-based permutation (output CNTK axis i takes input axis p[i]) as numpy
    ``transpose`` axes. Self-inverse with :func:`cntk_permutation`."""
    n = len(cntk_perm)
    return tuple(n - 1 - int(cntk_perm[n - 1 - j]) for j in range(n))


cntk_permutation = np_permutation  # the mapping is its own inverse


def _transpose(ctx: ShapeContext) -> Shape:
    x = tuple(ctx.shapes[0])
    perm = tuple(ctx.attrs["permutation"])
    if perm:
        if sorted(perm) != list(range(len(perm))):
            ctx.fail(f"permutation {perm} is not a permutation of 0..{len(perm) - 1}")
        if len(perm) < len(x):
            ctx.fail(f"permutation {perm} is shorter than the input rank {len(x)}")
        x = pad_rank(x, len(perm))
        return tuple(x[p] for p in perm)
    a1, a2 = (tuple(ctx.attrs["axes"]) + (-1, -2))[:2]
    rank = max(len(x), -a1, -a2)
    out = list(pad_rank(x, rank))
    i, j = axis_index(ctx, rank, a1), axis_index(ctx, rank, a2)
    out[i], out[j] = out[j], out[i]
    return tuple(out)


def _finish_transpose(recipe: NodeRecipe, bound: dict[str, Any]) -> None:
    a1 = recipe.attrs.pop("_axis1", -1)
    a2 = recipe.attrs.pop("_axis2", -2)
    recipe.attrs["axes"] = (a1, a2)


# ---- others -----------------------------------------------------------------------------
def _diagonal(ctx: ShapeContext) -> Shape:
    x = tuple(ctx.shapes[0])
    if len(x) != 2 or x[0] != x[1]:
        ctx.fail(f"input must be a square matrix, not {fmt_shape(x)}")
    return (x[0], 1)


def _crop(ctx: ShapeContext) -> Shape:
    a, b = tuple(ctx.shapes[0]), tuple(ctx.shapes[1])
    if len(a) < 2 or len(b) < 2:
        ctx.fail("both inputs need at least 2 dimensions (width and height)")
    if b[-1] > a[-1] or b[-2] > a[-2]:
        ctx.fail(f"cannot crop {fmt_shape(a)} to the larger {fmt_shape(b)}")
    return a[:-2] + b[-2:]


def _make_crop(fn: FunctionSpec, bound: dict[str, Any], form: Form) -> NodeRecipe:
    recipe = NodeRecipe(op="Crop", inputs=[bound.get("in1"), bound.get("in2")])
    p3, p4 = bound.get("p3"), bound.get("p4")
    if p3 is None and p4 is None:
        return recipe
    offsets = _numbers(p3, p4)
    if offsets is not None:
        recipe.attrs["x_offset"], recipe.attrs["y_offset"] = offsets
    else:
        recipe.inputs += [p3, p4]  # equivalence nodes (the language layer resolves them)
    return recipe


def _numbers(*values: Any) -> tuple[float, ...] | None:
    """The values as floats if all are numbers or numeric text, else None."""
    out = []
    for v in values:
        if isinstance(v, bool):
            return None
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            return None
    return tuple(out)


def _make_cast(fn: FunctionSpec, bound: dict[str, Any], form: Form) -> NodeRecipe:
    precision = str(bound.get("precision") or "").strip('"')
    if precision not in ("float", "double", "float16"):
        raise ArgumentError("Cast: option precision must be float, double or float16")
    recipe = NodeRecipe(op="Cast", inputs=[bound.get("x")], attrs={"precision": precision})
    recipe.extra["precision"] = precision
    return recipe


def _reduce(ctx: ShapeContext) -> Shape:
    x = tuple(ctx.shapes[0])
    keep = bool(ctx.attrs["keep_dimensions"])
    out: list[int | None] = list(x)
    for code in tuple(ctx.attrs["axes"]):
        code = int(code)
        if code in (0, 1):  # all static axes; all axes
            out = [None] * len(x)
        elif code in (2, 3):  # sequence / batch axis: sample shape unchanged
            continue
        else:
            out[axis_index(ctx, len(x), code)] = None
    if keep:
        return tuple(1 if d is None else d for d in out)
    return tuple(d for d in out if d is not None)


def _index_shape(index: int):
    def rule(ctx: ShapeContext) -> Shape:
        return tuple(ctx.shapes[index])

    rule.__name__ = f"shape_of_input_{index}"
    return rule


def register(ops: OpRegistry) -> None:
    """Register the reshaping ops."""
    define(ops, "Slice", (1, 1), _slice, inputs=("x",), aliases=("RowSlice",),
           attrs={
               "begin": AttrSpec("ints", (0,), "begin index per sliced axis (negative: from "
                                 "the end); file beginIndex"),
               "end": AttrSpec("ints", (0,), "end index per sliced axis (<= 0: from the end, "
                               "0 = to the end); the file stores length = end - begin"),
               "axis": AttrSpec("ints", (-1,), "sliced axes, registry convention (-k = CNTK "
                                "axis k; file stores k)"),
               "stride_multiplier": AttrSpec("ints", (1,), "step per sliced axis (file v >= 27)"),
           },
           categories={C.RESHAPING},
           node_options=(NodeOption("beginIndex", "begin", "ints"),
                         NodeOption("endIndex", "end", "ints"),
                         NodeOption("axis", "axis", "axes"),
                         NodeOption("strideMultiplier", "stride_multiplier", "ints")),
           node_finish=_finish_slice,
           functions=(FunctionSpec("RowSlice", "Slice", (Form((
               Param("start", "int"), Param("numRows", "int"), Param("x", "input"))),),
               make=_make_row_slice, languages=NDL,
               doc="Rows [start, start+numRows) of CNTK's first axis (numpy: last)."),),
           doc="Slices sample axes; RowSlice slices CNTK's first axis.")
    define(ops, "RowStack", (1, None), _row_stack, inputs=("inputs",),
           attrs={"axis": AttrSpec("int", -1, "spliced axis, registry convention (-1 = CNTK "
                                   "axis 1 = numpy last); file spliceDim (1-based)")},
           categories={C.RESHAPING},
           node_options=(NodeOption("axis", "axis", "axis"),),
           functions=(FunctionSpec("RowStack", "RowStack", (Form((Param("inputs", "inputs"),)),),
                                   languages=NDL),),
           doc="Concatenation along CNTK's first axis (numpy: last).")
    define(ops, "RowRepeat", (1, 1), _row_repeat, inputs=("x",),
           attrs={"num_repeats": AttrSpec("int", 1, "number of copies; file numRepeat")},
           categories={C.RESHAPING},
           node_options=(NodeOption("numRepeats", "num_repeats", "int"),),
           functions=(FunctionSpec("RowRepeat", "RowRepeat", (Form((
               Param("x", "input"), Param("num_repeats", "int", aliases=("numRepeats",)))),),
               languages=NDL, attr_names=frozenset({"num_repeats"})),),
           doc="x stacked num_repeats times along CNTK's first axis.")
    define(ops, "LegacyReshape", (1, 1), _legacy_reshape, inputs=("x",),
           attrs={
               "num_rows": AttrSpec("int", 1, "rows per column after reshaping; file "
                                    "numTargetRows"),
               "target_shape": AttrSpec("ints", (0, 0, 0), "image shape of the result "
                                        "(numpy order; all 0 = none); file imageLayout shape"),
           },
           categories={C.RESHAPING},
           node_options=(NodeOption("numRows", "num_rows", "int"),
                         NodeOption("imageWidth", "_w", "int"),
                         NodeOption("imageHeight", "_h", "int"),
                         NodeOption("imageChannels", "_c", "int"),
                         NodeOption("imageLayout", "_layout", "layout")),
           node_finish=_finish_legacy_reshape,
           functions=(FunctionSpec("Reshape", "LegacyReshape", (Form((
               Param("x", "input"), Param("numRows", "int"))),),
               {"imageWidth": Param("imageWidth", "int", 0),
                "imageHeight": Param("imageHeight", "int", 0),
                "imageChannels": Param("imageChannels", "int", 0),
                "imageLayout": Param("imageLayout", "text", "HWC")},
               make=_make_legacy_reshape, languages=NDL),),
           doc="Reinterprets each column as num_rows rows (the column count changes).")
    define(ops, "Reshape", (1, 1), _reshape, inputs=("x",),
           attrs={
               "shape": AttrSpec("ints", (), "replacement shape, numpy order (0 = inferred); "
                                 "file replacementShape"),
               "begin_axis": AttrSpec("int", 0, "first replaced axis, registry convention (-k "
                                      "= CNTK axis k; 0 = from the first CNTK axis); file "
                                      "beginAxis"),
               "end_axis": AttrSpec("int", 0, "end of the replaced range (exclusive, -k = "
                                    "CNTK axis k; 0 = through the last CNTK axis); file endAxis"),
           },
           categories={C.RESHAPING},
           node_options=(NodeOption("shape", "shape", "shape"),
                         NodeOption("beginAxis", "begin_axis", "axis"),
                         NodeOption("endAxis", "end_axis", "axis")),
           doc="Replaces a range of sample axes by a new shape (BrainScript NewReshape).")
    define(ops, "TransposeDimensions", (1, 1), _transpose, inputs=("x",), aliases=("Transpose",),
           attrs={
               "axes": AttrSpec("ints", (-1, -2), "the two swapped axes, registry convention "
                                "(file axis1, axis2, 1-based)"),
               "permutation": AttrSpec("ints", (), "numpy transpose axes; when non-empty it "
                                       "wins and the file stores axis1 = axis2 = 0 plus the "
                                       "permutation (v >= 25); see np_permutation"),
           },
           categories={C.RESHAPING},
           node_options=(NodeOption("axis1", "_axis1", "axis"),
                         NodeOption("axis2", "_axis2", "axis"),
                         NodeOption("permutation", "permutation",
                                    lambda v: np_permutation(tuple(int(a) for a in v)))),
           node_finish=_finish_transpose,
           functions=(FunctionSpec("Transpose", "TransposeDimensions",
                                   (Form((Param("x", "input"),)),), languages=NDL),),
           doc="Swaps two axes (Transpose: CNTK's first two) or permutes all.")
    define(ops, "Diagonal", (1, 1), _diagonal, inputs=("x",), categories={C.RESHAPING},
           functions=(simple_function("Diagonal", "Diagonal", "x", languages=NDL),),
           doc="Diagonal of a square matrix as a CNTK row vector: numpy (n, 1).")
    define(ops, "Crop", (2, 4), _crop, inputs=("in1", "in2", "eq1", "eq2"),
           attrs={
               "x_offset": AttrSpec("float", 1.7976931348623157e308, "constant horizontal "
                                    "offset; DBL_MAX = not given"),
               "y_offset": AttrSpec("float", 1.7976931348623157e308, "constant vertical offset; "
                                    "DBL_MAX = not given"),
           },
           categories={C.RESHAPING},
           node_options=(NodeOption("xOffset", "x_offset", "float"),
                         NodeOption("yOffset", "y_offset", "float")),
           functions=(FunctionSpec("Crop", "Crop", (Form((
               Param("in1", "input"), Param("in2", "input"), Param("p3", "any", None),
               Param("p4", "any", None))),), make=_make_crop, languages=NDL,
               doc="(in1, in2), (in1, in2, offX, offY) or (in1, in2, eq1, eq2)"),),
           doc="Crops in1 to the width and height of in2.")
    define(ops, "Cast", (1, 1), same_as_input(0), inputs=("x",),
           attrs={"precision": AttrSpec("str", "float", "target element type: float, double "
                                        "or float16 (file: the node's two-type precision tag)")},
           categories={C.RESHAPING},
           node_options=(NodeOption("precision", "precision", "str"),),
           functions=(FunctionSpec("Cast", "Cast", (Form((Param("x", "input"),)),),
                                   {"precision": Param("precision", "text")},
                                   make=_make_cast, languages=NDL),),
           doc="Converts to another element type.")
    define(ops, "ReconcileDynamicAxis", (2, 2), same_as_input(0), inputs=("data", "layout"),
           aliases=("ReconcileMBLayout",), categories={C.DYNAMIC_AXIS},
           functions=(simple_function("ReconcileDynamicAxis", "ReconcileDynamicAxis", "data",
                                      "layout", languages=NDL),),
           doc="data with the dynamic axis of layout.")
    define(ops, "SumElements", (1, 1), scalar, inputs=("x",), categories={C.REDUCTION},
           dynamic="none",
           functions=(simple_function("SumElements", "SumElements", "x"),),
           doc="Sum of all elements over the whole minibatch: (1,).")
    define(ops, "SumColumnElements", (1, 1), scalar, inputs=("x",), categories={C.REDUCTION},
           functions=(simple_function("SumColumnElements", "SumColumnElements", "x",
                                      languages=NDL),),
           doc="Per-sample sum: (1,).")
    define(ops, "ReduceElements", (1, 1), _reduce, inputs=("x",), categories={C.REDUCTION},
           attrs={
               "operation": AttrSpec("str", "Sum", "Sum/Plus, Mean, LogSum, Min, Max, Prod, "
                                     "Argmin, Argmax (file wstr, kept as written)"),
               "axes": AttrSpec("ints", (0,), "reduced axes, registry convention: -k = CNTK "
                                "axis k; 0 = all static axes, 1 = all axes, 2 = sequence axis, "
                                "3 = batch axis (CNTK 0, -1, -2, -3)"),
               "keep_dimensions": AttrSpec("bool", True, "keep reduced axes as size 1 (file "
                                           "v >= 24)"),
           },
           node_options=(NodeOption("reductionOp", "operation", "str"),
                         NodeOption("axis", "axes", "axes"),
                         NodeOption("keepDimensions", "keep_dimensions", "bool")),
           doc="Reduction over sample (or dynamic) axes.")
    define(ops, "Where", (1, 1), scalar, inputs=("cond",), categories={C.DYNAMIC_AXIS},
           dynamic="always",
           attrs={"dynamic_axis_name": AttrSpec("str", "", "name of the new dynamic axis "
                                                "(file v >= 11)")},
           node_options=(NodeOption("dynamicAxis", "dynamic_axis_name", "str"),),
           doc="Indices of the non-zero steps of a sequence, as a new sequence.")
    define(ops, "PackedIndex", (2, 2), _index_shape(1), inputs=("source", "index"),
           categories={C.DYNAMIC_AXIS}, dynamic="always",
           doc="Maps sequence indices to packed minibatch indices.")
    define(ops, "GatherPacked", (2, 2), _index_shape(1), inputs=("index", "source"),
           categories={C.DYNAMIC_AXIS}, dynamic="always",
           doc="Gathers the source samples at packed indices.")
    define(ops, "ScatterPacked", (3, 3), _index_shape(2), inputs=("layout", "index", "source"),
           categories={C.DYNAMIC_AXIS}, dynamic="always",
           doc="Scatters source samples to packed indices in layout's layout.")
