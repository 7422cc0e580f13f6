"""Passes over a network: analyses and in-place transformations with one interface.

``prepare(net)`` is what a front-end runs before handing a network out: check the structure,
infer every shape, then initialise the parameters whose shapes were completed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from netsurgeon.graph.passes._base import Pass, PassError, PassManager, PassResult
from netsurgeon.graph.passes.check_structure import CheckStructure
from netsurgeon.graph.passes.fuse_linear import FuseLinear
from netsurgeon.graph.passes.infer_shapes import InferShapes
from netsurgeon.graph.passes.initialize_parameters import (
    InitializeParameters,
    initialize_node,
    needs_value,
)
from netsurgeon.graph.passes.splice_transposed import SpliceTransposed

if TYPE_CHECKING:
    from netsurgeon.graph._network import Network

__all__ = [
    "Pass", "PassResult", "PassManager", "PassError", "CheckStructure", "InferShapes",
    "InitializeParameters", "FuseLinear", "SpliceTransposed", "prepare", "initialize_node",
    "needs_value",
]


def prepare(net: Network, *, lint: bool = False) -> PassResult:
    """Validate ``net`` and initialise its pending parameters (the standard pipeline)."""
    return PassManager([CheckStructure(), InferShapes(), InitializeParameters()],
                       lint_after_each=lint)(net)
