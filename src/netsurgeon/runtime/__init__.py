"""The PyTorch runtime: networks compiled to straight-line torch code, evaluated and trained.

Importing this package imports torch and attaches the registry's ``torch`` layer (one
PyTorch lowering per op with a kernel, ``runtime/lowerings``) with ``OPS.attach(TORCH)``;
nothing outside ``netsurgeon.runtime`` imports torch.
"""

from __future__ import annotations

from netsurgeon.ops import OPS
from netsurgeon.runtime.lowerings import install as _install

_install(OPS)

from netsurgeon.runtime.batch import Minibatch, SparseRows  # noqa: E402
from netsurgeon.runtime.codegen import TorchSource, generate  # noqa: E402
from netsurgeon.runtime.compile import CompiledNetwork, compile_network  # noqa: E402
from netsurgeon.runtime.evaluate import Evaluator, evaluate  # noqa: E402
from netsurgeon.runtime.module import to_torch  # noqa: E402

__all__ = [
    "set_threads",
    "CompiledNetwork",
    "Evaluator",
    "Minibatch",
    "SparseRows",
    "Trainer",
    "TorchSource",
    "compile_network",
    "evaluate",
    "generate",
    "to_torch",
]


def set_threads(count: int) -> None:
    """Use ``count`` intra-op CPU threads in every backend: torch's kernels, torch.compile's
    code and onnxruntime sessions made from now on (the CLI's ``--threads``)."""
    from netsurgeon.runtime.backends import set_threads as _set

    _set(count)


def __getattr__(name: str):
    if name in ("Trainer", "TrainConfig"):
        from netsurgeon.runtime import train

        return getattr(train, name)
    raise AttributeError(f"module 'netsurgeon.runtime' has no attribute {name!r}")
