"""Training checkpoints: written atomically, read back only after every part was checked.

A checkpoint is a ``torch.save`` of plain values and tensors (no code)::

    {"format": "netsurgeon-checkpoint", "version": 1, "optimizer_kind": "sgd",
     "epoch": 3, "history": [...], "params": {name: tensor}, "momentum": {name: tensor}}
    (or "optimizer": torch's optimizer state_dict for adam/adagrad)

:func:`read` loads with ``weights_only=True`` and ``mmap=True`` (so a small file cannot make
the loader allocate more than it holds; torch checks every storage against its record), from
regular files only, and turns every failure (an empty, truncated or foreign file) into one
:class:`~netsurgeon.errors.EvaluationError` naming the file. The tensors are copied out of the
mapping. Checkpoints of earlier versions (without the format marker) are read too.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

import torch

from netsurgeon._inputs import check_regular, read_head
from netsurgeon.errors import EvaluationError, NetsurgeonError
from netsurgeon.formats._atomic import atomic_write

__all__ = ["FORMAT", "VERSION", "write", "read", "optimizer_kind", "CheckpointError"]

FORMAT = "netsurgeon-checkpoint"
VERSION = 1


class CheckpointError(EvaluationError):
    """A checkpoint that cannot be read or does not fit the network being trained."""


def write(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    """Atomically write ``state`` (the old checkpoint stays intact if anything fails)."""
    state = {"format": FORMAT, "version": VERSION, **state}
    with atomic_write(path) as handle:
        sink = _Sink(handle)
        try:
            torch.save(state, sink)
        except Exception:
            if sink.error is not None:  # torch turns a failed write into a RuntimeError
                raise sink.error from None
            raise


class _Sink:
    """The file torch writes to; it keeps the OSError of a failed write (a full disk), so
    that the atomic writer reports that, not torch's RuntimeError about the zip stream."""

    def __init__(self, handle) -> None:
        self._handle = handle
        self.error: OSError | None = None

    def write(self, data) -> int:
        try:
            return self._handle.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self._handle.flush()


def _bad(path: Path, why: str) -> CheckpointError:
    return CheckpointError(f"{path}: cannot read the checkpoint: {why}",
                           hint="delete it, or train without --resume")


def read(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked contents of a checkpoint written by :func:`write`."""
    path = Path(path)
    try:
        check_regular(path, "checkpoint", CheckpointError)
    except NetsurgeonError as exc:
        raise CheckpointError(str(exc), hint="train without --resume to start afresh") from None
    head = read_head(path, 4, "checkpoint", CheckpointError)
    if not head:
        raise _bad(path, "the file is empty")
    if head != b"PK\x03\x04":
        raise _bad(path, "it is not a checkpoint written by netsurgeon train (those are "
                         "torch.save zip archives)")
    try:
        state = torch.load(path, weights_only=True, mmap=True, map_location="cpu")
    except Exception as exc:  # torch raises many kinds for foreign or damaged files
        raise _bad(path, "it is damaged, truncated or not a netsurgeon checkpoint "
                         f"({_reason(exc)})") from None
    _check(path, state)
    try:
        return _copied(state)
    except RecursionError:
        raise _bad(path, "its values are nested too deeply for a training state") from None


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = re.sub(r"^\[enforce fail at [^\]]*\][\s.]*", "", text)  # torch's C++ prefix
    text = text.split(". ")[0].rstrip(".")
    return (text[:120] + "...") if len(text) > 120 else (text or type(exc).__name__)


def _check(path: Path, state: Any) -> None:
    if not isinstance(state, dict):
        raise _bad(path, f"it holds a {type(state).__name__}, not a training state")
    if "format" in state and (state["format"] != FORMAT or state.get("version") != VERSION):
        raise _bad(path, f"format {state.get('format')!r} version {state.get('version')!r}; "
                         f"this netsurgeon reads {FORMAT!r} version {VERSION}")
    epoch = state.get("epoch")
    if type(epoch) is not int or epoch < 0:
        raise _bad(path, f"'epoch' is {epoch!r}, not a count of epochs")
    params = state.get("params")
    if not isinstance(params, dict) or not params:
        raise _bad(path, "it has no parameter values ('params')")
    for key in ("params", "momentum"):
        for name, value in (state.get(key) or {}).items():
            if not isinstance(name, str) or not isinstance(value, torch.Tensor) \
                    or not value.is_floating_point():
                raise _bad(path, f"'{key}' entry {name!r} is not a float tensor")
            if not bool(torch.isfinite(value).all()):
                raise _bad(path, f"'{key}' value of '{name}' holds NaN or Inf")
    if "momentum" in state and not isinstance(state["momentum"], dict):
        raise _bad(path, "'momentum' is not a table of tensors")
    if "optimizer" in state and not isinstance(state["optimizer"], dict):
        raise _bad(path, "'optimizer' is not an optimizer state")
    history = state.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise _bad(path, "'history' is not a list of epoch records")
    for record in history:
        loss = record.get("loss")
        if isinstance(loss, float) and not math.isfinite(loss):
            raise _bad(path, f"epoch {record.get('epoch')} has loss {loss}")


def _copied(value: Any) -> Any:
    """Tensors cloned out of the file mapping (containers rebuilt)."""
    if isinstance(value, torch.Tensor):
        return value.clone()
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copied(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_copied(v) for v in value)
    return value


def optimizer_kind(state: dict[str, Any]) -> str:
    """``sgd``, ``adam`` or ``adagrad`` (older checkpoints: inferred from their contents)."""
    kind = state.get("optimizer_kind")
    if isinstance(kind, str):
        return kind
    opt = state.get("optimizer")
    if isinstance(opt, dict):
        groups = opt.get("param_groups") or [{}]
        return "adam" if "betas" in groups[0] else "adagrad"
    return "sgd"
