"""Where the runtime computes (``--device``) and in which precision (``--precision``).

``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (a GPU when torch sees one, else the CPU); a CUDA
device asked for on a machine without one is a one-line error, never a silent fallback.
Mixed precision is ``torch.autocast``: ``float16`` and ``bfloat16`` on a GPU, ``bfloat16``
on the CPU (CPU float16 autocast is refused: it is slower than float32 and of no use for
training). Parameters, gradients and optimizer state stay in float32.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import torch

from netsurgeon.errors import EvaluationError

__all__ = ["resolve_device", "autocast", "check_precision", "PRECISIONS", "cntk_device",
           "cntk_precision"]

PRECISIONS = ("float32", "float16", "bfloat16")


def resolve_device(spec: str | torch.device | None) -> torch.device:
    """``cpu`` / ``cuda`` / ``cuda:N`` / ``auto`` (None = ``cpu``) as a torch device."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = (spec or "cpu").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", text)
    if match is None:
        raise EvaluationError(f"device '{spec}': give cpu, cuda, cuda:N or auto")
    if not torch.cuda.is_available():
        raise EvaluationError(f"device '{spec}': no CUDA device; use --device cpu")
    index = int(match.group(1) or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise EvaluationError(f"device '{spec}': there are {count} CUDA device(s), "
                              f"cuda:0 to cuda:{count - 1}; give one of those")
    return torch.device("cuda", index)


def check_precision(precision: str | None, device: torch.device) -> str:
    """The precision name (None = ``float32``), checked against the device."""
    name = (precision or "float32").lower()
    if name not in PRECISIONS:
        raise EvaluationError(f"precision '{precision}': give float32, float16 or bfloat16")
    if name == "float16" and device.type == "cpu":
        raise EvaluationError("precision float16 needs a CUDA device; on the CPU use "
                              "--precision bfloat16 (or float32)")
    return name


def autocast(precision: str, device: torch.device) -> Any:
    """The context the forward pass runs in: ``torch.autocast`` for float16/bfloat16, a no-op
    for float32."""
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, precision))


def cntk_device(device_id: str) -> str:
    """A config's ``deviceId`` as a ``--device``: -1/cpu -> cpu, auto -> auto, N -> cuda:N when
    that GPU exists, else cpu (the caller warns)."""
    text = device_id.strip().lower()
    if text in ("-1", "cpu"):
        return "cpu"
    if text == "auto":
        return "auto"
    index = int(text)
    if torch.cuda.is_available() and index < torch.cuda.device_count():
        return f"cuda:{index}"
    return "cpu"


def cntk_precision(precision: str, device: torch.device) -> str:
    """A config's ``precision`` as an autocast precision: float16 -> float16 on a GPU (float32
    on the CPU, as before: CNTK's CPU path has no half precision), anything else float32."""
    return "float16" if precision == "float16" and device.type == "cuda" else "float32"
