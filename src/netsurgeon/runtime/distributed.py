"""Data-parallel training on ``torch.distributed``: CNTK's ``parallelTrain`` methods.

Run under ``torchrun`` (which sets RANK, WORLD_SIZE, MASTER_ADDR/PORT); the process group is
gloo on the CPU and NCCL on a GPU. Every rank reads the same global minibatches and keeps its
contiguous share of their sequences (:meth:`Parallel.shard`, CNTK's ``distributedMBReading``:
each sample is seen by exactly one rank per epoch). Then, per method:

* ``data`` (DataParallelSGD): each rank's gradient (a sum over its samples, since criteria
  are sums) is all-reduced by summing, together with the loss, metric and sample counts, in
  one flat buffer; every rank applies the same update with the *global* sample count, so N
  processes train exactly as one process with the same global minibatch (up to the order of
  float additions).
* ``model-averaging`` (ModelAveragingSGD): ranks update on their own; every ``sync_period``
  global samples (and at the end of each epoch) the models are averaged, each weighted by the
  samples it saw since the last average (torch's ``model_averaging.utils``).
* ``block-momentum`` (BlockMomentumSGD, BMUF): at each sync the mean model delta since the
  last global model is filtered by block momentum and block learning rate; the new global
  model is W = W_prev − G with G = m·G + lr_b·Δ, plus the Nesterov look-ahead −m·G, and the
  ranks' SGD momentum is reset (CNTK's defaults: m = 1 − 1/N, lr_b = 1).

Epochs before ``start_epoch`` (1-based, CNTK's ``parallelizationStartEpoch``) run the whole
minibatch on every rank without communication (identical on all ranks). Only rank 0 writes.
A collective that fails (a rank died) or waits past ``timeout`` is a one-line error.
"""

from __future__ import annotations

import atexit
import datetime
import math
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.algorithms.model_averaging import utils as averaging

from netsurgeon.errors import EvaluationError
from netsurgeon.runtime.batch import Minibatch
from netsurgeon.runtime.guards import NonFiniteError, check_inputs

__all__ = ["ParallelConfig", "Parallel", "METHODS", "launched", "init_process_group",
           "from_cntk"]

METHODS = ("data", "model-averaging", "block-momentum")
CNTK_METHODS = {"dataparallelsgd": "data", "modelaveragingsgd": "model-averaging",
                "blockmomentumsgd": "block-momentum"}
# seconds a collective may wait for the other ranks (NETSURGEON_DIST_TIMEOUT overrides)
DEFAULT_TIMEOUT = float(os.environ.get("NETSURGEON_DIST_TIMEOUT", "300"))


@dataclass
class ParallelConfig:
    """How to train across processes (CNTK's ``parallelTrain`` block).

    Attributes:
        method: ``data``, ``model-averaging`` or ``block-momentum``.
        sync_period: global samples per block (model averaging, block momentum); 0 = CNTK's
            default, 40000·N (model averaging) or 120000·N (block momentum).
        start_epoch: first parallel epoch, 1-based (CNTK parallelizationStartEpoch).
        block_learning_rate: BMUF's block learning rate.
        block_momentum: momentum per block; None = from ``block_momentum_time_constant``
            (m = exp(−sync_period/τ)) or else 1 − 1/N.
        block_momentum_time_constant: τ in samples (CNTK blockMomentumAsTimeConstant).
        reset_sgd_momentum: zero the ranks' optimizer state after each block (BMUF).
        nesterov: BMUF's Nesterov look-ahead.
        timeout: seconds a collective may wait for the other ranks.
    """

    method: str = "data"
    sync_period: int = 0
    start_epoch: int = 1
    block_learning_rate: float = 1.0
    block_momentum: float | None = None
    block_momentum_time_constant: float | None = None
    reset_sgd_momentum: bool = True
    nesterov: bool = True
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise EvaluationError(f"parallel method '{self.method}': give "
                                  + ", ".join(METHODS))
        if int(self.start_epoch) < 1:
            raise EvaluationError(f"parallel start epoch {self.start_epoch}: epochs count "
                                  "from 1")
        if int(self.sync_period) < 0:
            raise EvaluationError(f"sync period {self.sync_period}: give 0 (CNTK's default) "
                                  "or a number of samples")


