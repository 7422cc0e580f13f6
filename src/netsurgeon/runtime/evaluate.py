"""``netsurgeon.evaluate(network, inputs)``: run a network on numpy arrays or minibatches."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from math import prod
from typing import Any

import numpy as np
import torch

from netsurgeon.errors import EvaluationError
from netsurgeon.graph import Network, Node
from netsurgeon.runtime.backends import BackendSet, backend_set, bucket, check_backend, threads
from netsurgeon.runtime.batch import Minibatch, SparseRows, extent
from netsurgeon.runtime.compile import CompiledNetwork, compile_network, default_outputs

_NONE: frozenset[str] = frozenset()

__all__ = ["evaluate", "Evaluator", "batch_from_arrays", "unpad"]


def _numeric(name: str, value: Any) -> np.ndarray:
    """``value`` as float32; anything that is not numbers is an error naming the input."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise EvaluationError(f"input '{name}' holds {arr.dtype} values; give numbers "
                              "(bool, int or float)", node=name)
    return arr.astype(np.float32, copy=False)


def batch_from_arrays(net: Network, inputs: Mapping[str, Any],
                      lengths: Iterable[int] | None = None) -> tuple[Minibatch, bool]:
    """A minibatch from arrays shaped (batch, *sample) or (batch, time, *sample).

    Returns the batch and whether the arrays had a time axis.
    """
    streams: dict[str, Any] = {}
    has_time = lengths is not None
    batch = steps = None
    for name, value in inputs.items():
        node = net.node(name)
        if isinstance(value, SparseRows):
            streams[node.name] = value
            continue
        arr = _numeric(node.name, value)
        sample = tuple(node.shape or ())
        size = prod(sample)
        if arr.ndim >= 2 + len(sample) and prod(arr.shape[2:]) == size and (
                has_time or arr.shape[2:] == sample):
            has_time = True
        elif prod(arr.shape[1:]) == size:
            arr = arr.reshape((arr.shape[0], 1) + sample)
        else:
            raise EvaluationError(
                f"input '{node.name}' has shape {arr.shape}; expected (batch, *{sample}) or "
                f"(batch, time, *{sample})", node=node.name)
        if batch is None:
            batch, steps = arr.shape[0], arr.shape[1]
        elif (batch, steps) != arr.shape[:2]:
            raise EvaluationError(f"input '{node.name}' has batch/time {arr.shape[:2]}, the "
                                  f"other inputs {(batch, steps)}", node=node.name)
        streams[node.name] = arr
    if batch is None:
        raise EvaluationError("no inputs given")
    if lengths is None:
        return Minibatch(streams, np.full(batch, steps, np.int64)), has_time
    lens = np.asarray(list(lengths), np.int64)
    if len(lens) != batch or (len(lens) and lens.max() > steps):
        raise EvaluationError(f"lengths {lens.tolist()} do not fit batch {batch} x time {steps}")
    return Minibatch(streams, lens), has_time


def unpad(value: torch.Tensor, batch: Minibatch, time_axis: bool) -> np.ndarray:
    """Frames (B*T, *s) -> (B, T, *s) with padding zeroed, or (B, *s) without a time axis."""
    arr = value.detach().cpu().numpy()
    b, t, full = extent(batch.lengths)
    arr = arr.reshape((b, t) + arr.shape[1:])
    if not time_axis:
        return arr[:, 0]
    mask = None if full else batch.frame_mask()
    if mask is not None:
        arr = arr * mask.reshape((b, t) + (1,) * (arr.ndim - 2))
    return arr


