"""Evaluation backends: the generated torch code, ``torch.compile`` of it, or onnxruntime.

A *backend* runs one :class:`~netsurgeon.runtime.compile.CompiledNetwork`'s function on
minibatches and returns the same ``{output: frames tensor}`` as the compiled network:

* ``torch``: the generated code, eagerly (what ``compile_network`` made);
* ``compile``: that code's ``forward`` through ``torch.compile(dynamic=True)`` (inputs'
  batch axis marked dynamic, so batch sizes share a graph; dynamo still keeps apart
  size 1 and, for convolutions, sizes below 16);
* ``onnxruntime``: netsurgeon's own ONNX export of the same outputs in an onnxruntime
  session (inference only; it holds a copy of the weights, made again when the network's
  version changes);
* ``auto`` (the default): per batch-size bucket (and thread count) the fastest of those
  available, measured once (:class:`AutoChoice`).

All of them are held per (network version, outputs, sparse inputs, options) in
``Network.derived["backends"]`` (:func:`backend_set`), so Evaluators and ``evaluate()`` calls
on the same network share compiled code, sessions and measurements.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from netsurgeon.errors import EvaluationError
from netsurgeon.graph import Network, Node
from netsurgeon.runtime.batch import Minibatch, SparseRows, extent
from netsurgeon.runtime.compile import CompiledNetwork, compile_network

__all__ = ["BACKENDS", "TRAIN_BACKENDS", "BackendFailure", "BackendSet", "AutoChoice",
           "backend_set", "bucket",
           "check_backend", "measure_mode", "set_threads"]

BACKENDS = ("auto", "torch", "compile", "onnxruntime")
TRAIN_BACKENDS = ("auto", "torch", "compile")

#: ``NETSURGEON_AUTO``: ``lazy`` (default), ``now`` or ``off`` (see :func:`measure_mode`)
MODE_VARIABLE = "NETSURGEON_AUTO"
#: lazy mode: seconds spent in a bucket before torch and onnxruntime are timed against it
#: (about what importing onnx, exporting and opening a session cost: a short run never pays)
MEASURE_AFTER_S = 0.5
#: lazy mode: a guess of torch.compile's cost, fixed + per generated line (seconds); compile
#: is tried once a bucket has spent that long (then it would have paid for itself if it
#: halves the time and the run goes on as long again)
COMPILE_COST_S = (3.0, 0.15)
TIMED_CALLS = 3

_threads: int | None = None
_FLOAT32 = np.dtype(np.float32)  # (native float32 dtypes are this one object)


class BackendFailure(EvaluationError):
    """A backend other than torch failed where the generated torch code does not (a
    torch.compile or onnxruntime failure): an error under an explicit ``--backend``, a fall
    back to torch under ``auto``."""


def set_threads(count: int) -> None:
    """``count`` intra-op threads for every backend: torch's kernels, torch.compile's code and
    the onnxruntime sessions made from now on (``--threads``)."""
    global _threads
    _threads = int(count)
    torch.set_num_threads(_threads)


def threads() -> int:
    """The intra-op thread count backends use (torch's unless :func:`set_threads` was called)."""
    return _threads or torch.get_num_threads()


def check_backend(name: str, training: bool = False) -> str:
    """``name`` lower-cased if it is a backend (for training: not onnxruntime), else a
    one-line EvaluationError listing the choices."""
    key = str(name).lower()
    if training and key == "onnxruntime":
        raise EvaluationError("the onnxruntime backend only evaluates (inference); train with "
                              "--backend torch, compile or auto")
    allowed = TRAIN_BACKENDS if training else BACKENDS
    if key not in allowed:
        raise EvaluationError(f"unknown backend {name!r}; use one of {', '.join(allowed)}")
    return key


def measure_mode() -> str:
    """How ``auto`` measures, from ``NETSURGEON_AUTO``: ``lazy`` (default) times torch and
    onnxruntime once a batch-size bucket has run for ``MEASURE_AFTER_S`` and torch.compile
    once it has run about as long as a compile costs; ``now`` times all three at a bucket's
    first batch; ``off`` measures nothing and runs the generated torch code."""
    mode = os.environ.get(MODE_VARIABLE, "lazy").strip().lower() or "lazy"
    if mode not in ("lazy", "now", "off"):
        raise EvaluationError(f"{MODE_VARIABLE}={mode!r}; use lazy, now or off")
    return mode


def bucket(frames: int) -> int:
    """The batch-size bucket of a minibatch of ``frames`` frames: 1, 2-3, 4-7, 8-15, ..."""
    return max(int(frames), 1).bit_length()


def timed(fn: Callable[[], Any], calls: int = TIMED_CALLS) -> float:
    """Seconds per call of ``fn``: the best of ``calls`` rounds after two untimed calls (a new
    session or compiled graph is slow at first); a round repeats ``fn`` until it lasts ~2 ms,
    so microsecond calls are not timed one at a time."""
    fn()
    start = time.perf_counter()
    fn()
    repeat = max(1, min(1000, int(0.002 / max(time.perf_counter() - start, 1e-7))))
    best = float("inf")
    for _ in range(calls):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, (time.perf_counter() - start) / repeat)
    return best


