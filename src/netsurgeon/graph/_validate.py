"""Validation: arity, connected inputs, cycles, and shape inference through the whole network.

Every problem raises :class:`~netsurgeon.errors.ValidationError` naming the node, the input
and the shapes involved. Shapes are inferred in evaluation order; recurrent loops are
ordered by ignoring delayed inputs, and a delay node whose input is not inferred yet uses
its declared shape (``PastValue(rows, x)``), with a second sweep for whatever is left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netsurgeon.errors import ShapeError, ValidationError
from netsurgeon.graph._traversal import topological_order
from netsurgeon.ops import ShapeContext, fmt_shape

if TYPE_CHECKING:
    from netsurgeon.graph._network import Network
    from netsurgeon.graph._node import Node
    from netsurgeon.ops import OpRegistry

__all__ = ["validate", "check_structure"]


def check_structure(net: "Network", registry: "OpRegistry") -> None:
    """Known ops, input counts and connected inputs, for every node."""
    for node in net.nodes:
        if not registry.has_op(node.op):
            raise ValidationError(f"unknown operation '{node.op}'", node=node.name)
        spec = registry.op(node.op)
        if not spec.accepts_arity(len(node.inputs)):
            raise ValidationError(
                f"{node.op} operation '{node.name}' expects {spec.arity_text()} inputs "
                f"(given: {len(node.inputs)})", node=node.name,
            )
        for i, inp in enumerate(node.inputs):
            if inp is None:
                raise ValidationError(
                    f"input {i} ({spec.input_name(i)}) of {node.op} operation '{node.name}' is "
                    "not connected; set it with SetInput or remove the node", node=node.name,
                )


def validate(net: "Network", registry: "OpRegistry") -> None:
    """Check structure, order the nodes and infer every node's shape and dynamic axis."""
    check_structure(net, registry)
    order = topological_order(net, skip_delayed=True, registry=registry)
    inferred: dict[Node, tuple[int, ...]] = {}
    pending = order
    for _sweep in range(3):
        left = []
        for node in pending:
            if not _infer(node, registry, inferred):
                left.append(node)
        if not left:
            return
        if len(left) == len(pending):
            break
        pending = left
    names = ", ".join(n.name for n in left[:5])
    raise ValidationError(f"cannot infer the shapes of {names}: a recurrent loop has no known "
                          "dimension; give PastValue/FutureValue its dimension", node=left[0].name)


def _infer(node: "Node", registry: "OpRegistry", inferred: dict) -> bool:
    spec = registry.op(node.op)
    shapes = []
    dynamic = []
    for i, inp in enumerate(node.inputs):
        shape = inferred.get(inp)
        if shape is None:
            if i in spec.delayed_inputs and node.shape is not None and 0 not in node.shape:
                shape = node.shape
            elif i in spec.delayed_inputs and inp.shape is not None and 0 not in inp.shape:
                shape = inp.shape
            else:
                return False
        shapes.append(tuple(shape))
        dynamic.append(bool(inp.dynamic) if inp.dynamic is not None else True)
    declared = node.shape if spec.is_("leaf") or spec.delayed_inputs else None
    if spec.is_("parameter") and node.value is not None:
        declared = tuple(node.value.shape)
    ctx = ShapeContext(
        node.op, node.name, node.attrs, shapes, dynamic,
        input_names=[inp.name for inp in node.inputs],
        input_ops=[inp.op for inp in node.inputs],
        declared=declared,
    )
    try:
        out = tuple(int(d) for d in spec.infer_shape(ctx))
    except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as exc:
        raise ShapeError(f"{node.op}: cannot infer the output shape: {exc}", node=node.name) from exc
    for index, shape in ctx.refined.items():
        _refine_input(node.inputs[index], shape, inferred)
    node.shape = out
    node.dynamic = {"always": True, "none": False}.get(spec.dynamic, any(dynamic))
    inferred[node] = out
    return True


def _refine_input(inp: "Node", shape: tuple[int, ...], inferred: dict) -> None:
    """Give a learnable input its completed shape and (re)initialise its value if pending."""
    if inp.shape == shape:
        return
    inp.shape = shape
    inferred[inp] = shape
    if inp.op == "LearnableParameter":
        init = inp.attrs.get("init")
        if inp.value is None or tuple(inp.value.shape) != shape:
            if init is None:
                raise ShapeError(
                    f"parameter shape {fmt_shape(inp.value.shape if inp.value is not None else None)}"
                    f" cannot become {fmt_shape(shape)}", node=inp.name)
            from netsurgeon.ops.init import initialize

            inp.value = initialize(shape, init, dtype=inp.dtype)
