"""Small helpers the op families use to declare ops with little repetition."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from netsurgeon.ops._category import Category
from netsurgeon.ops._convert import NodeOption, node_function
from netsurgeon.ops._registry import OpRegistry
from netsurgeon.ops._spec import (
    REQUIRED,
    AttrSpec,
    Form,
    FunctionSpec,
    NodeRecipe,
    OpSpec,
    Param,
    ShapeRule,
)

__all__ = ["define", "inputs_form", "simple_function", "NDL", "BOTH"]

NDL = frozenset({"ndl"})
BOTH = frozenset({"ndl", "bs"})


def inputs_form(*names: str, optional: int = 0) -> Form:
    """A form whose parameters are all node inputs; the last ``optional`` ones may be left out."""
    params = []
    for i, n in enumerate(names):
        params.append(Param(n, "input", None if i >= len(names) - optional else REQUIRED))
    return Form(tuple(params))


def simple_function(name: str, op: str, *input_names: str, aliases: tuple[str, ...] = (),
                    optional: int = 0, languages: frozenset[str] = BOTH,
                    options: Mapping[str, Param] | None = None,
                    make: Callable[[FunctionSpec, dict[str, Any], Form], NodeRecipe] | None = None,
                    doc: str = "") -> FunctionSpec:
    """A function whose positional arguments are exactly the op's inputs."""
    kwargs: dict[str, Any] = {}
    if make is not None:
        kwargs["make"] = make
    options = dict(options or {})
    return FunctionSpec(name, op, (inputs_form(*input_names, optional=optional),),
                        options, aliases, languages=languages, doc=doc,
                        attr_names=frozenset(p.name for p in options.values()), **kwargs)


def define(
    ops: OpRegistry,
    name: str,
    arity: tuple[int, int | None],
    rule: ShapeRule,
    *,
    inputs: tuple[str, ...] = (),
    attrs: Mapping[str, AttrSpec] | None = None,
    categories: Iterable[Category] = (),
    dynamic: str = "inherit",
    functions: Iterable[FunctionSpec] = (),
    node_options: Iterable[NodeOption] = (),
    node_finish: Callable[[NodeRecipe, dict[str, Any]], None] | None = None,
    aliases: tuple[str, ...] = (),
    delayed: Iterable[int] = (),
    has_math: bool = True,
    internal: bool = False,
    doc: str = "",
) -> OpSpec:
    """Register one op, its language functions and its ``node`` function (BrainScript's
    ``new ComputationNode``; the op's aliases are accepted there as ``operation=`` names).

    An ``internal`` op (made by a compiler pass only) gets no function at all."""
    all_attrs = dict(attrs or {})
    cats = frozenset(categories) | ({Category.INTERNAL} if internal else frozenset())
    if not all(isinstance(c, Category) for c in cats):
        raise TypeError(f"{name}: categories must be Category members, not "
                        f"{sorted(map(str, cats))}")
    spec = OpSpec(
        name=name, arity=arity, infer_shape=rule, attrs=all_attrs, input_names=inputs,
        categories=cats, dynamic=dynamic, delayed_inputs=frozenset(delayed),
        has_math=has_math, doc=doc, aliases=aliases,
        functions=() if internal else (
            *functions, node_function(name, node_options, aliases=aliases, finish=node_finish)),
    )
    return ops.register(spec)