class Evaluator:
    """Evaluates chosen nodes of a network, compiling once per input sparsity.

    ``backend``: ``auto`` (default; the fastest measured per batch-size bucket), ``torch``,
    ``compile`` or ``onnxruntime`` (:mod:`~netsurgeon.runtime.backends`). The compiled code,
    sessions and measurements are shared with every Evaluator of the same network, outputs
    and options (they live in ``network.derived``).

    ``device`` (``cpu``, ``cuda``, ``cuda:N``, ``auto``) and ``precision`` (``float32``,
    ``bfloat16``, ``float16`` on a GPU; :mod:`~netsurgeon.runtime.device`): off the defaults
    the generated torch code runs there (its tensors moved once per compile) under autocast,
    and :meth:`run` returns float32 tensors on the CPU.
    """

    def __init__(self, network: Network, outputs: Iterable[Node | str] | None = None,
                 config: Mapping[str, Any] | None = None, *, backend: str = "auto",
                 device: Any = None, precision: str | None = None) -> None:
        from netsurgeon.runtime.device import check_precision, resolve_device

        self.network = network
        self.device = resolve_device(device)
        self.precision = check_precision(precision, self.device)
        self._placed_only = self.device.type != "cpu" or self.precision != "float32"
        self._placed: dict[frozenset[str], CompiledNetwork] = {}  # code moved to the device
        if any(n.shape is None or n.dynamic is None for n in network.nodes):
            network.validate()
        self.outputs = [network.node(o) for o in outputs] if outputs else default_outputs(network)
        self.config = dict(config or {})
        self.backend = check_backend(backend)
        self._sets: dict[frozenset[str], BackendSet] = {}

    def backends(self, batch: Minibatch) -> BackendSet:
        """The backends for ``batch``'s input sparsity at the network's current version."""
        sparse = _NONE
        for v in batch.streams.values():  # (a loop: a generator costs more than small runs)
            if type(v) is SparseRows:
                sparse = frozenset(k for k, v in batch.streams.items() if type(v) is SparseRows)
                break
        s = self._sets.get(sparse)
        if s is None or s.version != self.network.version:
            s = self._sets[sparse] = backend_set(self.network, self.outputs, sparse,
                                                 self.config, compile_network)
        return s

    def compiled(self, batch: Minibatch) -> CompiledNetwork:
        """The generated torch code for ``batch``'s input sparsity."""
        return self.backends(batch).compiled

    def chosen(self, batch: Minibatch) -> str:
        """The backend that runs ``batch`` (for ``auto``: its bucket's choice so far)."""
        if self.backend != "auto":
            return self.backend
        state = self.backends(batch).choices.get((bucket(batch.batch * batch.steps),
                                                  threads()))
        return state.choice if state is not None else "torch"

    def run(self, batch: Minibatch) -> dict[str, torch.Tensor]:
        """Raw torch outputs (frames) for one minibatch, in inference mode."""
        if self._placed_only:
            return self._run_placed(batch)
        if self.backend == "auto":
            return self.backends(batch).auto(batch)
        return self.backends(batch).run(self.backend, batch)  # in inference mode where it matters

    def _run_placed(self, batch: Minibatch) -> dict[str, torch.Tensor]:
        """The torch code on ``device`` under ``precision``'s autocast."""
        from netsurgeon.runtime.compile import compile_network
        from netsurgeon.runtime.device import autocast

        sparse = frozenset(k for k, v in batch.streams.items() if type(v) is SparseRows)
        c = self._placed.get(sparse)
        if c is None or c.version != self.network.version:
            # code of its own (the backends' is shared with CPU evaluators of the network)
            c = compile_network(self.network, self.outputs, sparse_inputs=sparse,
                                config=self.config)
            scope = c.forward.__globals__  # the parameters and constants the code reads
            for name, value in list(scope.items()):
                if isinstance(value, torch.Tensor):
                    scope[name] = value.to(self.device)
            self._placed[sparse] = c
        args = [a.to(self.device) if isinstance(a, torch.Tensor) else a for a in c.feed(batch)]
        with torch.inference_mode(), autocast(self.precision, self.device):
            out = c.run(args)
        return {k: v.float().cpu() if v.is_floating_point() else v.cpu()
                for k, v in out.items()}


