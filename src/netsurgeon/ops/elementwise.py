"""Element-wise ops (ndl-mel.md §B.9.2): unary functions and broadcasting binary ones."""

from __future__ import annotations

from netsurgeon.ops._registry import OpRegistry
from netsurgeon.ops._shapes import broadcast_rule, same_as_input
from netsurgeon.ops._spec import Form, FunctionSpec, OpSpec, Param

__all__ = ["register", "UNARY", "BINARY"]

_X = Form((Param("x", "input"),))
_AB = Form((Param("a", "input"), Param("b", "input")))

# canonical name -> aliases
UNARY: dict[str, tuple[str, ...]] = {
    "Sigmoid": (),
    "Tanh": (),
    "RectifiedLinear": ("ReLU",),
}

BINARY: dict[str, tuple[str, ...]] = {
    "Plus": (),
    "Minus": (),
    "ElementTimes": (),
}


def register(ops: OpRegistry) -> None:
    """Register the element-wise ops."""
    for name, aliases in UNARY.items():
        ops.register(OpSpec(
            name=name, arity=(1, 1), infer_shape=same_as_input(0), input_names=("x",),
            categories=frozenset({"elementwise", "unary"}),
            functions=(FunctionSpec(name, name, (_X,), aliases=aliases),),
        ))
    for name, aliases in BINARY.items():
        ops.register(OpSpec(
            name=name, arity=(2, 2), infer_shape=broadcast_rule, input_names=("a", "b"),
            categories=frozenset({"elementwise", "binary"}),
            functions=(FunctionSpec(name, name, (_AB,), aliases=aliases),),
        ))
