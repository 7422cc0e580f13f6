"""Iterative graph algorithms: topological order, reachability, strongly connected components.

None of them recurse, so a 1,000,000-node chain is fine. ``skip_delayed=True`` ignores the
inputs an op reads with a time delay (PastValue/FutureValue), which turns a recurrent
network into a DAG whose order is a valid evaluation order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from netsurgeon.errors import ValidationError

if TYPE_CHECKING:
    from netsurgeon.graph._network import Network
    from netsurgeon.graph._node import Node
    from netsurgeon.ops import OpRegistry

__all__ = [
    "topological_order",
    "reachable_up",
    "reachable_down",
    "strongly_connected_components",
    "recurrent_loops",
    "roots",
]


def _edge_function(registry: OpRegistry | None, skip_delayed: bool):
    """``edges(node)``: the inputs to follow (None dropped; delayed ones too if asked)."""
    delayed: dict[str, frozenset[int]] = {}

    def edges(node: Node):
        ins = node.inputs
        if skip_delayed and registry is not None:
            cut = delayed.get(node.op)
            if cut is None:
                spec = registry.find_op(node.op)
                cut = delayed[node.op] = spec.delayed_inputs if spec is not None else frozenset()
            if cut:
                return [n for i, n in enumerate(ins) if n is not None and i not in cut]
        return ins if None not in ins else [n for n in ins if n is not None]

    return edges


def topological_order(
    net: Network,
    roots: Iterable[Node] | None = None,
    *,
    skip_delayed: bool = True,
    registry: OpRegistry | None = None,
) -> list[Node]:
    """Inputs before users. With ``roots``, only their ancestors (roots included).

    Raises ValidationError naming a node on a cycle that has no delay node.
    """
    edges = _edge_function(registry or net.registry, skip_delayed)
    start = list(roots) if roots is not None else net.nodes
    order: list[Node] = []
    state: dict[Node, int] = {}  # 1 = on the current path, 2 = done
    for root in start:
        if root in state:
            continue
        stack: list[tuple[Node, Iterator[Node]]] = [(root, iter(edges(root)))]
        state[root] = 1
        while stack:
            node, it = stack[-1]
            for child in it:
                s = state.get(child)
                if s is None:
                    state[child] = 1
                    stack.append((child, iter(edges(child))))
                    break
                if s == 1:
                    path = [n for n, _ in stack]
                    cycle = [n.name for n in path[path.index(child):]]
                    raise ValidationError(
                        "cycle without a delay node (PastValue/FutureValue): "
                        + " -> ".join(cycle + [child.name]),
                        node=child.name,
                    )
            else:
                stack.pop()
                state[node] = 2
                order.append(node)
    return order


def closure(starts: Iterable[Node], neighbours: Callable[[Node], Iterable[Node | None]]
            ) -> list[Node]:
    """The starts and everything reachable through ``neighbours(node)`` (None entries
    skipped), in discovery order; iterative, linear in what it reaches."""
    seen: dict[Node, None] = {}
    stack = list(starts)
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen[n] = None
        stack.extend(m for m in neighbours(n) if m is not None and m not in seen)
    return list(seen)


def reachable_up(net: Network, starts: Iterable[Node]) -> list[Node]:
    """Every node the starts depend on (through all inputs, delayed too), starts included."""
    return closure(starts, lambda n: n.inputs)


def reachable_down(net: Network, starts: Iterable[Node]) -> list[Node]:
    """Every node that depends on the starts, starts included."""
    return closure(starts, net._users_of)


def strongly_connected_components(net: Network, nodes: Iterable[Node] | None = None,
                                  ) -> list[list[Node]]:
    """Tarjan's algorithm without recursion, over all input edges (delayed included).

    Returns components in reverse topological order of the condensation (inputs first).
    """
    index: dict[Node, int] = {}
    low: dict[Node, int] = {}
    on_stack: set[Node] = set()
    stack: list[Node] = []
    result: list[list[Node]] = []
    counter = 0
    for root in (list(nodes) if nodes is not None else net.nodes):
        if root in index:
            continue
        work: list[tuple[Node, int]] = [(root, 0)]
        while work:
            node, pos = work[-1]
            if pos == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            ins = node.inputs
            recurse = False
            while pos < len(ins):
                child = ins[pos]
                pos += 1
                if child is None:
                    continue
                if child not in index:
                    work[-1] = (node, pos)
                    work.append((child, 0))
                    recurse = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if recurse:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w is node:
                        break
                result.append(comp)
    return result


def recurrent_loops(net: Network) -> list[list[Node]]:
    """The strongly connected components that form loops (more than one node, or a self-loop)."""
    return [
        comp for comp in strongly_connected_components(net)
        if len(comp) > 1 or any(i is comp[0] for i in comp[0].inputs)
    ]


def roots(net: Network) -> list[Node]:
    """Nodes nobody uses, plus criterion, evaluation and output nodes (CNTK's roots)."""
    users = net._users
    found: dict[Node, None] = {n: None for n in net._nodes.values() if not users[id(n)]}
    for g in ("criterion", "evaluation", "output"):
        for n in net.group(g):
            found.setdefault(n, None)
    return list(found)