# ---- the backends ----------------------------------------------------------------------------
class CompiledForward:
    """``torch.compile`` of a compiled network's ``forward`` (made on first use)."""

    def __init__(self, compiled: CompiledNetwork) -> None:
        self.compiled = compiled
        self.fn = torch.compile(compiled.forward, dynamic=True)

    def __call__(self, batch: Minibatch) -> dict[str, torch.Tensor]:
        c = self.compiled
        if c.network.version != c.version:
            c.check_version()
        args = c.feed(batch)
        for a in args:
            if isinstance(a, torch.Tensor) and a.dim() and a.shape[0] > 1 and a.layout == \
                    torch.strided:
                torch._dynamo.maybe_mark_dynamic(a, 0)
        try:
            values = self.fn(*args)
        except EvaluationError:
            raise
        except Exception as exc:
            try:  # the generated code's own error names the node
                c(batch)
            except EvaluationError:
                raise
            raise BackendFailure(f"torch.compile failed on network '{c.network.name}': "
                                  f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}; "
                                  "use --backend torch") from exc
        return dict(zip(c.source.outputs, values))


class OnnxSession:
    """netsurgeon's ONNX export of the compiled outputs, run by onnxruntime.

    The exporter's refusal (an op it does not write) is a FormatError naming the node, raised
    by the constructor. Feed-forward models take the real frames only (padding is dropped
    before and zeros put back after); sequence models take (batch, time, *sample) and
    ``lengths``.
    """

    def __init__(self, compiled: CompiledNetwork) -> None:
        from netsurgeon.formats.onnx.export import to_model
        from netsurgeon.formats.onnx.inference import for_inference

        if compiled.dtype != torch.float32:
            raise EvaluationError(f"network '{compiled.network.name}' computes in "
                                  f"{compiled.dtype}; the onnxruntime backend runs float32 only")
        net = compiled.network
        self.compiled = compiled
        self.outputs = list(compiled.source.outputs)
        self.model = for_inference(to_model(net, self.outputs)).SerializeToString()
        self.threads = 0
        self._session()
        names = [i.name for i in self.session.get_inputs()]
        self.sequences = "lengths" in names and net.get("lengths") is None
        self.inputs = [(n, tuple(net.node(n).shape or ())) for n in names if n != "lengths"
                       or not self.sequences]
        self.dynamic = {n: bool(net.node(n).dynamic) for n in self.outputs}
        self._single = self.inputs[0] if len(self.inputs) == 1 and not self.sequences else None
        self._one = self.outputs[0] if len(self.outputs) == 1 else None

    def _session(self) -> None:
        """(Re)make the session with the current thread count (:func:`set_threads`)."""
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.threads = threads()
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(self.model, options,
                                                    providers=["CPUExecutionProvider"])
        # the binding's run without the Python wrapper's per-call input checks (the feeds are
        # made here, always complete): a third of a batch-1 call of a small network
        inner = getattr(self.session, "_sess", None)
        self._run = inner.run if inner is not None else \
            (lambda names, feeds, options: self.session.run(names, feeds, options))
        # one RunOptions for every call: given None, the binding makes a default one per call
        # (0.7 µs, 8 % of a batch-1 call of 01_OneHidden); nothing here ever changes it
        self._options = onnxruntime.RunOptions()

    def _failure(self, exc: Exception) -> BackendFailure:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return BackendFailure(f"onnxruntime failed on network '{self.compiled.network.name}': "
                              f"{first}; use --backend torch")

    def __call__(self, batch: Minibatch,
                 shape: tuple[int, int, bool] | None = None) -> dict[str, torch.Tensor]:
        """Outputs of ``batch`` (``shape``: its :func:`extent`, when the caller has it)."""
        c = self.compiled
        if c.network.version != c.version:
            c.check_version()
        if self.threads != (_threads or torch.get_num_threads()):
            self._session()
        lengths = batch.lengths
        b, t, full = shape or extent(lengths)
        if full and self._single is not None:  # one dense feed-forward input: the short way
            name, sample = self._single
            data = batch.streams.get(name)
            if type(data) is np.ndarray and data.dtype is _FLOAT32 and data.flags.c_contiguous:
                try:
                    values = self._run(self.outputs, {name: data.reshape((b * t,) + sample)},
                                       self._options)
                except Exception as exc:
                    raise self._failure(exc) from exc
                one = self._one
                if one is not None:
                    return {one: torch.from_numpy(values[0])}
                return dict(zip(self.outputs, map(torch.from_numpy, values)))
        mask = None if full else batch.frame_mask()
        real = None if mask is None or self.sequences else np.flatnonzero(mask > 0)
        lead = (b, t) if self.sequences else (b * t,)
        feeds: dict[str, np.ndarray] = {}
        streams = batch.streams
        for name, shape in self.inputs:
            data = streams.get(name)
            if data is None:
                c(batch)  # the torch path's one-line error for the missing input
            if type(data) is not np.ndarray or data.dtype is not _FLOAT32 or \
                    not data.flags.c_contiguous:
                if isinstance(data, SparseRows):
                    data = data.to_dense()
                data = np.ascontiguousarray(data, dtype=np.float32)
            arr = data.reshape(lead + shape)
            if real is not None:
                arr = arr[real]
            feeds[name] = arr
        if self.sequences:
            feeds["lengths"] = np.asarray(lengths, np.int64)
        try:
            values = self._run(self.outputs, feeds, self._options)
        except Exception as exc:
            raise self._failure(exc) from exc
        if mask is None and not self.sequences:  # the common case: outputs as they come
            return dict(zip(self.outputs, map(torch.from_numpy, values)))
        out: dict[str, torch.Tensor] = {}
        for name, value in zip(self.outputs, values):
            tensor = torch.from_numpy(value)
            if self.dynamic[name]:
                if self.sequences:
                    tensor = tensor.reshape((b * t,) + tuple(tensor.shape[2:]))
                    if mask is not None:
                        tensor = tensor * torch.from_numpy(mask).reshape(
                            (-1,) + (1,) * (tensor.dim() - 1))
                elif real is not None:
                    full = torch.zeros((b * t,) + tuple(tensor.shape[1:]), dtype=tensor.dtype)
                    full[torch.from_numpy(real)] = tensor
                    tensor = full
            out[name] = tensor
        return out


