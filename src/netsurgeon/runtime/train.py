"""Training: minibatch SGD (CNTK's knobs), Adam and AdaGrad over the criterion node(s).

The criterion nodes output sums over the minibatch, as CNTK's do, so a learning rate *per
sample* multiplies the gradient of that sum directly and a rate *per minibatch* is divided by
the configured minibatch size (CNTK's ``learningRatesPerMB``). Momentum is per minibatch and
unit-gain by default (v = m·v + (1−m)·g), L2 adds ``l2 · samples · w`` to the gradient
(CNTK's ``L2RegWeight``), clipping bounds the gradient by ``clip_threshold · samples``
element-wise (truncation) or by norm.

Each parameter's learning rate is multiplied by its ``learning_rate_multiplier``; 0 freezes
it: it is never given to the optimizer and never written back, so it stays bit-identical.
Nodes that share one numpy array share one tensor, so a shared parameter gets one update with
the summed gradient of all its uses. Precompute nodes (Mean, InvStdDev) are computed in one
pass over the training data before the first epoch. After training (and at each checkpoint)
the new values are written back into ``node.value``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from netsurgeon.errors import EvaluationError
from netsurgeon.graph import Network, Node
from netsurgeon.ops import Category
from netsurgeon.progress import NullProgress, ProgressFactory
from netsurgeon.progress import bar as progress_bar
from netsurgeon.runtime import checkpoint
from netsurgeon.runtime._kernels import masked_sum
from netsurgeon.runtime.backends import check_backend
from netsurgeon.runtime.backends_train import TrainBackend
from netsurgeon.runtime.batch import Minibatch, SparseRows
from netsurgeon.runtime.codegen import TorchSource, needed_nodes
from netsurgeon.runtime.compile import CompiledNetwork, compile_network, network_dtype
from netsurgeon.runtime.device import autocast, check_precision, resolve_device
from netsurgeon.runtime.guards import (
    NonFiniteError,
    check_config,
    check_inputs,
    describe_batch,
    first_non_finite,
)

__all__ = ["TrainConfig", "Trainer", "precompute"]


@dataclass
class TrainConfig:
    """CNTK's SGD block, in Python.

    Attributes:
        epochs: number of epochs (CNTK maxEpochs).
        minibatch_size: samples per minibatch.
        epoch_size: samples per epoch; 0 = one pass over the data.
        learning_rate: a rate, or one rate per epoch (the last repeats).
        lr_unit: ``sample`` (learningRatesPerSample) or ``minibatch`` (learningRatesPerMB).
        momentum: per-minibatch momentum (0 = none); ``unit_gain`` scales g by (1−m).
        l2: L2 regularization weight (per sample).
        clip_threshold: gradient clipping threshold per sample (inf = off).
        clip_truncation: clip element-wise (True, CNTK's default) or by the gradient norm.
        optimizer: ``sgd``, ``adam`` or ``adagrad``.
        dropout_rate: rate of Dropout nodes during training.
        seed: torch random seed (dropout).
        checkpoint: file written after each epoch (None = none).
        progress: show a progress bar.
    """

    epochs: int = 1
    minibatch_size: int = 256
    epoch_size: int = 0
    learning_rate: float | list[float] = 0.01
    lr_unit: str = "sample"
    momentum: float = 0.0
    unit_gain: bool = True
    l2: float = 0.0
    clip_threshold: float = math.inf
    clip_truncation: bool = True
    optimizer: str = "sgd"
    adam_betas: tuple[float, float] = (0.9, 0.999)
    dropout_rate: float = 0.0
    seed: int = 1
    checkpoint: str | None = None
    progress: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def rate(self, epoch: int) -> float:
        rates = self.learning_rate if isinstance(self.learning_rate, (list, tuple)) else \
            [self.learning_rate]
        return float(rates[min(epoch, len(rates) - 1)])


DataSource = Callable[[], Iterable[Minibatch]]


def _cycle(source: DataSource) -> Iterator[Minibatch]:
    while True:
        empty = True
        for mb in source():
            empty = False
            yield mb
        if empty:
            raise EvaluationError("the training data has no samples")


class Trainer:
    """Trains a network's parameters on minibatches.

    Example::

        trainer = Trainer(net, TrainConfig(epochs=3, learning_rate=0.04))
        trainer.fit(lambda: CTFReader("Train.txt", streams_for(net)))

    ``device`` (``cpu``, ``cuda``, ``cuda:N``, ``auto``) is where the module and its state
    live; ``precision`` (``float32``, ``bfloat16``, ``float16`` on a GPU) the autocast of the
    forward pass; ``parallel`` a :class:`~netsurgeon.runtime.distributed.Parallel` under
    torchrun (docs/distributed.md): its rank trains its share of each minibatch, only rank 0
    writes checkpoints.

    ``column_major`` (class attribute, on): the module holds its trainable dense weight
    matrices in ``nn.Linear``'s layout (:func:`~netsurgeon.runtime.module.to_torch`), ~5 %
    faster steps on the CPU, the products rounded differently from evaluation's in the last
    bit; set it to False for evaluation's layout.
    """

    column_major: bool = True

    def __init__(self, network: Network, config: TrainConfig | None = None, *,
                 criteria: Iterable[Node | str] | None = None,
                 metrics: Iterable[Node | str] | None = None,
                 update_rule: Any = None, device: Any = None, precision: str | None = None,
                 parallel: Any = None, backend: str = "auto") -> None:
        self.network = network
        # where the module runs (cpu, cuda, cuda:N, auto) and its autocast precision
        self.device = resolve_device(device)
        self.precision = check_precision(precision, self.device)
        # a runtime.distributed.Parallel: data-parallel steps, rank 0 writes (None: one process)
        self.parallel = parallel
        # an object with apply(trainer, samples) that replaces the update step (the gradients
        # are in p.grad): runtime.cntk_sgd.CNTKUpdate, CNTK's exact rule
        self.update_rule = update_rule
        # torch, compile or auto (runtime.backends_train; auto measures on the real steps)
        self.backend = check_backend(backend, training=True)
        self.config = config or TrainConfig()
        check_config(self.config)
        if any(n.shape is None for n in network.nodes):
            network.validate()
        crit = list(criteria) if criteria is not None else network.group("criterion")
        if not crit:
            raise EvaluationError("the network has no criterion node to train on; add one "
                                  "with tags=[\"criterion\"] (or tag=\"criterion\" in NDL and "
                                  "BrainScript), call network.add_to_group(\"criterion\", node), "
                                  "or pass criteria=")
        self.criteria = [network.node(c) for c in crit]
        self.metrics = [network.node(m) for m in (metrics if metrics is not None
                                                    else network.group("evaluation"))
                        if network.node(m) not in self.criteria]
        _convert_inv_std_dev(network, self.criteria + self.metrics)
        self.dtype = network_dtype(network)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self._make_tensors()
        self._runner = TrainBackend(self.module, self.backend)
        self._make_optimizer()

    # ---- parameters --------------------------------------------------------------------------
    def _make_tensors(self) -> None:
        """The module the Trainer runs (:func:`~netsurgeon.runtime.module.to_torch` of the
        criteria and metrics, in training mode) and views of its tensors: one per parameter
        storage, ``nn.Parameter`` s for the trainable ones, buffers for running statistics
        and Mean/InvStdDev."""
        from netsurgeon.runtime.module import to_torch

        net = self.network
        roots = self.criteria + self.metrics
        self.module = to_torch(net, roots, config={"dropout_rate": self.config.dropout_rate},
                               uncomputed=True, column_major=self.column_major).train()
        if self.device.type != "cpu":
            self.module.to(self.device)
            self.module._input_device = self.device
        self._version = net.version
        params = net.registry.op_set(Category.PARAMETER)
        self.param_nodes = [n for n in needed_nodes(net, roots) if n.op in params]
        module = self.module
        self.tensors: dict[str, torch.Tensor] = {
            node: getattr(module, attr) for node, attr in module.node_attributes.items()}
        self.trainable: dict[str, tuple[torch.Tensor, float, list[Node]]] = {}
        for attr, names in module._state_nodes.items():
            t = getattr(module, attr)
            if not t.requires_grad:
                continue
            nodes = [net.node(x) for x in names if net.node(x).learning_rate_multiplier > 0]
            self.trainable[attr] = (t, nodes[0].learning_rate_multiplier, nodes)

    def _make_optimizer(self) -> None:
        cfg = self.config
        groups: dict[float, list[torch.Tensor]] = {}
        for t, mult, _ in self.trainable.values():
            groups.setdefault(float(mult), []).append(t)
        self.groups = groups
        self._params = [t for t, _, _ in self.trainable.values()]
        self._param_names = [nodes[0].name for _, _, nodes in self.trainable.values()]
        self._steps = 0  # updates applied by this trainer
        kind = cfg.optimizer.lower()
        if kind == "sgd":
            self.optimizer = None
            self.momentum_buffers = {id(t): torch.zeros_like(t) for g in groups.values()
                                     for t in g} if cfg.momentum > 0 else {}
        elif kind in ("adam", "adagrad"):
            self.momentum_buffers = {}
            param_groups = [{"params": ts, "multiplier": m, "lr": cfg.rate(0) * m}
                            for m, ts in groups.items()]
            if kind == "adam":
                self.optimizer = torch.optim.Adam(param_groups, betas=cfg.adam_betas)
            else:
                self.optimizer = torch.optim.Adagrad(param_groups)
        else:
            raise EvaluationError(f"unknown optimizer {cfg.optimizer!r}: use sgd, adam or adagrad")

    @property
    def _compiled(self) -> dict[frozenset[str], TrainingCode]:
        """The module's training code per input sparsity (made on first use)."""
        module = self.module
        return {sparse: TrainingCode(module._compiled[fn.__name__][0], fn)
                for (sparse, training), (fn, _) in module._variants.items() if training}

    def _sync(self) -> None:
        """Before a step: rebuild the module's code when the network was edited (its tensors
        stay), load Mean/InvStdDev values computed since the module was made."""
        net = self.network
        module = self.module
        if net.version != self._version:
            module.rebuild()
            self._version = net.version
        if module._uncomputed:
            with torch.no_grad():
                for name in list(module._uncomputed):
                    value = net.node(name).value
                    if value is not None:
                        t = self.tensors[name]
                        t.copy_(torch.as_tensor(np.asarray(value), dtype=t.dtype).reshape(t.shape))
                        module._uncomputed.discard(name)
        if not module.training:
            module.train()

    # ---- one step ----------------------------------------------------------------------------
    def step(self, batch: Minibatch) -> tuple[float, list[float]]:
        """One minibatch: forward, backward, update. Returns (criterion sum, metric sums).

        Raises NonFiniteError, before any parameter changes, when the data or the loss holds
        NaN/Inf. An update that makes a parameter NaN/Inf is not looked for here (a check of
        every parameter costs a tenth of a small network's step): the next step's loss is then
        NaN, and that error names the parameter; :meth:`write_back` checks them all. In a
        data-parallel epoch ``batch`` is the global minibatch, of which this rank trains its
        share (:class:`~netsurgeon.runtime.distributed.Parallel`); the sums returned are global.
        """
        par = self.parallel
        if par is not None and par.active(self.epoch):
            return par.step(self, batch)
        return self._local_step(batch)

    def _local_step(self, batch: Minibatch) -> tuple[float, list[float]]:
        start = time.perf_counter()
        check_inputs(batch)
        module = self.module
        if self.network.version != self._version or module._uncomputed or not module.training:
            self._sync()
        with self._autocast():
            out = self._runner(batch)
            loss = _minibatch_sum(out, self.criteria[0], batch)
            for c in self.criteria[1:]:
                loss = loss + _minibatch_sum(out, c, batch)
        value = float(loss.detach())
        params = self._params
        if not math.isfinite(value):
            self._check_parameters(after_update=True)
            names = ", ".join(f"'{c.name}'" for c in self.criteria)
            raise NonFiniteError(f"the loss (criterion {names}) is {value}")
        for p in params:
            p.grad = None
        loss.backward(torch.ones_like(loss))
        n = batch.samples
        with torch.no_grad():
            self._apply(params, n)
        self._steps += 1
        self._runner.record(time.perf_counter() - start)
        return value, [float(_minibatch_sum(out, m, batch).detach()) for m in self.metrics]

    def _autocast(self) -> Any:
        return autocast(self.precision, self.device)

    def _forward_backward(self, batch: Minibatch) -> tuple[float, list[float]]:
        """Forward and backward of a data-parallel rank's share, no update: (loss, metrics);
        the gradients are left in ``p.grad`` to be all-reduced (a non-finite loss is checked
        after the reduction, on every rank alike)."""
        module = self.module
        if self.network.version != self._version or module._uncomputed or not module.training:
            self._sync()
        with self._autocast():
            out = self._runner(batch)  # the backend a one-process step uses
            loss = _minibatch_sum(out, self.criteria[0], batch)
            for c in self.criteria[1:]:
                loss = loss + _minibatch_sum(out, c, batch)
        loss.backward(torch.ones_like(loss))
        return float(loss.detach()), [float(_minibatch_sum(out, m, batch).detach())
                                      for m in self.metrics]

    def _check_parameters(self, after_update: bool = False) -> None:
        """Raise NonFiniteError naming the first trainable parameter that holds NaN/Inf.

        ``after_update``: the check runs at the step after the one whose update did it (the
        error's ``previous_step`` says so, for the minibatch it reports)."""
        bad = first_non_finite(self._params)
        if bad is None:
            return
        name = self._param_names[bad]
        if self._steps == 0:
            raise NonFiniteError(f"parameter '{name}' holds NaN or Inf before training",
                                 node=name, hint="fix or re-initialise that parameter")
        raise NonFiniteError(f"the update made parameter '{name}' NaN or Inf", node=name,
                             previous_step=after_update)

    def _apply(self, params: list[torch.Tensor], samples: int) -> None:
        cfg = self.config
        grads = [p.grad for p in params]
        if any(g is None for g in grads):  # a parameter the criterion does not reach
            grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
            for p, g in zip(params, grads):
                p.grad = g
        if self.update_rule is not None:
            self.update_rule.apply(self, samples)
            return
        if cfg.l2 > 0:
            torch._foreach_add_(grads, params, alpha=cfg.l2 * samples)
        if math.isfinite(cfg.clip_threshold):
            bound = cfg.clip_threshold * samples
            if cfg.clip_truncation:
                for g in grads:
                    g.clamp_(-bound, bound)
            else:
                norm = torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))
                if norm > bound:
                    torch._foreach_mul_(grads, float(bound / norm))
        base = cfg.rate(self.epoch)
        if cfg.lr_unit == "minibatch":
            base = base / cfg.minibatch_size
        if self.optimizer is not None:
            for group in self.optimizer.param_groups:
                group["lr"] = base * group["multiplier"]
            self.optimizer.step()
            return
        for mult, ts in self.groups.items():
            gs = [t.grad for t in ts]
            lr = base * mult
            if cfg.momentum > 0:
                bufs = [self.momentum_buffers[id(t)] for t in ts]
                torch._foreach_mul_(bufs, cfg.momentum)
                torch._foreach_add_(bufs, gs, alpha=(1 - cfg.momentum) if cfg.unit_gain else 1.0)
                gs = bufs
            torch._foreach_add_(ts, gs, alpha=-lr)

    # ---- epochs ------------------------------------------------------------------------------
    def fit(self, data: DataSource | Iterable[Minibatch], *,
            progress: bool | ProgressFactory | None = None,
            data_samples: int | None = None) -> list[dict[str, Any]]:
        """Train for the configured epochs (from ``self.epoch``, so a resumed trainer goes on).

        ``data`` is a callable returning a fresh iterable of minibatches per pass (a reader),
        or a list of minibatches. ``progress``: one bar for the whole run (see
        :mod:`netsurgeon.progress`; default: a terminal bar if ``config.progress``) showing
        the epoch, loss and metrics per sample so far, counting samples up to epochs × the
        epoch size (``config.epoch_size``, else ``data_samples``: the samples of one pass over
        the data, counted for a list; the total is unknown without either).
        """
        cfg = self.config
        check_config(cfg)
        source: DataSource = data if callable(data) else (lambda: data)  # type: ignore[assignment]
        if progress is None and cfg.progress:
            progress = True
        if data_samples is None and isinstance(data, (list, tuple)):
            data_samples = sum(mb.samples for mb in data)
        per_epoch = cfg.epoch_size or data_samples
        torch.manual_seed(cfg.seed)
        precompute(self.network, source, self.tensors, progress=progress, total=data_samples)
        stream = _cycle(source) if cfg.epoch_size > 0 else None
        left = cfg.epochs - self.epoch
        with progress_bar(progress, f"epoch {self.epoch + 1}/{cfg.epochs}",
                          per_epoch * left if per_epoch and left > 0 else None,
                          "samples") as bar:
            while self.epoch < cfg.epochs:
                self._fit_epoch(stream, source, bar)
        return self.history

    def _fit_epoch(self, stream: Iterator[Minibatch] | None, source: DataSource,
                   bar: Any) -> None:
        """One epoch of :meth:`fit` (``stream``: the endless data when epochs have a size)."""
        cfg = self.config
        batches: Iterable[Minibatch]
        par = self.parallel if self.parallel is not None and self.parallel.active(self.epoch) \
            else None
        if par is not None:
            par.start(self)
        if stream is not None:
            batches = _take(stream, cfg.epoch_size)
        else:
            batches = source()
        bar.set_description(f"epoch {self.epoch + 1}/{cfg.epochs}")
        total, samples = 0.0, 0
        metric_sums = [0.0] * len(self.metrics)
        index, mb, previous = 0, None, None
        for index, mb in enumerate(batches, 1):
            try:
                loss, metrics = self.step(mb)
            except NonFiniteError as exc:
                if exc.previous_step and previous is not None:
                    raise self._stopped(exc, index - 1, previous) from None
                raise self._stopped(exc, index, mb) from None
            previous = mb
            total += loss
            samples += mb.samples
            metric_sums = [a + b for a, b in zip(metric_sums, metrics)]
            if not isinstance(bar, NullProgress):
                scale = max(samples, 1)
                bar.set_postfix_str(" ".join(
                    [f"loss {total / scale:.4f}"]
                    + [f"{m.name} {v / scale:.4f}" for m, v in zip(self.metrics, metric_sums)]))
            bar.update(mb.samples)
        if par is not None and par.config.method != "data":
            par.end_epoch(self)  # all ranks equal again; the epoch's sums over all ranks
            total, *metric_sums = par.reduce_sums([total, *metric_sums])
        if samples == 0:
            raise EvaluationError("the training data has no samples")
        try:
            self.write_back()  # checks first that every parameter is finite
        except NonFiniteError as exc:
            raise self._stopped(exc, index, mb, epoch_end=True) from None
        record = {"epoch": self.epoch + 1, "samples": samples,
                  "loss": total / samples,
                  "metrics": {m.name: v / samples for m, v in zip(self.metrics, metric_sums)}}
        self.history.append(record)
        self.epoch += 1
        if cfg.checkpoint and self.is_writer:
            self.save_checkpoint(cfg.checkpoint)

    @property
    def is_writer(self) -> bool:
        """Whether this process writes models and checkpoints (rank 0, or the only one)."""
        return self.parallel is None or self.parallel.is_writer

    def _stopped(self, exc: NonFiniteError, index: int, batch: Minibatch | None,
                 epoch_end: bool = False) -> EvaluationError:
        """The one-line error of a training run stopped at a non-finite value (``epoch_end``:
        found by the check of all parameters after the epoch's last minibatch, ``index``)."""
        cfg = self.config
        if epoch_end:
            head = (f"training stopped at the end of epoch {self.epoch + 1} ({index} minibatches)"
                    f": {exc.message.replace('the update made', 'an update made', 1)}")
        else:
            where = describe_batch(batch) if batch is not None else ""
            head = (f"training stopped at epoch {self.epoch + 1}, minibatch {index}"
                    + (f" ({where})" if where else "") + f": {exc.message}")
        if self.epoch == 0:
            kept = "no epoch was completed, nothing was written"
        elif cfg.checkpoint:
            kept = (f"the parameters and checkpoint {cfg.checkpoint} of epoch {self.epoch} "
                    "are kept")
        else:
            kept = f"the parameters of epoch {self.epoch} are kept"
        fix = exc.hint or ("remove or fix that data" if "input" in exc.message else
               "lower the learning rate or clip the gradients: --lr, --clip")
        return EvaluationError(f"{head}; {kept}", node=exc.node, hint=fix)

    def write_back(self) -> None:
        """Copy trained values (and updated running statistics) into ``node.value``.

        Goes through ``network.update``, which bumps ``network.version``: modules compiled
        before hold the old values and refuse to run again. Raises NonFiniteError, writing
        nothing, when a trainable parameter holds NaN/Inf.
        """
        self._check_parameters()
        net = self.network
        fresh = net.version == self._version  # else an edit is pending: rebuild at the next step
        for t, _, nodes in self.trainable.values():
            arr = t.detach().cpu().numpy().astype(np.asarray(nodes[0].value).dtype, order="C",
                                                  copy=True)  # row-major, whatever t's layout
            for n in nodes:
                net.update(n, value=arr)
        state = self._state_tensors()
        for n in self.param_nodes:
            if n.learning_rate_multiplier > 0:
                continue
            t = self.tensors[n.name]
            if any(t is s for s in state):
                net.update(n, value=t.detach().cpu().numpy().copy())
        if fresh:  # the values came from the module: its code stays valid
            self._version = net.version

    def _state_tensors(self) -> list[torch.Tensor]:
        """Tensors the compiled code updates in place in training (batch-norm running
        statistics): the inputs each op's lowering names in ``state_inputs``."""
        registry = self.network.registry
        out = []
        for n in needed_nodes(self.network, self.criteria + self.metrics):
            low = registry.entry("torch", n.op)
            for i in low.state_inputs if low is not None else ():
                inp = n.inputs[i] if i < len(n.inputs) else None
                if inp is not None and inp.name in self.tensors:
                    out.append(self.tensors[inp.name])
        return out

    # ---- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint holds: parameters, epoch, history, optimizer or momentum state."""
        state: dict[str, Any] = {"optimizer_kind": self.config.optimizer.lower(),
                                 "epoch": self.epoch, "history": self.history,
                                 "params": {n.name: self.tensors[n.name].detach().cpu().clone()
                                            for n in self.param_nodes}}
        if self.optimizer is not None:
            state["optimizer"] = self.optimizer.state_dict()
        else:
            names = {id(t): nodes[0].name for t, _, nodes in self.trainable.values()}
            state["momentum"] = {names[k]: v.cpu().clone()
                                 for k, v in self.momentum_buffers.items()}
        parallel = self.parallel.state_dict() if self.parallel is not None else {}
        if parallel:
            state["parallel"] = parallel
        return state

    def save_checkpoint(self, path: str | Path) -> None:
        """Atomically write the trainer state (tensors and plain values only); a failed
        write leaves the previous checkpoint intact."""
        checkpoint.write(path, self.state_dict())

    def load_checkpoint(self, path: str | Path) -> None:
        """Resume from a checkpoint written by :meth:`save_checkpoint`.

        Everything is checked against this network and configuration before anything is
        changed: a checkpoint that cannot be read, or was written for another network or
        optimizer, is a :class:`~netsurgeon.runtime.checkpoint.CheckpointError` and leaves the
        trainer as it was.
        """
        state = checkpoint.read(path)
        self._check_checkpoint(Path(path), state)
        running = self._state_tensors()
        if self.optimizer is not None and "optimizer" in state:
            try:
                self.optimizer.load_state_dict(state["optimizer"])
            except (ValueError, KeyError, TypeError, IndexError, RuntimeError) as exc:
                raise checkpoint.CheckpointError(
                    f"{path}: the optimizer state does not fit this network: {exc}",
                    hint="train without --resume to start afresh") from None
        with torch.no_grad():
            for name, value in state["params"].items():
                t = self.tensors[name]
                if t.requires_grad or any(t is s for s in running):
                    t.copy_(value)
            if self.momentum_buffers and "momentum" in state:
                ids = {nodes[0].name: id(t) for t, _, nodes in self.trainable.values()}
                for name, buf in state["momentum"].items():
                    self.momentum_buffers[ids[name]].copy_(buf)
        self.epoch = state["epoch"]
        self.history = list(state.get("history", []))
        if self.parallel is not None and state.get("parallel"):
            self.parallel.load_state_dict(state["parallel"])
        self.write_back()

    def _check_checkpoint(self, path: Path, state: dict[str, Any]) -> None:
        def bad(why: str, node: str | None = None) -> checkpoint.CheckpointError:
            return checkpoint.CheckpointError(f"{path}: {why}", node=node,
                                              hint="train without --resume to start afresh")

        kind, want = checkpoint.optimizer_kind(state), self.config.optimizer.lower()
        if kind != want:
            raise bad(f"the checkpoint was written with optimizer {kind}, this run uses {want}; "
                      f"resume with --optimizer {kind}")
        params = state["params"]
        for name, value in params.items():
            t = self.tensors.get(name)
            if t is None:
                raise bad(f"the checkpoint has parameter '{name}' that the network does not "
                          "have (was it written for another network?)", name)
            if tuple(value.shape) != tuple(t.shape):
                raise bad(f"parameter '{name}' is {tuple(value.shape)} in the checkpoint but "
                          f"{tuple(t.shape)} in the network", name)
        trainable = [nodes[0].name for _, _, nodes in self.trainable.values()]
        missing = [n for n in trainable if n not in params]
        if missing:
            raise bad("the checkpoint has no value for parameter(s) " + ", ".join(
                f"'{n}'" for n in missing[:5]) + " (was it written for another network?)")
        for name, buf in (state.get("momentum") or {}).items():
            if name not in trainable or tuple(buf.shape) != tuple(self.tensors[name].shape):
                raise bad(f"the momentum of '{name}' does not fit the network", name)
        if self.optimizer is not None and "optimizer" in state:
            self._check_optimizer_state(state["optimizer"], bad)

    def _check_optimizer_state(self, saved: dict[str, Any], bad) -> None:
        ours = [p for g in self.optimizer.param_groups for p in g["params"]]
        try:
            ids = [i for g in saved["param_groups"] for i in g["params"]]
            entries = saved.get("state", {}).items()
        except (KeyError, TypeError, AttributeError):
            raise bad("the optimizer state is malformed") from None
        if len(ids) != len(ours):
            raise bad(f"the optimizer state has {len(ids)} parameters, the network "
                      f"{len(ours)} trainable ones")
        where = {i: p for i, p in zip(ids, ours)}
        for i, entry in entries:
            p = where.get(i)
            if p is None or not isinstance(entry, dict):
                raise bad("the optimizer state is malformed")
            for key, v in entry.items():
                if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape != p.shape:
                    raise bad(f"the optimizer's '{key}' of a {tuple(v.shape)} parameter does not "
                              f"fit the network's {tuple(p.shape)} one")
                if isinstance(v, torch.Tensor) and v.is_floating_point() and \
                        not bool(torch.isfinite(v).all()):
                    raise bad(f"the optimizer's '{key}' holds NaN or Inf")

    def config_dict(self) -> dict[str, Any]:
        """The TrainConfig as a plain dict (what a checkpoint records)."""
        return asdict(self.config)


