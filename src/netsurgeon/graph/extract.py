"""Sub-networks and clean-up: ``extract`` (CloneFunction into a network of its own),
``needed`` / ``unneeded`` and ``prune`` (drop nodes no output, criterion or evaluation node
needs), and ``orphaned_by`` (what a removal leaves unneeded, for MEL's warning).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from netsurgeon.errors import EditError, GraphError
from netsurgeon.graph._edit import copy_nodes
from netsurgeon.graph._traversal import closure, reachable_up, topological_order
from netsurgeon.ops import Category

if TYPE_CHECKING:
    from netsurgeon.graph._network import Network
    from netsurgeon.graph._node import Node

__all__ = ["extract", "keep_roots", "needed", "unneeded", "prune", "orphaned_by"]

#: the groups whose members (and everything they need) a clean-up keeps
KEEP_GROUPS = ("output", "criterion", "evaluation")


def extract(net: Network, inputs: Sequence[Node | str], outputs: Sequence[Node | str], *,
            name: str | None = None) -> Network:
    """A new network computing ``outputs`` from ``inputs``: everything between them is copied
    (parameter values too; the original is not changed).

    An input that is not a reader input (an inner node such as ``z.p3``) becomes an
    ``InputValue`` of the same name and shape, so the network needs shapes: validate it
    first. The copies keep their groups; outputs that are not criterion or evaluation nodes
    join ``output``, new inputs join ``feature``.

    Raises:
        GraphError: an unknown node name (with close matches).
        EditError: no outputs, an input no output depends on, an output that needs a reader
            input not listed in ``inputs``, or an inner input whose shape is unknown.
    """
    from netsurgeon.graph._network import Network

    ins = list(dict.fromkeys(net.node(i) for i in inputs))
    outs = list(dict.fromkeys(net.node(o) for o in outputs))
    if not outs:
        raise EditError("extract needs at least one output node")
    stop = set(ins)
    section = dict.fromkeys(closure(outs, lambda n: () if n in stop else n.inputs))
    unused = [i.name for i in ins if i not in section]
    if unused:
        raise EditError(f"input '{unused[0]}' does not feed any of the outputs "
                        f"({', '.join(o.name for o in outs)})", node=unused[0],
                        hint="give the inputs the outputs depend on")
    readers = net.registry.op_set(Category.INPUT)
    missing = [n.name for n in section if n.op in readers and n not in stop]
    if missing:
        raise EditError(f"the outputs also need the input '{missing[0]}', which --inputs does "
                        "not list", node=missing[0],
                        hint=f"add {', '.join(missing)} to the inputs")
    out = Network(name or net.name, net.registry)
    out.metadata = dict(net.metadata)
    substitute: dict[Node, Node] = {}
    for i in ins:
        if i.op in readers:
            continue
        if i.shape is None:
            raise EditError(f"the shape of '{i.name}' is unknown: validate the network first",
                            node=i.name)
        substitute[i] = out.add(i.name, "InputValue", shape=i.shape, dtype=i.dtype,
                                tags=("feature",))
    order = [n for n in topological_order(net, outs) if n in section and n not in substitute]
    order += [n for n in section if n not in substitute and n not in set(order)]
    copies = copy_nodes(order, into=out, substitute=substitute)
    for group, members in net.groups().items():
        for n in members:
            if n in copies:
                out.add_to_group(group, copies[n])
    for o in outs:
        twin = copies.get(o) or substitute[o]
        if not set(out.groups_of(twin)) & {"criterion", "evaluation"}:
            out.add_to_group("output", twin)
    return out


def keep_roots(net: Network, extra: Iterable[Node | str] = ()) -> list[Node]:
    """Members of the output, criterion and evaluation groups, plus ``extra``."""
    found: dict[Node, None] = {}
    for g in KEEP_GROUPS:
        for n in net.group(g):
            found.setdefault(n, None)
    for n in extra:
        found.setdefault(net.node(n), None)
    return list(found)


def needed(net: Network, roots: Iterable[Node] | None = None) -> list[Node]:
    """The roots (default: :func:`keep_roots`) and every node they depend on."""
    return reachable_up(net, keep_roots(net) if roots is None else roots)


def unneeded(net: Network, roots: Iterable[Node] | None = None) -> list[Node]:
    """Nodes none of the roots needs, in the network's order.

    Raises:
        EditError: no roots (a network without output, criterion and evaluation nodes says
            nothing about what to keep).
    """
    roots = keep_roots(net) if roots is None else list(roots)
    if not roots:
        raise EditError(f"network '{net.name}' has no output, criterion or evaluation node, so "
                        "nothing says what to keep", hint="mark the outputs (tag=output, MEL "
                        "SetProperty(node, output, true)) or name nodes to keep")
    keep = set(needed(net, roots))
    return [n for n in net.nodes if n not in keep]


def prune(net: Network, roots: Iterable[Node] | None = None) -> list[str]:
    """Remove the :func:`unneeded` nodes; returns their names (checked first, all at once)."""
    doomed = unneeded(net, roots)
    names = [n.name for n in doomed]
    if doomed:
        try:
            net.remove_many(doomed)
        except GraphError as exc:  # cannot happen: nothing needed uses an unneeded node
            raise EditError(f"cleanup failed: {exc.message}") from None
    return names


def orphaned_by(net: Network, doomed: Iterable[Node]) -> list[Node]:
    """Nodes that removing ``doomed`` would leave unneeded (they feed only removed nodes).

    With output, criterion or evaluation nodes, an orphan is a node those needed before and
    would not need after; without any, it is an input of a removed node that would have no
    user left. Call it before the removal.
    """
    gone = set(doomed)
    roots = [n for n in keep_roots(net) if n not in gone]
    if keep_roots(net):
        before = set(needed(net, keep_roots(net)))
        after = set(_reach_avoiding(roots, gone))
        return [n for n in net.nodes if n in before and n not in after and n not in gone]
    feeders = {i for n in gone for i in n.inputs if i is not None and i not in gone}
    return [n for n in net.nodes if n in feeders
            and all(u in gone for u in net.users(n))]


def _reach_avoiding(starts: list[Node], gone: set[Node]) -> list[Node]:
    seen: dict[Node, None] = {}
    stack = [n for n in starts if n not in gone]
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen[n] = None
        stack.extend(i for i in n.inputs if i is not None and i not in gone and i not in seen)
    return list(seen)
