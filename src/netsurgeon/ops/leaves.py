"""Leaves: inputs, learnable parameters and constants (ndl-mel.md §B.9.1)."""

from __future__ import annotations

from typing import Any

from netsurgeon.errors import ArgumentError
from netsurgeon.ops._build import define
from netsurgeon.ops._category import Category as C
from netsurgeon.ops._convert import NodeOption
from netsurgeon.ops._registry import OpRegistry
from netsurgeon.ops._spec import (
    AttrSpec,
    Form,
    FunctionSpec,
    NodeRecipe,
    Param,
    Shape,
    ShapeContext,
)

__all__ = ["register", "image_shape", "PARAMETER_OPTIONS", "NO_SEQUENCE_AXIS"]

#: ``dynamic_axis`` of an input with the batch axis only (CNTK's name for it; v1 files cannot
#: say so and store the default axis, CNTK v2 files store the batch axis alone)
NO_SEQUENCE_AXIS = "__noSequenceAxis"

_DIMS = Form((Param("dims", "ints"),))


def _declared(ctx: ShapeContext) -> Shape:
    if ctx.declared is None:
        ctx.fail("a leaf node needs a shape")
    return tuple(ctx.declared)


def image_shape(width: int, height: int, channels: int, layout: str) -> Shape:
    """numpy-order shape of a W x H x C image: CHW/cudnn -> (C, H, W); HWC/legacy -> (H, W, C).

    CNTK keeps ``[W x H x C]`` for cudnn and ``[C x W x H]`` for the legacy layout.
    """
    if layout in ("CHW", "cudnn"):
        return (channels, height, width)
    if layout in ("HWC", "legacy"):
        return (height, width, channels)
    raise ArgumentError(f"imageLayout must be CHW, cudnn, HWC or legacy, not {layout!r}")


def _check_precision(value: Any) -> str:
    text = str(value or "")
    if text not in ("", "float", "double", "float16"):
        raise ArgumentError(f"precision must be float, double or float16, not {text!r}")
    return text


_INPUT_OPTIONS = {
    "dynamicAxis": Param("dynamicAxis", "text", ""),
    "precision": Param("precision", "text", ""),
}


def _make_input(fn: FunctionSpec, bound: dict[str, Any], form: Form) -> NodeRecipe:
    dims = tuple(int(d) for d in bound["dims"])
    recipe = NodeRecipe(op=fn.op, shape=tuple(reversed(dims)))
    recipe.attrs["dynamic_axis"] = bound.get("dynamicAxis") or ""
    recipe.extra["precision"] = _check_precision(bound.get("precision"))
    return recipe


def _make_image_input(fn: FunctionSpec, bound: dict[str, Any], form: Form) -> NodeRecipe:
    recipe = NodeRecipe(op=fn.op)
    recipe.shape = image_shape(int(bound["W"]), int(bound["H"]), int(bound["C"]),
                               str(bound["imageLayout"]))
    recipe.attrs["dynamic_axis"] = bound.get("dynamicAxis") or ""
    return recipe


PARAMETER_OPTIONS = {
    "learningRateMultiplier": Param("learningRateMultiplier", "float", 1.0),
    "needGradient": Param("needGradient", "bool", True,
                          aliases=("needsGradient", "computeGradient")),
    "init": Param("init", "text", "uniform"),
    "initValueScale": Param("initValueScale", "float", 1.0),
    "value": Param("value", "float", 0.0),
    "initOnCPUOnly": Param("initOnCPUOnly", "bool", False),
    "randomSeed": Param("randomSeed", "int", -1),
    "initFromFilePath": Param("initFromFilePath", "text", ""),
    "initFromLiteral": Param("initFromLiteral", "text", ""),
    "kernelWidth": Param("kernelWidth", "int", 0),
    "kernelHeight": Param("kernelHeight", "int", 0),
}

INIT_KINDS = ("uniform", "gaussian", "fixedValue", "fromFile", "heNormal", "bilinear",
              "fromLiteral")


def _init_from(bound: dict[str, Any]) -> dict[str, Any]:
    kind = str(bound.get("init", "uniform"))
    canonical = {k.lower(): k for k in INIT_KINDS}.get(kind.lower())
    if canonical is None:
        raise ArgumentError(
            f"'init' must be one of the values of [ uniform | gaussian | fixedValue | fromFile | "
            f"heNormal | bilinear], not {kind!r}"
        )
    return {
        "kind": canonical,
        "scale": float(bound.get("initValueScale", 1.0)),
        "value": float(bound.get("value", 0.0)),
        "seed": int(bound.get("randomSeed", -1)),
        "path": str(bound.get("initFromFilePath") or ""),
        "literal": str(bound.get("initFromLiteral") or ""),
        "kernel": (int(bound.get("kernelHeight", 0)), int(bound.get("kernelWidth", 0))),
    }


