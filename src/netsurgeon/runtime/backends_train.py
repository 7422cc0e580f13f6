"""Training backends: the Trainer's module code eagerly (``torch``) or through ``torch.compile``.

:class:`TrainBackend` runs a :class:`~netsurgeon.runtime.module.TorchModule`'s training
function on a minibatch, as ``module.run_minibatch`` does, either as generated or through
``torch.compile(dynamic=True)`` (forward and backward compiled by AOTAutograd; the
batch-normalization running statistics are still updated in place). ``auto`` measures on the
real steps, never extra ones (a step changes the parameters): each batch-size bucket runs
eagerly until it has spent about what a compile costs (``NETSURGEON_AUTO=now``: at once),
then one step that compiles, then ``TRIAL_STEPS`` compiled and as many eager steps in turn;
the faster (best step of each side) wins and stays (``off``: always eager).
"""

from __future__ import annotations

from typing import Any

import torch

from netsurgeon.errors import EvaluationError
from netsurgeon.runtime.backends import (
    COMPILE_COST_S,
    bucket,
    check_backend,
    measure_mode,
)
from netsurgeon.runtime.batch import Minibatch, SparseRows

__all__ = ["TrainBackend"]

#: training compiles forward and backward: its guessed cost is this many times evaluation's
TRAIN_COMPILE_FACTOR = 3.0
#: steps timed on each side before choosing (their best: load on a shared machine only ever
#: adds time)
TRIAL_STEPS = 5


class _Bucket:
    """One batch-size bucket's step times and its choice once made: ``eager`` before the
    trial, then ``trial_eager`` and ``compiled`` (its first step is the compile) taken in
    alternation, so load changes hit both sides alike."""

    __slots__ = ("eager", "trial_eager", "compiled", "spent", "choice")

    def __init__(self) -> None:
        self.eager: list[float] = []
        self.trial_eager: list[float] = []
        self.compiled: list[float] = []
        self.spent = 0.0
        self.choice: str | None = None


class TrainBackend:
    """Runs a module's training code on minibatches through the chosen backend."""

    def __init__(self, module: Any, backend: str = "auto") -> None:
        self.module = module
        self.backend = check_backend(backend, training=True)
        self._compiled: dict[Any, Any] = {}  # generated function -> torch.compile of it
        self._buckets: dict[int, _Bucket] = {}
        self._current: tuple[_Bucket, str] | None = None

    def chosen(self, batch: Minibatch) -> str:
        """The backend the next step on a batch like ``batch`` uses."""
        if self.backend != "auto":
            return self.backend
        state = self._buckets.get(bucket(batch.batch * batch.steps))
        return (state.choice or "torch") if state is not None else "torch"

    def __call__(self, batch: Minibatch) -> dict[str, torch.Tensor]:
        """The module's outputs for ``batch`` (training mode), through the backend."""
        if self.backend == "torch":
            return self.module.run_minibatch(batch)
        if self.backend == "compile":
            return self._run_compiled(batch, strict=True)
        state = self._buckets.setdefault(bucket(batch.batch * batch.steps), _Bucket())
        kind = state.choice or self._next_kind(state, batch)
        self._current = (state, kind) if state.choice is None else None
        if kind == "compile":
            out = self._run_compiled(batch, strict=False)
            if out is not None:
                return out
            state.choice = "torch"
            self._current = None
        return self.module.run_minibatch(batch)

    def record(self, seconds: float) -> None:
        """The whole step's time (forward, backward, update) of the last call (``auto``)."""
        if self._current is None:
            return
        state, kind = self._current
        self._current = None
        state.spent += seconds
        if kind == "compile":
            state.compiled.append(seconds)
        else:
            (state.trial_eager if state.compiled else state.eager).append(seconds)
        if len(state.compiled) > TRIAL_STEPS and len(state.trial_eager) >= TRIAL_STEPS:
            fast = min(state.compiled[1:])  # the first one compiled
            slow = min(state.trial_eager)
            state.choice = "compile" if fast < slow else "torch"

    def _next_kind(self, state: _Bucket, batch: Minibatch) -> str:
        mode = measure_mode()
        if mode == "off" or any(type(v) is SparseRows for v in batch.streams.values()):
            state.choice = "torch"
            return "torch"
        if state.compiled:  # the trial: eager and compiled steps in turn
            return "torch" if len(state.trial_eager) < len(state.compiled) - 1 else "compile"
        if len(state.eager) >= TRIAL_STEPS and (mode == "now" or
                                                state.spent >= self.compile_cost()):
            return "compile"
        return "torch"

    def compile_cost(self) -> float:
        """The guessed seconds a compile of the training code costs (see backends)."""
        fixed, per_line = COMPILE_COST_S
        module = self.module
        fn = module._train_fn
        lines = len(module._compiled[fn.__name__][0].text.splitlines()) if fn is not None else 0
        return TRAIN_COMPILE_FACTOR * (fixed + per_line * lines)

    def _run_compiled(self, batch: Minibatch, strict: bool) -> dict[str, torch.Tensor] | None:
        module = self.module
        fn, args = module.minibatch_call(batch)
        compiled = self._compiled.get(fn)
        if compiled is None:
            compiled = self._compiled[fn] = torch.compile(fn, dynamic=True)
        for a in args:
            if isinstance(a, torch.Tensor) and a.dim() and a.shape[0] > 1 and \
                    a.layout == torch.strided:
                torch._dynamo.maybe_mark_dynamic(a, 0)
        try:
            values = compiled(module, *args)
        except EvaluationError:
            raise
        except Exception as exc:
            if not strict:
                return None
            module.run_minibatch(batch)  # the eager code's error names the node
            raise EvaluationError(f"torch.compile failed on the training code: "
                                  f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}; "
                                  "use --backend torch") from exc
        return dict(zip(module._out_names, values))
