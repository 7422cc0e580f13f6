"""``netsurgeon.to_torch(net)``: a network as a ``torch.nn.Module``.

The module runs the code the runtime generates for evaluation and training
(:func:`~netsurgeon.runtime.codegen.generate` in *method* mode: parameters and constants are
read from the module, ``self.p_L1_W``), wrapped by
:class:`~netsurgeon.runtime._module_base.NetworkModule`, which owns the tensors and keys
``state_dict()`` by node name. No op is implemented twice: the numerics are the runtime's.
:func:`module_parts` is the recipe both :func:`to_torch` and the standalone writer
(:mod:`~netsurgeon.runtime.standalone`) build from.
"""

from __future__ import annotations

import keyword
import re
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from netsurgeon.errors import EvaluationError
from netsurgeon.graph import Network, Node
from netsurgeon.graph._bulk import collector_paused
from netsurgeon.ops import Category
from netsurgeon.runtime._module_base import NetworkModule
from netsurgeon.runtime.batch import Minibatch, SparseRows
from netsurgeon.runtime.codegen import Namespace, TorchSource, generate, needed_nodes
from netsurgeon.runtime.compile import (
    compile_source,
    default_outputs,
    feed,
    fused_copy,
    map_error,
    network_dtype,
)
from netsurgeon.runtime.lowerings.linear import matmul_weights

__all__ = ["to_torch", "TorchModule", "ModuleParts", "module_parts"]

_MODES = (("eval", False), ("train", True))
_PACKED_OPS = frozenset({"Where", "PackedIndex", "GatherPacked", "ScatterPacked"})


@dataclass(frozen=True)
class ModuleParts:
    """Everything a module is made of (plain values, so a writer can print them).

    Attributes:
        spec: the :class:`NetworkModule` spec (inputs, outputs, sequences, state, train_error).
        sources: ``eval`` / ``train`` -> generated method code (no ``train`` when unavailable).
        forward: source of the ``forward`` method (the signature names the inputs).
        tensors: state attribute -> initial value (a copy of the node's value).
        constants: attribute -> constant tensor the code reads.
    """

    spec: dict[str, Any]
    sources: dict[str, TorchSource]
    forward: str
    tensors: dict[str, torch.Tensor]
    constants: dict[str, torch.Tensor]


def _state(net: Network, needed: list[Node]) -> tuple[dict[str, str], list[tuple]]:
    """Parameter node -> attribute, and the spec's state entries: one per storage."""
    registry = net.registry
    params = registry.op_set(Category.PARAMETER) | registry.op_set(Category.PRECOMPUTE)
    buffers: set[str] = set()
    for n in needed:  # batch-norm running statistics (updated in place in training)
        low = registry.entry("torch", n.op)
        for i in low.state_inputs if low is not None else ():
            if i < len(n.inputs) and n.inputs[i] is not None:
                buffers.add(n.inputs[i].name)
    ns = Namespace(("self",))
    groups: dict[Any, list[Node]] = {}
    for n in needed:
        if n.op in params:
            key = id(n.value) if n.value is not None else ("node", n.name)
            groups.setdefault(key, []).append(n)
    attrs: dict[str, str] = {}
    state = []
    for nodes in groups.values():
        attr = ns.mint(nodes[0].name, "p_")
        for n in nodes:
            attrs[n.name] = attr
        if any(n.op not in registry.op_set(Category.PARAMETER) or n.name in buffers
               for n in nodes):
            kind = "buffer"
        elif any(n.learning_rate_multiplier > 0 for n in nodes):
            kind = "parameter"
        else:
            kind = "frozen"
        state.append((attr, [n.name for n in nodes], kind))
    return attrs, state


def _arg_names(inputs: Iterable[str]) -> list[str]:
    """``forward``'s argument names: the input names where they are identifiers."""
    used = {"self", "lengths"}
    out = []
    for name in inputs:
        arg = name if name.isidentifier() and not keyword.iskeyword(name) else \
            re.sub(r"\W", "_", name)
        if not arg.isidentifier() or keyword.iskeyword(arg):
            arg = "x_" + arg
        base, i = arg, 2
        while arg in used:
            arg, i = f"{base}_{i}", i + 1
        used.add(arg)
        out.append(arg)
    return out