def _multiplier(bound: dict[str, Any]) -> float:
    if not bound.get("needGradient", True):
        return 0.0
    return float(bound.get("learningRateMultiplier", 1.0))


def _make_parameter(fn: FunctionSpec, bound: dict[str, Any], form: Form) -> NodeRecipe:
    dims = tuple(int(d) for d in bound["dims"])
    return NodeRecipe(
        op="LearnableParameter",
        shape=tuple(reversed(dims)),
        learning_rate_multiplier=_multiplier(bound),
        init=_init_from(bound),
    )


def _make_image_parameter(fn: FunctionSpec, bound: dict[str, Any], form: Form) -> NodeRecipe:
    dims = tuple(int(d) for d in bound["dims"])
    if len(dims) < 3:
        raise ArgumentError("ImageParameter needs at least 3 dimensions: ..., W, H, C")
    lead, (w, h, c) = dims[:-3], dims[-3:]
    image = image_shape(w, h, c, str(bound.get("imageLayout", "HWC")))
    return NodeRecipe(
        op="LearnableParameter",
        shape=image + tuple(reversed(lead)),
        learning_rate_multiplier=_multiplier(bound),
        init=_init_from(bound),
    )


def _make_constant(fn: FunctionSpec, bound: dict[str, Any], form: Form) -> NodeRecipe:
    rows, cols = int(bound.get("rows", 1)), int(bound.get("cols", 1))
    return NodeRecipe(
        op="LearnableParameter",
        shape=(cols, rows),
        learning_rate_multiplier=0.0,
        init={"kind": "fixedValue", "value": float(bound["value"]), "scale": 1.0, "seed": -1,
              "path": "", "literal": "", "kernel": (0, 0)},
    )


_INPUT_ATTRS = {
    "dynamic_axis": AttrSpec("str", "", "name of the dynamic axis; '' = the default axis, "
                             "'__noSequenceAxis' = the batch axis only (file wstr, v >= 8)"),
}

_PARAMETER_ATTRS = {
    "init": AttrSpec("any", None, "how the value is (re)initialised when the shape is "
                     "completed: the init dict of netsurgeon.ops.init.initialize, or None"),
}


def _finish_input(recipe: NodeRecipe, bound: dict[str, Any]) -> None:
    a = recipe.attrs
    shape = a.pop("_shape", None)
    image = a.pop("_is_image", False)
    dims = (a.pop("_w", 0), a.pop("_h", 0), a.pop("_c", 0), a.pop("_layout", "CHW"))
    if image:
        recipe.shape = image_shape(dims[0], dims[1], dims[2], dims[3])
    elif shape is not None:
        recipe.shape = shape


# BrainScript init names (brainscript.md §4.3) -> init kind of netsurgeon.ops.init
BS_INIT_KINDS = {k.lower(): k for k in (
    "uniform", "uniform1", "gaussian", "normal", "xavier", "glorotUniform", "glorotNormal",
    "heUniform", "heNormal", "TruncNormal", "bilinear", "fixedValue", "fromLiteral",
    "fromFile", "zero")}


def _float_or(value: Any, default: float) -> float:
    """``value`` as a float, or ``default`` when it was not given (0 is a value)."""
    return default if value is None else float(value)


def _finish_parameter(recipe: NodeRecipe, bound: dict[str, Any]) -> None:
    """BrainScript LearnableParameter config -> shape, multiplier and init dict."""
    a = recipe.attrs
    recipe.shape = a.pop("_shape", None)
    lrm = a.pop("_lrm", None)
    recipe.learning_rate_multiplier = 1.0 if lrm is None else float(lrm)
    kind = str(a.pop("_init", "") or "")
    init_value = a.pop("_init_value", None)
    path = str(a.pop("_path", "") or "")
    literal = str(a.pop("_literal", "") or "")
    value = _float_or(a.pop("_value", None), 0.0)
    if kind == "":  # bs-library.md: a numeric initValue, else a file, else uniform
        if isinstance(init_value, (int, float)):
            kind, value = "fixedValue", float(init_value)
        elif path:
            kind = "fromFile"
        else:
            kind = "uniform"
    canonical = BS_INIT_KINDS.get(kind.lower())
    if canonical is None:
        raise ArgumentError(f"LearnableParameter: unknown init {kind!r}")
    if canonical == "zero":
        canonical, value = "fixedValue", 0.0
    recipe.init = {
        "kind": canonical, "scale": _float_or(a.pop("_scale", None), 1.0), "value": value,
        "seed": int(a.pop("_seed", -1)), "path": path, "literal": literal,
        "kernel": (0, 0), "filter_rank": int(a.pop("_filter_rank", 0)),
        "output_rank": int(a.pop("_output_rank", 1)),
    }
    a.pop("_cpu", None)


