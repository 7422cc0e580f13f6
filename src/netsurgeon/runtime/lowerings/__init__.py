"""PyTorch lowerings: the registry's ``torch`` layer, one entry per op with a kernel.

A lowering is called as ``entry(em, node, args) -> str`` and returns the Python expression
computing the node: ``em`` is the :class:`~netsurgeon.runtime.codegen.Emitter` (mints names,
adds globals, knows whether we train), ``args`` the already-computed inputs as
:class:`~netsurgeon.runtime.codegen.Arg` (expression, sample shape, has-frame-axis flag).
Values with a frame axis are ``(frames, *sample)``; the others (parameters and what is
computed from them only) are ``(*sample)``. Lowerings read canonical attributes only
(``node.attrs["output_rank"]``): a node in a network holds every attribute of its op.

Entries are registered on :data:`TORCH` by canonical op name; an op without a kernel is marked
``TORCH.unsupported(names, reason)`` (ops the registry gives no math get "no defined math"
by the layer's rule), so :func:`netsurgeon.ops.completeness` sees every decision.
:func:`install` attaches the layer to ``OPS`` at import of ``netsurgeon.runtime``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from netsurgeon.ops import Layer, Unsupported

if TYPE_CHECKING:
    from netsurgeon.ops import OpRegistry, OpSpec

__all__ = ["TorchLowering", "Lowering", "TORCH", "lowering", "install"]


@runtime_checkable
class TorchLowering(Protocol):
    """The torch entry of an op.

    Attributes:
        accepts_sparse: inputs fed as sparse tensors reach the entry unchanged (else the code
            generator densifies them first).
        uses_mask: the op sums over frames (criteria) and reads the frame mask.
        state_inputs: indices of inputs whose tensors the code updates in place in training
            (batch normalization's running statistics); the trainer writes them back.
        takes_rows: indices of inputs the entry also takes as *rows* (``Arg.rows``: a frame
            value of sample shape (1, ..., 1, n) held as (frames, n)); the code generator
            reshapes a rows value for any other input.
    """

    accepts_sparse: bool
    uses_mask: bool
    state_inputs: tuple[int, ...]
    takes_rows: tuple[int, ...]

    def __call__(self, em: Any, node: Any, args: list[Any]) -> str: ...


@dataclass(frozen=True)
class Lowering:
    """A :class:`TorchLowering` made from a plain function ``fn(em, node, args) -> str``."""

    fn: Callable[[Any, Any, list[Any]], str]
    accepts_sparse: bool = False
    uses_mask: bool = False
    state_inputs: tuple[int, ...] = ()
    takes_rows: tuple[int, ...] = ()

    def __call__(self, em: Any, node: Any, args: list[Any]) -> str:
        return self.fn(em, node, args)


def _derive(spec: OpSpec) -> Unsupported | None:
    """Ops whose math the registry leaves undefined cannot have a kernel."""
    return None if spec.has_math else Unsupported("no defined math")


TORCH: Layer[TorchLowering] = Layer("torch", TorchLowering, doc="PyTorch lowering",
                                    derive=_derive)


def lowering(*names: str, accepts_sparse: bool = False, uses_mask: bool = False,
             state_inputs: tuple[int, ...] = (), takes_rows: tuple[int, ...] = ()):
    """Decorator: register ``fn`` as the lowering of the ops ``names`` (canonical names)."""

    def decorate(fn: Callable) -> Callable:
        TORCH.add(names, Lowering(fn, accepts_sparse, uses_mask, state_inputs, takes_rows))
        return fn

    return decorate


def install(registry: OpRegistry) -> None:
    """Attach the torch layer to ``registry`` (once; attaching again is a no-op)."""
    from netsurgeon.runtime.lowerings import (  # noqa: F401  (they fill TORCH)
        conv,
        criteria,
        elementwise,
        imported,
        leaves,
        linear,
        misc,
        pooling_extra,
        ranking,
        recurrent,
        rnn_stack,
        sequence_criteria,
    )

    registry.attach(TORCH)
