"""Shapes of nodes that no network holds yet (BrainScript builds graphs detached).

A whole network is validated by :class:`~netsurgeon.graph.passes.InferShapes`; this module
infers the shapes of a few *detached* nodes while the program runs: ``node.dim`` needs one, and
a CloneFunction call re-infers its copies at once so that a bad parameter substitution is
reported at the call, naming the node and the shapes. The registry's shape rules do the work.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from netsurgeon.errors import ArgumentError, ShapeError
from netsurgeon.graph import Node
from netsurgeon.ops import OPS, OpSpec, ShapeContext
from netsurgeon.ops.sets import LEAVES, PARAMETERS

__all__ = ["infer_local"]

_DYNAMIC = {"always": True, "none": False}
_UNSEEN: Any = object()


def infer_local(nodes: Iterable[Node], *, strict: bool = True) -> None:
    """Infer the shapes of ``nodes`` (inputs before users) whose inputs' shapes are known.

    A delayed input whose shape is not known yet reads as the node's declared shape. A
    parameter with unknown dimensions gets the shape a rule completes (its value follows when
    the network is prepared); one that holds a value of another shape is an error.

    Raises:
        ShapeError: a rule rejects the input shapes (with ``strict``; otherwise the node is
            left as it is).
    """
    specs: dict[str, OpSpec | None] = {}
    for node in nodes:
        if node.op in LEAVES:
            continue
        spec = specs.get(node.op, _UNSEEN)
        if spec is _UNSEEN:
            spec = specs[node.op] = OPS.find_op(node.op)
        if spec is None:
            continue
        shapes, dynamic = _input_shapes(node, spec.delayed_inputs)
        if shapes is None:
            continue
        ctx = ShapeContext(node.op, node.name, node.attrs, shapes, dynamic,
                           declared=node.shape if spec.delayed_inputs else None,
                           inputs=node.inputs)
        try:
            out = tuple(int(d) for d in spec.infer_shape(ctx))
        except ShapeError:
            if strict:
                raise
            continue
        except ArgumentError:
            continue  # a rule that needs more than is known yet
        for index, shape in ctx.refined.items():
            _refine(node, node.inputs[index], shape)
        flag = _DYNAMIC.get(spec.dynamic)
        node.update(shape=out, dynamic=any(dynamic) if flag is None else flag)


def _input_shapes(node: Node, delayed: frozenset[int]):
    """(shapes, dynamic flags) of the inputs, or (None, None) while one is unknown."""
    shapes: list[tuple[int, ...]] = []
    dynamic: list[bool] = []
    for i, inp in enumerate(node.inputs):
        if inp is None:
            return None, None
        shape = inp.shape
        if (shape is None or 0 in shape) and i in delayed and node.shape is not None:
            shape = node.shape
        if shape is None:
            return None, None
        shapes.append(tuple(shape))
        dynamic.append(True if inp.dynamic is None else bool(inp.dynamic))
    return shapes, dynamic


def _refine(node: Node, inp: Node, shape: tuple[int, ...]) -> None:
    if inp.op not in PARAMETERS or inp.shape == shape:
        return
    if inp.value is not None and tuple(inp.value.shape) != shape:
        raise ShapeError(
            f"parameter '{inp.name}' has shape {tuple(inp.value.shape)} but '{node.name}' "
            f"({node.op}) needs {shape} for it (input shapes: "
            + ", ".join(f"{n.name} {n.shape}" for n in node.inputs if n is not None) + ")",
            node=node.name)
    if inp.value is None:
        inp.update(shape=shape)