@dataclass(frozen=True)
class TrainingCode:
    """One training function of the Trainer's module (``source.text`` is its code)."""

    source: TorchSource
    fn: Callable[..., Any]


def _convert_inv_std_dev(network: Network, roots: list[Node]) -> None:
    """Batch normalization of models before version 13 stores the running inverse standard
    deviation; convert it to a variance (var = 1/isd² + ε, as CNTK does on load) so training
    can update it. The node's ``running_inv_std_dev`` flag is cleared accordingly."""
    for n in needed_nodes(network, roots):
        if not n.attrs.get("running_inv_std_dev"):  # only BatchNormalization has it
            continue
        stat = n.inputs[4]
        isd = np.asarray(stat.value, dtype=np.float64)
        var = (1.0 / (isd * isd) + n.attrs["epsilon"]).astype(np.asarray(stat.value).dtype)
        network.update(stat, value=var)
        network.set_attrs(n, running_inv_std_dev=False)


def _take(stream: Iterator[Minibatch], samples: int) -> Iterator[Minibatch]:
    seen = 0
    while seen < samples:
        mb = next(stream)
        seen += mb.samples
        yield mb


def precompute(network: Network, source: DataSource,
               tensors: dict[Any, torch.Tensor] | None = None, *,
               progress: bool | ProgressFactory | None = None,
               total: int | None = None) -> list[Node]:
    """Compute the Mean / InvStdDev nodes not computed yet, in one pass per dependency level.

    Not computed: no value, or ``has_computed`` false (a CNTK file may hold statistics with
    its hasComputed flag false; CNTK recomputes those before training, and a file written
    with the flag false does not load in CNTK 2.7). Returns the nodes computed. Their
    values go into ``node.value``, with ``has_computed`` set (and into ``tensors`` when a
    trainer shares its tensors). ``progress``: a bar per pass over the data (see
    :mod:`netsurgeon.progress`), counting samples up to ``total`` (the samples of the data).
    """
    precomputed = network.registry.op_set(Category.PRECOMPUTE)
    todo = [n for n in network.nodes if n.op in precomputed and _pending(n)]
    done: list[Node] = []
    while todo:
        ready = [n for n in todo if not any(
            a.op in precomputed and _pending(a) and a is not n
            for a in needed_nodes(network, [n.inputs[0]]))]
        if not ready:
            raise EvaluationError("precompute nodes depend on each other in a cycle",
                                  node=todo[0].name)
        inputs = [n.inputs[0] for n in ready]
        compiled: dict[frozenset[str], CompiledNetwork] = {}
        sums = [None] * len(ready)
        sqs = [None] * len(ready)
        count = 0
        names = ", ".join(n.name for n in ready[:3]) + (", ..." if len(ready) > 3 else "")
        with progress_bar(progress, f"precompute {names}", total, "samples") as bar:
            for mb in source():
                check_inputs(mb)  # NaN data would become the nodes' values before a step
                sparse = frozenset(k for k, v in mb.streams.items()  # refuses it
                                   if isinstance(v, SparseRows))
                c = compiled.get(sparse)
                if c is None:
                    c = compiled[sparse] = compile_network(network, inputs,
                                                           sparse_inputs=sparse)
                with torch.no_grad():
                    out = c(mb)
                mask = mb.frame_mask()
                for i, inp in enumerate(inputs):
                    v = out[inp.name].double()
                    v = v.reshape(v.shape[0], -1)
                    if mask is not None:
                        v = v[torch.from_numpy(mask) > 0]
                    s, q = v.sum(0), (v * v).sum(0)
                    sums[i] = s if sums[i] is None else sums[i] + s
                    sqs[i] = q if sqs[i] is None else sqs[i] + q
                count += mb.samples
                bar.update(mb.samples)
        if count == 0:
            raise EvaluationError("no data to compute Mean/InvStdDev from")
        for i, n in enumerate(ready):
            mean = sums[i] / count
            var = (sqs[i] / count - mean * mean).clamp_min(1e-10)
            value = mean if n.op == "Mean" else 1.0 / var.sqrt()
            network.update(n, value=value.float().numpy().reshape(tuple(n.shape or (-1,))))
            network.set_attrs(n, has_computed=True)
            if tensors is not None:
                t = tensors.get(n.name)
                if t is not None and t.numel() == n.value.size:  # a trainer's module buffer
                    with torch.no_grad():
                        t.copy_(torch.from_numpy(n.value).reshape(t.shape))
                else:
                    tensors[n.name] = torch.from_numpy(n.value)
            done.append(n)
        todo = [n for n in todo if n not in ready]
    return done


def _pending(node: Node) -> bool:
    """Whether the Mean / InvStdDev ``node`` still has to be computed from the data."""
    return node.value is None or not node.attrs["has_computed"]


def _minibatch_sum(out: dict[str, torch.Tensor], node: Node, batch: Minibatch) -> torch.Tensor:
    """A criterion's or metric's value for the minibatch, as one number: a v1 criterion sums
    over the minibatch itself; a per-sample one (CNTK v2's losses, e.g. the Python API's
    cross_entropy_with_softmax Block) is summed over the real frames, as CNTK's Trainer does."""
    value = out[node.name]
    if value.numel() == 1:
        return value if value.dim() == 1 else value.reshape(1)  # no view of the (1,) sums
    if not node.dynamic:
        raise EvaluationError("a criterion node must output one value (a sum) or one per "
                              f"sample; '{node.name}' has shape {tuple(value.shape)}",
                              node=node.name)
    mask = batch.frame_mask()  # only here: v1 criteria (one value) need none
    return masked_sum(value.reshape(value.shape[0], -1).sum(dim=1),
                      None if mask is None else torch.as_tensor(mask, dtype=value.dtype))
