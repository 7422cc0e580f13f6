"""Code generation: a network becomes one straight-line Python ``def forward(...)`` of torch calls.

``generate(net, outputs)`` is a pure reader of the IR (style rule 4): it orders the nodes the
outputs need, groups recurrent loops (strongly connected components through PastValue /
FutureValue), asks each op's entry in the registry's ``torch`` layer for an expression, and
returns a :class:`TorchSource` (text, globals, line -> node map). Values are freed (``del``)
after their last use. It only lowers: rewrites such as ``FuseLinear`` run before, on the copy
that :func:`~netsurgeon.runtime.compile.compile_network` compiles.

Layout of values in the generated code: a value with the batch/time axis is ``(frames,
*sample)`` where frames = batch x time (padded, row-major), a value without it is
``(*sample)``. Code outside loops runs on all frames at once; a recurrent loop becomes a
``for t in range(T)`` block whose body sees ``(batch, *sample)`` per step. One exception: a
frame value of sample shape (1, ..., 1, n) (a dense layer over a CNTK [n x 1] column) is held
as *rows*, ``(frames, n)``, where every user's lowering takes rows (``Arg.rows``), so a dense
network's code has no reshapes into and out of the size-1 axes (each one a view, and a node
of a training step's autograd graph).

NOTE: why one frame axis. Every op except the delays and the criteria treats frames alike,
so flattening batch and time keeps each lowering oblivious of sequences; only the delays
reshape to (batch, time, ...) and the criteria apply the padding mask.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from netsurgeon.errors import EvaluationError
from netsurgeon.graph import (
    Network,
    Node,
    reachable_up,
    strongly_connected_components,
    topological_order,
)
from netsurgeon.ops import Category
from netsurgeon.runtime import _kernels, chunks
from netsurgeon.runtime.lowerings import TorchLowering

__all__ = ["TorchSource", "Arg", "Emitter", "generate", "needed_nodes", "one_row"]


@dataclass(frozen=True)
class TorchSource:
    """Generated source plus what it needs to run.

    Attributes:
        text: the ``def forward(...)`` source.
        globals: names the source refers to (torch, helpers, parameter tensors).
        line_to_node: 1-based line number -> node name, for error messages.
        inputs: input node names, in argument order (after them: mask, lengths, B, T).
        outputs: node names returned, in order.
        params: parameter node name -> tensor used (shared between nodes that share storage).
        sparse: input names compiled to accept sparse tensors.
        pieces: 1-based first line of each function to compile on its own (a long network's
            ``forward`` and its chunk functions, see :mod:`~netsurgeon.runtime.chunks`).
        name: the entry function's name.
        method: the code reads parameters and constants from a module passed first as ``self``
            (``generate(..., module_attrs=...)``, :mod:`~netsurgeon.runtime.module`).
        constants: attribute name -> tensor constant the code reads as ``self.<name>``
            (method code only; elsewhere constants are globals).
    """

    text: str
    globals: dict[str, Any]
    line_to_node: dict[int, str]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    sparse: frozenset[str] = frozenset()
    pieces: tuple[int, ...] = (1,)
    name: str = "forward"
    method: bool = False
    constants: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Arg:
    """An input value as a lowering sees it."""

    expr: str
    node: Node
    dynamic: bool
    shape: tuple[int, ...]
    sparse: bool = False
    #: the lengths variable of the value's dynamic axis: ``lengths`` for the minibatch's,
    #: another one for an axis a Where made (same (batch, time) grid, frames at the front)
    axis: str = "lengths"
    #: the value, of sample shape (1, ..., 1, n), is held as rows (frames, n): made so where
    #: every user takes rows (``TorchLowering.takes_rows``), it saves two views per value in
    #: a training step's autograd graph (a dense layer's (frames, n) product and its reshape)
    rows: bool = False

    def __str__(self) -> str:
        return self.expr

    @property
    def full(self) -> str:
        """The value as (frames, *sample), whether or not it is held as rows."""
        return f"{self.expr}.reshape(-1, {', '.join(map(str, self.shape))})" if self.rows \
            else self.expr


def one_row(shape: tuple[int, ...] | None) -> bool:
    """Whether a sample shape is (1, ..., 1, n) with at least one leading 1: a value that
    may be held as rows (see ``Arg.rows``)."""
    return shape is not None and len(shape) >= 2 and all(d == 1 for d in shape[:-1])


class Namespace:
    """Mints unique Python identifiers from CNTK names (``L1.W`` -> ``v_L1_W``)."""

    def __init__(self, reserved: tuple[str, ...] = ()) -> None:
        self._used: set[str] = set(reserved)
        self._reserved = frozenset(reserved)
        self._next: dict[str, int] = {}  # base -> next suffix to try (no rescans)

    def mint(self, hint: str, prefix: str = "v_") -> str:
        base = prefix + re.sub(r"\W", "_", hint)[:40]
        if keyword.iskeyword(base) or not base.isidentifier():
            base = prefix + "x"
        name, i = base, self._next.get(base, 1)
        if i > 1:
            name = f"{base}_{i}"
        while name in self._used:
            i += 1
            name = f"{base}_{i}"
        self._next[base] = i
        self._used.add(name)
        return name

    def minted(self, exclude: Container[str] = ()) -> set[str]:
        """The names minted so far (not the reserved ones), less ``exclude``."""
        return {n for n in self._used if n not in self._reserved and n not in exclude}


class Emitter:
    """What a lowering may use: names, globals, extra statements, the run mode."""

    def __init__(self, ns: Namespace, globals_: dict[str, Any], training: bool,
                 config: dict[str, Any], in_loop: bool = False, builder: Any = None) -> None:
        self.ns = ns
        self.builder = builder  # the generation run (parameters, values of other nodes)
        self.globals = globals_
        self.training = training
        self.config = config
        self.in_loop = in_loop
        self.lines: list[str] = []
        self.mask = "mask"
        self.batch = "B"
        self.steps = "T"
        self.lengths = "lengths"
        self.out_axis: str | None = None  # a lowering's result on another axis (Where, ...)
        # the node's value may be returned as rows (every user takes them): a lowering that
        # does so sets ``out_rows``
        self.rows_ok = False
        self.out_rows = False

    def new_axis(self, hint: str) -> tuple[str, str]:
        """Names for the lengths and mask of a new dynamic axis (a lowering assigns both in
        :meth:`pre` statements and sets :attr:`out_axis`)."""
        lengths, mask = self.ns.mint(hint, "len_"), self.ns.mint(hint, "mask_")
        if self.builder is not None:
            self.builder.axis_mask[lengths] = mask
        self.out_axis = lengths
        return lengths, mask

    def glob(self, value: Any, hint: str = "c") -> str:
        """Put ``value`` in the generated code's globals; returns its name (method code keeps
        tensors on the module instead, so they move with it: ``self.<name>``)."""
        if self.builder is not None and self.builder.method and isinstance(value, torch.Tensor):
            return self.builder.constant(value, hint)
        name = self.ns.mint(hint, "g_")
        self.globals[name] = value
        return name

    def const(self, array: Any, hint: str = "c", dtype: Any = None) -> str:
        """A constant tensor from a number or array."""
        dtype = dtype or self.config.get("dtype", torch.float32)
        return self.glob(torch.as_tensor(np.asarray(array), dtype=dtype), hint)

    def static(self, expr: str, hint: str = "c") -> str:
        """At inference, evaluate an expression of parameters once at compile time (a reshaped
        weight) and return its global name; in training (or if it reads run-time values) the
        expression is returned unchanged so autograd sees it."""
        return self.builder.static(expr, hint) if self.builder is not None else expr

    def pre(self, statement: str) -> None:
        """A statement emitted before the node's own assignment."""
        self.lines.append(statement)

    def tmp(self, hint: str = "t") -> str:
        return self.ns.mint(hint, "t_")


