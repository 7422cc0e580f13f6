"""The export context: the ONNX graph under construction and the helpers entries build with.

One :class:`Context` per export. Entries add ONNX nodes with :meth:`Context.add` (outputs get
fresh names ``<node>/<hint>``; the exporter renames a node's last tensor to the node's own
name), constants with :meth:`Context.const` / :meth:`Context.ints`, parameters with
:meth:`Context.parameter` (an initializer named as the node; nodes sharing one numpy array
share one initializer). Parameter data is not copied into the protos: initializers hold a
header and the exporter streams the arrays (``export_write``).

Layout as in the PyTorch runtime: a :class:`Value` with ``dynamic`` is ``(frames, *shape)``,
frames = batch (x time for sequence models, flattened row-major), else ``(*shape)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netsurgeon.errors import FormatError
from netsurgeon.graph import Node

__all__ = ["Value", "Names", "Context", "Streamed", "refuse"]


@dataclass(frozen=True)
class Value:
    """An exported node value as an entry sees it: tensor name, node, frame axis, sample shape."""

    name: str
    node: Node
    dynamic: bool
    shape: tuple[int, ...]

    def __str__(self) -> str:
        return self.name


class Names:
    """Unique names: ``mint(hint)`` returns ``hint`` or ``hint_2``, ``hint_3`` ... never a
    reserved or earlier one (ONNX tensor names must be unique in a model)."""

    def __init__(self, reserved: Iterable[str] = ()) -> None:
        self._used: set[str] = set(reserved)
        self._next: dict[str, int] = {}

    def mint(self, hint: str) -> str:
        base = hint or "t"
        i = self._next.get(base, 1)
        name = base if i == 1 else f"{base}_{i}"
        while name in self._used:
            i += 1
            name = f"{base}_{i}"
        self._next[base] = i
        self._used.add(name)
        return name

    def reserve(self, name: str) -> None:
        self._used.add(name)


@dataclass
class Streamed:
    """An initializer whose data the writer streams from ``array`` (no copy in the proto)."""

    proto: Any  # onnx.TensorProto without data
    array: np.ndarray


@dataclass
class _Scope:
    nodes: list[Any] = field(default_factory=list)
    frames: str | None = None  # 1-d int64 tensor [number of rows of a dynamic value]


class Context:
    """The graph being built. ``sequences``: inputs are (batch, time, ...) plus ``lengths``."""

    def __init__(self, onnx: Any, dtype: np.dtype, opset: int, sequences: bool,
                 reserved: Iterable[str]) -> None:
        self.onnx = onnx
        self.helper = onnx.helper
        self.dtype = np.dtype(dtype)
        self.elem = self.helper.np_dtype_to_tensor_dtype(self.dtype)
        self.opset = opset
        self.sequences = sequences
        self.names = Names(reserved)
        self.node_names = Names()
        self.main = _Scope()
        self.scope = self.main
        self.initializers: list[Any] = []  # small TensorProtos with their data
        self.streamed: list[Streamed] = []
        self.node: Node | None = None  # the node being exported (names helpers after it)
        self.frame_source: str | None = None  # a main-graph dynamic tensor (frames, ...)
        self.batch: str | None = None  # 1-d int64 [B] (sequence mode)
        self.steps: str | None = None  # 1-d int64 [T] (sequence mode)
        self.lengths: str | None = None  # int64 (B,) graph input (sequence mode)
        self._mask: str | None = None
        self._ints: dict[tuple[int, ...], str] = {}
        self._params: dict[int, str] = {}  # id(numpy array) -> initializer name
        #: main-graph frame tensor -> the same data as a (frames, size) matrix (a "twin" an
        #: entry made on the way, so a dense layer needs no Reshape to get back to rows)
        self.flat: dict[str, str] = {}
        #: main-graph tensor -> (rows, weight) of the 2-d MatMul that computed its twin
        self.products: dict[str, tuple[str, str]] = {}
        #: node -> how many exported nodes read it (+1 for a graph output), set by the exporter
        self.uses: dict[Node, int] = {}

    # ---- nodes ---------------------------------------------------------------------------
    def _hint(self, hint: str) -> str:
        prefix = self.node.name if self.node is not None else "netsurgeon"
        return f"{prefix}/{hint}"

    def add(self, op: str, inputs: Sequence[str], hint: str | None = None, outputs: int = 1,
            **attrs: Any) -> Any:
        """Append ``op`` to the current graph; returns its output name (a list if ``outputs``
        > 1). Attribute values are passed to ``onnx.helper.make_node``."""
        base = self._hint(hint or op)
        outs = [self.names.mint(base) for _ in range(outputs)]
        self.scope.nodes.append(self.helper.make_node(op, list(inputs), outs,
                                                      name=self.node_names.mint(base), **attrs))
        return outs[0] if outputs == 1 else outs

    @contextlib.contextmanager
    def subgraph(self, frames: str | None) -> Iterator[list[Any]]:
        """Collect nodes into a new list (a Scan body); ``frames`` is its row count."""
        outer = self.scope
        self.scope = _Scope(frames=frames)
        try:
            yield self.scope.nodes
        finally:
            self.scope = outer

    @contextlib.contextmanager
    def in_main(self) -> Iterator[None]:
        """Emit into the main graph (values computed once, before any loop that reads them)."""
        outer = self.scope
        self.scope = self.main
        try:
            yield
        finally:
            self.scope = outer

    # ---- constants and parameters -----------------------------------------------------------
    def const(self, array: Any, hint: str = "const", dtype: Any = None) -> str:
        """A constant initializer (float arrays in the export's dtype unless ``dtype``)."""
        arr = np.asarray(array)
        if dtype is not None:
            arr = arr.astype(dtype)
        elif arr.dtype.kind == "f":
            arr = arr.astype(self.dtype)
        name = self.names.mint(self._hint(hint))
        self.initializers.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def scalar(self, value: float, hint: str = "c") -> str:
        """A float scalar constant (shape ()) of the export's dtype."""
        return self.const(np.asarray(value, self.dtype), hint)

    def ints(self, values: Iterable[int]) -> str:
        """A 1-d int64 constant (shapes, axes, indices); shared between nodes."""
        key = tuple(int(v) for v in values)
        name = self._ints.get(key)
        if name is None:
            text = "_".join(str(v) for v in key[:8]).replace("-", "m") or "empty"
            name = self.names.mint(f"ints/{text}")
            self.initializers.append(self.onnx.numpy_helper.from_array(
                np.asarray(key, np.int64).reshape(len(key)), name))
            self._ints[key] = name
        return name

    def parameter(self, node: Node) -> str:
        """The initializer of a parameter (or precomputed statistic) named as the node; a node
        sharing another's numpy array becomes an Identity of the first one's initializer."""
        value = node.value
        first = self._params.get(id(value))
        if first is not None:
            return self.add("Identity", [first], "shared")
        arr = np.asarray(value)
        if arr.dtype != self.dtype:
            arr = arr.astype(self.dtype)
        arr = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False)
        proto = self.onnx.TensorProto()
        proto.name = node.name
        proto.data_type = self.elem
        proto.dims.extend(int(d) for d in arr.shape)
        self.streamed.append(Streamed(proto, arr))
        self._params[id(value)] = node.name
        return node.name

    # ---- frames, sequences and the mask -----------------------------------------------------
    def frames(self) -> str:
        """1-d int64 ``[rows]`` of a dynamic value here: frames in the main graph, the batch
        inside a loop body."""
        if self.scope.frames is not None:
            return self.scope.frames
        if self.main.frames is None:
            with self.in_main():
                if self.sequences:
                    self.main.frames = self.add("Mul", [self.batch_size(), self.time_steps()],
                                                "frames")
                else:
                    shape = self.add("Shape", [self.frame_source], "shape", start=0, end=1)
                    self.main.frames = shape
        return self.main.frames

    def batch_size(self) -> str:
        assert self.batch is not None, "sequence mode binds the batch size"
        return self.batch

    def time_steps(self) -> str:
        assert self.steps is not None, "sequence mode binds the time steps"
        return self.steps

    def mask(self) -> str | None:
        """``(frames,)`` 1 for real frames and 0 for padding (sequence mode), else None."""
        if not self.sequences:
            return None
        if self._mask is None:
            with self.in_main():
                t = self.add("Squeeze", [self.time_steps(), self.ints([0])], "T")
                zero = self.const(np.asarray(0, np.int64), "zero", np.int64)
                one = self.const(np.asarray(1, np.int64), "one", np.int64)
                steps = self.add("Range", [zero, t, one], "steps")
                row = self.add("Unsqueeze", [steps, self.ints([0])], "steps_row")
                col = self.add("Unsqueeze", [self.lengths, self.ints([1])], "lengths_col")
                real = self.add("Less", [row, col], "real")
                mask = self.add("Cast", [real], "mask2d", to=self.elem)
                self._mask = self.add("Reshape", [mask, self.ints([-1])], "mask")
        return self._mask

    # ---- shapes -----------------------------------------------------------------------------
    def reshape(self, v: Value, shape: Sequence[int], hint: str = "reshape") -> str:
        """``v``'s sample reshaped to ``shape`` (the frame axis kept)."""
        shape = tuple(int(d) for d in shape)
        if tuple(v.shape) == shape:
            return v.name
        dims = (-1, *shape) if v.dynamic else shape
        return self.add("Reshape", [v.name, self.ints(dims)], hint)

    def twin(self, v: Value) -> str | None:
        """``v`` (a frame value) as a (frames, size) matrix without adding a node: itself for a
        1-d sample, else the twin an earlier entry left (:meth:`unflat`), else None."""
        if not v.dynamic:
            return None
        if len(v.shape) == 1:
            return v.name
        return self.flat.get(v.name) if self.scope is self.main else None

    def rows(self, v: Value) -> str:
        """``v`` (a frame value) as a (frames, size) matrix: :meth:`twin`, else a Reshape."""
        twin = self.twin(v)
        if twin is not None:
            return twin
        return self.add("Reshape", [v.name, self.ints((-1, int(np.prod(v.shape))))], "rows")

    def unflat(self, node: Node, flat: str) -> str:
        """``node``'s frame value from ``flat``, its (frames, size) matrix: ``flat`` itself for a
        1-d sample, else a Reshape whose input is remembered as the value's twin."""
        shape = tuple(node.shape or ())
        if len(shape) == 1:
            return flat
        out = self.add("Reshape", [flat, self.ints((-1, *shape))], node.op)
        if self.scope is self.main:
            self.flat[out] = flat
        return out

    def renamed(self, old: str, new: str) -> None:
        """The exporter renamed tensor ``old`` to ``new``: move what is known about it."""
        if old in self.flat:
            self.flat[new] = self.flat.pop(old)
        if old in self.products:
            self.products[new] = self.products.pop(old)

    def with_frames(self, dims: Sequence[int]) -> str:
        """1-d int64 ``[rows, *dims]`` (for Expand / Reshape of frame values)."""
        return self.add("Concat", [self.frames(), self.ints(dims)], "shape", axis=0)

    def view(self, v: Value, name: str, shape: Sequence[int] | None = None,
             dynamic: bool | None = None) -> Value:
        """A Value for tensor ``name`` computed from ``v`` (same node)."""
        return Value(name, v.node, v.dynamic if dynamic is None else dynamic,
                     tuple(v.shape if shape is None else shape))


def refuse(node: Node, why: str) -> FormatError:
    """The one-line error for a node the exporter cannot express (raise it)."""
    return FormatError(f"cannot export node '{node.name}' ({node.op}) to ONNX: {why}")