def forward_source(spec: dict[str, Any]) -> str:
    """The ``forward`` method: one argument per input (named as the node where possible),
    plus ``lengths`` for sequences; it returns ``{output name: tensor}``."""
    args = [arg for _, arg, _ in spec["inputs"]]
    seq = spec["sequences"]
    sig = ", ".join(["self", *args] + (["lengths=None"] if seq else []))
    pack = "(" + ", ".join(args) + ("," if len(args) == 1 else "") + ")"
    lead = "(batch, time, " if seq else "(batch, "
    lines = [f"{node if node == arg else f'{arg} ({node!r})'}: {lead}{', '.join(map(str, shape))})"
             for node, arg, shape in spec["inputs"]]
    if seq:
        lines.append("lengths: (batch,) int64 sequence lengths (default: all full)")
    outs = ", ".join(repr(n) for n, _ in spec["outputs"])
    doc = "; ".join(lines) + f" -> {{{outs}}}"
    return (f"def forward({sig}):\n"
            f"    {doc!r}\n"
            f"    return self._run({pack}, {'lengths' if seq else 'None'})\n")


def method_source(net: Network, outs: list[Node], attrs: dict[str, str], *, training: bool,
                  config: dict[str, Any], name: str, prefix: str,
                  sparse_inputs: frozenset[str] = frozenset()) -> TorchSource:
    """Method code computing ``outs`` from the fused copy of ``net``, reading the parameters
    as ``self.<attrs[node]>`` and its constants as ``self.<prefix>...``."""
    with collector_paused():
        work, work_outs = fused_copy(net, outs, training=training, sparse_inputs=sparse_inputs)
        return generate(work, work_outs, training=training, sparse_inputs=sparse_inputs,
                        module_attrs=attrs, name=name, constant_prefix=prefix, config=config)


def module_parts(net: Network, outputs: Iterable[Node | str] | None = None, *,
                 config: dict[str, Any] | None = None, uncomputed: bool = False,
                 column_major: bool = False) -> ModuleParts:
    """Generate the code and collect the tensors of the module computing ``outputs``.

    Raises EvaluationError (naming the node) when evaluation code cannot be generated or a
    parameter has no value; training code that cannot be generated is recorded in
    ``spec["train_error"]`` and raised when the module runs in training mode.

    ``config`` holds run options for the generated code (``dropout_rate``: the Trainer's
    ``--dropout``); ``uncomputed=True`` accepts Mean/InvStdDev nodes without a value (their
    buffers are zeros, listed in ``spec["uncomputed"]``, to be filled by the precompute pass).
    ``column_major=True`` lists the trainable dense weight matrices in ``spec["column_major"]``
    (see :func:`to_torch`).
    """
    if any(n.shape is None or n.dynamic is None for n in net.nodes):
        net.validate()
    outs = [net.node(o) for o in outputs] if outputs else default_outputs(net)
    needed = needed_nodes(net, outs)
    attrs, state = _state(net, needed)
    dtype = network_dtype(net)
    cfg = {**(config or {}), "dtype": dtype}
    if uncomputed:
        cfg["uncomputed"] = True
    sources: dict[str, TorchSource] = {}
    train_error = None
    for mode, training in _MODES:
        try:
            sources[mode] = method_source(net, outs, attrs, training=training, config=cfg,
                                          name=f"forward_{mode}", prefix=f"{mode}_")
        except EvaluationError as exc:
            if not training:
                raise
            train_error = f"no training code: {exc}"
    names = list(sources["eval"].inputs)
    if "train" in sources and list(sources["train"].inputs) != names:
        raise EvaluationError("the training code takes its inputs in another order than the "
                              "evaluation code", node=names[0] if names else None)
    tensors: dict[str, torch.Tensor] = {}
    entries = []
    missing: list[str] = []
    precompute = net.registry.op_set(Category.PRECOMPUTE)
    for attr, nodes, kind in state:
        node = net.node(nodes[0])
        if node.value is None:
            if not (uncomputed and node.op in precompute):
                raise EvaluationError("parameter has no value; initialise or load it first",
                                      node=node.name)
            missing.extend(nodes)
            tensors[attr] = torch.zeros(tuple(node.shape or ()), dtype=dtype)
        else:
            tensors[attr] = torch.tensor(np.array(node.value, copy=True), dtype=dtype)
        entries.append((attr, nodes, list(tensors[attr].shape), str(dtype).split(".")[-1], kind))
    inputs = [(name, arg, list(net.node(name).shape or ()))
              for name, arg in zip(names, _arg_names(names))]
    # delays, RNN stacks, and the ops that make or use a Where axis
    sequential = net.registry.op_set(Category.RECURRENT) | _PACKED_OPS
    column = set()
    if column_major:
        trainable = {attr for attr, _, kind in state if kind == "parameter"}
        column = trainable & {attrs.get(w.name) for w in matmul_weights(
            needed, net.registry.op_set(Category.SPARSE))}
    spec = {
        "name": net.name,
        "inputs": inputs,
        "outputs": [(n.name, bool(n.dynamic)) for n in outs],
        "sequences": any(n.op in sequential for n in needed),
        "state": entries,
        "column_major": sorted(column),
        "train_error": train_error,
    }
    if missing:
        spec["uncomputed"] = missing
    constants = {k: v for s in sources.values() for k, v in s.constants.items()}
    return ModuleParts(spec, sources, forward_source(spec), tensors, constants)


