"""Helpers several payload codecs share: CNTK dims of a node, the legacy-accepting shape."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netsurgeon.formats.cntk._binary import BinaryWriter, CntkFormatError

if TYPE_CHECKING:
    from netsurgeon.graph import Node

__all__ = ["cntk_dims", "write_legacy_shape"]


def cntk_dims(node: Node) -> list[int]:
    """The node's sample shape in CNTK order (first = fastest); from its value if unshaped."""
    shape = node.shape
    if shape is None and node.value is not None:
        shape = tuple(node.value.shape)
    if shape is None:
        raise CntkFormatError(f"node '{node.name}' has no shape; validate the network first",
                              node=node.name)
    return [int(d) for d in reversed(shape)]


def write_legacy_shape(w: BinaryWriter, dims: list[int], legacy: bool) -> None:
    """A legacy-accepting shape (§1.1): the old three-u64 W,H,C form when it was read so (or
    for a rank-3 shape whose first dim is 0, which only that form can carry), else a
    TensorShape, which must not have rank 0 or a first dimension of 0."""
    dims = [int(d) for d in dims]
    if legacy or (len(dims) == 3 and dims[0] == 0):
        if len(dims) != 3:
            raise CntkFormatError(f"shape {dims}: the legacy W,H,C form holds exactly 3 dims")
        c, width, height = dims
        if width >= 1 << 32:
            raise CntkFormatError(f"shape {dims}: width too large for the legacy form")
        w.u64(width)
        w.u64(height)
        w.u64(c)
        return
    if not dims or dims[0] == 0:
        raise CntkFormatError(f"shape {dims}: CNTK misreads a rank-0 shape or a first dimension "
                              "of 0 here (legacy W,H,C heuristic)")
    w.shape(dims)
