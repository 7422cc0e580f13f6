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
from netsurgeon.ops import Category
from netsurgeon.runtime._module_base import NetworkModule
from netsurgeon.runtime.codegen import Namespace, TorchSource, generate, needed_nodes
from netsurgeon.runtime.compile import (
    compile_source,
    default_outputs,
    fused_copy,
    map_error,
    network_dtype,
)

__all__ = ["to_torch", "TorchModule", "ModuleParts", "module_parts"]

_MODES = (("eval", False), ("train", True))


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


def module_parts(net: Network, outputs: Iterable[Node | str] | None = None) -> ModuleParts:
    """Generate the code and collect the tensors of the module computing ``outputs``.

    Raises EvaluationError (naming the node) when evaluation code cannot be generated or a
    parameter has no value; training code that cannot be generated is recorded in
    ``spec["train_error"]`` and raised when the module runs in training mode.
    """
    if any(n.shape is None or n.dynamic is None for n in net.nodes):
        net.validate()
    outs = [net.node(o) for o in outputs] if outputs else default_outputs(net)
    needed = needed_nodes(net, outs)
    attrs, state = _state(net, needed)
    dtype = network_dtype(net)
    sources: dict[str, TorchSource] = {}
    train_error = None
    for mode, training in _MODES:
        try:
            work, work_outs = fused_copy(net, outs, training=training)
            sources[mode] = generate(work, work_outs, training=training, module_attrs=attrs,
                                     name=f"forward_{mode}", constant_prefix=f"{mode}_",
                                     config={"dtype": dtype})
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
    for attr, nodes, kind in state:
        node = net.node(nodes[0])
        if node.value is None:
            raise EvaluationError("parameter has no value; initialise or load it first",
                                  node=node.name)
        tensors[attr] = torch.tensor(np.array(node.value, copy=True), dtype=dtype)
        entries.append((attr, nodes, list(tensors[attr].shape), str(dtype).split(".")[-1], kind))
    inputs = [(name, arg, list(net.node(name).shape or ()))
              for name, arg in zip(names, _arg_names(names))]
    delays = net.registry.op_set(Category.DELAY)
    spec = {
        "name": net.name,
        "inputs": inputs,
        "outputs": [(n.name, bool(n.dynamic)) for n in outs],
        "sequences": any(n.op in delays for n in needed),
        "state": entries,
        "train_error": train_error,
    }
    constants = {k: v for s in sources.values() for k, v in s.constants.items()}
    return ModuleParts(spec, sources, forward_source(spec), tensors, constants)


class TorchModule(NetworkModule):
    """:class:`NetworkModule` made by :func:`to_torch`: errors are netsurgeon's, and a
    run-time failure in eager mode names the node whose generated line raised it."""

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


def to_torch(net: Network, outputs: Iterable[Node | str] | None = None) -> TorchModule:
    """The network as a ``torch.nn.Module`` computing ``outputs``.

    Args:
        net: a network whose parameters hold values; it is not changed, and later edits do
            not reach the module (which holds copies of the values).
        outputs: nodes or names (default: output, criterion and evaluation nodes, as
            :func:`~netsurgeon.runtime.evaluate`).

    Returns:
        A module in evaluation mode (``.train()`` switches BatchNormalization and Dropout).
        ``module(features=x, ...)`` takes one tensor per input node, ``(batch, *sample)``, or
        ``(batch, time, *sample)`` plus ``lengths=`` for networks with PastValue/FutureValue,
        and returns ``{output name: tensor}``. ``state_dict()`` is keyed by node name.
    """
    parts = module_parts(net, outputs)
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
    return module.eval()