def register(ops: OpRegistry) -> None:
    """Register the leaf ops."""
    image_form = Form((Param("W", "int"), Param("H", "int"), Param("C", "int"),
                       Param("ignored", "int", 0)))
    image_options = {**_INPUT_OPTIONS, "imageLayout": Param("imageLayout", "text", "HWC")}
    input_node = (
        NodeOption("shape", "_shape", "shape"),
        NodeOption("dynamicAxis", "dynamic_axis", lambda v: "" if v is None else str(v)),
        NodeOption("isImage", "_is_image", "bool"),
        NodeOption("imageWidth", "_w", "int"), NodeOption("imageHeight", "_h", "int"),
        NodeOption("imageChannels", "_c", "int"), NodeOption("imageLayout", "_layout", "str"),
    )
    for op_name, fn_name, alias, img_name, img_alias in (
        ("InputValue", "InputValue", "Input", "ImageInput", "Image"),
        ("SparseInputValue", "SparseInputValue", "SparseInput", "SparseImageInput", "SparseImage"),
    ):
        define(
            ops, op_name, (0, 0), _declared, attrs=_INPUT_ATTRS,
            categories={C.LEAF, C.INPUT} | ({C.SPARSE} if "Sparse" in op_name else set()),
            dynamic="always",
            doc="Data fed from a reader; sample shape plus the batch/sequence axis.",
            node_options=input_node, node_finish=_finish_input,
            functions=(
                FunctionSpec(fn_name, op_name, (_DIMS,), _INPUT_OPTIONS, (alias,), _make_input),
                FunctionSpec(img_name, op_name, (image_form,), image_options, (img_alias,),
                             _make_image_input, languages=frozenset({"ndl"})),
            ),
        )
    define(
        ops, "LearnableParameter", (0, 0), _declared, attrs=_PARAMETER_ATTRS,
        categories={C.LEAF, C.PARAMETER, C.FREEZABLE},
        dynamic="none",
        doc="A tensor of weights (learning-rate multiplier 0 makes it a constant).",
        node_options=(
            NodeOption("shape", "_shape", "shape", aliases=("dims",)),
            NodeOption("learningRateMultiplier", "_lrm", "float"),
            NodeOption("init", "_init", "str"),
            NodeOption("initValue", "_init_value", lambda v: v),
            NodeOption("initValueScale", "_scale", "float"),
            NodeOption("initFilterRank", "_filter_rank", "int"),
            NodeOption("initOutputRank", "_output_rank", "int"),
            NodeOption("initOnCPUOnly", "_cpu", "bool"),
            NodeOption("randomSeed", "_seed", "int"),
            NodeOption("value", "_value", "float"),
            NodeOption("initFromFilePath", "_path", "str"),
            NodeOption("initFromLiteral", "_literal", "str"),
        ),
        node_finish=_finish_parameter,
        functions=(
            FunctionSpec("LearnableParameter", "LearnableParameter", (_DIMS,), PARAMETER_OPTIONS,
                         ("Parameter",), _make_parameter),
            FunctionSpec("ImageParameter", "LearnableParameter", (_DIMS,),
                         {**PARAMETER_OPTIONS, "imageLayout": Param("imageLayout", "text", "HWC")},
                         (), _make_image_parameter, languages=frozenset({"ndl"})),
            FunctionSpec("Constant", "LearnableParameter", (Form((Param("value", "float"),)),),
                         {"rows": Param("rows", "int", 1), "cols": Param("cols", "int", 1)},
                         ("Const",), _make_constant),
        ),
    )
    define(ops, "DynamicAxis", (0, 0), lambda ctx: (1,), categories={C.LEAF, C.DYNAMIC_AXIS},
           dynamic="always", doc="A named dynamic axis that inputs refer to by name.")
    define(ops, "EnvironmentInput", (0, 0), lambda ctx: (1,),
           attrs={"property_name": AttrSpec("str", "isTraining", "environment property read "
                                            "(file wstr)")},
           categories={C.LEAF}, dynamic="none",
           node_options=(NodeOption("propertyName", "property_name", "str"),),
           doc="A scalar from the environment, e.g. 1 while training.")
