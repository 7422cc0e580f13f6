"""The network IR: named nodes, wiring, groups, traversal, wildcards, edits and passes.

This package never imports torch. See docs/ir.md for the invariants and the edit API.
"""

from netsurgeon.graph._edit import clone, copy_network, copy_nodes, freeze, inference_mode
from netsurgeon.graph._network import Network, group_name
from netsurgeon.graph._node import GROUPS, UNSET, Node, detached
from netsurgeon.graph._traversal import (
    closure,
    reachable_down,
    reachable_up,
    recurrent_loops,
    roots,
    strongly_connected_components,
    topological_order,
)
from netsurgeon.graph._wildcard import Pattern, close_names, map_name, split_model_prefix
from netsurgeon.graph.passes import prepare

__all__ = [
    "GROUPS",
    "UNSET",
    "Network",
    "Node",
    "Pattern",
    "close_names",
    "clone",
    "copy_network",
    "copy_nodes",
    "detached",
    "freeze",
    "group_name",
    "inference_mode",
    "map_name",
    "prepare",
    "reachable_down",
    "closure",
    "reachable_up",
    "recurrent_loops",
    "roots",
    "split_model_prefix",
    "strongly_connected_components",
    "topological_order",
]
