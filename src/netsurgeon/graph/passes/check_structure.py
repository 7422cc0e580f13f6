"""CheckStructure: every node has a known op, an input count it accepts and connected inputs."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from netsurgeon.errors import ValidationError
from netsurgeon.graph.passes._base import Pass, PassResult

if TYPE_CHECKING:
    from netsurgeon.graph._network import Network
    from netsurgeon.graph._node import Node
    from netsurgeon.ops import OpRegistry, OpSpec

__all__ = ["CheckStructure", "StructureProblem"]


class StructureProblem(NamedTuple):
    """One malformed node: its op is unknown (``spec`` None), it has an input count the op
    refuses (``bad_arity``), or inputs that are not connected (``missing`` indices)."""

    node: Node
    spec: OpSpec | None
    bad_arity: bool
    missing: tuple[int, ...]


class CheckStructure(Pass):
    """An analysis: raises ValidationError naming the first malformed node; changes nothing.

    :meth:`problems` lists every malformed node instead (MEL reports them all at once).
    """

    def __init__(self, registry: OpRegistry | None = None) -> None:
        self.registry = registry

    def problems(self, net: Network) -> list[StructureProblem]:
        registry = self.registry or net.registry
        specs: dict[str, OpSpec | None] = {}
        found = []
        for node in net._nodes.values():
            if node.op not in specs:
                specs[node.op] = registry.find_op(node.op)
            spec = specs[node.op]
            ins = node.inputs
            bad = spec is None or not spec.accepts_arity(len(ins))
            missing = tuple(i for i, x in enumerate(ins) if x is None) if None in ins else ()
            if bad or missing:
                found.append(StructureProblem(node, spec, bad, missing))
        return found

    def call(self, net: Network) -> PassResult:
        for node, spec, bad_arity, missing in self.problems(net)[:1]:
            if spec is None:
                raise ValidationError(f"unknown operation '{node.op}'", node=node.name)
            if bad_arity:
                raise ValidationError(
                    f"{node.op} operation '{node.name}' expects {spec.arity_text()} inputs "
                    f"(given: {len(node.inputs)})", node=node.name)
            i = missing[0]
            raise ValidationError(
                f"input {i} ({spec.input_name(i)}) of {node.op} operation '{node.name}' is not "
                "connected; set it with SetInput or remove the node", node=node.name)
        return PassResult(net, False)
