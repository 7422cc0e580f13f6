"""Precomputed statistics and normalization (ndl-mel.md §B.9.5, §B.9.7 BatchNormalization)."""

from __future__ import annotations

from math import prod
from typing import Any

from netsurgeon.errors import ArgumentError
from netsurgeon.ops._build import NDL, define, inputs_form, simple_function
from netsurgeon.ops._category import Category as C
from netsurgeon.ops._convert import NodeOption, as_bool, layout_name
from netsurgeon.ops._registry import OpRegistry
from netsurgeon.ops._shapes import broadcast_rule, fill_zeros, same_as_input
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

__all__ = ["register", "RUN_COUNT_SUFFIX", "bn_statistics_count"]

#: name suffix of the running-count parameter NDL creates when only 5 inputs are given
RUN_COUNT_SUFFIX = ".run_sample_count"

BN_ATTRS = {
    "spatial": AttrSpec("bool", False, "per-channel statistics for images"),
    "normalization_time_constant": AttrSpec("float", 0.0, "running-statistics time constant "
                                            "(samples; 0 = use only the minibatch, inf = "
                                            "frozen)"),
    "blend_time_constant": AttrSpec("float", 0.0, "blending with the running statistics"),
    "epsilon": AttrSpec("float", 1e-5, "added to the variance"),
    "use_cntk_engine": AttrSpec("bool", True, "True = CNTK engine, False = cuDNN (NDL "
                                "engine='cntk'|'cudnn')"),
    "image_layout": AttrSpec("str", "CHW", "CHW or HWC (file i32 1/0)"),
    "running_sample_count": AttrSpec("int", 0, "samples seen by the running statistics (file "
                                     "v >= 13; v = 19 stores only 'is zero')"),
    "running_inv_std_dev": AttrSpec("bool", False, "the 5th input holds running inverse "
                                    "standard deviations, not variances (files v < 13)"),
    "disable_regularization": AttrSpec("bool", False, "exclude scale/bias from weight decay "
                                       "(not stored in v1 files)"),
}


def bn_statistics_count(ctx: ShapeContext, x: Shape) -> int:
    """Number of normalized statistics: channels when spatial, else every element."""
    if not ctx.attrs["spatial"]:
        return prod(x)
    if not x:
        ctx.fail("spatial batch normalization needs an image input")
    layout = layout_name(ctx.attrs["image_layout"])
    return x[0] if layout == "CHW" else x[-1]


def _batch_norm(ctx: ShapeContext) -> Shape:
    x = tuple(ctx.shapes[0])
    count = bn_statistics_count(ctx, x)
    for i in range(1, min(len(ctx.shapes), 5)):
        p = tuple(ctx.shapes[i])
        if count == 0:
            continue
        if 0 in p:
            if not ctx.attrs["spatial"] and len(p) == len(x) and \
                    all(a in (0, b) for a, b in zip(p, x)):
                done: Shape | None = x
            else:
                done = fill_zeros(p, count)
            if done is None:
                ctx.fail(f"cannot infer input {i} ({ctx.input_names[i]}) {fmt_shape(p)} to hold "
                         f"{count} statistics")
            ctx.refine(i, done)
        elif prod(p) != count:
            ctx.fail(f"input {i} ({ctx.input_names[i]}) {fmt_shape(p)} must hold {count} "
                     f"values ({'channels' if ctx.attrs['spatial'] else 'one per element'} "
                     f"of the input {fmt_shape(x)})")
    if len(ctx.shapes) == 6:
        c = tuple(ctx.shapes[5])
        if 0 in c:
            ctx.refine(5, fill_zeros(c, 1) or c)
        elif prod(c) != 1:
            ctx.fail(f"the running count {fmt_shape(c)} must hold one value")
    return x


def _engine(value: Any) -> bool:
    text = str(value).strip('"').lower()
    if text not in ("cntk", "cudnn"):
        raise ArgumentError(f"BatchNormalization: engine must be 'cntk' or 'cudnn', not {value!r}")
    return text == "cntk"


def _finish_engine(recipe: NodeRecipe, bound: dict[str, Any]) -> None:
    """BrainScript: ``engine='cntk'|'cudnn'`` (NDL's spelling, a netsurgeon extension of the
    library's BatchNormalization) sets ``use_cntk_engine`` like ``useCntkEngine``. Both
    engines compute the same function; the flag is kept for the model file."""
    engine = recipe.attrs.pop("_engine", None)
    if engine not in (None, ""):
        recipe.attrs["use_cntk_engine"] = _engine(engine)


