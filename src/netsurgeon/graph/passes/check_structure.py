"""CheckStructure: every node has a known op, an input count it accepts and connected inputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netsurgeon.errors import ValidationError
from netsurgeon.graph.passes._base import Pass, PassResult

if TYPE_CHECKING:
    from netsurgeon.graph._network import Network
    from netsurgeon.ops import OpRegistry

__all__ = ["CheckStructure"]


class CheckStructure(Pass):
    """An analysis: raises ValidationError naming the first malformed node; changes nothing."""

    def __init__(self, registry: OpRegistry | None = None) -> None:
        self.registry = registry

    def call(self, net: Network) -> PassResult:
        registry = self.registry or net.registry
        specs: dict[str, object] = {}
        for node in net._nodes.values():
            spec = specs.get(node.op)
            if spec is None:
                if not registry.has_op(node.op):
                    raise ValidationError(f"unknown operation '{node.op}'", node=node.name)
                spec = specs[node.op] = registry.op(node.op)
            ins = node.inputs
            if not spec.accepts_arity(len(ins)):
                raise ValidationError(
                    f"{node.op} operation '{node.name}' expects {spec.arity_text()} inputs "
                    f"(given: {len(ins)})", node=node.name,
                )
            if None in ins:
                i = ins.index(None)
                raise ValidationError(
                    f"input {i} ({spec.input_name(i)}) of {node.op} operation '{node.name}' is "
                    "not connected; set it with SetInput or remove the node", node=node.name,
                )
        return PassResult(net, False)
