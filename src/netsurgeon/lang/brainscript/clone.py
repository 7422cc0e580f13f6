"""CloneFunction at the graph level (brainscript.md §5.1), usable from Python without BrainScript.

    f = clone_function([net.node("features")], net.node("z"), parameters="constant")
    z2 = f(new_features)                      # a node (or a dict for a dict of outputs)

What is cloned follows CNTK exactly: the clone set D starts with the inputs and grows by a
fixpoint with every freezable node (LearnableParameter, BatchNormalization) below the outputs
(unless ``shared``) and every node with an input in D. Copies keep op, attributes, tags,
learning-rate multiplier and a copy of the current value; they are named ``<prefix>.<name>``.
``constant`` freezes copied parameters and puts BatchNormalization in inference mode.
Everything is iterative, and recurrent loops (PastValue/FutureValue back edges) are
traversed like any other edge, so sections with loops clone in all three modes.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence

from netsurgeon.errors import EditError, GraphError
from netsurgeon.graph import Network, Node, closure, copy_nodes, freeze, group_name
from netsurgeon.lang.brainscript.shapes import infer_local
from netsurgeon.ops.sets import FREEZABLE

__all__ = ["CloneFunction", "clone_function", "MODES", "tags_of", "unique_name"]

MODES = ("learnable", "constant", "shared")


def _default_expand(node: Node):
    return node.inputs


def _reachable(roots: list[Node], expand: Callable[[Node], Sequence[Node | None]]
               ) -> tuple[list[Node], dict[Node, tuple[Node | None, ...]]]:
    """A: every node the roots reach, full depth, in post-order (inputs first), with the
    inputs ``expand`` read for each (so a lazily attached delay input is read once)."""
    order: list[Node] = []
    inputs_of: dict[Node, tuple[Node | None, ...]] = {}
    for root in roots:
        if root in inputs_of:
            continue
        inputs_of[root] = tuple(expand(root))
        stack = [(root, iter(inputs_of[root]))]
        while stack:
            node, it = stack[-1]
            for nxt in it:
                if nxt is not None and nxt not in inputs_of:
                    inputs_of[nxt] = tuple(expand(nxt))
                    stack.append((nxt, iter(inputs_of[nxt])))
                    break
            else:
                stack.pop()
                order.append(node)
    return order, inputs_of


def _downstream(seeds: list[Node], order: list[Node],
                inputs_of: Mapping[Node, tuple[Node | None, ...]]) -> set[Node]:
    """D: CNTK's fixpoint, as a propagation along user links inside A (loops included)."""
    users: dict[Node, list[Node]] = {n: [] for n in order}
    for n in order:
        for i in inputs_of[n]:
            if i is not None:
                users[i].append(n)
    cloned = set(seeds)
    work = list(seeds)
    while work:
        for u in users[work.pop()]:
            if u not in cloned:
                cloned.add(u)
                work.append(u)
    return cloned


def _live(outputs: list[Node], inputs: set[Node],
          inputs_of: Mapping[Node, tuple[Node | None, ...]]) -> set[Node]:
    """What the outputs reach without passing through an input. CNTK also copies members of D
    below an input node; no output reaches such copies, so they are skipped (no wasted
    weight copies)."""
    return set(closure(outputs, lambda n: () if n in inputs else inputs_of[n]))