class TorchModule(NetworkModule):
    """:class:`NetworkModule` made by :func:`to_torch`: errors are netsurgeon's, and a
    run-time failure in eager mode names the node whose generated line raised it.

    It also runs on :class:`~netsurgeon.runtime.batch.Minibatch` es (:meth:`run_minibatch`,
    CTF data with sparse CSR streams), which is how the
    :class:`~netsurgeon.runtime.train.Trainer` runs it: the Trainer trains this module's
    parameters with this module's code.
    """

    def _fail(self, message: str, node: str | None = None):
        raise EvaluationError(message, node=node)

    def _call(self, fn, args):
        if torch.compiler.is_compiling():
            return fn(self, *args)
        try:
            return fn(self, *args)
        except EvaluationError:
            raise
        except Exception as exc:
            source, files = self._compiled[fn.__name__]
            net = self._network()
            raise map_error(exc, net if net is not None else Network(self._spec["name"]),
                            source, files) from exc

    def _run(self, inputs, lengths):
        if self._uncomputed:
            self._fail_uncomputed()
        return super()._run(inputs, lengths)

    def _fail_uncomputed(self):
        name = sorted(self._uncomputed)[0]
        net = self._network()
        node = net.get(name) if net is not None else None
        op = node.op if node is not None else "Mean/InvStdDev"
        self._fail(f"{op} has not been computed; train the network (the pre-pass computes it) "
                   "or load a model that holds it", name)

    def _load_from_state_dict(self, state_dict, prefix, *args):
        super()._load_from_state_dict(state_dict, prefix, *args)
        self._uncomputed.difference_update(
            k[len(prefix):] for k in state_dict if k.startswith(prefix))

    # ---- minibatches (the Trainer's path) ---------------------------------------------------
    def run_minibatch(self, batch: Minibatch) -> dict[str, torch.Tensor]:
        """Run the current mode's code on a minibatch: ``{output name: tensor}`` with values
        ``(frames, *sample)`` as the generated code computes them (criteria ``(1,)`` sums).
        Sparse streams are fed as CSR tensors to code generated for them (one variant per
        sparsity, made on first use, sharing this module's tensors)."""
        fn, args = self.minibatch_call(batch)
        values = self._call(fn, args)
        return dict(zip(self._out_names, values))

    def minibatch_call(self, batch: Minibatch) -> tuple[Any, list[Any]]:
        """The generated function for this minibatch's sparsity and the current mode, and its
        arguments (on the Trainer's device, if it set one); also what ``torch.compile`` wraps."""
        if self._uncomputed:
            self._fail_uncomputed()
        sparse = frozenset(k for k, v in batch.streams.items() if isinstance(v, SparseRows))
        variant = self._variants.get((sparse, self.training))
        if variant is None:
            variant = self._make_variant(sparse, self.training)
        fn, shapes = variant
        args = feed(batch, shapes, sparse, self._dtype)
        device = getattr(self, "_input_device", None)  # set by a Trainer on a GPU
        if device is not None:
            args = [a.to(device, non_blocking=True) if isinstance(a, torch.Tensor) else a
                    for a in args]
        return fn, args

    def _network_or_fail(self) -> Network:
        net = self._network()
        if net is None:
            self._fail("the network this module was made from is gone; cannot generate code")
        return net

    def _make_variant(self, sparse: frozenset[str], training: bool):
        if training and self._train_fn is None:
            self._fail(self._spec["train_error"] or "no training code")
        net = self._network_or_fail()
        mode = "train" if training else "eval"
        if not sparse:  # the module's own functions
            fn = self._train_fn if training else self._eval_fn
            source = self._compiled[fn.__name__][0]
        else:
            self._counter += 1
            k = self._counter
            source = method_source(net, [net.node(o) for o in self._out_names],
                                   self.node_attributes, training=training,
                                   config=self._config, sparse_inputs=sparse,
                                   name=f"forward_{mode}_sparse{k}", prefix=f"{mode}_s{k}_")
            fn = self._install(source, net.name)
        shapes = [(name, tuple(net.node(name).shape or ())) for name in source.inputs]
        self._variants[(sparse, training)] = (fn, shapes)
        return fn, shapes

    def _install(self, source: TorchSource, label: str):
        """Compile method code into this module: its function and constants."""
        fn, files = compile_source(source, f"{label}-{source.name}")
        self._compiled[source.name] = (source, files)
        device = next((t.device for t in (*self.parameters(), *self.buffers())), None)
        for attr, value in source.constants.items():
            self.register_buffer(attr, value if device is None else value.to(device),
                                 persistent=False)
        return fn

    def rebuild(self) -> None:
        """Generate this module's code again from its network (after the network was edited),
        keeping its tensors: the parameters, their optimizer state and gradients stay valid.
        A parameter the module does not hold is an EvaluationError naming it."""
        net = self._network_or_fail()
        outs = [net.node(o) for o in self._out_names]
        attrs = self.node_attributes
        keys = list(self._variants) or [(frozenset(), self.training)]
        self._variants = {}
        for mode, training in _MODES:
            if training and self._train_fn is None:
                continue
            source = method_source(net, outs, attrs, training=training, config=self._config,
                                   name=f"forward_{mode}", prefix=f"{mode}_")
            fn = self._install(source, net.name)
            if training:
                self._train_fn = fn
            else:
                self._eval_fn = fn
        for sparse, training in keys:
            if not (training and self._train_fn is None):
                self._make_variant(sparse, training)