def _make_batch_norm(fn: FunctionSpec, bound: dict[str, Any], form: Form) -> NodeRecipe:
    recipe = NodeRecipe(op="BatchNormalization", inputs=[
        bound.get(k) for k in ("x", "scale", "bias", "run_mean", "run_variance")])
    recipe.attrs.update(
        spatial=as_bool(bound.get("spatial", False)),
        normalization_time_constant=float(bound.get("normalizationTimeConstant", 0.0)),
        blend_time_constant=float(bound.get("blendTimeConstant", 0.0)),
        epsilon=float(bound.get("epsilon", 1e-5)),
        use_cntk_engine=_engine(bound.get("engine", "cntk")),
        image_layout=layout_name(bound.get("imageLayout", "CHW")),
        disable_regularization=as_bool(bound.get("disableRegularization", False)),
    )
    if bound.get("run_count") is not None:
        recipe.inputs.append(bound["run_count"])
    else:
        # CNTK's current NDL always attaches 6 inputs: it creates <name>.run_sample_count.
        recipe.extra["auto_inputs"] = {5: {
            "suffix": RUN_COUNT_SUFFIX, "op": "LearnableParameter", "shape": (1,),
            "learning_rate_multiplier": 0.0,
            "init": {"kind": "fixedValue", "value": 0.0, "scale": 1.0, "seed": -1, "path": "",
                     "literal": "", "kernel": (0, 0)},
        }}
    return recipe


def register(ops: OpRegistry) -> None:
    """Register precompute and normalization ops."""
    for name, doc in (("Mean", "Per-dimension mean over the training set (pre-pass)."),
                      ("InvStdDev", "Per-dimension 1/√var over the training set (pre-pass).")):
        define(ops, name, (1, 1), same_as_input(0), inputs=("x",),
               attrs={"has_computed": AttrSpec("bool", False, "the statistics in the node's "
                                               "value are final (file bool + matrix)")},
               categories={C.PRECOMPUTE}, dynamic="none",
               functions=(simple_function(name, name, "x"),), doc=doc)
    for name, alias, doc in (
        ("PerDimMeanVarNormalization", "PerDimMVNorm", "(x - mean) ⊙ invStdDev."),
        ("PerDimMeanVarDeNormalization", "PerDimMVDeNorm", "x ⊘ invStdDev + mean."),
    ):
        define(ops, name, (3, 3), broadcast_rule, inputs=("x", "mean", "inv_std_dev"),
               categories={C.NORMALIZATION},
               functions=(simple_function(name, name, "x", "mean", "inv_std_dev",
                                          aliases=(alias,), languages=NDL),), doc=doc)
    bn_inputs = ("x", "scale", "bias", "run_mean", "run_variance", "run_count")
    define(ops, "BatchNormalization", (5, 6), _batch_norm, inputs=bn_inputs, attrs=BN_ATTRS,
           categories={C.NORMALIZATION, C.FREEZABLE},
           node_options=(NodeOption("spatial", "spatial", "bool"),
                         NodeOption("normalizationTimeConstant", "normalization_time_constant",
                                    "float"),
                         NodeOption("blendTimeConstant", "blend_time_constant", "float"),
                         NodeOption("epsilon", "epsilon", "float"),
                         NodeOption("useCntkEngine", "use_cntk_engine", "bool"),
                         NodeOption("engine", "_engine", "str"),
                         NodeOption("disableRegularization", "disable_regularization", "bool"),
                         NodeOption("imageLayout", "image_layout", "layout")),
           node_finish=_finish_engine,
           functions=(FunctionSpec(
               "BatchNormalization", "BatchNormalization",
               (inputs_form(*bn_inputs, optional=1),),
               {"spatial": Param("spatial", "bool", False),
                "normalizationTimeConstant": Param("normalizationTimeConstant", "float", 0.0),
                "blendTimeConstant": Param("blendTimeConstant", "float", 0.0),
                "epsilon": Param("epsilon", "float", 1e-5),
                "engine": Param("engine", "text", "cntk"),
                "imageLayout": Param("imageLayout", "text", "CHW"),
                "disableRegularization": Param("disableRegularization", "bool", False)},
               make=_make_batch_norm, languages=NDL,
               doc="(x, scale, bias, runMean, runVariance[, runCount]); with 5 inputs the "
                   "recipe asks for a <name>.run_sample_count parameter (extra['auto_inputs'])"),),
           doc="y = scale·(x-μ)/√(σ²+ε) + bias; running statistics at inference.")