def from_cntk(method: str, values: Mapping[str, str], world: int) -> ParallelConfig | None:
    """A ParallelConfig from CNTK's ``parallelTrain`` keys (spec §5.8): ``method`` is
    parallelizationMethod, ``values`` the keys of the ParallelTrain block and of the method's
    own block (lower-cased names), ``world`` the number of ranks. None for method ``none``.
    Raises EvaluationError for DataParallelASGD and bad values."""
    kind = method.strip().lower()
    if kind == "none":
        return None
    if kind == "dataparallelasgd":
        raise EvaluationError("parallelizationMethod=DataParallelASGD needs CNTK's parameter "
                              "server; use DataParallelSGD, ModelAveragingSGD or "
                              "BlockMomentumSGD")
    if kind not in CNTK_METHODS:
        raise EvaluationError(f"parallelizationMethod={method}: give DataParallelSGD, "
                              "ModelAveragingSGD, BlockMomentumSGD or none")

    def number(key: str) -> float | None:
        text = values.get(key.lower())
        if text is None:
            return None
        try:
            return float(text)
        except ValueError:
            raise EvaluationError(f"ParallelTrain: {key}={text}: give a number") from None

    def flag(key: str, default: bool) -> bool:
        text = values.get(key.lower())
        if text is None:
            return default
        return text.strip().lower() in ("true", "t", "1", "yes")

    block = number("blockSize")
    per_worker = next((v for v in (number("blockSizePerWorker"), number("syncPeriod"),
                                   number("syncFrequencyInFrames")) if v is not None), None)
    sync = int(block) if block is not None else int(per_worker * world) if per_worker else 0
    start = number("parallelizationStartEpoch")
    config = ParallelConfig(method=CNTK_METHODS[kind], sync_period=sync,
                            start_epoch=int(start) if start is not None else 1,
                            block_learning_rate=number("blockLearningRate") or 1.0,
                            block_momentum=number("blockMomentumPerSync"),
                            block_momentum_time_constant=number("blockMomentumAsTimeConstant"),
                            reset_sgd_momentum=flag("resetSGDMomentum", True),
                            nesterov=flag("useNesterovMomentum", True))
    bits = number("gradientBits")
    if kind == "dataparallelsgd" and bits is not None and bits < 32:
        log_once(f"warning: ParallelTrain: gradientBits={bits:g}: quantized gradients are not "
                 "supported; they are all-reduced in full precision")
    return config


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher) as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_process_group(device: torch.device, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Join the job torchrun started (gloo on the CPU, NCCL on a GPU), once."""
    if dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout),
                                device_id=device if device.type == "cuda" else None)
    except (RuntimeError, ValueError) as exc:
        raise EvaluationError(f"cannot join the torch.distributed job ({backend}): "
                              f"{_first_line(exc)}",
                              hint="start the run with torchrun --nproc-per-node N") from None
    atexit.register(_leave)


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def _first_line(exc: BaseException) -> str:
    """The gist of a torch.distributed error: its first sentence, without the source path."""
    lines = str(exc).strip().splitlines()
    text = re.sub(r"^\[[^\]]*\]\s*", "", lines[0]) if lines else type(exc).__name__
    return text.split(". ")[0].rstrip(".")


class Parallel:
    """One rank's part of a data-parallel run; the Trainer calls it for each step."""

    def __init__(self, config: ParallelConfig | None = None, *, group: Any = None,
                 rank: int | None = None, world: int | None = None) -> None:
        """``group``: the process group (default: torchrun's); ``rank`` / ``world`` override
        what the group says (to plan shards and blocks without one)."""
        self.config = config or ParallelConfig()
        self.group = group
        joined = dist.is_initialized()
        self.rank = rank if rank is not None else dist.get_rank(group) if joined else 0
        self.world = world if world is not None else dist.get_world_size(group) if joined else 1
        cfg = self.config
        n = self.world
        if cfg.sync_period:
            self.block = int(cfg.sync_period)
        else:
            self.block = (120000 if cfg.method == "block-momentum" else 40000) * n
        if cfg.block_momentum is not None:
            self.block_momentum = float(cfg.block_momentum)
        elif cfg.block_momentum_time_constant:
            self.block_momentum = math.exp(-self.block / float(cfg.block_momentum_time_constant))
        else:
            self.block_momentum = 1.0 - 1.0 / n
        self._local_since = 0  # samples this rank trained on since the last sync
        self._global_since = 0  # samples of all ranks since the last sync
        self._prev: list[torch.Tensor] | None = None  # BMUF: the global model of the last sync
        self._block_grad: list[torch.Tensor] | None = None

    @property
    def is_writer(self) -> bool:
        """Rank 0 writes models, checkpoints and logs."""
        return self.rank == 0

    def active(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` (0-based) is trained in parallel."""
        return self.world > 1 and epoch + 1 >= int(self.config.start_epoch)

    def describe(self) -> str:
        cfg = self.config
        text = f"{cfg.method} parallel training on {self.world} ranks"
        if cfg.method != "data":
            text += f", block {self.block} samples"
        if cfg.method == "block-momentum":
            text += (f", block momentum {self.block_momentum:.6g}, block learning rate "
                     f"{cfg.block_learning_rate:g}")
        if cfg.start_epoch > 1:
            text += f", from epoch {cfg.start_epoch}"
        return text

    def warnings(self) -> list[str]:
        """CNTK's warning when BMUF's settings are likely to diverge."""
        cfg = self.config
        if cfg.method == "block-momentum" and \
                (1 - self.block_momentum) * cfg.block_learning_rate * self.world >= 2:
            return [f"block learning rate {cfg.block_learning_rate:g} x (1 - block momentum "
                    f"{self.block_momentum:.6g}) x {self.world} ranks is 2 or more: training "
                    "may diverge"]
        return []

    # ---- data ----------------------------------------------------------------------------------
    def shard(self, batch: Minibatch) -> Minibatch:
        """This rank's sequences of a global minibatch (contiguous, sizes differing by one at
        most)."""
        b = batch.batch
        start = b * self.rank // self.world
        stop = b * (self.rank + 1) // self.world
        return batch.select(start, stop)

    # ---- collectives -----------------------------------------------------------------------------
    def _all_reduce(self, tensor: torch.Tensor) -> None:
        try:
            dist.all_reduce(tensor, group=self.group)
        except Exception as exc:  # gloo/NCCL: a peer died, or the timeout passed
            raise self._lost(exc) from None

    def _lost(self, exc: BaseException) -> EvaluationError:
        return EvaluationError(f"rank {self.rank} of {self.world}: the other ranks are gone or "
                               f"did not answer within {self.config.timeout:g} s "
                               f"({type(exc).__name__}: {_first_line(exc)})",
                               hint="the last checkpoint is intact: rerun with --resume")

    def reduce_sums(self, values: Iterable[float]) -> list[float]:
        """Sum numbers over the ranks (epoch totals of the averaging methods)."""
        t = torch.tensor(list(values), dtype=torch.float64)
        self._all_reduce(t)
        return t.tolist()

    def barrier(self) -> None:
        try:
            dist.barrier(group=self.group)
        except Exception as exc:
            raise self._lost(exc) from None

    # ---- one step ------------------------------------------------------------------------------
    def step(self, trainer: Any, batch: Minibatch) -> tuple[float, list[float]]:
        """One global minibatch: this rank's share, then the method's communication."""
        check_inputs(batch)  # on every rank alike, so all stop together on bad data
        local = self.shard(batch)
        if self.config.method == "data":
            return self._data_step(trainer, local)
        loss, metrics = (trainer._local_step(local) if local.batch else
                         (0.0, [0.0] * len(trainer.metrics)))
        self._local_since += local.samples
        self._global_since += batch.samples
        if self._global_since >= self.block:
            self.sync(trainer)
        return loss, metrics

    def _data_step(self, trainer: Any, local: Minibatch) -> tuple[float, list[float]]:
        params = trainer._params
        for p in params:
            p.grad = None
        if local.batch:
            loss, metrics = trainer._forward_backward(local)
        else:  # more ranks than sequences in this minibatch: contribute nothing
            loss, metrics = 0.0, [0.0] * len(trainer.metrics)
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        device = grads[0].device if grads else torch.device("cpu")
        extra = torch.tensor([loss, *metrics, float(local.samples)], dtype=torch.float64,
                             device=device)
        flat = torch.cat([g.reshape(-1).to(torch.float64) for g in grads] + [extra]) \
            if _exact_reduce(grads) else torch.cat([g.reshape(-1) for g in grads]
                                                     + [extra.to(grads[0].dtype)])
        self._all_reduce(flat)
        offset = 0
        for p, g in zip(params, grads):
            size = g.numel()
            p.grad = flat[offset:offset + size].view_as(g).to(g.dtype)
            offset += size
        tail = flat[offset:].tolist()
        loss, metrics, samples = tail[0], tail[1:-1], int(round(tail[-1]))
        if not math.isfinite(loss):
            trainer._check_parameters(after_update=True)
            names = ", ".join(f"'{c.name}'" for c in trainer.criteria)
            raise NonFiniteError(f"the loss (criterion {names}) is {loss}")
        with torch.no_grad():
            trainer._apply(params, samples)
        trainer._steps += 1
        return loss, metrics

    # ---- model averaging / block momentum -----------------------------------------------------
    def _tensors(self, trainer: Any) -> list[torch.Tensor]:
        """What a sync averages: the trainable parameters, then batch-norm statistics."""
        seen: set[int] = set()
        out = []
        for t in [*trainer._params, *trainer._state_tensors()]:
            if id(t) not in seen:
                seen.add(id(t))
                out.append(t)
        return out

    def start(self, trainer: Any) -> None:
        """Before a parallel epoch: BMUF's global model is the current one (same on all ranks)."""
        if self.config.method == "block-momentum" and self._prev is None:
            self._prev = [t.detach().clone() for t in self._tensors(trainer)]
            self._block_grad = [torch.zeros_like(t) for t in self._prev]

    def end_epoch(self, trainer: Any) -> None:
        """Average what is left of the last block, so all ranks end the epoch equal."""
        if self.config.method != "data" and self._global_since > 0:
            self.sync(trainer)

    def sync(self, trainer: Any) -> None:
        """One model-averaging or BMUF synchronization."""
        tensors = self._tensors(trainer)
        weight = self.world * self._local_since / max(self._global_since, 1)
        with torch.no_grad():
            if self.config.method == "model-averaging":
                for t in tensors:
                    t.mul_(weight)
                averaging.average_parameters(iter(tensors), self.group or dist.group.WORLD)
            else:
                self._block_momentum(trainer, tensors, weight)
        self._local_since = self._global_since = 0

    def _block_momentum(self, trainer: Any, tensors: list[torch.Tensor], weight: float) -> None:
        cfg = self.config
        if self._prev is None:
            self.start(trainer)
        prev, grad = self._prev, self._block_grad
        deltas = [(p - t) * weight for p, t in zip(prev, tensors)]  # type: ignore[arg-type]
        flat = torch.cat([d.reshape(-1) for d in deltas])
        self._all_reduce(flat)
        flat /= self.world
        m, lr = self.block_momentum, cfg.block_learning_rate
        offset = 0
        for t, p, g in zip(tensors, prev, grad):  # type: ignore[arg-type]
            size = t.numel()
            delta = flat[offset:offset + size].view_as(t)
            offset += size
            g.mul_(m).add_(delta, alpha=lr)
            p.sub_(g)
            t.copy_(p)
            if cfg.nesterov:
                t.sub_(g, alpha=m)
        if cfg.reset_sgd_momentum:
            _reset_optimizer_state(trainer)

    # ---- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """BMUF's global model and block gradient (empty for the other methods)."""
        if self._prev is None:
            return {}
        return {"method": self.config.method, "prev": [t.clone() for t in self._prev],
                "block_grad": [t.clone() for t in self._block_grad or []]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("method") == self.config.method == "block-momentum":
            self._prev = [t.clone() for t in state["prev"]]
            self._block_grad = [t.clone() for t in state["block_grad"]]


def _exact_reduce(grads: list[torch.Tensor]) -> bool:
    """Sum float32 gradients in float64 on the CPU (gloo): the halves of a minibatch then add
    up as one process's sum would, to float32 rounding. On a GPU (NCCL) they stay float32."""
    return bool(grads) and grads[0].device.type == "cpu"


def _reset_optimizer_state(trainer: Any) -> None:
    """BMUF's resetSGDMomentum: zero momentum buffers and the optimizer's running tensors."""
    for buf in trainer.momentum_buffers.values():
        buf.zero_()
    if trainer.optimizer is not None:
        for state in trainer.optimizer.state.values():
            for value in state.values():
                if isinstance(value, torch.Tensor) and value.dim() > 0:
                    value.zero_()
    rule = trainer.update_rule
    for state in getattr(rule, "state", {}).values():
        for value in state.values():
            if isinstance(value, torch.Tensor):
                value.zero_()


def log_once(message: str) -> None:
    """Print ``message`` to stderr on rank 0 only."""
    if not dist.is_initialized() or dist.get_rank() == 0:
        print(message, file=sys.stderr)
