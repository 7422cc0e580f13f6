"""CNTK's SGD (SGD.cpp ``TrainOrAdaptModel`` / ``UpdateWeights``) as a library the config
driver calls: the epoch loop, the update rule, AutoAdjust, checkpoints and resume, and the
log lines CNTK prints.

The forward/backward pass is :class:`~netsurgeon.runtime.train.Trainer`'s (criterion nodes
give the *sum* over the minibatch, so gradients are sums); its update step is replaced by
:class:`CNTKUpdate`, CNTK's rule per parameter, in float32:

* clip: T = clippingThresholdPerSample·N; element-wise truncation to [−T, T], or (Frobenius,
  per parameter) g *= T/‖g‖ when ‖g‖ > T;
* L2: g += L2·regMult·N·W;
* none: μ = μs^N; S = μS + (1−μ)·lr·g; W −= S (unit gain; NAG: W −= μS + (1−μ)·lr·g);
* AdaGrad, RmsProp, FSAdaGrad, Adam: CNTK's CPU formulas (CPUMatrixImpl.h), see the methods;
* gaussian noise (torch's generator, not CNTK's), then L1: soft threshold by lr·L1·regMult·N.

N is the minibatch's number of real samples, lr = learning rate per sample × the node's
learningRateMultiplier. Checkpoints ``<model>.ckp`` are netsurgeon's own format (see
:func:`save_checkpoint`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from netsurgeon.errors import EvaluationError, NetsurgeonError
from netsurgeon.graph import Network, Node
from netsurgeon.ops import Category
from netsurgeon.runtime.batch import Minibatch
from netsurgeon.runtime.cntk_log import (
    eval_results_line,
    finished_epoch_line,
    log_criterion,
    minibatch_line,
    validate_line,
)
from netsurgeon.runtime.cntk_sgd_settings import AutoAdjust, SGDSettings
from netsurgeon.runtime.guards import NonFiniteError
from netsurgeon.runtime.train import TrainConfig, Trainer, _minibatch_sum, precompute

__all__ = ["SGDSettings", "AutoAdjust", "EpochSource", "train", "evaluate_criteria",
           "log_criterion", "CNTKUpdate", "model_name_for_epoch", "determine_start_epoch",
           "save_checkpoint", "load_checkpoint", "CHECKPOINT_FORMAT"]

EpochSource = Callable[[int, int, int], Iterable[Minibatch]]
CHECKPOINT_FORMAT = "netsurgeon-cntk-sgd-checkpoint"
_F = np.float32


# ---- the update rule ---------------------------------------------------------------------------
class CNTKUpdate:
    """CNTK's per-parameter update (``SGD::UpdateWeights``), installed into a Trainer.

    Set :attr:`lr` (per sample) and :attr:`momentum` (per sample, μs) before each epoch.
    ``state[name]`` holds each parameter's smoothed-gradient tensors and ``count[name]`` its
    smoothed count (FSAdaGrad, Adam); both persist across epochs and go into checkpoints.
    """

    def __init__(self, settings: SGDSettings, seed: int = 0) -> None:
        self.s = settings
        self.lr = 0.0
        self.momentum = 0.0
        self.state: dict[str, dict[str, torch.Tensor]] = {}
        self.count: dict[str, float] = {}
        self._noise = torch.Generator().manual_seed(seed)

    # Trainer hook: called with the gradients in p.grad (sums over the minibatch)
    def apply(self, trainer: Trainer, samples: int) -> None:
        s = self.s
        if self.lr <= 0.01 * s.min_learning_rate_per_sample:
            return  # CNTK skips backprop and update
        n = int(samples)
        mu = float(self.momentum) ** n if self.momentum > 0 else 0.0
        for t, mult, nodes in trainer.trainable.values():
            if t.grad is None:
                continue
            reg = float(nodes[0].attrs.get("reg_multiplier", 1.0)) \
                if "reg_multiplier" in nodes[0].attrs else 1.0
            self.update(nodes[0].name, t, t.grad, n, self.lr * mult, mu, reg)

    def update(self, name: str, w: torch.Tensor, g: torch.Tensor, n: int, lr: float, mu: float,
               reg: float = 1.0) -> None:
        """One parameter's update, in place (``g`` is changed)."""
        s = self.s
        if math.isfinite(s.clipping_threshold_per_sample):
            bound = s.clipping_threshold_per_sample * n
            if s.gradient_clipping_with_truncation:
                g.clamp_(-float(_F(bound)), float(_F(bound)))
            else:
                norm = float(torch.linalg.vector_norm(g.double()))
                if norm > bound:
                    g.mul_(float(_F(bound / norm)))
        noise = None
        if s.gaussian_noise_inject_std > 0:
            noise = torch.randn(w.shape, generator=self._noise, dtype=torch.float64)
            noise = (noise * s.gaussian_noise_inject_std).to(w.dtype)
        if s.l2_reg_weight > 0:
            g.add_(w, alpha=float(_F(s.l2_reg_weight * reg * n)))
        kind = s.grad_update_type
        st = self.state.setdefault(name, {})
        if kind == "none":
            self._momentum_sgd(st, w, g, lr, mu)
        elif kind == "adagrad":
            self._adagrad(st, w, g, lr)
        elif kind == "rmsprop":
            self._rmsprop(st, w, g, lr)
        elif kind == "fsadagrad":
            self._fsadagrad(name, st, w, g, n, lr, mu)
        else:
            self._adam(name, st, w, g, lr)
        if noise is not None:
            w.add_(noise)
        if s.l1_reg_weight > 0:
            thr = float(_F(lr * s.l1_reg_weight * reg * n))
            w.copy_(torch.sign(w) * (w.abs() - thr).clamp_min(0))

    def _momentum_sgd(self, st, w, g, lr, mu) -> None:
        """MomentumSGDUpdate: S = μS + ug·lr·g; W −= S (ug = 1−μ, unit gain); with NAG
        W −= μS + ug·lr·g after the same S update (NesterovAcceleratedMomentumSGDUpdate)."""
        S = st.get("smoothed")
        if S is None:
            S = st["smoothed"] = torch.zeros_like(w)
        m = _F(mu)
        alpha = float(_F(_F(1) - m) * _F(lr))
        S.mul_(float(m)).add_(g, alpha=alpha)
        if self.s.use_nag:
            w.sub_(S * float(m) + g * alpha)
        else:
            w.sub_(S)

    def _adagrad(self, st, w, g, lr) -> None:
        """CPUMatrix::Adagrad: A += g²; g /= sqrt(A + 1e-16); m = mean(1/sqrt(A+1e-16)) with
        normWithAveMultiplier (else 1); W −= (lr/m)·g. (CNTK sums m in float32 in four-way
        unrolled order; here in float64 — a last-bit difference, not verified.)"""
        A = st.get("adagrad")
        if A is None:
            A = st["adagrad"] = torch.zeros_like(w)
        A.addcmul_(g, g)
        d = (A + float(_F(1e-16))).sqrt_()
        g.div_(d)
        ave = float(_F((1.0 / d.double()).mean())) if self.s.norm_with_ave_multiplier else 1.0
        w.add_(g, alpha=float(_F(-lr / ave)) if ave > 0 else 0.0)

    def _rmsprop(self, st, w, g, lr) -> None:
        """CPUMatrix::RmsProp (from CNTK's source as remembered, not verified against a CNTK
        run): first call avars = g², steps = 0.02, signs = 0; then avars = γ·avars + (1−γ)g²;
        steps ×inc (≤ max) when the gradient sign repeats, ×dec (≥ min) when it flips;
        a = steps/sqrt(avars + 1e-6); g *= a; m = mean(a) (normWithAveMultiplier);
        W −= (lr/m)·g."""
        s = self.s
        if "avars" not in st:
            st["avars"] = g * g
            st["signs"] = torch.zeros_like(w)
            st["steps"] = torch.full_like(w, 0.02)
        av, signs, steps = st["avars"], st["signs"], st["steps"]
        av.mul_(float(_F(s.rms_gamma))).addcmul_(g, g, value=float(_F(1) - _F(s.rms_gamma)))
        sign = torch.sign(g)
        same = signs * sign
        steps.copy_(torch.where(same > 0, (steps * float(_F(s.rms_wgt_inc))).clamp_max(
            float(_F(s.rms_wgt_max))), torch.where(same < 0, (steps * float(_F(
                s.rms_wgt_dec))).clamp_min(float(_F(s.rms_wgt_min))), steps)))
        a = steps / (av + float(_F(1e-6))).sqrt()
        g.mul_(a)
        signs.copy_(sign)
        ave = float(_F(a.double().mean())) if s.norm_with_ave_multiplier else 1.0
        w.add_(g, alpha=float(_F(-lr / ave)) if ave > 0 else 0.0)

    def _fsadagrad(self, name, st, w, g, n, lr, mu) -> None:
        """FSAdaGrad (SGD.cpp + CPUMatrix::FSAdagradUpdate, from the source as remembered, not
        verified): varMom = exp(−N/varianceTimeConstant); count = varMom·count + (1−varMom)·N;
        target = fsAdagradTargetAvDenom·sqrt(count); per element
        v = varMom·v + (1−varMom)·g²; if v ≠ 0: g *= min(target/sqrt(v), 10);
        if μ > 0: g = M = μ·M + (1−μ)·g; W −= lr·g."""
        s = self.s
        var_mom = math.exp(-1.0 * n / s.variance_time_constant)
        count = var_mom * self.count.get(name, 0.0) + (1.0 - var_mom) * n
        self.count[name] = count
        target = s.fs_adagrad_target_av_denom * math.sqrt(count)
        if "ada" not in st:
            st["ada"] = torch.zeros_like(w)
            st["mom"] = torch.zeros_like(w)
        ada, mom = st["ada"], st["mom"]
        vm = _F(var_mom)
        ada.mul_(float(vm)).addcmul_(g, g, value=float(_F(1) - vm))
        scale = torch.where(ada != 0, (float(_F(target)) / ada.sqrt()).clamp_max(10.0),
                            torch.ones_like(ada))
        g.mul_(scale)
        if mu > 0:
            m = _F(mu)
            mom.mul_(float(m)).add_(g, alpha=float(_F(1) - m))
            g = mom.clone()
        w.sub_(g * float(_F(lr)))

    def _adam(self, name, st, w, g, lr) -> None:
        """CPUMatrix::AdamUpdate (from the source as remembered, not verified): t = count+1;
        v = β2·v + (1−β2)·g²; m = β1·m + (1−β1)·g; W −= lr·c·m/(sqrt(v) + ε) with
        c = sqrt(1−β2^t)/(1−β1^t); β1 = adam_meanMomentum, β2 = adam_varMomentum."""
        s = self.s
        t = self.count.get(name, 0.0) + 1.0
        self.count[name] = t
        b1, b2 = s.adam_mean_momentum, s.adam_var_momentum
        corr = float(_F(math.sqrt(1.0 - b2 ** t) / (1.0 - b1 ** t)))
        if "ada" not in st:
            st["ada"] = torch.zeros_like(w)
            st["mom"] = torch.zeros_like(w)
        ada, mom = st["ada"], st["mom"]
        ada.mul_(float(_F(b2))).addcmul_(g, g, value=float(_F(1) - _F(b2)))
        mom.mul_(float(_F(b1))).add_(g, alpha=float(_F(1) - _F(b1)))
        step = mom * corr / (ada.sqrt() + float(_F(s.adam_epsilon)))
        w.sub_(step * float(_F(lr)))

    # ---- checkpoint state ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"smoothed": {k: {n: v.detach().clone() for n, v in d.items()}
                             for k, d in self.state.items()},
                "smoothed_count": dict(self.count)}

    def load_state_dict(self, state: dict[str, Any], trainer: Trainer) -> None:
        shapes = {nodes[0].name: t.shape for t, _, nodes in trainer.trainable.values()}
        for name, d in state.get("smoothed", {}).items():
            if name not in shapes:
                raise EvaluationError(f"the checkpoint has smoothed gradients of '{name}', "
                                      "which is not a trained parameter of this network")
            for v in d.values():
                if tuple(v.shape) != tuple(shapes[name]):
                    raise EvaluationError(f"the checkpoint's smoothed gradient of '{name}' is "
                                          f"{tuple(v.shape)}, the parameter "
                                          f"{tuple(shapes[name])}")
        self.state = {k: {n: v.clone() for n, v in d.items()}
                      for k, d in state.get("smoothed", {}).items()}
        self.count = {k: float(v) for k, v in state.get("smoothed_count", {}).items()}


