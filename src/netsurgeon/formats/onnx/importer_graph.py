"""The network under construction while an ONNX graph is imported.

Every ONNX value name maps to a :class:`Value`: either a **constant** (a numpy array:
initializers, Constant nodes, anything folded at import), materialised as a
LearnableParameter only when an op needs it as a node input, or a **node** of the network.

**Batch axes.** CNTK ops act per sample with a dynamic batch axis. The leading axis of every
ONNX data input is taken as that batch axis; files CNTK wrote (producer ``CNTK``, inputs
``[Sequence, 1, ...]``) have two, the sequence and the batch axis (``batch_rank`` 2). A node
value's netsurgeon shape is the ONNX shape without those axes; an ONNX op that works on them
(a Concat, Transpose or reduction over axis 0, ...) is refused with a FormatError naming the
node. Constants keep their full ONNX shape; used next to a node value they drop leading size-1
axes (ONNX broadcasting aligns trailing axes, as netsurgeon's does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from netsurgeon.errors import FormatError, NetsurgeonError, SourceLocation
from netsurgeon.graph import Network, Node
from netsurgeon.ops import ShapeContext

__all__ = ["Value", "Builder"]

_FIXED_DYNAMIC = {"always": True, "none": False}


@dataclass
class Value:
    """An ONNX value: a constant array or a node (``batch`` marks a shape constant that holds
    the batch size as 0, from Shape of a node value: only reshapes may use it)."""

    name: str
    node: Node | None = None
    array: np.ndarray | None = None
    learnable: bool = False
    batch: bool = False
    lead: int | None = None  # leading batch axes of a node value (None: the inputs' count)

    @property
    def is_const(self) -> bool:
        return self.node is None

    @property
    def shape(self) -> tuple[int, ...]:
        """Sample shape of a node value; full shape of a constant."""
        if self.node is None:
            assert self.array is not None
            return tuple(self.array.shape)
        return tuple(self.node.shape or ())


class Builder:
    """Adds nodes with unique names, infers each shape at once, materialises constants."""

    def __init__(self, net: Network, where: SourceLocation, batch_rank: int,
                 constant: bool) -> None:
        self.net = net
        self.where = where
        self.batch_rank = batch_rank
        self.batch_dims: tuple[Any, ...] = ()
        self.constant = constant
        self.opset = 0  # the model's default-domain opset
        self.values: dict[str, Value] = {}
        self._params: dict[tuple[str, tuple[int, ...]], Node] = {}
        self.onnx_node: Any = None  # the ONNX node being converted (for messages)
        self.used: set[str] = set()  # values some node or graph output reads
        self.outputs: set[str] = set()  # the graph's output names
        self.sequences = False  # inputs (batch, time, *sample) plus int64 `lengths`
        self.lengths: str | None = None  # the name of the `lengths` input

    def uses(self, n: Any, index: int) -> bool:
        """Whether output ``index`` of ONNX node ``n`` is read by a node or is a graph
        output (an optional output nobody reads may be ignored)."""
        return len(n.output) > index and bool(n.output[index]) and n.output[index] in self.used

    # ---- errors -------------------------------------------------------------------------
    def error(self, message: str) -> FormatError:
        """A FormatError naming the file and the ONNX node being converted."""
        n = self.onnx_node
        if n is not None:
            label = n.name or (n.output[0] if n.output else "")
            message = f"node '{label}' ({n.op_type}): {message}"
        return FormatError(message, location=self.where)

    # ---- names --------------------------------------------------------------------------
    def unique(self, name: str) -> str:
        """``name`` with control characters replaced, made unique (case-insensitively)."""
        clean = "".join(ch if ch.isprintable() else "_" for ch in name) or "unnamed"
        candidate, k = clean, 1
        while candidate in self.net:
            k += 1
            candidate = f"{clean}_{k}"
        return candidate

    # ---- values -------------------------------------------------------------------------
    def value(self, name: str) -> Value:
        found = self.values.get(name)
        if found is None:
            raise self.error(f"input '{name}' is not produced by any node, input or initializer")
        return found

    def set(self, name: str, value: Value) -> None:
        value.name = name
        self.values[name] = value

    def const(self, name: str, array: np.ndarray, learnable: bool = False,
              batch: bool = False) -> Value:
        v = Value(name, array=np.asarray(array), learnable=learnable, batch=batch)
        self.values[name] = v
        return v

    def param(self, v: Value, shape: tuple[int, ...] | None = None, name: str | None = None,
              multiplier: float | None = None) -> Node:
        """The LearnableParameter of constant ``v`` (reshaped to ``shape``), made once."""
        assert v.array is not None
        if v.batch:
            raise self.error(f"'{v.name}' holds the batch size (from Shape); only Reshape may "
                             "use it")
        arr = v.array if shape is None else v.array.reshape(shape)
        key = (name or v.name, tuple(arr.shape))
        node = self._params.get(key)
        if node is None:
            if multiplier is None:
                multiplier = 1.0 if v.learnable and not self.constant else 0.0
            value = np.ascontiguousarray(arr, dtype=np.float32)
            node = self.net.add_parameter(self.unique(name or v.name), value,
                                          learning_rate_multiplier=multiplier)
            self._params[key] = node
        return node

    def scalar(self, name: str, number: float) -> Node:
        """A constant (multiplier 0) of shape (1,) for compositions (alpha, beta, bounds)."""
        return self.param(Value(name, array=np.asarray([number], np.float32)), name=name,
                          multiplier=0.0)

    def operand(self, v: Value, rank: int) -> Node:
        """``v`` as a node input of an element-wise op whose output sample has ``rank``:
        a constant loses the leading size-1 axes that lie on the batch axes."""
        if not v.is_const:
            assert v.node is not None
            return v.node
        shape = tuple(v.shape)
        while len(shape) > rank:
            if shape[0] != 1:
                raise self.error(f"constant '{v.name}' {list(v.shape)} broadcasts over the "
                                 "batch axis")
            shape = shape[1:]
        return self.param(v, shape)

    def node(self, v: Value) -> Node:
        """``v`` as a node input (a constant keeps its full shape)."""
        return v.node if v.node is not None else self.param(v)

    # ---- nodes --------------------------------------------------------------------------
    def add(self, name: str, op: str, inputs: list[Node], **attrs: Any) -> Node:
        """Add ``op`` named ``name`` (made unique) and infer its shape at once, so a
        conversion that does not fit fails here, naming the ONNX node."""
        node = self.net.add(self.unique(name), op, inputs, attrs=attrs or None)
        self.infer(node)
        return node

    def infer(self, node: Node) -> None:
        spec = self.net.registry.op(node.op)
        shapes = [tuple(i.shape or ()) for i in node.inputs]
        flags = [bool(i.dynamic) for i in node.inputs]
        ctx = ShapeContext(node.op, node.name, node.attrs, shapes, flags, inputs=node.inputs)
        try:
            out = tuple(int(d) for d in spec.infer_shape(ctx))
        except NetsurgeonError as exc:
            raise self.error(f"as {node.op}: {exc.message}") from None
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError) as exc:
            raise self.error(f"as {node.op}: {exc}") from None
        fixed = _FIXED_DYNAMIC.get(spec.dynamic)
        self.net.update(node, shape=out, dynamic=any(flags) if fixed is None else fixed)

    # ---- axes ---------------------------------------------------------------------------
    def lead(self, v: Value) -> int:
        """The leading batch axes of ``v``: 0 for a constant or a value without the dynamic
        axis; in sequence models 2 for ``(batch, time, ...)`` and 1 for frames
        ``(batch·time, ...)``."""
        if v.is_const:
            return 0
        if v.lead is not None:
            return v.lead
        assert v.node is not None
        return self.batch_rank if v.node.dynamic else 0

    def full_rank(self, v: Value) -> int:
        return len(v.shape) + self.lead(v)

    def sample_axis(self, v: Value, axis: int) -> int:
        """numpy index in ``v``'s sample of the ONNX ``axis`` (negative counts from the end)."""
        rank = self.full_rank(v)
        k = self.lead(v)
        a = axis + rank if axis < 0 else axis
        if not 0 <= a < rank:
            raise self.error(f"axis {axis} is out of range for rank {rank}")
        if a < k:
            raise self.error(f"axis {axis} is a batch axis; netsurgeon ops act per sample")
        return a - k

    @staticmethod
    def registry_axis(index: int, rank: int) -> int:
        """The registry axis (``-k`` = CNTK axis k) of numpy sample index ``index``."""
        return index - rank
