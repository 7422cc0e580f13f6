"""Linear algebra and reshaping ops (ndl-mel.md §B.9.3)."""

from __future__ import annotations

from netsurgeon.ops._registry import OpRegistry
from netsurgeon.ops._shapes import times_shape
from netsurgeon.ops._spec import AttrSpec, Form, FunctionSpec, OpSpec, Param, Shape, ShapeContext

__all__ = ["register"]


def _times(ctx: ShapeContext) -> Shape:
    return times_shape(ctx, ctx.shapes[0], ctx.shapes[1], int(ctx.attrs.get("output_rank", 1)))


def register(ops: OpRegistry) -> None:
    """Register the linear-algebra ops."""
    ops.register(OpSpec(
        name="Times", arity=(2, 2), infer_shape=_times, input_names=("A", "B"),
        attrs={"output_rank": AttrSpec("int", 1, "leading CNTK dims of A kept in the output"),
               "infer_input_rank_to_map": AttrSpec("int", -1, "CNTK's inferInputRankToMap")},
        functions=(FunctionSpec(
            "Times", "Times", (Form((Param("A", "input"), Param("B", "input"))),),
            {"outputRank": Param("output_rank", "int", 1, aliases=("outputRank",))},
            attr_names=frozenset({"output_rank"}),
        ),),
        doc="Matrix product A·B; numpy order: x @ W.",
    ))