class CloneFunction:
    """A reusable copy recipe of the section between ``inputs`` and ``outputs``.

    Args:
        inputs: nodes whose links are replaced by the call's arguments (parameters allowed:
            pass a different node, even of another shape, to substitute them).
        outputs: one node, or a mapping name -> node (the call then returns a dict).
        parameters: ``learnable`` (own trainable copies per call), ``constant`` (frozen
            copies per call) or ``shared`` (the clones use the original parameters).
        expand: how to read a node's inputs (the BrainScript evaluator attaches delay
            inputs lazily); defaults to ``node.inputs``.
    """

    def __init__(self, inputs: Sequence[Node] | Node, outputs: Node | Mapping[str, Node],
                 parameters: str = "learnable", *,
                 expand: Callable[[Node], Sequence[Node | None]] | None = None) -> None:
        if parameters not in MODES:
            raise EditError("parameters must be 'learnable', 'constant' or 'shared', not "
                            f"{parameters!r}")
        self.mode = parameters
        self.inputs: list[Node] = [inputs] if isinstance(inputs, Node) else list(inputs)
        if not self.inputs:
            raise EditError("CloneFunction needs at least one input node")
        if isinstance(outputs, Node):
            self.single = True
            self.outputs: dict[str, Node] = {"": outputs}
        else:
            self.single = False
            self.outputs = dict(outputs)
            if not self.outputs:
                raise EditError("CloneFunction: the record of output nodes is empty")
            for k, v in self.outputs.items():
                if not isinstance(v, Node):
                    raise EditError(f"CloneFunction: output '{k}' is not a node")
        order, inputs_of = _reachable(list(self.outputs.values()), expand or _default_expand)
        for i in self.inputs:
            if i not in inputs_of:
                raise EditError(f"No specified output depends on the specified input '{i.name}'",
                                node=i.name, hint="list only inputs that the outputs reach")
        seeds = list(self.inputs)
        if parameters != "shared":
            seeds += [n for n in order if n.op in FREEZABLE]
        cloned = _downstream(seeds, order, inputs_of)
        live = _live(list(self.outputs.values()), set(self.inputs), inputs_of)
        input_set = set(self.inputs)
        #: the nodes each call copies, inputs before users
        self.order: list[Node] = [n for n in order
                                  if n in cloned and n in live and n not in input_set]
        # tags and groups at definition time
        self._definition_tags = {n: tags_of(n) for n in self.order}
        self.calls = 0

    # ---- the copy ---------------------------------------------------------------------------
    def instantiate(self, args: Sequence[Node], prefix: str,
                    rename: Callable[[str], str] | None = None) -> dict[Node, Node]:
        """Detached copies named ``prefix.<name>`` (passed through ``rename`` if given), wired
        among themselves and to ``args``.

        Returns the map from every input and every copied node to its replacement. Links to
        nodes outside the section stay on those nodes (CNTK's sharing).
        """
        if len(args) != len(self.inputs):
            raise EditError(f"the cloned function expects {len(self.inputs)} inputs, "
                            f"{len(args)} were given")
        for orig, arg in zip(self.inputs, args):
            if not isinstance(arg, Node):
                raise EditError(f"argument for input '{orig.name}' must be a node, not "
                                f"{type(arg).__name__}")
        substitute: dict[Node, Node | None] = dict(zip(self.inputs, args))

        def name_of(n: Node) -> str:
            name = f"{prefix}.{n.name}" if prefix else n.name
            return rename(name) if rename is not None else name

        copies = copy_nodes(self.order, substitute=substitute, names=name_of)
        for orig, copy in copies.items():
            extra = self._definition_tags[orig] - copy.tags  # groups of a loaded model
            if extra:
                copy.update(tags=copy.tags | extra)
        if self.mode == "constant":
            freeze([copy for orig, copy in copies.items() if orig.op in FREEZABLE])
        return {**substitute, **copies}

    def results(self, mapping: Mapping[Node, Node]) -> Node | dict[str, Node]:
        """The call's result: the output node, or a dict of them, through ``mapping``."""
        out = {k: mapping.get(v, v) for k, v in self.outputs.items()}
        return out[""] if self.single else out

    def call_detached(self, args: Sequence[Node], prefix: str) -> Node | dict[str, Node]:
        """A call whose copies stay detached (BrainScript: the network is assembled later);
        their shapes are inferred at once."""
        mapping = self.instantiate(args, prefix)
        infer_local([mapping[n] for n in self.order])
        return self.results(mapping)

    def __call__(self, *args: Node, name: str | None = None) -> Node | dict[str, Node]:
        """Clone the section onto ``args`` and return the output node(s).

        The copies are added to the network the arguments belong to (names
        ``<name>.<original name>``, default name ``clone<k>`` for the k-th call; a clash puts
        ``_`` in front, as CNTK's assembly does). Nodes outside the section that the copies use
        (shared parameters, other inputs) are used as they are when they live in that network,
        and brought in sharing their values otherwise. Shapes are re-inferred at once.
        """
        prefix = name if name is not None else f"clone{self.calls}"
        self.calls += 1
        nets = {a.network for a in args if isinstance(a, Node)}
        if len(nets) != 1:
            raise EditError("the arguments of a cloned function must all belong to one network "
                            "(or all be detached)")
        target = nets.pop()
        if target is None:
            return self.call_detached(args, prefix)
        return self._into(target, args, prefix)

    def _into(self, net: Network, args: Sequence[Node], prefix: str) -> Node | dict[str, Node]:
        taken: set[str] = set()
        mapping = self.instantiate(args, prefix, lambda name: unique_name(net, name, taken))
        copies = [mapping[n] for n in self.order]
        own = set(copies)
        used = [i for c in copies for i in c.inputs if i is not None and i not in own]
        outputs = {k: mapping.get(v, v) for k, v in self.outputs.items()}
        twins = _bring(net, used + [v for v in outputs.values() if v not in own], taken)
        if twins:
            for copy in copies:
                copy.set_inputs([twins.get(i, i) if i is not None else None for i in copy.inputs])
        infer_local(copies)  # still detached: a bad substitution leaves the network unchanged
        net.adopt_all(copies)
        for copy in copies:
            for tag in copy.tags:
                _group(net, tag, copy)
        out = {k: twins.get(v, v) for k, v in outputs.items()}
        return out[""] if self.single else out


