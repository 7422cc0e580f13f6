"""FuseLinear: ``Plus(Times(W, x), b)`` becomes one ``TimesPlus`` node, ``Plus(Convolution(W, x),
b)`` one ``ConvolutionPlus`` (a single ``torch.addmm`` / a convolution with its bias).

The runtime runs it on a copy of the network it compiles (sharing the values), so the user's
network never sees the internal ops. A pair is fused only when nothing else needs the Times
value: the Times has that Plus as its only user, is not an output, and neither node is in a
recurrent loop. Times needs a constant W, a dense frame-valued x and a constant bias of the
output's size; Convolution a constant per-channel bias (and no transposed convolution when
training).
"""

from __future__ import annotations

from collections.abc import Iterable
from math import prod
from typing import TYPE_CHECKING

from netsurgeon.graph._traversal import recurrent_loops
from netsurgeon.graph.passes._base import Pass, PassResult
from netsurgeon.ops import Category

if TYPE_CHECKING:
    from netsurgeon.graph._network import Network
    from netsurgeon.graph._node import Node

__all__ = ["FuseLinear"]

_FUSED = {"Times": "TimesPlus", "Convolution": "ConvolutionPlus"}


class FuseLinear(Pass):
    """Args:
        keep: names of nodes whose own values are needed (outputs): never fused away.
        sparse_inputs: input names fed as sparse tensors (a Times of one is not fused).
        training: whether the code will train (a transposed convolution keeps its Plus).
    """

    def __init__(self, keep: Iterable[str] = (), *, sparse_inputs: Iterable[str] = (),
                 training: bool = False) -> None:
        self.keep = set(keep)
        self.sparse_inputs = set(sparse_inputs)
        self.training = training

    def call(self, net: Network) -> PassResult:
        looped = {n for comp in recurrent_loops(net) for n in comp}
        pairs = []
        taken: set[Node] = set()
        for p in net.nodes:
            if p.op != "Plus" or not p.dynamic or p in looped or p in taken:
                continue
            for t, b in ((p.inputs[0], p.inputs[1]), (p.inputs[1], p.inputs[0])):
                if t is None or b is None or t.op not in _FUSED or t is b or t in looped \
                        or t in taken or t.name in self.keep or net.users(t) != [p] \
                        or net.use_count(t, p) != 1:
                    continue
                if self._fits(net, p, t, b):
                    pairs.append((p, t, b))
                    taken.update((p, t))
                    break
        for p, t, b in pairs:
            _fuse(net, p, t, b)
        return PassResult(net, bool(pairs))

    def _fits(self, net: Network, p: Node, t: Node, b: Node) -> bool:
        if b.dynamic or p.shape is None or t.shape is None or b.shape is None:
            return False
        if t.op == "Convolution":
            channels = int(t.shape[0])
            padded = (1,) * (len(p.shape) - len(b.shape)) + tuple(b.shape)
            return (tuple(p.shape) == tuple(t.shape) and prod(b.shape) == channels
                    and padded[0] == channels and not (self.training and t.attrs["transpose"]))
        w, x = t.inputs
        if w is None or x is None or w.dynamic or not x.dynamic or w.shape is None \
                or x.shape is None:
            return False
        if x.name in self.sparse_inputs and x.op in net.registry.op_set(Category.INPUT):
            return False
        k_rank = len(w.shape) - int(t.attrs["output_rank"])
        out, inner = prod(w.shape[k_rank:]), prod(w.shape[:k_rank])
        return (prod(b.shape) == out and prod(p.shape) == out and prod(x.shape) == inner
                and (tuple(t.shape) == (out,) or prod(t.shape) == out))


def _fuse(net: Network, plus: Node, times: Node, bias: Node) -> None:
    """Replace ``plus`` and ``times`` by one fused node that takes the Plus's name."""
    name, groups = plus.name, net.groups_of(plus)
    net.rename(plus, name + "\0fused")
    fused = net.add(name, _FUSED[times.op], [*times.inputs, bias], attrs=times.attrs,
                    shape=plus.shape, dynamic=plus.dynamic, dtype=plus.dtype,
                    location=plus.location)
    if plus.tags:  # the tags as they were; the groups (in their order) follow below
        net.update(fused, tags=plus.tags)
    net.replace_all_uses_with(plus, fused)
    for g in groups:
        net.add_to_group(g, fused)
    net.remove_many([plus, times])