def to_torch(net: Network, outputs: Iterable[Node | str] | None = None, *,
             config: dict[str, Any] | None = None, uncomputed: bool = False,
             column_major: bool = False) -> TorchModule:
    """The network as a ``torch.nn.Module`` computing ``outputs``.

    Args:
        net: a network whose parameters hold values; it is not changed, and later edits do
            not reach the module (which holds copies of the values).
        outputs: nodes or names (default: output, criterion and evaluation nodes, as
            :func:`~netsurgeon.runtime.evaluate`).
        config: run options of the generated code (``dropout_rate``, overriding the nodes'
            rate in training; the Trainer passes its ``dropout_rate``).
        uncomputed: accept Mean/InvStdDev nodes without value (zero buffers the module
            refuses to run with until they are loaded; the Trainer computes them).
        column_major: hold the trainable weight matrices that the code multiplies as
            ``x @ W`` column-major, ``nn.Linear``'s layout (same values and shapes): a small
            dense network's CPU training step is 3-5 % faster, but BLAS then rounds those
            products differently, so results differ from :func:`evaluate`'s in the last bit.

    Returns:
        A module in evaluation mode (``.train()`` switches BatchNormalization and Dropout).
        ``module(features=x, ...)`` takes one tensor per input node, ``(batch, *sample)``, or
        ``(batch, time, *sample)`` plus ``lengths=`` for networks with PastValue/FutureValue,
        and returns ``{output name: tensor}``. ``state_dict()`` is keyed by node name.
    """
    parts = module_parts(net, outputs, config=config, uncomputed=uncomputed,
                         column_major=column_major)
    compiled = {}
    fns: dict[str, Any] = {}
    for mode, source in parts.sources.items():
        fn, files = compile_source(source, f"{net.name}-{mode}")
        fns[mode] = fn
        compiled[source.name] = (source, files)
    scope: dict[str, Any] = {}
    exec(compile(parts.forward, f"<netsurgeon-{net.name}-module>", "exec"), scope)
    cls = type("Network", (TorchModule,), {"forward": scope["forward"],
                                           "__module__": __name__})
    module = cls(parts.spec, fns["eval"], fns.get("train"), parts.tensors, parts.constants)
    module._compiled = compiled
    module._network = weakref.ref(net)
    module._config = {**(config or {}), "dtype": network_dtype(net)}
    if uncomputed:
        module._config["uncomputed"] = True
    module._dtype = module._config["dtype"]
    module._out_names = [n for n, _ in parts.spec["outputs"]]
    module._variants = {}
    module._counter = 0
    module._uncomputed = set(parts.spec.get("uncomputed", ()))
    return module.eval()