def evaluate(network: Network, inputs: Mapping[str, Any] | Minibatch,
             outputs: Iterable[Node | str] | None = None, *,
             lengths: Iterable[int] | None = None,
             backend: str = "auto", device: Any = None,
             precision: str | None = None) -> dict[str, np.ndarray]:
    """Evaluate ``outputs`` (default: output, criterion and evaluation nodes).

    Args:
        network: a network whose parameters hold values.
        inputs: input node name -> array (batch, *sample), or (batch, time, *sample) for
            sequences (zero-padded; give ``lengths``); or a :class:`Minibatch`.
        outputs: nodes or names to compute (any intermediate node works).
        lengths: sequence lengths when the arrays have a time axis.
        backend: ``auto`` (default), ``torch``, ``compile`` or ``onnxruntime``
            (docs/runtime.md, "Backends").
        device, precision: where to compute (``cpu``, ``cuda``, ``cuda:N``, ``auto``) and the
            autocast precision (``float32``, ``bfloat16``, ``float16`` on a GPU); see
            docs/distributed.md.

    Returns:
        name -> numpy array: (batch, *sample) for arrays without a time axis, (batch, time,
        *sample) for sequences (and for a Minibatch), where ``sample`` is the node's shape
        (numpy order; CNTK v1 column vectors such as MC.dnn's ``z``, CNTK ``[3 x 1]``, have
        sample (1, 3), as in CNTK 2.7); (1,) sums over the minibatch for criteria.

    Only the inputs the outputs need must be given: without ``outputs``, default outputs that
    need an input not given (a criterion needing 'labels') are left out.
    """
    if isinstance(inputs, Minibatch):
        batch, has_time = inputs, True
    else:
        batch, has_time = batch_from_arrays(network, inputs, lengths)
    ev = _cached_evaluator(network, outputs, frozenset(batch.streams), check_backend(backend),
                           (device, precision))
    raw = ev.run(batch)
    result = {}
    for node in ev.outputs:
        value = raw[node.name]
        if node.dynamic:
            result[node.name] = unpad(value, batch, has_time)
        else:
            result[node.name] = value.detach().cpu().numpy()
    return result


def _cached_evaluator(network: Network, outputs: Iterable[Node | str] | None,
                      given: frozenset[str], backend: str = "auto",
                      placement: tuple[Any, str | None] = (None, None)) -> Evaluator:
    """The Evaluator of an earlier ``evaluate`` call with the same outputs and inputs, while the
    network is unedited (its version unchanged), so repeated calls compile once."""
    names = None if outputs is None else tuple(
        o.name if isinstance(o, Node) else str(o) for o in outputs)
    key = (names, given, backend, placement if placement == (None, None) else
           tuple(str(p) for p in placement))
    # {(outputs asked, inputs given): (version, Evaluator)}, on the network so it dies with it
    per_network = network.derived.setdefault("evaluators", {})
    hit = per_network.get(key)
    if hit is not None and hit[0] == network.version:
        return hit[1]
    ev = Evaluator(network, _outputs_for(network, outputs, set(given)), backend=backend,
                   device=placement[0], precision=placement[1])
    if len(per_network) >= 16:  # many distinct output sets: keep the cache small
        per_network.clear()
    per_network[key] = (network.version, ev)
    return ev


def _outputs_for(network: Network, outputs: Iterable[Node | str] | None,
                 given: set[str]) -> list[Node]:
    """The nodes to compute: ``outputs`` (each must have the inputs it needs), or the default
    outputs computable from the inputs ``given`` (all of them when none is)."""
    from netsurgeon.graph import reachable_up
    from netsurgeon.ops import Category

    if any(n.shape is None or n.dynamic is None for n in network.nodes):
        network.validate()
    input_ops = network.registry.op_set(Category.INPUT)

    def missing(node: Node) -> list[str]:
        return sorted(n.name for n in reachable_up(network, [node])
                      if n.op in input_ops and n.name not in given)

    if outputs:
        wanted = [network.node(o) for o in outputs]
        for node in wanted:
            lacking = missing(node)
            if lacking:
                names = ", ".join(f"'{m}'" for m in lacking)
                example = ", ".join(f"'{m}': ..." for m in lacking)
                raise EvaluationError(
                    f"output '{node.name}' needs input {names}, which was not given; add an "
                    f"array for it (inputs={{{example}}}) or ask for other outputs",
                    node=node.name)
        return wanted
    defaults = default_outputs(network)
    usable = [n for n in defaults if not missing(n)]
    if usable:
        return usable
    lacking = sorted({m for n in defaults for m in missing(n)})
    names = ", ".join(f"'{m}'" for m in lacking)
    raise EvaluationError(f"no output can be computed without input {names}; add an array "
                          "for it, or name the outputs to compute")