# target network -> {outside node: its twin in that network}, so repeated calls share one twin
_IMPORTED: weakref.WeakKeyDictionary[Network, dict[Node, Node]] = weakref.WeakKeyDictionary()


def _bring(net: Network, nodes: Sequence[Node], taken: set[str]) -> dict[Node, Node]:
    """Twins in ``net`` (values shared, one per outside node and network) of the ``nodes`` that
    are not in ``net``, with the outside nodes they need; returns ``{outside node: twin}``."""
    imported = _IMPORTED.setdefault(net, {})
    for stale in [k for k, v in imported.items() if v.network is not net]:
        del imported[stale]  # removed from the network since
    needed: dict[Node, None] = {}
    stack = [n for n in nodes if n.network is not net]
    while stack:
        n = stack.pop()
        if n in needed or n in imported or n.network is net:
            continue
        needed[n] = None
        stack.extend(i for i in n.inputs if i is not None)
    if needed:
        twins = copy_nodes(needed, into=net, substitute=imported, share_values=True,
                           names=lambda n: unique_name(net, n.name, taken))
        imported.update(twins)
        for twin in twins.values():
            for tag in twin.tags:
                _group(net, tag, twin)
    return imported


def tags_of(node: Node) -> set[str]:
    """A node's tags plus the groups it belongs to in its network (loaded models keep groups)."""
    net = node.network
    if net is None:
        return set(node.tags)
    return set(node.tags) | set(net.groups_of(node))


def _group(net: Network, tag: str, node: Node) -> None:
    try:
        net.add_to_group(group_name(tag), node)
    except GraphError:
        pass  # a tag that names no group


def unique_name(net: Network, name: str, taken: set[str] | None = None) -> str:
    """CNTK's assembly rule: a name clashing with a node of ``net`` (or with one of ``taken``,
    names about to be used; the result is added to it) gets '_' in front until unique when it
    contains '.', '[' or ']'; otherwise the clash is an error."""
    taken = taken if taken is not None else set()

    def clash(text: str) -> bool:
        return net.get(text) is not None or text.lower() in taken

    if clash(name):
        if not any(c in name for c in ".[]"):
            raise GraphError(f"Duplicated name '{name}'", node=name,
                             hint="rename one of the two nodes")
        while clash(name):
            name = "_" + name
    taken.add(name.lower())
    return name


def clone_function(inputs: Sequence[Node] | Node, outputs: Node | Mapping[str, Node],
                   parameters: str = "learnable") -> CloneFunction:
    """BS.Network.CloneFunction for Python: returns a callable ``f(*nodes, name=None)``."""
    return CloneFunction(inputs, outputs, parameters)
