"""The node-type registry: every op netsurgeon knows, with its functions and shape rule.

``OPS`` is built once at import and is read-only afterwards (later layers attach their per-op
tables with :meth:`OpRegistry.attach`). Functions that need a registry take ``registry=OPS``
so tests can build a private one with :func:`build_registry`.
"""

from __future__ import annotations

from netsurgeon.ops._category import Category
from netsurgeon.ops._layers import Layer, Unsupported, completeness
from netsurgeon.ops._registry import OpRegistry
from netsurgeon.ops._spec import (
    REQUIRED,
    AttrSpec,
    Form,
    FunctionSpec,
    NodeRecipe,
    OpSpec,
    Param,
    Shape,
    ShapeContext,
    fmt_shape,
)

__all__ = [
    "OPS",
    "Category",
    "Layer",
    "Unsupported",
    "completeness",
    "OpRegistry",
    "OpSpec",
    "FunctionSpec",
    "AttrSpec",
    "Param",
    "Form",
    "NodeRecipe",
    "ShapeContext",
    "Shape",
    "REQUIRED",
    "build_registry",
    "fmt_shape",
]


def build_registry() -> OpRegistry:
    """Build a fresh registry holding every op family."""
    from netsurgeon.ops import FAMILIES

    registry = OpRegistry()
    for family in FAMILIES:
        family.register(registry)
    return registry


from netsurgeon.ops import (  # noqa: E402
    conv,
    criteria,
    elementwise,
    imported,
    leaves,
    linear,
    misc,
    normalization,
    recurrent,
    reshaping,
)

FAMILIES = (leaves, elementwise, linear, reshaping, criteria, normalization, recurrent, conv, misc,
            imported)

OPS: OpRegistry = build_registry()
