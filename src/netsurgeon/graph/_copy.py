"""Copying nodes and networks (iteratively; each value copied exactly once)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from netsurgeon.graph._node import Node

if TYPE_CHECKING:
    from netsurgeon.graph._network import Network

__all__ = ["copy_network", "copy_nodes", "clone_node"]


def clone_node(node: Node, name: str, *, share_value: bool = False) -> Node:
    """A detached copy of ``node`` (no inputs, no network) under ``name``.

    The value is copied once (numpy ``copy``), or shared when ``share_value`` is set.
    """
    value = node.value
    if value is not None and not share_value:
        value = value.copy()
    twin = Node(
        name, node.op, attrs=_copy_attrs(node.attrs), shape=node.shape, value=value,
        learning_rate_multiplier=node.learning_rate_multiplier, dtype=node.dtype,
        tags=set(node.tags), location=node.location,
    )
    twin.dynamic = node.dynamic
    return twin


def _copy_attrs(attrs: dict) -> dict:
    return {k: (list(v) if isinstance(v, list) else v) for k, v in attrs.items()}


def copy_nodes(
    nodes: Sequence[Node],
    names: Mapping[Node, str],
    target: "Network",
    *,
    outside: Callable[[Node], Node | None] | None = None,
    with_inputs: bool = True,
    share_values: bool = False,
) -> dict[Node, Node]:
    """Copy ``nodes`` into ``target`` under ``names[node]``; returns {original: copy}.

    With ``with_inputs``, input *i* of a copy is the copy of the original's input *i* when
    that input was copied too, otherwise ``outside(input)`` (None when ``outside`` is None,
    which is what MEL's ``Copy(..., copy=all)`` does).
    """
    copies: dict[Node, Node] = {}
    for node in nodes:
        copies[node] = target.adopt(clone_node(node, names[node], share_value=share_values))
    if with_inputs:
        for node, twin in copies.items():
            ins = []
            for i in node.inputs:
                if i is None:
                    ins.append(None)
                elif i in copies:
                    ins.append(copies[i])
                else:
                    ins.append(outside(i) if outside is not None else None)
            target._set_inputs(twin, ins)
    return copies


def copy_network(net: "Network", name: str | None = None) -> "Network":
    """A deep copy of ``net``: nodes, wiring, groups, metadata; values copied once."""
    from netsurgeon.graph._network import Network

    out = Network(name or net.name, net.registry)
    out.metadata = dict(net.metadata)
    nodes = net.nodes
    copies = copy_nodes(nodes, {n: n.name for n in nodes}, out)
    for group, members in net._groups.items():
        for n in members:
            out.add_to_group(group, copies[n])
    return out
