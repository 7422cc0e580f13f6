"""SpliceTransposed: ``Transpose(RowStack(Transpose(x1), Transpose(x2), ...))`` with one axis
swap throughout becomes ``RowStack(x1, x2, ...)`` along the swapped splice axis.

CNTK's CIFAR ResNet pads the channels of its projection shortcut this way (transpose the
channel axis last, stack a zero parameter, transpose back): three copies of the activations
per shortcut where one concatenation along the channel axis computes the same values. The
runtime runs the pass on the copy of the network it compiles, as :class:`FuseLinear`. A
pattern is rewritten only when all transposes swap the same two axes (no permutation), every
inner transpose has the same rank, the RowStack has the outer transpose as its only user,
neither is an output nor in a recurrent loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from netsurgeon.graph._traversal import recurrent_loops
from netsurgeon.graph.passes._base import Pass, PassResult

if TYPE_CHECKING:
    from netsurgeon.graph._network import Network
    from netsurgeon.graph._node import Node

__all__ = ["SpliceTransposed"]


def _swap_axes(node: Node) -> tuple[int, int] | None:
    """The two (negative) axes a TransposeDimensions node swaps; None for a permutation."""
    if node.op != "TransposeDimensions" or tuple(node.attrs.get("permutation", ())):
        return None
    a1, a2 = (tuple(node.attrs.get("axes", ())) + (-1, -2))[:2]
    return (a1, a2) if a1 < 0 and a2 < 0 else None


class SpliceTransposed(Pass):
    """Args:
        keep: names of nodes whose own values are needed (outputs): never rewritten away.
    """

    def __init__(self, keep: Iterable[str] = ()) -> None:
        self.keep = set(keep)

    def call(self, net: Network) -> PassResult:
        looped = {n for comp in recurrent_loops(net) for n in comp}
        found = []
        for outer in net.nodes:
            match = self._match(net, outer, looped)
            if match is not None:
                found.append((outer, *match))
        for outer, stack, axis in found:
            _rewrite(net, outer, stack, axis, self.keep)
        return PassResult(net, bool(found))

    def _match(self, net: Network, outer: Node, looped: set[Node]
               ) -> tuple[Node, int] | None:
        swap = _swap_axes(outer)
        stack = outer.inputs[0] if swap is not None and outer.inputs else None
        if stack is None or stack.op != "RowStack" or outer in looped or stack in looped \
                or stack.name in self.keep or net.users(stack) != [outer] \
                or net.use_count(stack, outer) != 1:
            return None
        inner = list(stack.inputs)
        if not inner or any(t is None or _swap_axes(t) not in (swap, swap[::-1])
                            or t in looped or t.shape is None or not t.inputs
                            or t.inputs[0] is None or t.inputs[0].shape is None
                            for t in inner):
            return None
        rank = len(inner[0].shape)
        axis = int(stack.attrs["axis"])
        if any(len(t.shape) != rank or len(t.inputs[0].shape) != rank for t in inner) \
                or rank < max(-swap[0], -swap[1], -axis):
            return None
        a, b = swap
        new_axis = b if axis == a else a if axis == b else axis  # the splice axis, untransposed
        return stack, new_axis


def _rewrite(net: Network, outer: Node, stack: Node, axis: int, keep: set[str]) -> None:
    """Replace ``outer`` (and the RowStack and inner transposes nothing else uses) by one
    RowStack of the untransposed inputs that takes ``outer``'s name."""
    name, groups = outer.name, net.groups_of(outer)
    inner = list(stack.inputs)
    net.rename(outer, name + "\0spliced")
    spliced = net.add(name, "RowStack", [t.inputs[0] for t in inner],
                      attrs={**stack.attrs, "axis": axis}, shape=outer.shape,
                      dynamic=outer.dynamic, dtype=outer.dtype, location=outer.location)
    if outer.tags:
        net.update(spliced, tags=outer.tags)
    net.replace_all_uses_with(outer, spliced)
    for g in groups:
        net.add_to_group(g, spliced)
    net.remove_many([outer, stack])
    unused = list(dict.fromkeys(t for t in inner if not net.users(t) and not net.groups_of(t)
                                  and t.name not in keep))
    if unused:
        net.remove_many(unused)
