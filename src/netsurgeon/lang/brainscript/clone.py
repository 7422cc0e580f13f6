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
from netsurgeon.graph import Network, Node
from netsurgeon.graph._copy import clone_node

__all__ = ["CloneFunction", "clone_function", "MODES", "FREEZABLE"]

MODES = ("learnable", "constant", "shared")
FREEZABLE = frozenset({"LearnableParameter", "BatchNormalization"})


def _default_expand(node: Node):
    return node.inputs


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
            raise EditError(f"parameters must be 'learnable', 'constant' or 'shared', not {parameters!r}")
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
        expand = expand or _default_expand
        # A: everything reachable from the outputs, full depth, post-order (inputs first)
        order: list[Node] = []
        state: dict[Node, int] = {}
        inputs_of: dict[Node, tuple] = {}
        for root in self.outputs.values():
            if root in state:
                continue
            state[root] = 1
            ins = tuple(expand(root))
            inputs_of[root] = ins
            stack = [(root, iter(ins))]
            while stack:
                node, it = stack[-1]
                for nxt in it:
                    if nxt is not None and nxt not in state:
                        state[nxt] = 1
                        nins = tuple(expand(nxt))
                        inputs_of[nxt] = nins
                        stack.append((nxt, iter(nins)))
                        break
                else:
                    stack.pop()
                    state[node] = 2
                    order.append(node)
        for i in self.inputs:
            if i not in state:
                raise EditError(f"No specified output depends on the specified input '{i.name}'",
                                node=i.name, hint="list only inputs that the outputs reach")
        # D: CNTK's fixpoint, computed as a propagation along user links inside A (loops
        # included): seeds are the inputs and, unless shared, every freezable node.
        users: dict[Node, list[Node]] = {n: [] for n in order}
        for n in order:
            for i in inputs_of[n]:
                if i is not None:
                    users[i].append(n)
        shared = parameters == "shared"
        seeds = list(self.inputs)
        if not shared:
            seeds += [n for n in order if n.op in FREEZABLE]
        cloned: set[Node] = set(seeds)
        work = list(seeds)
        while work:
            n = work.pop()
            for u in users[n]:
                if u not in cloned:
                    cloned.add(u)
                    work.append(u)
        input_set = set(self.inputs)
        # CNTK also copies members of D that lie below an input node; no output reaches such
        # copies, so they never enter a network: skip them (no wasted weight copies).
        live: set[Node] = set()
        stack = [o for o in self.outputs.values()]
        while stack:
            n = stack.pop()
            if n in live:
                continue
            live.add(n)
            if n not in input_set:
                stack.extend(i for i in inputs_of[n] if i is not None and i not in live)
        self.order: list[Node] = [n for n in order if n in cloned and n in live and n not in input_set]
        self.inputs_of = inputs_of
        self._tags = {n: tags_of(n) for n in self.order}  # tags + groups at definition time
        self.calls = 0

    # ---- the copy ---------------------------------------------------------------------------
    def instantiate(self, args: Sequence[Node], prefix: str) -> tuple[dict[Node, Node], dict[Node, list]]:
        """Detached copies named ``prefix.<name>`` and their input lists (not yet linked)."""
        if len(args) != len(self.inputs):
            raise EditError(f"the cloned function expects {len(self.inputs)} inputs, "
                            f"{len(args)} were given")
        mapping: dict[Node, Node] = {}
        for orig, arg in zip(self.inputs, args):
            if not isinstance(arg, Node):
                raise EditError(f"argument for input '{orig.name}' must be a node, not "
                                f"{type(arg).__name__}")
            mapping[orig] = arg
        constant = self.mode == "constant"
        for n in self.order:
            copy = clone_node(n, f"{prefix}.{n.name}" if prefix else n.name)
            copy.tags |= self._tags[n]
            if constant and n.op in FREEZABLE:
                copy.learning_rate_multiplier = 0.0
                if n.op == "BatchNormalization":
                    _inference_mode(copy)
            mapping[n] = copy
        wiring = {mapping[n]: [None if i is None else mapping.get(i, i) for i in self.inputs_of[n]]
                  for n in self.order}
        return mapping, wiring

    def results(self, mapping: dict[Node, Node]) -> Node | dict[str, Node]:
        out = {k: mapping.get(v, v) for k, v in self.outputs.items()}
        return out[""] if self.single else out

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
        mapping, wiring = self.instantiate(args, prefix)
        if target is None:
            for copy, ins in wiring.items():
                copy._inputs = tuple(ins)
            _infer([c for c in wiring])
            return self.results(mapping)
        return self._into(target, mapping, wiring)

    def _into(self, net: Network, mapping, wiring) -> Node | dict[str, Node]:
        imported = _IMPORTED.setdefault(net, {})
        for k in [k for k, v in imported.items() if v.network is not net]:
            del imported[k]  # removed from the network since

        def bring(node: Node) -> Node:
            if node.network is net:
                return node
            if node in imported:
                return imported[node]
            # iterative import of an outside node and its (outside) inputs, values shared
            stack = [node]
            while stack:
                n = stack[-1]
                pending = [i for i in n.inputs if i is not None and i.network is not net
                           and i not in imported and i not in stack]
                if pending:
                    stack.extend(pending)
                    continue
                stack.pop()
                if n in imported:
                    continue
                twin = clone_node(n, unique_name(net, n.name), share_value=True)
                net.adopt(twin)
                imported[n] = twin
                net._set_inputs(twin, [None if i is None else (i if i.network is net else imported[i])
                                       for i in n.inputs])
                for t in twin.tags:
                    _group(net, t, twin)
            return imported[node]

        for copy in wiring:
            copy.name = unique_name(net, copy.name)
            net.adopt(copy)
        for copy, ins in wiring.items():
            net._set_inputs(copy, [None if i is None else bring(i) for i in ins])
            for t in copy.tags:
                _group(net, t, copy)
        _infer(list(wiring))
        out = {k: (mapping.get(v, v)) for k, v in self.outputs.items()}
        out = {k: bring(v) for k, v in out.items()}
        return out[""] if self.single else out