# ---- names, checkpoints --------------------------------------------------------------------------
def model_name_for_epoch(settings: SGDSettings, epoch: int) -> str:
    """CNTK's GetModelNameForEpoch: ``modelPath.<epoch+1>``, the last epoch ``modelPath``."""
    if epoch + 1 == settings.max_epochs:
        return settings.model_path
    return f"{settings.model_path}.{epoch + 1}"


def _checkpoint_name(settings: SGDSettings, epoch: int) -> str:
    return model_name_for_epoch(settings, epoch) + ".ckp"


def _up_to_date(target: str, source: str) -> bool:
    """msra::files::fuptodate(target, source, inputRequired=false)."""
    if not os.path.exists(target):
        return False
    if not os.path.exists(source):
        return True
    return os.path.getmtime(target) >= os.path.getmtime(source)


def determine_start_epoch(settings: SGDSettings, make_mode: bool = True,
                          log: Callable[[str], None] = print) -> int:
    """CNTK's DetermineStartEpoch: −1 (start afresh) without makeMode or files; else the
    epoch after the newest model file not older than its predecessor (0: ``modelPath.0``
    exists; ``maxEpochs``: the final model exists, logged as ``Final model exists: ...``)."""
    if not make_mode:
        return -1
    first = -1
    cur = model_name_for_epoch(settings, settings.max_epochs - 1)
    for e in range(settings.max_epochs - 1, -2, -1):
        prev = model_name_for_epoch(settings, e - 1)
        if _up_to_date(cur, prev):
            first = e + 1
            break
        cur = prev
    if first == settings.max_epochs:
        log(f"Final model exists: {model_name_for_epoch(settings, first - 1)}")
    return first


