"""The ``onnx`` registry layer: how each op becomes ONNX nodes.

An entry is called as ``entry(ctx, node, args) -> str`` and returns the name of the ONNX
tensor holding the node's value. ``ctx`` is the :class:`~netsurgeon.formats.onnx.
export_context.Context` (adds ONNX nodes, constants, parameters; knows the frame mask),
``args`` the already exported inputs as :class:`~netsurgeon.formats.onnx.export_context.Value`
(tensor name, sample shape, has-frame-axis flag). The layout is the PyTorch runtime's:
a value with the batch/time axis is ``(frames, *sample)``, one without is ``(*sample)``, so
each entry mirrors the op's torch lowering (``runtime/lowerings``) line for line.

Entries never import onnx (``ctx`` builds the protos), so importing this layer is cheap. Ops
without math, internal ops (the runtime's fused ``TimesPlus``/``ConvolutionPlus``: export
runs on the unfused graph) and ops the runtime cannot evaluate are ``Unsupported`` by the
layer's rule or explicitly, with the reason a user reads in the one-line export error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from netsurgeon.ops import OPS, Category, Layer, OpRegistry, Unsupported

if TYPE_CHECKING:
    from netsurgeon.ops import OpSpec

__all__ = ["OnnxExport", "Export", "ONNX", "export_entry", "install"]


@runtime_checkable
class OnnxExport(Protocol):
    """The onnx entry of an op: ``entry(ctx, node, args) -> tensor name``.

    Attributes:
        uses_mask: the op sums over frames (criteria) and reads the frame mask.
    """

    uses_mask: bool

    def __call__(self, ctx: Any, node: Any, args: list[Any]) -> str: ...


@dataclass(frozen=True)
class Export:
    """An :class:`OnnxExport` made from a plain function ``fn(ctx, node, args) -> str``."""

    fn: Callable[[Any, Any, list[Any]], str]
    uses_mask: bool = False

    def __call__(self, ctx: Any, node: Any, args: list[Any]) -> str:
        return self.fn(ctx, node, args)


def _derive(spec: OpSpec) -> Unsupported | None:
    if Category.INTERNAL in spec.categories:
        return Unsupported(f"{spec.name} is an internal op of the PyTorch runtime (FuseLinear); "
                           "export works on the unfused graph")
    return None if spec.has_math else Unsupported("no defined math")


ONNX: Layer[OnnxExport] = Layer("onnx", OnnxExport, doc="ONNX export", derive=_derive)


def export_entry(*names: str, uses_mask: bool = False):
    """Decorator: register ``fn`` as the onnx entry of the ops ``names`` (canonical names)."""

    def decorate(fn: Callable) -> Callable:
        ONNX.add(names, Export(fn, uses_mask))
        return fn

    return decorate


def install(registry: OpRegistry = OPS) -> None:
    """Fill the layer (importing the per-family modules) and attach it to ``registry``."""
    from netsurgeon.formats.onnx import (  # noqa: F401  (they fill ONNX)
        export_conv,
        export_criteria,
        export_elementwise,
        export_leaves,
        export_linear,
        export_recurrent,
        export_reductions,
        export_reshaping,
        export_unsupported,
    )

    registry.attach(ONNX)
