"""Internal-consistency check of a network (not shape validation).

``lint`` is what tests run after every edit (torch.fx's ``checkGraphModule`` habit): the name
index, ownership, the users maps against the inputs, the groups, and every node's attributes
against its op's AttrSpecs (no unknown key, no missing required one, each value of its kind),
and file fields against what the attached layers declare they write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netsurgeon.errors import GraphError
from netsurgeon.ops import Category

if TYPE_CHECKING:
    from netsurgeon.graph._network import Network

__all__ = ["lint"]


def lint(net: Network) -> None:
    """Raise GraphError naming the first inconsistency found."""
    _check_index(net)
    _check_edges(net)
    for group, members in net._groups.items():
        for n in members:
            if n.network is not net:
                raise GraphError(f"group {group} holds a removed node '{n.name}'", node=n.name)
    for node in net._nodes.values():
        _check_attrs(net, node)


def _check_index(net: Network) -> None:
    for key, node in net._nodes.items():
        if key != node.name.lower():
            raise GraphError(f"node stored under '{key}' is named '{node.name}'", node=node.name)
        if node.network is not net:
            raise GraphError(f"node '{node.name}' does not belong to this network", node=node.name)
    if len(net._users) != len(net._nodes) or len(net._by_id) != len(net._nodes) or any(
            net._by_id.get(id(n)) is not n for n in net._nodes.values()):
        raise GraphError("the users maps have stale entries")


def _check_edges(net: Network) -> None:
    for node in net._nodes.values():
        for i in node.inputs:
            if i is not None and i.network is not net:
                raise GraphError(f"input '{i.name}' of '{node.name}' is not in the network",
                                 node=node.name)
            if i is not None and id(node) not in net._users[id(i)]:
                raise GraphError(f"'{node.name}' is missing from the users of '{i.name}'",
                                 node=node.name)
        for other, count in zip(net._users_of(node), net._users[id(node)].values()):
            if sum(1 for i in other.inputs if i is node) != count:
                raise GraphError(f"users of '{node.name}' are stale for '{other.name}'",
                                 node=node.name)


def _check_attrs(net: Network, node) -> None:
    spec = net.registry.find_op(node.op)
    if spec is None or spec.name != node.op:
        raise GraphError(f"'{node.name}' has op '{node.op}', which is not a canonical op name of "
                         "the registry", node=node.name)
    for key, value in node.attrs.items():
        attr = spec.attrs.get(key)
        if attr is None:
            raise GraphError(f"{node.op} node '{node.name}' has attribute '{key}', which {node.op} "
                             f"does not have (its attributes: {', '.join(spec.attrs) or 'none'})",
                             node=node.name)
        if not attr.accepts(value):
            raise GraphError(f"attribute '{key}' of '{node.name}' is {value!r}, not a canonical "
                             f"{attr.kind}", node=node.name)
    missing = [k for k in spec.attrs if k not in node.attrs]
    if missing:
        raise GraphError(f"'{node.name}' lacks attribute(s) {', '.join(missing)} of {node.op}",
                         node=node.name)
    if node.file_fields:
        _check_file_fields(net, spec, node)
    if (node.value is not None and node.shape is not None and Category.PARAMETER in spec.categories
            and tuple(node.value.shape) != node.shape and node.attrs.get("init") is None):
        raise GraphError(f"parameter '{node.name}' holds a {tuple(node.value.shape)} value but "
                         f"its shape is {node.shape}", node=node.name)


def _check_file_fields(net: Network, spec, node) -> None:
    for key in node.file_fields:
        layer_name, dot, _field = key.partition(".")
        if not dot:
            raise GraphError(f"file field '{key}' of '{node.name}' needs the form "
                             "'<format layer>.<field>' (e.g. 'cntk_v1.matrix_name')",
                             node=node.name)
        layer = next((x for x in net.registry.layers() if x.name == layer_name), None)
        declared = getattr(layer.get(spec), "file_fields", None) if layer is not None else None
        if declared is not None and key not in declared:
            raise GraphError(f"file field '{key}' of '{node.name}' is not one the {layer_name} "
                             f"layer writes for {node.op} (it writes: "
                             f"{', '.join(sorted(declared)) or 'none'})", node=node.name)