def save_checkpoint(path: str, state: dict[str, Any]) -> None:
    """Write a checkpoint: ``torch.save`` of plain values and tensors to ``<path>.tmp``, then
    renamed to ``path``. Contents: ``format``, ``version``, ``epoch`` (0-based),
    ``total_samples``, ``lr_per_sample``, ``prev_criterion``, ``minibatch_size``,
    ``smoothed`` {parameter: {state name: tensor}}, ``smoothed_count`` {parameter: float}."""
    tmp = path + ".tmp"
    torch.save({"format": CHECKPOINT_FORMAT, "version": 1, **state}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only``: no code)."""
    try:
        state = torch.load(path, weights_only=True)
    except Exception as exc:
        raise EvaluationError(f"{path}: cannot read the checkpoint: {exc}".splitlines()[0],
                              hint="delete it to train that epoch again") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise EvaluationError(f"{path}: not a netsurgeon CNTK-SGD checkpoint",
                              hint="delete it to train that epoch again")
    return state


# ---- the training run ------------------------------------------------------------------------
def _criteria(net: Network, settings: SGDSettings) -> tuple[Node, list[Node]]:
    if settings.train_criterion_node_name:
        crit = [net.node(settings.train_criterion_node_name)]
    else:
        crit = list(net.group("criterion"))
    if not crit:
        raise EvaluationError("the network has no criterion node to train on (tag one "
                              "\"criterion\", or set SGD.trainCriterionNodeName)")
    if settings.eval_criterion_node_name:
        evals = [net.node(x) for x in settings.eval_criterion_node_name.split(":") if x]
    else:
        evals = list(net.group("evaluation"))
    evals = [e for e in evals if e is not crit[0]]
    return crit[0], evals


def _header(net: Network, trainer: Trainer, crit: Node, evals: list[Node], tl: int,
            log: Callable[[str], None]) -> None:
    log("")
    log(f"Model has {len(net.nodes)} nodes. Using CPU.")
    log("")
    log(f"Training criterion:   {crit.name} = {crit.op}")
    if len(evals) == 1:
        log(f"Evaluation criterion: {evals[0].name} = {evals[0].op}")
    elif evals:
        log("Evaluation criteria:")
        for e in evals:
            log(f"\t{e.name} = {e.op}")
    log("")
    log("")
    params = trainer.param_nodes
    trained = sorted((n for n in params if n.learning_rate_multiplier > 0),
                     key=lambda n: n.name)
    total = sum(int(np.prod(n.shape or ())) for n in trained)
    if tl > 0:
        with_grad = _nodes_with_gradient(net, crit, set(trained))
        log(f"Training {total} parameters in {len(trained)} out of {len(params)} parameter "
            f"tensors and {with_grad} nodes with gradient:")
        log("")
        for n in trained:
            dims = " x ".join(str(d) for d in reversed(n.shape or ()))
            log(f"\tNode '{n.name}' ({n.op} operation) : [{dims}]")
    else:
        log(f"Training {total} parameters in {len(trained)} parameter tensors.")
    log("")
    log("")


def _nodes_with_gradient(net: Network, crit: Node, trained: set[Node]) -> int:
    """Nodes of the criterion's graph that depend on a trained parameter (CNTK's
    ``NeedsGradient``), the parameters included."""
    need: dict[int, bool] = {}

    def visit(n: Node) -> bool:
        if id(n) not in need:
            need[id(n)] = False  # a recurrent loop ends here
            need[id(n)] = n in trained or any([visit(i) for i in n.inputs if i is not None])
        return need[id(n)]

    visit(crit)
    return sum(need.values())


def _precompute(net: Network, trainer: Trainer, settings: SGDSettings, source: EpochSource,
                tl: int, log: Callable[[str], None]) -> bool:
    ops = net.registry.op_set(Category.PRECOMPUTE)
    todo = [n for n in net.nodes if n.op in ops
            and (n.value is None or not n.attrs.get("has_computed", True))]
    if not todo:
        if tl > 0:
            log("No PreCompute nodes found, or all already computed. Skipping "
                "pre-computation step.")
        return False
    log(f"Precomputing --> {len(todo)} PreCompute nodes found.")
    log("")
    for n in todo:
        log(f"\t{n.name} = {n.op}()")
    log("")
    size = 0 if settings.use_all_data_for_precomputed_node else settings.epoch_size
    precompute(net, lambda: source(0, settings.minibatch(0), size), trainer.tensors)
    log("Precomputing --> Completed.")
    log("")
    log("")
    return True


def _copy_values(trainer: Trainer, loaded: Network) -> None:
    """RereadPersistableParameters: the parameter (and statistics) values of ``loaded``."""
    names = {n.name for n in loaded.nodes}
    with torch.no_grad():
        for name, t in trainer.tensors.items():
            if name in names and loaded.node(name).value is not None:
                t.copy_(torch.as_tensor(np.asarray(loaded.node(name).value),
                                        dtype=t.dtype).reshape(t.shape))
    trainer.write_back()


def _set_dropout(trainer: Trainer, rate: float) -> None:
    module = trainer.module
    if float(module._config.get("dropout_rate", 0.0) or 0.0) != rate:
        module._config["dropout_rate"] = rate
        module.rebuild()


def train(network: Network | None, settings: SGDSettings, source: EpochSource, *,
          build: Callable[[], Network] | None = None,
          load_model: Callable[[str], Network],
          save_model: Callable[[Network, str], None],
          cv_source: EpochSource | None = None, make_mode: bool = True, trace_level: int = 0,
          log: Callable[[str], None] = print, seed: int = 0,
          parallel: Any = None, device: Any = None, precision: str | None = None) -> Network:
    """CNTK's ``train`` action after the network source is chosen (spec §5.1–5.7).

    Args:
        network: the network to train when not resuming (or None with ``build``).
        settings: the SGD block.
        source: ``source(epoch, minibatch_size, epoch_size)`` gives an epoch's minibatches
            (epoch 0-based; epoch_size 0 = one sweep of the data).
        build: makes the network when not resuming (called only then).
        load_model / save_model: read / write a model file (``modelPath.N``, ``modelPath``).
        cv_source: the cvReader's minibatches, evaluated after each epoch.
        make_mode: resume from the newest up-to-date ``modelPath.N`` (CNTK's makeMode).
        trace_level: the command's traceLevel (SGD.traceLevel wins when given).
        log: receives each log line (without newline; "" for an empty line).
        seed: seed of the gaussian-noise generator.
        parallel: a :class:`~netsurgeon.runtime.distributed.Parallel` under torchrun (the
            ParallelTrain block); only its rank 0 logs and writes files.
        device, precision: where the Trainer computes and its autocast precision.

    Returns the trained network (the final model's, as saved).
    """
    s = settings
    tl = s.trace_level if s.trace_level is not None else trace_level
    aa = s.auto_adjust
    if aa.auto_adjust_lr == "search_before_epoch":
        raise NetsurgeonError("SGD.AutoAdjust.autoAdjustLR: SearchBeforeEpoch is not "
                              "supported (use AdjustAfterEpoch or None)")
    if aa.auto_adjust_minibatch:
        raise NetsurgeonError("SGD.AutoAdjust.autoAdjustMinibatch: the minibatch-size search "
                              "is not supported")
    writer = parallel is None or parallel.is_writer
    if not writer:  # ranks other than 0 neither log nor write
        log = save_model = _silent
    save_checkpoint, _remove = _file_writers(writer)
    if s.parallel_train and parallel is None:
        log("parallelTrain option is not enabled. ParallelTrain config will be ignored.")
    Path(s.model_path).parent.mkdir(parents=True, exist_ok=True)
    if parallel is not None:
        parallel.barrier()  # rank 0's earlier actions have written their files
    start = determine_start_epoch(s, make_mode, log)
    if parallel is not None:
        parallel.barrier()  # every rank decided before rank 0 writes modelPath.0
    if start == s.max_epochs:
        log("No further training is necessary.")
        return load_model(s.model_path)
    from_checkpoint = start >= 0
    if from_checkpoint:
        path = model_name_for_epoch(s, start - 1)
        log("")
        log(f"Starting from checkpoint. Loading network from '{path}'.")
        net = load_model(path)
    else:
        if tl > 0:
            log("")
            log("Creating virgin network.")
        net = build() if build is not None else network
        if net is None:
            raise EvaluationError("train: no network to train (give network= or build=)")
        start = 0
    crit, evals = _criteria(net, s)
    rule = CNTKUpdate(s, seed)
    dropout0 = s.dropout(start)
    trainer = Trainer(net, TrainConfig(epochs=s.max_epochs, minibatch_size=s.minibatch(0),
                                       dropout_rate=dropout0),
                      criteria=[crit], metrics=evals, update_rule=rule, parallel=parallel,
                      device=device, precision=precision)
    _header(net, trainer, crit, evals, tl, log)
    if _precompute(net, trainer, s, source, tl, log) or not from_checkpoint:
        save_model(net, model_name_for_epoch(s, start - 1))

    total_seen = 0
    lr = 0.0
    prev_criterion = math.inf
    lr_known = False
    if start > 0:
        ckp = _checkpoint_name(s, start - 1)
        if os.path.exists(ckp):
            state = load_checkpoint(ckp)
            rule.load_state_dict(state, trainer)
            total_seen = int(state["total_samples"])
            lr = float(state["lr_per_sample"])
            prev_criterion = float(state["prev_criterion"])
            lr_known = True
        else:
            log("Warning: Checkpoint file is missing. Parameter-learning state (such as "
                "momentum) will be reset.")
    n_lr = len(s.lr_vector())
    adjust = aa.auto_adjust_lr == "adjust_after_epoch"
    if adjust and not lr_known and n_lr <= start:
        raise NetsurgeonError("SGD.AutoAdjust.autoAdjustLR: with AdjustAfterEpoch there must "
                              "be a checkpoint file, or an explicit learning rate for the "
                              "starting epoch")
    interval = aa.learn_rate_adjust_interval
    avg_criterion = math.inf
    not_counted = start % interval
    reduced = False
    known_epoch_samples = s.epoch_size or None
    names = [crit.name] + [e.name for e in evals]

    def checkpoint_state(epoch: int) -> dict[str, Any]:
        return {"epoch": epoch, "total_samples": total_seen, "lr_per_sample": lr,
                "prev_criterion": prev_criterion, "minibatch_size": s.minibatch(epoch),
                **rule.state_dict()}

    i = start
    while i < s.max_epochs:
        if not adjust or i < n_lr:
            lr = s.lr_per_sample(i)
        if lr < s.min_learning_rate_per_sample:
            log(f"Learn Rate Per Sample for Epoch[{i + 1}] = {lr:.8g} is less than "
                f"minLearningRatePerSample {s.min_learning_rate_per_sample:.8g}. Training "
                "complete.")
            if adjust:
                save_model(net, s.model_path)
            break
        mb_size = s.minibatch(i)
        mu_s = s.momentum_per_sample_at(i)
        rule.lr, rule.momentum = lr, mu_s
        _set_dropout(trainer, s.dropout(i))
        if tl > 0:
            eff = mu_s ** mb_size if mu_s > 0 else 0.0
            tc = -1.0 / math.log(mu_s) if mu_s > 0 else 0.0
            log(f"Starting Epoch {i + 1}: learning rate per sample = {lr:f}  effective momentum"
                f" = {eff:f}  momentum as time constant = {tc:.1f} samples")
            log("")
        log(_loop_line(parallel, i))
        sums, count, seconds = _train_epoch(trainer, s, source(i, mb_size, s.epoch_size), i,
                                            names, tl, known_epoch_samples, mb_size, log)
        total_seen += count
        if not s.epoch_size:
            known_epoch_samples = count
        values = [(nm, float(v), count) for nm, v in zip(names, sums)]
        log(finished_epoch_line(i + 1, s.max_epochs, values, total_seen, lr, seconds))
        criterion_avg = float(sums[0]) / count if count else 0.0
        control = criterion_avg
        if aa.use_eval_criterion_control_lr and len(sums) > 1:
            control = float(sums[1]) / count if count else 0.0
        if cv_source is not None:
            cv = evaluate_criteria(net, [crit] + evals, cv_source(i, mb_size, 0), log=log,
                                   trace_level=tl)
            log(validate_line(i + 1, s.max_epochs, [(k, v[0], v[1]) for k, v in cv.items()]))
            if aa.use_cv_set_control_lr_if_cv_exists:
                key = names[1] if aa.use_eval_criterion_control_lr and len(names) > 1 \
                    else names[0]
                tot, cnt = cv[key]
                control = tot / cnt if cnt else 0.0
        since = i % interval + 1
        if avg_criterion == math.inf:
            avg_criterion = control
        else:
            avg_criterion = ((since - 1 - not_counted) * avg_criterion + control) / \
                (since - not_counted)
        rolled_back = False
        stop = False
        if adjust and n_lr <= i and since == interval:
            worse = math.isnan(avg_criterion) or (
                prev_criterion != math.inf and prev_criterion - avg_criterion < 0)
            if worse and aa.load_best_model:
                best = model_name_for_epoch(s, i - interval)
                log(f"Loading (rolling back to) previous model with best training-criterion "
                    f"value: {best}.")
                _copy_values(trainer, load_model(best))
                state = load_checkpoint(_checkpoint_name(s, i - interval))
                rule.load_state_dict(state, trainer)
                total_seen = int(state["total_samples"])
                lr = float(state["lr_per_sample"])
                prev_criterion = float(state["prev_criterion"])
                rolled_back = True
            small = math.isnan(avg_criterion) or (
                prev_criterion != math.inf and
                prev_criterion - avg_criterion <= aa.reduce_learn_rate_if_improve_less_than
                * prev_criterion)
            if aa.continue_reduce:
                if small:
                    if not reduced:
                        reduced = True
                    else:
                        save_model(net, s.model_path)
                        log("Finished training and saved final model")
                        log("")
                        stop = True
                if reduced and not stop:
                    lr *= aa.learn_rate_decrease_factor
                    log(f"learnRatePerSample reduced to {lr:.8g}")
            elif small:
                lr *= aa.learn_rate_decrease_factor
                log(f"learnRatePerSample reduced to {lr:.8g}")
            elif prev_criterion != math.inf and prev_criterion - avg_criterion > \
                    aa.increase_learn_rate_if_improve_more_than * prev_criterion:
                lr *= aa.learn_rate_increase_factor
                log(f"learnRatePerSample increased to {lr:.8g}")
        elif math.isnan(avg_criterion):
            raise EvaluationError("The training criterion is not a number (NAN).")
        if stop:
            break
        if not rolled_back and since == interval:
            prev_criterion = avg_criterion
            not_counted = 0
        if rolled_back:
            for j in range(1, interval):
                gone = i - j
                log(f"SGD: removing model and checkpoint files for epoch {gone + 1} after "
                    f"rollback to epoch {i - interval + 1}")
                for f in (model_name_for_epoch(s, gone), _checkpoint_name(s, gone)):
                    _remove(f)
            i -= interval
            log(f"SGD: revoke back to and update checkpoint file for epoch {i + 1}")
            if i >= 0:
                save_checkpoint(_checkpoint_name(s, i), checkpoint_state(i))
        else:
            save_checkpoint(_checkpoint_name(s, i), checkpoint_state(i))
            name = model_name_for_epoch(s, i)
            if tl > 0:
                log(f"SGD: Saving checkpoint model '{name}'")
            save_model(net, name)
            if not s.keep_check_point_files:
                if adjust and aa.load_best_model:
                    if since != 1:
                        _remove(_checkpoint_name(s, i - 1))
                    if since == interval:
                        _remove(_checkpoint_name(s, i - interval))
                else:
                    _remove(_checkpoint_name(s, i - 1))
            log("")
        if lr < 1e-12:
            log(f"learnRate per sample is reduced to {lr:.8g} which is below 1e-12. stop "
                "training.")
        i += 1
    return net


def _remove(path: str) -> None:
    if os.path.exists(path):
        os.remove(path)


def _silent(*_args: Any) -> None:
    """The log and model writer of data-parallel ranks other than 0."""


def _file_writers(writer: bool):
    """(save_checkpoint, _remove) of this rank: no-ops on ranks other than 0."""
    return (save_checkpoint, _remove) if writer else (_silent, _silent)


def _loop_line(parallel: Any, epoch: int) -> str:
    """CNTK's line before an epoch's minibatches (with the rank in parallel epochs)."""
    if parallel is None or not parallel.active(epoch):
        return "Starting minibatch loop."
    if parallel.config.method == "data":
        return (f"Starting minibatch loop, DataParallelSGD training (myRank = {parallel.rank}, "
                f"numNodes = {parallel.world}, numGradientBits = 32), distributed reading is "
                "ENABLED.")
    return "Starting minibatch loop, distributed reading is ENABLED."


def _train_epoch(trainer: Trainer, s: SGDSettings, batches: Iterable[Minibatch], epoch: int,
                 names: list[str], tl: int, known_samples: int | None, mb_size: int,
                 log: Callable[[str], None]) -> tuple[list[np.float32], int, float]:
    """One epoch: (criterion and metric sums accumulated in float32, samples, seconds).
    Progress lines with traceLevel > 0, from sums since the last printed line."""
    t0 = time.perf_counter()
    trainer.epoch = epoch  # the Trainer's parallel epochs count from it
    par = trainer.parallel if trainer.parallel is not None and trainer.parallel.active(epoch) \
        else None
    if par is not None:
        par.start(trainer)
    acc = [_F(0)] * len(names)
    count = 0
    last_acc, last_count, last_mb, last_t = list(acc), 0, 0, t0
    per_epoch = -(-known_samples // mb_size) if known_samples else None
    index = 0
    for index, mb in enumerate(batches, 1):
        try:
            loss, metrics = trainer.step(mb)
        except NonFiniteError as exc:
            raise EvaluationError(f"The training criterion is not a number (NAN): epoch "
                                  f"{epoch + 1}, minibatch {index}: {exc.message}") from None
        acc = [_F(a + _F(v)) for a, v in zip(acc, [loss, *metrics])]
        count += mb.samples
        if tl > 0 and (index <= s.first_mbs_to_show_result or (
                s.num_mbs_to_show_result and index % s.num_mbs_to_show_result == 0)):
            now = time.perf_counter()
            n = count - last_count
            values = [(nm, float(a) - float(b), n) for nm, a, b in zip(names, acc, last_acc)]
            prog, prec = None, 2
            if per_epoch:
                prog = index / per_epoch
                prec = max(math.ceil(math.log10(per_epoch / (index - last_mb))) - 2, 2)
            log(minibatch_line(epoch + 1, s.max_epochs, last_mb + 1, index, values, now - last_t,
                               n, prog, prec))
            last_acc, last_count, last_mb, last_t = list(acc), count, index, now
    if par is not None and par.config.method != "data":
        par.end_epoch(trainer)  # ranks equal again; the epoch's sums over all ranks
        acc = [_F(v) for v in par.reduce_sums(acc)]
    if count == 0:
        raise EvaluationError(f"epoch {epoch + 1}: the training data has no samples")
    trainer.write_back()
    return acc, count, time.perf_counter() - t0


def evaluate_criteria(network: Network, nodes: Sequence[Node | str], batches: Iterable[Minibatch],
                      *, log: Callable[[str], None] = print, trace_level: int = 0,
                      num_mbs_to_show_result: int = 100,
                      first_mbs_to_show_result: int = 0) -> dict[str, tuple[float, int]]:
    """The test/eval action's pass (SimpleEvaluator): each node's (sum, samples) over the
    batches, in inference mode, accumulated in float32. Logs ``Minibatch[a-b]: ...`` every
    ``num_mbs_to_show_result`` minibatches and for the rest, then
    ``Final Results: Minibatch[1-N]: ...`` (with ``perplexity`` after cross-entropy
    criteria)."""
    from netsurgeon.runtime.evaluate import Evaluator

    chosen = [network.node(n) for n in nodes]
    ev = Evaluator(network, chosen)
    acc = [_F(0)] * len(chosen)
    count = 0
    last_acc, last_count, last_mb = list(acc), 0, 0
    index = 0

    def line(first: int, last: int, a: list, b: list, n: int, final: bool) -> str:
        return eval_results_line(first, last, [(c.name, float(x) - float(y), n, c.op)
                                               for c, x, y in zip(chosen, a, b)], final)

    for index, mb in enumerate(batches, 1):
        out = ev.run(mb)
        acc = [_F(a + _F(float(_minibatch_sum(out, c, mb).sum())))
               for a, c in zip(acc, chosen)]
        count += mb.samples
        if index <= first_mbs_to_show_result or (
                num_mbs_to_show_result and index % num_mbs_to_show_result == 0):
            log(line(last_mb + 1, index, acc, last_acc, count - last_count, False))
            last_acc, last_count, last_mb = list(acc), count, index
    if count > last_count:
        log(line(last_mb + 1, index, acc, last_acc, count - last_count, False))
    log(line(1, index, acc, [_F(0)] * len(chosen), count, True))
    return {c.name: (float(a), count) for c, a in zip(chosen, acc)}


#: parameters x minibatch size below which training runs on one CPU thread
SMALL_MODEL_WORK = 1 << 22


def small_model_threads(network: Network, minibatch_size: int) -> int | None:
    """One intra-op thread for a small network, unless a thread count was chosen
    (numCPUThreads, --threads): below about 4M multiply-adds a minibatch torch's threads cost
    more than they gain (Simple2d trains 10x slower on two busy cores; see
    bench/bench_cntk_sgd_threads.py). Returns the count to put back with
    :func:`restore_threads`, or None when nothing changed."""
    from netsurgeon.runtime import backends

    if backends._threads is not None or torch.get_num_threads() <= 1:
        return None
    size = sum(int(np.size(n.value)) for n in network.nodes
               if n.op == "LearnableParameter" and n.value is not None)
    if size * max(1, int(minibatch_size)) >= SMALL_MODEL_WORK:
        return None
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    return previous


def restore_threads(count: int) -> None:
    """Put back the thread count :func:`small_model_threads` changed."""
    torch.set_num_threads(int(count))