#: ops whose inputs may be on different dynamic axes (their lowering sets the result's)
_CROSS_AXIS = frozenset({"PackedIndex", "GatherPacked", "ScatterPacked", "ReconcileDynamicAxis"})
_RESERVED = ("torch", "F", "K", "forward", "mask", "lengths", "B", "T", "t", "range", "self")


def needed_nodes(net: Network, outputs: list[Node]) -> list[Node]:
    """Every node the outputs depend on (delayed inputs included): the graph's
    :func:`~netsurgeon.graph.reachable_up`, kept under this name for the commands."""
    return reachable_up(net, outputs)


def lowering_of(net: Network, node: Node) -> TorchLowering:
    """The op's torch entry; an EvaluationError quoting why when the runtime has none."""
    registry = net.registry
    low = registry.entry("torch", node.op)
    if low is None:
        reason = registry.unsupported_reason("torch", node.op)
        if reason is None:
            reason = ("no PyTorch lowering is registered (import netsurgeon.runtime, or attach "
                      "netsurgeon.runtime.lowerings.TORCH to this network's registry)")
        raise EvaluationError(f"{node.op} cannot be evaluated: {reason}", node=node.name)
    return low


class _Builder:
    """One generation run: holds the emitted lines and value names."""

    def __init__(self, net: Network, outputs: list[Node], training: bool,
                 sparse: frozenset[str], tensors: dict[str, Any] | None,
                 config: dict[str, Any], module_attrs: Mapping[str, str] | None = None,
                 name: str = "forward", constant_prefix: str = "c_") -> None:
        self.net = net
        self.outputs = outputs
        self.training = training
        self.sparse_inputs = sparse
        self.config = config
        self.ns = Namespace(_RESERVED)
        self.globals: dict[str, Any] = {"torch": torch, "F": torch.nn.functional, "K": _kernels}
        self.lines: list[tuple[str, str | None]] = []  # (text, node name)
        self.value: dict[Node, Arg] = {}
        self.tensors = tensors if tensors is not None else {}
        self.params: dict[str, Any] = {}
        self.inputs: list[Node] = []
        self.locals: set[str] = set()  # names assigned in forward() (candidates for del)
        self.dense: dict[Node, Arg] = {}  # densified sparse inputs, made once
        self.name = name
        self.attrs = module_attrs  # parameter name -> module attribute (method code)
        self.method = module_attrs is not None
        self.constant_prefix = constant_prefix
        self.constants: dict[str, Any] = {}
        self.axis_mask: dict[str, str] = {"lengths": "mask"}  # lengths variable -> mask
        self.rows: set[Node] = set()  # values that may be held as rows (see Arg.rows)

    # ---- emission helpers ----------------------------------------------------------------
    def emit(self, text: str, node: Node | None = None, indent: int = 1) -> None:
        self.lines.append(("    " * indent + text, node.name if node is not None else None))

    def arg_for(self, inp: Node, low: TorchLowering, indent: int, node: Node) -> Arg:
        a = self.value[inp]
        if a.sparse and not low.accepts_sparse:
            dense = self.dense.get(inp)
            if dense is None or indent != 1:
                name = self.ns.mint(inp.name + "_dense")
                self.emit(f"{name} = {a.expr}.to_dense()", node, indent)
                dense = Arg(name, a.node, a.dynamic, a.shape, False)
                if indent == 1:
                    self.dense[inp] = dense
                    self.locals.add(name)
            return dense
        return a

    def lower(self, node: Node, indent: int, in_loop: bool,
              args: list[Arg] | None = None) -> Arg:
        low = lowering_of(self.net, node)
        if args is None:
            takes = getattr(low, "takes_rows", ())
            args = [self._taken(self.arg_for(inp, low, indent, node), i in takes)
                    for i, inp in enumerate(node.inputs) if inp is not None]
        em = self.emitter(in_loop)
        em.rows_ok = node in self.rows and not in_loop
        axes = {a.axis for a in args if a.dynamic}
        if len(axes) > 1 and node.op not in _CROSS_AXIS:
            raise EvaluationError(f"{node.op}: the inputs are on different dynamic axes (one "
                                  "made by Where); reconcile them first", node=node.name)
        axis = next(iter(axes)) if len(axes) == 1 else "lengths"
        em.lengths, em.mask = axis, self.axis_mask[axis]
        try:
            expr = low(em, node, args)
        except EvaluationError:
            raise
        except Exception as exc:  # a lowering that cannot handle these attributes/shapes
            raise EvaluationError(f"cannot generate code for {node.op}: {exc}",
                                  node=node.name) from exc
        for stmt in em.lines:
            self.emit(stmt, node, indent)
        dynamic = bool(node.dynamic)
        out_axis = em.out_axis or axis
        rows = em.out_rows and em.rows_ok
        if expr.isidentifier():
            return Arg(expr, node, dynamic, tuple(node.shape or ()), axis=out_axis, rows=rows)
        name = self.ns.mint(node.name)
        self.emit(f"{name} = {expr}", node, indent)
        if indent == 1:
            self.locals.add(name)
        return Arg(name, node, dynamic, tuple(node.shape or ()), axis=out_axis, rows=rows)

    @staticmethod
    def _taken(a: Arg, takes_rows: bool) -> Arg:
        """``a`` as an input that does (or does not) take rows: a rows value reshaped to
        (frames, *sample) for one that does not."""
        if not a.rows or takes_rows:
            return a
        return Arg(a.full, a.node, a.dynamic, a.shape, a.sparse, a.axis)

    def row_values(self, units: list[list[Node]], loops: list[bool]) -> set[Node]:
        """The values that may be held as rows (``Arg.rows``): one-row frame values, not
        returned, all of whose users are top-level nodes whose lowering takes rows there."""
        registry = self.net.registry
        taken: set[Node] = set()
        refused: set[Node] = set()
        for unit, is_loop in zip(units, loops):
            for n in unit:
                takes: tuple[int, ...] | None = None
                for i, inp in enumerate(n.inputs):
                    if inp is None or not one_row(inp.shape):
                        continue
                    if takes is None:
                        low = registry.entry("torch", n.op)
                        takes = () if is_loop or low is None else \
                            tuple(getattr(low, "takes_rows", ()))
                    (taken if i in takes else refused).add(inp)
        keep = set(self.outputs)
        looped = {n for unit, is_loop in zip(units, loops) if is_loop for n in unit}
        return {n for n in taken - refused
                if n.dynamic and n not in keep and n not in looped}

    # ---- whole network -----------------------------------------------------------------------
    def build(self) -> TorchSource:
        net = self.net
        needed = needed_nodes(net, self.outputs)
        needed_set = set(needed)
        order = topological_order(net, needed, skip_delayed=True)
        position = {n: i for i, n in enumerate(order)}
        comps = strongly_connected_components(net, [n for n in order])
        units: list[list[Node]] = []
        for comp in comps:
            comp = [n for n in comp if n in needed_set]
            if not comp:
                continue
            comp.sort(key=lambda n: position[n])
            units.append(comp)
        inputs = net.registry.op_set(Category.INPUT)
        self.inputs = [n for n in order if n.op in inputs]
        # last use of every node, by unit index
        unit_of = {n: i for i, u in enumerate(units) for n in u}
        last_use: dict[Node, int] = {}
        for i, unit in enumerate(units):
            for n in unit:
                for inp in n.inputs:
                    if inp is not None and unit_of.get(inp, -1) != i:
                        last_use[inp] = max(last_use.get(inp, -1), i)
        dies: list[list[Node]] = [[] for _ in units]  # unit index -> values last used there
        for n, last in last_use.items():
            dies[last].append(n)
        keep = set(self.outputs)
        loops = [len(u) > 1 or any(x is u[0] for x in u[0].inputs) for u in units]
        self.rows = self.row_values(units, loops)
        ends: list[int] = []  # line index after each unit: where the body may be cut
        # nodes holding each value name: an identity lowering (Dropout at inference, Trace)
        # returns its input's name, which must live as long as the longest-lived holder
        holders: dict[str, list[Node]] = {}
        for i, unit in enumerate(units):
            if loops[i]:
                self.loop(unit, units, unit_of, i)
            else:
                node = unit[0]
                if node.op in inputs:
                    name = self.ns.mint(node.name, "x_")
                    sparse = node.name in self.sparse_inputs
                    self.value[node] = Arg(name, node, True, tuple(node.shape or ()), sparse)
                else:
                    self.value[node] = self.lower(node, 1, False)
            for n in unit:
                if n in self.value:
                    holders.setdefault(self.value[n].expr, []).append(n)
            dead = [n for n in dies[i] if n not in keep
                    and n in self.value and self.value[n].expr in self.locals
                    and all(m not in keep and last_use.get(m, -1) <= i
                            for m in holders[self.value[n].expr])]
            if dead:
                self.emit("del " + ", ".join(sorted({self.value[n].expr for n in dead})))
            ends.append(len(self.lines))
        args = [self.value[n].expr for n in self.inputs]
        extra = ["mask", "lengths", "B", "T"]
        lead = ["self"] if self.method else []
        rets = ", ".join(self._returned(self.value[n]) for n in self.outputs)
        self.emit(f"return ({rets},)")
        split = chunks.split(self.lines, ends, args, extra,
                             self.ns.minted(self.globals),
                             lambda hint: self.ns.mint(hint if self.name == "forward" else
                                                       f"{self.name}_{hint}", "c_"),
                             lead=lead, function=self.name)
        if split is None:
            lines = [(f"def {self.name}({', '.join(lead + args + extra)}):", None), *self.lines]
            pieces: tuple[int, ...] = (1,)
        else:
            lines, pieces = split
        self.lines = []
        return TorchSource(
            text="\n".join(t for t, _ in lines) + "\n",
            globals=self.globals,
            line_to_node={i + 1: name for i, (_, name) in enumerate(lines) if name},
            inputs=tuple(n.name for n in self.inputs),
            outputs=tuple(n.name for n in self.outputs),
            params=self.params,
            sparse=self.sparse_inputs,
            pieces=pieces,
            name=self.name,
            method=self.method,
            constants=self.constants,
        )

    # ---- recurrent loops -------------------------------------------------------------------
    def loop(self, unit: list[Node], units, unit_of, index: int) -> None:
        """Emit a ``for t`` block stepping the loop's nodes over time (see ``sequences``)."""
        from netsurgeon.runtime.sequences import emit_loop

        emit_loop(self, unit, unit_of)

    def param(self, node: Node) -> str:
        """Global name of a parameter's tensor; nodes sharing one numpy array share it. Method
        code reads it from the module instead: ``self.<attribute>``."""
        if self.attrs is not None:
            attr = self.attrs.get(node.name)
            if attr is None:
                raise EvaluationError("the module has no attribute for this parameter",
                                      node=node.name)
            return f"self.{attr}"
        tensor = self.tensors.get(node.name)
        if tensor is None:
            if node.value is None:
                raise EvaluationError("parameter has no value; initialise or load it first",
                                      node=node.name)
            key = ("__storage__", id(node.value))
            tensor = self.tensors.get(key)  # type: ignore[call-overload]
            if tensor is None:
                tensor = to_tensor(node.value, self.config.get("dtype"))
                self.tensors[key] = tensor  # type: ignore[index]
        self.params[node.name] = tensor
        name = self.ns.mint(node.name, "P_")
        self.globals[name] = tensor
        return name

    def constant(self, value: Any, hint: str) -> str:
        """A tensor constant of method code: an attribute of the module (see TorchSource)."""
        name = self.ns.mint(hint, self.constant_prefix)
        self.constants[name] = value
        return f"self.{name}"

    def static(self, expr: str, hint: str = "c") -> str:
        """See :meth:`Emitter.static`."""
        if self.training or expr.isidentifier():
            return expr
        names = set(re.findall(r"(?<![.\w])([A-Za-z_]\w*)", expr))  # not attributes
        if not all(n in self.globals for n in names):
            return expr
        try:
            with torch.no_grad():
                value = eval(expr, dict(self.globals))
        except Exception:
            return expr
        name = self.ns.mint(hint, "g_")
        self.globals[name] = value
        return name

    def _returned(self, a: Arg) -> str:
        """An output as returned: on an axis a Where made, its padding frames zeroed (the
        caller masks with the minibatch's lengths only)."""
        if not a.dynamic or a.axis == "lengths":
            return a.expr
        return f"K.mask_frames({a.expr}, {self.axis_mask[a.axis]})"

    def emitter(self, in_loop: bool = False) -> Emitter:
        """What a lowering (or the loop emitter) gets to work with."""
        return Emitter(self.ns, self.globals, self.training, self.config, in_loop, self)


