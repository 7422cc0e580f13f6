"""What every ONNX converter needs: the converter's signature and the checks of its inputs.

A converter is ``fn(builder, onnx_node, inputs, attrs) -> [Value per output]``; inputs are
:class:`~netsurgeon.formats.onnx.importer_graph.Value` (None for an omitted optional input),
attributes are plain Python values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from netsurgeon.formats.onnx.importer_graph import Builder, Value
from netsurgeon.graph import Node

__all__ = ["Inputs", "Attrs", "Converter", "out", "data", "const", "ints", "out_rank",
           "clip_node"]

Inputs = list[Value | None]
Attrs = dict[str, Any]
Converter = Callable[[Builder, Any, Inputs, Attrs], list[Value]]


def out(n: Any, node: Node) -> list[Value]:
    """The converted node as the ONNX node's (first) output."""
    return [Value(n.output[0], node=node)]


def data(b: Builder, v: Value | None, what: str = "input") -> Value:
    """``v``, which must be computed from the model's inputs (not a constant)."""
    if v is None or v.is_const:
        raise b.error(f"the {what} must be computed from the model's inputs")
    return v


def const(b: Builder, v: Value | None, what: str) -> np.ndarray:
    """The array of ``v``, which must be a constant."""
    if v is None or not v.is_const:
        raise b.error(f"the {what} must be a constant")
    assert v.array is not None
    return v.array


def ints(b: Builder, v: Value | None, what: str) -> list[int]:
    """A constant integer list (axes, pads, repeats, split sizes)."""
    return [int(x) for x in const(b, v, what).reshape(-1)]


def out_rank(b: Builder, values: list[Value]) -> int:
    """Sample rank of an element-wise result; node operands must agree on the full rank."""
    nodes = [v for v in values if not v.is_const]
    ranks = {len(v.shape) for v in nodes}
    if len(ranks) > 1:
        raise b.error(f"operands of sample shapes {[list(v.shape) for v in nodes]} broadcast "
                      "across the batch axis")
    return ranks.pop()


def clip_node(b: Builder, name: str, x: Node, lo: float, hi: float) -> Node:
    """Clip(lo, hi, x) with constant bounds (±inf for none)."""
    return b.add(name, "Clip", [b.scalar(name + ".min", lo), b.scalar(name + ".max", hi), x])
