"""Networks in BrainScript: assembly (§4.4), the loaded-network record (§5.2), Load (§5.3),
Edit (§5.4).

Assembly walks breadth-first from the roots, attaches delay inputs late, renames clashing
names that contain ``.``/``[``/``]`` with a ``_`` prefix, turns tags into groups, validates
shapes and finally initialises parameters whose shapes were inferred.
"""

from __future__ import annotations

import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

from netsurgeon.errors import EvaluationError, GraphError, NetsurgeonError, close_matches
from netsurgeon.graph import Network, Node, copy_nodes, group_name, prepare
from netsurgeon.lang.brainscript.values import DONE, Record, fail

if TYPE_CHECKING:
    from netsurgeon.lang.brainscript.evaluator import Evaluator

__all__ = ["assemble", "build_network", "network_member", "bs_name", "load_network", "edit_network",
           "SPECIAL_LISTS"]

SPECIAL_LISTS = {"featureNodes": "feature", "labelNodes": "label", "criterionNodes": "criterion",
                 "evaluationNodes": "evaluation", "outputNodes": "output"}


def bs_name(name: str) -> str:
    """How BrainScript reaches a node name: '.', '[' and ']' all read as '_' (policy §3)."""
    return name.replace(".", "_").replace("[", "_").replace("]", "_")


#: network -> (version, BrainScript name -> node), so member reads cost O(1), not a sort
_BS_NAMES: weakref.WeakKeyDictionary[Network, tuple[int, dict[str, Node]]] = \
    weakref.WeakKeyDictionary()


def _bs_names(net: Network) -> dict[str, Node]:
    cached = _BS_NAMES.get(net)
    if cached is None or cached[0] != net.version:
        index: dict[str, Node] = {}
        for node in sorted(net.nodes, key=lambda n: n.name):
            index.setdefault(bs_name(node.name), node)
        cached = _BS_NAMES[net] = (net.version, index)
    return cached[1]


def network_member(net: Network, name: str, location=None) -> Node:
    """``network.x``: the exact node name, else the first node in sorted name order whose name
    with '.', '[' and ']' replaced by '_' equals ``x``."""
    exact = net.get(name)
    if exact is not None and exact.name == name:
        return exact
    index = _bs_names(net)
    node = index.get(name)
    if node is not None:
        return node
    raise fail(f"network '{net.name}' has no node '{name}'", location,
               hint=close_matches(name, index) or "'.', '[' and ']' in node names read as '_'")


def assemble(ev: Evaluator, cfg: Record, path, location=None):
    """Work: ``new ComputationNetwork R``."""
    from netsurgeon.lang.brainscript.evaluator import flatten_work

    roots: list[Node] = []
    renames: dict[Node, str] = {}
    groups: dict[Node, set[str]] = {}
    for member, group in SPECIAL_LISTS.items():
        t = cfg.members.get(member)
        if t is None:
            continue
        value = t.value if t.state == DONE else (yield t)
        for v in (yield flatten_work(value)):
            if not isinstance(v, Node):
                raise fail(f"'{member}' must hold nodes, not a {type(v).__name__}", t.location)
            groups.setdefault(v, set()).add(group)
            roots.append(v)
    for member in sorted(cfg.members):
        t = cfg.members[member]
        value = t.value if t.state == DONE else (yield t)
        if member in SPECIAL_LISTS:
            continue
        if isinstance(value, Node):
            roots.append(value)
            renames[value] = member
    return build_network(ev, roots, renames, name=str(path) or "network", groups=groups)


def build_network(ev: Evaluator | None, roots: list[Node], renames: dict[Node, str] | None = None,
                  *, name: str = "network", groups: dict[Node, set[str]] | None = None,
                  validate: bool = True) -> Network:
    """A new Network holding everything the roots reach, assembled as CNTK did (§4.4).

    Detached nodes are adopted; nodes of other networks (a loaded model) are brought in as
    twins sharing their values, with their tags and groups. ``groups`` adds groups to nodes
    (the ``*Nodes`` lists). With ``validate`` the network is prepared: shapes inferred and
    parameters with inferred dimensions initialised.
    """
    from netsurgeon.lang.brainscript.clone import tags_of

    renames = renames or {}
    order, names = _collect(ev, roots, renames)
    attached = [n for n in order if n.network is not None]
    twins = copy_nodes(attached, names=names, share_values=True)
    members = []
    for orig in order:
        node = twins.get(orig)
        if node is None:
            node = orig
            node.rename(names[orig])
            node.set_inputs([None if i is None else twins.get(i, i) for i in orig.inputs])
        tags = tags_of(orig) if orig in twins else set(node.tags)
        node.update(tags=tags | (groups or {}).get(orig, set()))
        members.append(node)
    net = Network(name)
    net.adopt_all(members)
    for node in members:
        for tag in sorted(node.tags):
            try:
                net.add_to_group(group_name(tag), node)
            except GraphError as exc:
                raise EvaluationError(exc.message, node=node.name) from None
    if validate:
        _prepare(net)
    return net