def to_tensor(value: Any, dtype: Any = None) -> torch.Tensor:
    """A torch tensor over a numpy array, sharing memory when the array allows it."""
    arr = np.asarray(value)
    want = dtype or (torch.float64 if arr.dtype == np.float64 else torch.float32)
    if arr.flags.writeable and arr.flags.aligned and arr.flags.c_contiguous \
            and arr.dtype == {torch.float32: np.float32, torch.float64: np.float64}.get(want):
        return torch.from_numpy(arr)
    return torch.tensor(np.ascontiguousarray(arr), dtype=want)


def generate(net: Network, outputs: list[Node | str], *, training: bool = False,
             sparse_inputs: frozenset[str] = frozenset(), tensors: dict[str, Any] | None = None,
             config: dict[str, Any] | None = None, module_attrs: Mapping[str, str] | None = None,
             name: str = "forward", constant_prefix: str = "c_") -> TorchSource:
    """Generate the straight-line forward function computing ``outputs``.

    Args:
        net: a network; it is validated first when some shape is not inferred yet.
        outputs: nodes (or names) to return, in order.
        training: emit training behaviour (dropout on, batch-norm statistics from the batch).
        sparse_inputs: input node names that will be fed as sparse (CSR) tensors.
        tensors: parameter tensors to use by node name (shared with a trainer); missing ones
            are created from ``node.value``.
        config: run options (``dtype``, ``dropout_rate``).
        module_attrs: parameter node name -> attribute name: generate *method* code, a
            function taking the module first (``self``) that reads each parameter as
            ``self.<attribute>`` and its tensor constants as ``self.<constant_prefix>...``
            (``TorchSource.constants``), so that the module owns every tensor. Nothing is
            folded at generation time then: loading new weights into the module is enough.
        name: the entry function's name (``forward``).
        constant_prefix: prefix of the constants' attribute names (method code).
    """
    if any(n.shape is None or n.dynamic is None for n in net.nodes):
        net.validate()
    nodes = [net.node(o) for o in outputs]
    builder = _Builder(net, nodes, training, frozenset(sparse_inputs), tensors, dict(config or {}),
                       module_attrs, name, constant_prefix)
    return builder.build()
