"""PyTorch lowerings: one function per op that returns the Python expression computing it.

A lowering is ``fn(em, node, args) -> str``: ``em`` is the
:class:`~netsurgeon.runtime.codegen.Emitter` (mints names, adds globals, knows whether we
train), ``args`` the already-computed inputs as :class:`~netsurgeon.runtime.codegen.Arg`
(expression, sample shape, has-frame-axis flag). Values with a frame axis are ``(frames, *sample)``; the others (parameters and what is
computed from them only) are ``(*sample)``. Lowerings are attached to the registry with
``OPS.extend("torch", op, Lowering(...))`` by :func:`install`, at import of ``netsurgeon.runtime``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Lowering", "lowering", "TABLE", "install", "attr"]


@dataclass(frozen=True)
class Lowering:
    """The torch part of an op.

    Attributes:
        fn: ``(em, node, args) -> expression``.
        accepts_sparse: inputs fed as sparse tensors reach ``fn`` unchanged (else densified).
        uses_mask: the op sums over frames (criteria) and reads the frame mask.
    """

    fn: Callable
    accepts_sparse: bool = False
    uses_mask: bool = False


TABLE: dict[str, Lowering] = {}


def lowering(*names: str, accepts_sparse: bool = False, uses_mask: bool = False):
    """Decorator: record ``fn`` as the lowering of the ops ``names``."""

    def decorate(fn: Callable) -> Callable:
        for name in names:
            TABLE[name] = Lowering(fn, accepts_sparse, uses_mask)
        return fn

    return decorate


def attr(node, *names: str, default=None):
    """The first of ``names`` present in ``node.attrs`` (snake_case or CNTK camelCase)."""
    for name in names:
        if name in node.attrs and node.attrs[name] is not None:
            return node.attrs[name]
    return default


def install(registry) -> None:
    """Attach every lowering whose op the registry knows (once; later calls are no-ops)."""
    from netsurgeon.runtime.lowerings import (  # noqa: F401
        conv,
        criteria,
        elementwise,
        leaves,
        linear,
        misc,
        recurrent,
    )

    for name, low in TABLE.items():
        if registry.has_op(name):
            spec = registry.op(name)
            if "torch" not in spec.extensions:
                registry.extend("torch", spec.name, low)