def _collect(ev: Evaluator | None, roots: list[Node], renames: dict[Node, str]
             ) -> tuple[list[Node], dict[Node, str]]:
    """The nodes the roots reach, breadth-first (delay inputs attached on the way), and their
    names in the new network: a clash renames a name with '.', '[' or ']' by putting '_' in
    front, and is an error otherwise."""
    names: dict[Node, str] = {}
    taken: set[str] = set()
    prefixes: dict[str, int] = {}  # clashing name -> '_'s tried so far (taken only grows)
    order: list[Node] = []
    queue = deque(roots)
    while queue:
        orig = queue.popleft()
        if orig in names:
            continue
        if ev is not None and orig in ev.nodes.deferred:
            ev.nodes.attach_deferred(orig)
        final = renames.get(orig, orig.name)
        key = final.lower()
        if key in taken:
            # CNTK refused a top-level clash ("Duplicated name"), also that of an infix
            # operator's constant with its operator (`s = x * 2`); netsurgeon names that
            # constant `_s` as it would `_r.s` (docs/brainscript.md)
            infix = ev is not None and orig in ev.nodes.infix_constants
            if not infix and not any(c in final for c in ".[]"):
                raise GraphError(f"Duplicated name '{final}'", node=final,
                                 hint="two different nodes have this name; rename one of them")
            k = prefixes.get(key, 0) + 1
            while "_" * k + key in taken:
                k += 1
            prefixes[key] = k
            if ev is not None:
                ev.nodes.count_name(k + len(final), orig.location)
            final = "_" * k + final
        taken.add(final.lower())
        names[orig] = final
        order.append(orig)
        queue.extend(i for i in orig.inputs if i is not None and i not in names)
    return order, names


def _prepare(net: Network) -> None:
    """Infer shapes and initialise parameters; errors point at the user's source line."""
    try:
        prepare(net)
    except NetsurgeonError as exc:
        node = net.get(exc.node) if exc.node else None
        loc = node.location if node is not None else None
        if loc is not None and loc.file and not loc.file.endswith("cntk.core.bs"):
            exc.with_location(loc)
        raise


def load_network(path: str) -> Network:
    """BS.Network.Load: any format netsurgeon reads."""
    import os

    from netsurgeon.formats import load

    if not os.path.exists(path):
        raise EvaluationError(f"model file not found: {path}")
    return load(path)


def edit_network(ev: Evaluator, model: Network, functions: list[Any], extra_roots: list[Node],
                 path: str) -> Network:
    """BS.Network.Edit (§5.4): replace nodes, copy their consumers, keep the original intact."""
    replaced: dict[Node, Node | None] = {}
    seen: set[Node] = set()
    for node in model.sorted_nodes():
        for fn in functions:
            result = ev.call_value(fn, [node], path)
            if not isinstance(result, Node):
                raise EvaluationError("an edit function must return a node "
                                      f"(it returned something else for '{node.name}')")
            if result is not node:
                if result.network is None and result.name == str(path) and result not in seen:
                    # a node the edit function made itself (beam widening) takes the name
                    # of the node it stands for
                    result.rename(node.name)
                seen.add(result)
                replaced[node] = result
                break
    # every consumer (transitively) of a replaced node is copied, keeping its name: among the
    # model's nodes and among what the additional roots reach (a decoder built on the model's
    # outputs, bs-library.md §2.10), delay inputs attached on the way
    outside_users = _users_outside(ev, model, [*extra_roots, *replaced.values()])
    affected: list[Node] = []
    seen = set(replaced)
    queue = deque(replaced)
    while queue:
        node = queue.popleft()
        for u in [*node.users, *outside_users.get(node, ())]:
            if u not in seen:
                seen.add(u)
                affected.append(u)
                queue.append(u)
    copies = copy_nodes(affected, substitute=replaced, share_values=True)
    # a replacement that itself depends on a replaced node (the decoders' feedback, such as
    # decoderHistoryFromOutput) is linked as its copy, closing the loop in the edited network
    for twin in copies.values():
        for index, node in enumerate(twin.inputs):
            if node in copies:
                twin.set_input(index, copies[node])
    mapping: dict[Node, Node] = {**replaced, **copies}
    roots = [mapping.get(n, n) for n in model.nodes if not n.users]
    roots += [mapping.get(n, n) for n in extra_roots]
    return build_network(ev, roots, name=str(path) or model.name)


def _users_outside(ev: Evaluator, model: Network, roots: list[Node]) -> dict[Node, list[Node]]:
    """node -> its consumers among the nodes ``roots`` reach outside ``model`` (the walk
    stops at the model's nodes; delay inputs are attached as assembly would)."""
    users: dict[Node, list[Node]] = {}
    seen: set[Node] = set()
    queue = deque(n for n in roots if n is not None and n.network is not model)
    while queue:
        node = queue.popleft()
        if node in seen:
            continue
        seen.add(node)
        for i in ev.nodes.inputs_of(node):
            if i is None:
                continue
            users.setdefault(i, []).append(node)
            if i.network is not model:
                queue.append(i)
    return users
