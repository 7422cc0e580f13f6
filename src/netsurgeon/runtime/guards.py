"""Checks that keep training finite: the options, the input data, the loss, the parameters.

Training stops (as CNTK's did) when the loss or a parameter becomes NaN or Inf, before
anything is written back, so a network and its checkpoint only ever hold values of a
completed, finite epoch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from netsurgeon.errors import ArgumentError, EvaluationError
from netsurgeon.runtime.batch import Minibatch, SparseRows

__all__ = ["NonFiniteError", "check_config", "check_inputs", "describe_batch",
           "first_non_finite"]

_OPTIMIZERS = ("sgd", "adam", "adagrad")


class NonFiniteError(EvaluationError):
    """The loss or a parameter became NaN/Inf, or the data holds NaN/Inf.

    ``previous_step``: the cause is the update of the step before the one that found it.
    """

    def __init__(self, message: str, *, previous_step: bool = False, **kwargs: Any) -> None:
        self.previous_step = previous_step
        super().__init__(message, **kwargs)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_config(cfg: Any) -> None:
    """Raise ArgumentError for the first option of a TrainConfig that training cannot use."""
    def need(ok: bool, option: str, value: Any, want: str) -> None:
        if not ok:
            raise ArgumentError(f"training option {option} = {value!r}: {want}")

    need(_is_int(cfg.epochs) and cfg.epochs >= 1, "epochs", cfg.epochs, "give 1 or more")
    need(_is_int(cfg.minibatch_size) and cfg.minibatch_size >= 1, "minibatch_size",
         cfg.minibatch_size, "give 1 or more samples")
    need(_is_int(cfg.epoch_size) and cfg.epoch_size >= 0, "epoch_size", cfg.epoch_size,
         "give 0 (the whole data) or a positive number of samples")
    rates = cfg.learning_rate if isinstance(cfg.learning_rate, (list, tuple)) else \
        [cfg.learning_rate]
    need(len(rates) > 0, "learning_rate", cfg.learning_rate, "give at least one rate")
    for r in rates:
        need(_is_real(r) and math.isfinite(r) and r >= 0, "learning_rate", r,
             "a rate is a finite number >= 0")
    need(cfg.lr_unit in ("sample", "minibatch"), "lr_unit", cfg.lr_unit,
         "use 'sample' or 'minibatch'")
    need(_is_real(cfg.momentum) and 0 <= cfg.momentum < 1, "momentum", cfg.momentum,
         "give a number in [0, 1)")
    need(_is_real(cfg.l2) and math.isfinite(cfg.l2) and cfg.l2 >= 0, "l2", cfg.l2,
         "give a finite number >= 0")
    need(_is_real(cfg.clip_threshold) and cfg.clip_threshold > 0, "clip_threshold",
         cfg.clip_threshold, "give a number > 0 (inf: no clipping)")
    need(isinstance(cfg.optimizer, str) and cfg.optimizer.lower() in _OPTIMIZERS, "optimizer",
         cfg.optimizer, "use sgd, adam or adagrad")
    betas = tuple(cfg.adam_betas) if isinstance(cfg.adam_betas, (list, tuple)) else ()
    need(len(betas) == 2 and all(_is_real(b) and 0 <= b < 1 for b in betas), "adam_betas",
         cfg.adam_betas, "give two numbers in [0, 1)")
    need(_is_real(cfg.dropout_rate) and 0 <= cfg.dropout_rate < 1, "dropout_rate",
         cfg.dropout_rate, "give a number in [0, 1)")
    need(_is_int(cfg.seed), "seed", cfg.seed, "give an integer")


def describe_batch(batch: Minibatch, frame: int | None = None) -> str:
    """Where a minibatch (or one of its frames, b*T + t) comes from, for messages."""
    parts = []
    if frame is not None and batch.steps:
        seq = frame // batch.steps
        if seq < len(batch.sequence_ids) and batch.sequence_ids[seq] is not None:
            parts.append(f"sequence '{batch.sequence_ids[seq]}'")
        else:
            parts.append(f"sequence {seq + 1} of the minibatch")
    if batch.first_line:
        parts.append(f"data from line {batch.first_line}")
    return ", ".join(parts)


def _surely_finite(arr: np.ndarray) -> bool:
    """True when ``arr`` holds no NaN/Inf, by one BLAS pass: the sum of squares is finite
    (NaN and Inf make it NaN/Inf); False also when it overflows, and then the caller scans
    element by element. A third of ``np.isfinite(arr).all()``'s time (a step's share)."""
    if arr.dtype not in (np.float32, np.float64) or not arr.flags.c_contiguous:
        return False
    flat = arr.reshape(-1)
    return bool(np.isfinite(np.dot(flat, flat)))


def check_inputs(batch: Minibatch) -> None:
    """NonFiniteError naming the input (and sequence) whose values hold NaN or Inf."""
    for name, data in batch.streams.items():
        if isinstance(data, SparseRows):
            values = np.asarray(data.values)
            bad = np.flatnonzero(~np.isfinite(values))
            if bad.size:
                row = int(np.searchsorted(data.indptr, bad[0], side="right")) - 1
                where = describe_batch(batch, row)
                raise NonFiniteError(f"input '{name}' holds NaN or Inf"
                                     + (f" ({where})" if where else ""), node=name)
            continue
        arr = np.asarray(data)
        if arr.dtype.kind != "f" or arr.size == 0 or _surely_finite(arr):
            continue
        finite = np.isfinite(arr)
        if not finite.all():
            b, t = batch.batch, batch.steps
            frame = None
            if b * t and arr.size % (b * t) == 0:
                frame = int(np.flatnonzero(~finite.reshape(b * t, -1).all(axis=1))[0])
            where = describe_batch(batch, frame)
            raise NonFiniteError(f"input '{name}' holds NaN or Inf"
                                 + (f" ({where})" if where else ""), node=name)


def first_non_finite(tensors: Sequence[Any]) -> int | None:
    """Index of the first tensor holding NaN or Inf, or None (one check for all)."""
    import torch

    if not tensors:
        return None
    flags = torch.stack([torch.isfinite(t).all() for t in tensors])
    if bool(flags.all()):
        return None
    return int((~flags).nonzero()[0, 0])