# target network -> {outside node: its twin in that network}, so repeated calls share one twin
_IMPORTED: weakref.WeakKeyDictionary[Network, dict[Node, Node]] = weakref.WeakKeyDictionary()


def tags_of(node: Node) -> set[str]:
    """A node's tags plus the groups it belongs to in its network (loaded models keep groups)."""
    net = node.network
    if net is None:
        return set(node.tags)
    return set(node.tags) | {g for g, members in net._groups.items() if node in members}


def _group(net: Network, tag: str, node: Node) -> None:
    from netsurgeon.graph._network import group_name

    try:
        net.add_to_group(group_name(tag), node)
    except GraphError:
        pass


def _infer(copies: list[Node]) -> None:
    from netsurgeon.lang.brainscript.nodes import infer_local

    infer_local(copies)


def _inference_mode(node: Node) -> None:
    """BatchNormalization in inference mode: both time constants infinite (CNTK's freeze)."""
    for key in list(node.attrs):
        if "time_constant" in key.lower() or key in ("normalizationTimeConstant", "blendTimeConstant"):
            node.attrs[key] = float("inf")


def unique_name(net: Network, name: str) -> str:
    """CNTK's assembly rule: a clashing name containing . [ or ] gets '_' in front until unique."""
    if net.get(name) is None:
        return name
    if not any(c in name for c in ".[]"):
        raise GraphError(f"Duplicated name '{name}'", node=name,
                         hint="rename one of the two nodes")
    while net.get(name) is not None:
        name = "_" + name
    return name


def clone_function(inputs: Sequence[Node] | Node, outputs: Node | Mapping[str, Node],
                   parameters: str = "learnable") -> CloneFunction:
    """BS.Network.CloneFunction for Python: returns a callable ``f(*nodes, name=None)``."""
    return CloneFunction(inputs, outputs, parameters)
