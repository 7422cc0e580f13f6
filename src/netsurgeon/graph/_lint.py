"""Internal-consistency check of a network (not shape validation)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netsurgeon.errors import GraphError

if TYPE_CHECKING:
    from netsurgeon.graph._network import Network

__all__ = ["lint"]


def lint(net: "Network") -> None:
    """Raise GraphError if names, ownership or users maps disagree with the inputs."""
    seen_ci: set[str] = set()
    for key, node in net._nodes.items():
        if key != node.name:
            raise GraphError(f"node stored under '{key}' is named '{node.name}'", node=node.name)
        if node.name.lower() in seen_ci:
            raise GraphError(f"duplicate name '{node.name}'", node=node.name)
        seen_ci.add(node.name.lower())
        if node._network is not net:
            raise GraphError(f"node '{node.name}' does not belong to this network", node=node.name)
        if net._ci.get(node.name.lower()) is not node:
            raise GraphError(f"case-insensitive index is stale for '{node.name}'", node=node.name)
        for i in node.inputs:
            if i is not None and net._nodes.get(i.name) is not i:
                raise GraphError(f"input '{i.name}' of '{node.name}' is not in the network", node=node.name)
    if len(net._ci) != len(net._nodes):
        raise GraphError("case-insensitive index has stale entries")
    for node in net._nodes.values():
        for other in node._users:
            count = sum(1 for i in other.inputs if i is node)
            if count != node._users[other]:
                raise GraphError(f"users of '{node.name}' are stale for '{other.name}'", node=node.name)
    for node in net._nodes.values():
        for i in node.inputs:
            if i is not None and node not in i._users:
                raise GraphError(f"'{node.name}' is missing from the users of '{i.name}'", node=node.name)
    for group, members in net._groups.items():
        for n in members:
            if net._nodes.get(n.name) is not n:
                raise GraphError(f"group {group} holds a removed node '{n.name}'", node=n.name)
