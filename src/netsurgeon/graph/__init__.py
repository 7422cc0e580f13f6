"""The network IR: named nodes, wiring, groups, traversal, wildcards and validation.

This package never imports torch.
"""

from netsurgeon.graph._copy import clone_node, copy_network, copy_nodes
from netsurgeon.graph._network import Network, group_name
from netsurgeon.graph._node import GROUPS, Node
from netsurgeon.graph._traversal import (
    reachable_down,
    reachable_up,
    recurrent_loops,
    roots,
    strongly_connected_components,
    topological_order,
)
from netsurgeon.graph._validate import check_structure, validate
from netsurgeon.graph._wildcard import Pattern, map_name, split_model_prefix

__all__ = [
    "GROUPS",
    "Network",
    "Node",
    "Pattern",
    "check_structure",
    "clone_node",
    "copy_network",
    "copy_nodes",
    "group_name",
    "map_name",
    "reachable_down",
    "reachable_up",
    "recurrent_loops",
    "roots",
    "split_model_prefix",
    "strongly_connected_components",
    "topological_order",
    "validate",
]