class AutoChoice:
    """Which backend a batch-size bucket uses, and what was spent there before choosing.

    ``choice`` starts as ``torch``; ``measured`` once torch and onnxruntime were timed,
    ``compile_tried`` once torch.compile was. ``times`` holds each candidate's best time per
    call (seconds) at the batch it was measured on.
    """

    __slots__ = ("choice", "spent", "measured", "compile_tried", "times")

    def __init__(self) -> None:
        self.choice = "torch"
        self.spent = 0.0
        self.measured = False
        self.compile_tried = False
        self.times: dict[str, float] = {}

    def settled(self) -> bool:
        return self.measured and self.compile_tried


class BackendSet:
    """The backends of one compiled network (one version, outputs, sparsity, options) and the
    ``auto`` choices per bucket. Backends are made on first use; one that cannot be made
    (export refused, torch.compile failed) is remembered as ``None`` with the reason."""

    def __init__(self, compiled: CompiledNetwork) -> None:
        self.compiled = compiled
        self.made: dict[str, Callable[[Minibatch], dict[str, torch.Tensor]] | None] = {
            "torch": compiled}
        self.why_not: dict[str, str] = {}
        self.choices: dict[tuple[int, int], AutoChoice] = {}  # by (bucket, threads)
        self._lines = len(compiled.source.text.splitlines())

    @property
    def version(self) -> int:
        return self.compiled.version

    def get(self, name: str, *, strict: bool) -> Callable[[Minibatch], Any] | None:
        """The backend ``name``, made now if needed; ``strict``: its failure to be made is an
        error (an explicit ``--backend``), else None (auto skips it)."""
        if name not in self.made:
            try:
                self.made[name] = OnnxSession(self.compiled) if name == "onnxruntime" else \
                    CompiledForward(self.compiled)
            except (EvaluationError, ImportError, OSError) as exc:
                self.made[name] = None
                self.why_not[name] = str(exc)
            except Exception as exc:  # a FormatError from the exporter, onnxruntime's own
                self.made[name] = None
                self.why_not[name] = f"{type(exc).__name__}: {exc}"
        made = self.made[name]
        if made is None and strict:
            raise EvaluationError(f"backend {name} cannot run network "
                                  f"'{self.compiled.network.name}': {self.why_not[name]}")
        return made

    def run(self, backend: str, batch: Minibatch) -> dict[str, torch.Tensor]:
        """Outputs of ``batch`` through ``backend`` (``auto``: see :meth:`auto`); the torch
        code runs in inference mode, onnxruntime without the cost of entering it."""
        if backend == "auto":
            return self.auto(batch)
        fn = self.get(backend, strict=True)
        if backend == "onnxruntime":
            return fn(batch)
        with torch.inference_mode():
            return fn(batch)

    def auto(self, batch: Minibatch) -> dict[str, torch.Tensor]:
        shape = extent(batch.lengths)
        key = ((shape[0] * shape[1]).bit_length() or 1, _threads or torch.get_num_threads())
        state = self.choices.get(key)  # (the key is bucket()'s)
        if state is None:
            state = self.choices[key] = AutoChoice()
        if state.measured and state.compile_tried:  # settled
            if state.choice == "onnxruntime":
                return self._chosen(state, batch, shape)
            with torch.inference_mode():
                return self._chosen(state, batch)
        with torch.inference_mode():
            return self._unsettled(state, batch)

    def _unsettled(self, state: AutoChoice, batch: Minibatch) -> dict[str, torch.Tensor]:
        """A batch of a bucket still measuring: time the candidates when due, then run."""
        mode = measure_mode()
        if mode == "off":
            return self.compiled(batch)
        dense = not any(type(v) is SparseRows for v in batch.streams.values())
        if not state.measured and (mode == "now" or state.spent >= MEASURE_AFTER_S):
            self._measure(state, batch, ("torch", "onnxruntime"))
            state.measured = True
        if not state.compile_tried and state.measured and (
                not dense or mode == "now" or state.spent >= self.compile_cost()):
            if dense:
                self._measure(state, batch, ("compile",))
            state.compile_tried = True
        start = time.perf_counter()
        result = self._chosen(state, batch)
        state.spent += time.perf_counter() - start
        return result

    def _chosen(self, state: AutoChoice, batch: Minibatch,
                shape: tuple[int, int, bool] | None = None) -> dict[str, torch.Tensor]:
        """``batch`` through the bucket's choice; a choice that fails where torch would not is
        dropped (for every bucket) and torch runs the batch. ``shape``: the batch's
        :func:`extent`, given when the choice is onnxruntime."""
        name = state.choice
        fn = self.made.get(name)
        if name == "torch" or fn is None:
            state.choice = "torch"
            return self.compiled(batch)
        try:
            return fn(batch) if shape is None else fn(batch, shape)
        except BackendFailure as exc:
            reason = str(exc)
        except EvaluationError:
            raise
        except Exception as exc:  # a bug in a backend must not stop an auto run
            reason = f"{type(exc).__name__}: {exc}"
        self.made[name] = None
        self.why_not[name] = reason
        for other in self.choices.values():
            if other.choice == name:
                other.choice = "torch"
        with torch.inference_mode():
            return self.compiled(batch)

    def compile_cost(self) -> float:
        """The guessed cost of torch.compile of this code (``COMPILE_COST_S``), in seconds."""
        fixed, per_line = COMPILE_COST_S
        return fixed + per_line * self._lines

    def _measure(self, state: AutoChoice, batch: Minibatch, names: tuple[str, ...]) -> None:
        """Time ``names`` (and the current choice, when not timed yet) on ``batch``; the
        fastest becomes the bucket's choice. A backend that fails on the batch is dropped."""
        start = time.perf_counter()
        for name in dict.fromkeys((*names, state.choice)):
            if name in state.times:
                continue
            fn = self.get(name, strict=False)
            if fn is None:
                continue
            try:
                state.times[name] = timed(lambda fn=fn: fn(batch))
            except Exception as exc:
                self.made[name] = None
                self.why_not[name] = f"{type(exc).__name__}: {exc}"
        state.spent += time.perf_counter() - start
        usable = {k: v for k, v in state.times.items() if self.made.get(k) is not None}
        state.choice = min(usable, key=usable.get) if usable else "torch"


def backend_set(network: Network, outputs: list[Node], sparse: frozenset[str],
                config: dict[str, Any], compile: Callable[..., CompiledNetwork] = compile_network
                ) -> BackendSet:
    """The :class:`BackendSet` for these outputs and input sparsity of ``network`` at its
    current version, from ``network.derived["backends"]`` (made and stored on a miss, with
    ``compile``: :func:`~netsurgeon.runtime.compile.compile_network`)."""
    key = (tuple(n.name for n in outputs), sparse, repr(sorted(config.items())))
    per_network = network.derived.setdefault("backends", {})
    hit = per_network.get(key)
    if hit is not None and hit.version == network.version:
        return hit
    compiled = compile(network, outputs, sparse_inputs=sparse, config=config)
    if len(per_network) >= 16:  # many output sets or option sets: keep the cache small
        per_network.clear()
    made = per_network[key] = BackendSet(compiled)
    return made
