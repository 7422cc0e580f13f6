"""Networks in BrainScript: assembly (§4.4), the loaded-network record (§5.2), Load (§5.3), Edit (§5.4).

Assembly walks breadth-first from the roots, attaches delay inputs late, renames clashing
names that contain ``.``/``[``/``]`` with a ``_`` prefix, turns tags into groups, validates
shapes and finally initialises parameters whose shapes were inferred.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from netsurgeon.errors import EvaluationError, GraphError, NetsurgeonError, close_matches
from netsurgeon.graph import Network, Node
from netsurgeon.graph._copy import clone_node
from netsurgeon.graph._network import group_name
from netsurgeon.lang.brainscript.values import Record, fail

if TYPE_CHECKING:
    from netsurgeon.lang.brainscript.evaluator import Evaluator

__all__ = ["assemble", "build_network", "network_member", "bs_name", "load_network", "edit_network",
           "SPECIAL_LISTS"]

SPECIAL_LISTS = {"featureNodes": "feature", "labelNodes": "label", "criterionNodes": "criterion",
                 "evaluationNodes": "evaluation", "outputNodes": "output"}


def bs_name(name: str) -> str:
    """How BrainScript reaches a node name: '.', '[' and ']' all read as '_' (policy §3)."""
    return name.replace(".", "_").replace("[", "_").replace("]", "_")


def network_member(net: Network, name: str, location=None) -> Node:
    """``network.x``: the exact node name, else the first node in sorted name order whose name
    with '.', '[' and ']' replaced by '_' equals ``x``."""
    exact = net._nodes.get(name)
    if exact is not None:
        return exact
    for node in sorted(net.nodes, key=lambda n: n.name):
        if bs_name(node.name) == name:
            return node
    pool = {bs_name(n.name) for n in net.nodes}
    raise fail(f"network '{net.name}' has no node '{name}'", location,
               hint=close_matches(name, pool) or "'.', '[' and ']' in node names read as '_'")


def assemble(ev: Evaluator, cfg: Record, path: str, location=None) -> Network:
    """``new ComputationNetwork R``."""
    roots: list[Node] = []
    renames: dict[Node, str] = {}
    for member, group in SPECIAL_LISTS.items():
        t = cfg.members.get(member)
        if t is None:
            continue
        from netsurgeon.lang.brainscript.evaluator import flatten

        for v in flatten(ev, t.get(ev)):
            if not isinstance(v, Node):
                raise fail(f"'{member}' must hold nodes, not a {type(v).__name__}", t.location)
            v.tags.add(group)
            roots.append(v)
    for member in sorted(cfg.members):
        value = cfg.members[member].get(ev)
        if member in SPECIAL_LISTS:
            continue
        if isinstance(value, Node):
            roots.append(value)
            renames[value] = member
    return build_network(ev, roots, renames, name=path or "network")


def build_network(ev: Evaluator | None, roots: list[Node], renames: dict[Node, str] | None = None,
                  *, name: str = "network", validate: bool = True) -> Network:
    """A new Network holding everything the roots reach (detached nodes are adopted, nodes of
    other networks are copied sharing their values)."""
    renames = renames or {}
    net = Network(name)
    memo: dict[Node, Node] = {}
    order: list[Node] = []
    queue = deque(roots)
    seen: set[Node] = set()
    while queue:
        orig = queue.popleft()
        if orig in seen:
            continue
        seen.add(orig)
        if ev is not None and orig in ev.nodes.deferred:
            ev.run(lambda: ev.nodes.attach_deferred(orig))
        final = renames.get(orig, orig.name)
        existing = net.get(final)
        if existing is not None:
            if not any(c in final for c in ".[]"):
                raise GraphError(f"Duplicated name '{final}'", node=final,
                                 hint="two different nodes have this name; rename one of them")
            while net.get(final) is not None:
                final = "_" + final
        if orig.network is None:
            orig.name = final
            net.adopt(orig)
            twin = orig
        else:
            from netsurgeon.lang.brainscript.clone import tags_of

            twin = clone_node(orig, final, share_value=True)
            twin.tags |= tags_of(orig)
            twin = net.adopt(twin)
        memo[orig] = twin
        order.append(orig)
        for i in orig.inputs:
            if i is not None and i not in seen:
                queue.append(i)
    for orig in order:
        twin = memo[orig]
        net._set_inputs(twin, [None if i is None else memo[i] for i in orig.inputs])
        for tag in sorted(twin.tags):
            try:
                net.add_to_group(group_name(tag), twin)
            except GraphError as exc:
                raise EvaluationError(exc.message, node=twin.name) from None
    if validate:
        from netsurgeon.graph import topological_order
        from netsurgeon.lang.brainscript.nodes import infer_local

        # a first local pass expands inferInputRankToMap parameters (see nodes.py)
        try:
            infer_local(topological_order(net, skip_delayed=True), strict=False)
            net.validate()
        except NetsurgeonError as exc:
            node = net.get(exc.node) if exc.node else None
            loc = node.location if node is not None else None
            if loc is not None and loc.file and not loc.file.endswith("cntk.core.bs"):
                exc.with_location(loc)
            raise
        if ev is not None:
            ev.nodes.finish_parameters(net.nodes)
    return net


def load_network(path: str) -> Network:
    """BS.Network.Load: any format netsurgeon reads."""
    import os

    if not os.path.exists(path):
        raise EvaluationError(f"model file not found: {path}")
    try:
        from netsurgeon.formats import load
    except ImportError:  # pragma: no cover - formats not built yet
        from netsurgeon.formats.cntk import read as load  # type: ignore
    return load(path)


def edit_network(ev: Evaluator, model: Network, functions: list[Any], extra_roots: list[Node],
                 path: str) -> Network:
    """BS.Network.Edit (§5.4): replace nodes, copy their consumers, keep the original intact."""
    replaced: dict[Node, Node] = {}
    for node in model.sorted_nodes():
        for fn in functions:
            result = ev.call_value(fn, [node], path)
            if not isinstance(result, Node):
                raise EvaluationError("an edit function must return a node "
                                      f"(it returned something else for '{node.name}')")
            if result is not node:
                replaced[node] = result
                break
    # every consumer (transitively) of a replaced node is copied, keeping its name
    affected: list[Node] = []
    seen = set(replaced)
    queue = deque(replaced)
    while queue:
        n = queue.popleft()
        for u in n.users:
            if u not in seen:
                seen.add(u)
                affected.append(u)
                queue.append(u)
    mapping: dict[Node, Node] = dict(replaced)
    for n in affected:
        mapping[n] = clone_node(n, n.name, share_value=True)
    for n in affected:
        mapping[n]._inputs = tuple(None if i is None else mapping.get(i, i) for i in n.inputs)
    roots = [mapping.get(n, n) for n in model.nodes if not n.users]
    roots += [mapping.get(n, n) for n in extra_roots]
    return build_network(ev, roots, name=path or model.name)
