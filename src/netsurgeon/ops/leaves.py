"""Leaves: inputs, learnable parameters and constants (ndl-mel.md §B.9.1)."""

from __future__ import annotations

from typing import Any

from netsurgeon.ops._registry import OpRegistry
from netsurgeon.ops._spec import AttrSpec, Form, FunctionSpec, NodeRecipe, OpSpec, Param, Shape, ShapeContext

__all__ = ["register", "image_shape", "PARAMETER_OPTIONS"]

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
    raise ValueError(f"imageLayout must be CHW, cudnn, HWC or legacy, not {layout!r}")


def _check_precision(value: Any) -> str:
    text = str(value or "")
    if text not in ("", "float", "double", "float16"):
        raise ValueError(f"precision must be float, double or float16, not {text!r}")
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
    recipe.shape = image_shape(int(bound["W"]), int(bound["H"]), int(bound["C"]), str(bound["imageLayout"]))
    recipe.attrs["dynamic_axis"] = bound.get("dynamicAxis") or ""
    return recipe


PARAMETER_OPTIONS = {
    "learningRateMultiplier": Param("learningRateMultiplier", "float", 1.0),
    "needGradient": Param("needGradient", "bool", True, aliases=("needsGradient", "computeGradient")),
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

INIT_KINDS = ("uniform", "gaussian", "fixedValue", "fromFile", "heNormal", "bilinear", "fromLiteral")


def _init_from(bound: dict[str, Any]) -> dict[str, Any]:
    kind = str(bound.get("init", "uniform"))
    canonical = {k.lower(): k for k in INIT_KINDS}.get(kind.lower())
    if canonical is None:
        raise ValueError(
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
        raise ValueError("ImageParameter needs at least 3 dimensions: ..., W, H, C")
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


def register(ops: OpRegistry) -> None:
    """Register the leaf ops."""
    image_form = Form((Param("W", "int"), Param("H", "int"), Param("C", "int"), Param("ignored", "int", 0)))
    image_options = {**_INPUT_OPTIONS, "imageLayout": Param("imageLayout", "text", "HWC")}
    input_attrs = {"dynamic_axis": AttrSpec("str", "", "name of the dynamic axis; '' = default")}
    for op_name, fn_name, alias, img_name, img_alias in (
        ("InputValue", "InputValue", "Input", "ImageInput", "Image"),
        ("SparseInputValue", "SparseInputValue", "SparseInput", "SparseImageInput", "SparseImage"),
    ):
        ops.register(OpSpec(
            name=op_name,
            arity=(0, 0),
            infer_shape=_declared,
            attrs=input_attrs,
            categories=frozenset({"leaf", "input"} | ({"sparse"} if "Sparse" in op_name else set())),
            dynamic="always",
            doc="Data fed from a reader; sample shape plus the batch/sequence axis.",
            functions=(
                FunctionSpec(fn_name, op_name, (_DIMS,), _INPUT_OPTIONS, (alias,), _make_input),
                FunctionSpec(img_name, op_name, (image_form,), image_options, (img_alias,),
                             _make_image_input, languages=frozenset({"ndl"})),
            ),
        ))
    ops.register(OpSpec(
        name="LearnableParameter",
        arity=(0, 0),
        infer_shape=_declared,
        categories=frozenset({"leaf", "parameter"}),
        dynamic="none",
        doc="A tensor of weights (learning-rate multiplier 0 makes it a constant).",
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
    ))
