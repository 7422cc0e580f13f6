"""The edit layer: copying sections, freezing, rewiring. MEL's Editor, BrainScript's
CloneFunction and Edit, and the Python API all edit networks through these functions.

Everything here is iterative and goes through :class:`~netsurgeon.graph.Network` (or, for
detached nodes, the :class:`~netsurgeon.graph.Node` methods), so the IR's invariants hold
after every call and a failed call changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from netsurgeon.errors import GraphError
from netsurgeon.graph._node import Node
from netsurgeon.ops import Category

if TYPE_CHECKING:
    from netsurgeon.graph._network import Network

__all__ = ["clone", "copy_nodes", "copy_network", "freeze", "inference_mode", "InputPolicy"]

#: what a copy's input becomes when that input was not copied: ``keep`` the original node,
#: ``disconnect`` (None), or a function of the original input
InputPolicy = str | Callable[[Node], Node | None]


def clone(node: Node, name: str | None = None, *, share_value: bool = False) -> Node:
    """A detached copy of ``node`` without inputs: op, attributes, shape, value (copied once,
    or shared with ``share_value``), multiplier, dtype, tags, location and file fields."""
    value = node.value
    if value is not None and not share_value:
        value = value.copy()
    return Node(
        node.name if name is None else name, node.op, attrs=node.attrs, shape=node.shape,
        dynamic=node.dynamic, value=value, learning_rate_multiplier=node.learning_rate_multiplier,
        dtype=node.dtype, tags=node.tags, location=node.location, file_fields=node.file_fields,
    )


def copy_nodes(
    nodes: Iterable[Node],
    *,
    into: Network | None = None,
    names: Mapping[Node, str] | Callable[[Node], str] | None = None,
    substitute: Mapping[Node, Node | None] | None = None,
    outside: InputPolicy = "keep",
    share_values: bool = False,
) -> dict[Node, Node]:
    """Copy ``nodes`` with the links among them; returns ``{original: copy}`` in input order.

    Input *i* of a copy is the copy of the original's input *i* when that was copied too,
    else ``substitute[input]`` when given, else what ``outside`` says. With ``into`` the
    copies are adopted into that network all at once (every name and input checked first);
    without it they stay detached.

    Args:
        names: the copy's name per original (a mapping or a function; default: the same name).
        substitute: replacements for inputs outside the copied set (a clone's arguments).
        outside: ``keep`` (the original input), ``disconnect`` (None) or a function.
        share_values: the copies share the originals' value arrays instead of copying them.

    Raises:
        GraphError: a clashing name or an input that is not in ``into``.
    """
    order = list(dict.fromkeys(nodes))
    name_of = names if callable(names) else (names or {}).get
    copies: dict[Node, Node] = {}
    for n in order:
        new_name = name_of(n) if names is not None else None
        copies[n] = clone(n, new_name if new_name is not None else n.name,
                          share_value=share_values)
    subs = substitute or {}
    if callable(outside):
        fallback = outside
    elif outside == "keep":
        def fallback(n: Node) -> Node | None:
            return n
    elif outside == "disconnect":
        def fallback(n: Node) -> Node | None:
            return None
    else:
        raise GraphError(f"outside must be 'keep', 'disconnect' or a function, not {outside!r}")
    for n, twin in copies.items():
        twin.set_inputs([None if i is None else copies[i] if i in copies else
                         subs[i] if i in subs else fallback(i) for i in n.inputs])
    if into is not None:
        into.adopt_all(copies.values())
    return copies


def copy_network(net: Network, name: str | None = None, *,
                 share_values: bool = False) -> Network:
    """A copy of ``net``: nodes, wiring, groups, metadata; values copied once unless shared."""
    from netsurgeon.graph._network import Network

    out = Network(name or net.name, net.registry)
    out.metadata = dict(net.metadata)
    copies = copy_nodes(net.nodes, into=out, share_values=share_values)
    for group, members in net.groups().items():
        for n in members:
            out.add_to_group(group, copies[n])
    return out


def freeze(nodes: Iterable[Node], *, multiplier: float = 0.0) -> list[Node]:
    """Set the learning-rate multiplier of freezable nodes (parameters, batch normalization).

    A multiplier of 0 also puts BatchNormalization in inference mode (its running statistics
    stop moving, CNTK's ``freezeParameters``); a positive multiplier leaves its time
    constants as they are. Works on attached and detached nodes alike.

    Raises:
        GraphError: a node that is not freezable (nothing is changed then).
    """
    from netsurgeon.ops import OPS

    todo = list(dict.fromkeys(nodes))
    for n in todo:
        registry = n.network.registry if n.network is not None else OPS
        if not registry.op(n.op).is_(Category.FREEZABLE):
            raise GraphError(f"{n.name} ({n.op}) is not freezable", node=n.name)
    for n in todo:
        n.update(learning_rate_multiplier=multiplier)
        if multiplier == 0 and "normalization_time_constant" in n.attrs:
            inference_mode(n)
    return todo


def inference_mode(node: Node) -> Node:
    """BatchNormalization in inference mode: both time constants infinite (CNTK's freeze)."""
    return node.set_attrs(normalization_time_constant=float("inf"),
                          blend_time_constant=float("inf"))
