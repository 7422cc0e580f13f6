"""The mutable network IR: uniquely named nodes, ordered inputs, node groups.

Names are unique case-insensitively (CNTK compared them so), so one index keyed by the
lower-case name finds a node by any spelling. The network owns everything derived from its
nodes: the name index, the users of each node (kept in step by the one private edge setter
``_link``) and the edit counter ``version``, which every change bumps so that compiled code
never runs on a stale network.
Multi-node edits check everything first and then mutate, so a failed edit changes nothing.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from netsurgeon.errors import GraphError, SourceLocation, close_matches
from netsurgeon.graph._node import (
    GROUPS,
    UNSET,
    Node,
    _apply_update,
    _as_inputs,
    _fresh,
    _with_input,
    canonical_attrs,
    checked_attrs,
)
from netsurgeon.graph._wildcard import Pattern
from netsurgeon.ops import OPS, OpRegistry

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Network", "group_name"]

_GROUP_ALIASES = {
    "feature": "feature", "features": "feature",
    "label": "label", "labels": "label",
    "criterion": "criterion", "criteria": "criterion",
    "evaluation": "evaluation", "eval": "evaluation",
    "output": "output", "outputs": "output",
}


def group_name(text: str) -> str:
    """Canonical group for a tag or group name (``criteria`` -> ``criterion``, ``eval*``)."""
    low = text.lower()
    if low in _GROUP_ALIASES:
        return _GROUP_ALIASES[low]
    if low.startswith("eval"):
        return "evaluation"
    raise GraphError(
        f"Invalid group tag '{text}', must be one of 'feature', 'label', 'criterion', "
        "'evaluation', 'output'"
    )


class Network:
    """A graph of named nodes.

    Example::

        net = Network("m")
        x = net.add("features", "InputValue", shape=(784,))
        W = net.add_parameter("W", np.zeros((784, 256), np.float32))
        h = net.add("h", "Times", inputs=(W, x))
        net.update(W, value=np.ones((784, 256), np.float32))   # bumps net.version
        net.add_to_group("output", h)
    """

    def __init__(self, name: str = "model", registry: OpRegistry | None = None) -> None:
        self.name = name
        self._nodes: dict[str, Node] = {}  # lower-case name -> node, in insertion order
        # users by node id: {id(node): {id(user): count}}; maps of plain ints are not tracked
        # by the cycle collector, which keeps building and loading large graphs linear
        self._users: dict[int, dict[int, int]] = {}
        self._by_id: dict[int, Node] = {}
        self._groups: dict[str, dict[Node, None]] = {g: {} for g in GROUPS}
        self._version = 0
        self.metadata: dict[str, Any] = {}
        #: data upper layers compute from the network (the evaluator cache), each entry
        #: checked against ``version`` by its user; never saved, never copied
        self.derived: dict[str, Any] = {}
        self.registry: OpRegistry = registry if registry is not None else OPS
        self._ref = weakref.ref(self)

    @property
    def version(self) -> int:
        """The edit counter: every change to a node, an edge, a name or a group bumps it."""
        return self._version

    # ---- basic access -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self._nodes.values()))

    def __contains__(self, name: object) -> bool:
        if isinstance(name, Node):
            return name._net is self._ref
        return isinstance(name, str) and self.get(name) is not None

    @property
    def nodes(self) -> list[Node]:
        """Nodes in insertion order."""
        return list(self._nodes.values())

    def names(self) -> list[str]:
        """The node names, in insertion order."""
        return [n._name for n in self._nodes.values()]

    def sorted_nodes(self) -> list[Node]:
        """Nodes in CNTK's name order (case-insensitive), as Dump prints them."""
        return sorted(self._nodes.values(), key=lambda n: (n.name.lower(), n.name))

    def get(self, name: str) -> Node | None:
        """The node called ``name`` (compared case-insensitively), or None."""
        return self._nodes.get(name.lower())

    def node(self, ref: Node | str) -> Node:
        """Resolve a node or name. Raises GraphError listing close matches."""
        if isinstance(ref, Node):
            if ref._net is not self._ref:
                raise GraphError(f"node '{ref.name}' is not in network '{self.name}'",
                                 node=ref.name)
            return ref
        found = self.get(ref)
        if found is None:
            raise GraphError(
                f"no node named '{ref}' in network '{self.name}'",
                hint=close_matches(ref, self.names()),
            )
        return found

    def users(self, ref: Node | str) -> list[Node]:
        """Nodes that take ``ref`` as an input."""
        return self._users_of(self.node(ref))

    def use_count(self, ref: Node | str, user: Node | str) -> int:
        """How many inputs of ``user`` are ``ref``."""
        return self._users[id(self.node(ref))].get(id(self.node(user)), 0)

    def _users_of(self, node: Node) -> list[Node]:
        by_id = self._by_id
        return [by_id[u] for u in self._users[id(node)]]

    def match(self, pattern: str) -> list[Node]:
        """Nodes matching a MEL pattern (§C.5), in CNTK name order."""
        pat = Pattern(pattern)
        if not pat.has_wildcard:
            found = self.get(pattern)
            return [found] if found is not None else []
        by_name = {n._name: n for n in self._nodes.values()}
        hits = [by_name[n] for n in pat.filter(by_name)]
        hits.sort(key=lambda n: (n.name.lower(), n.name))
        return hits

    # ---- creation -----------------------------------------------------------------------
    def add(
        self,
        name: str,
        op: str,
        inputs: Sequence[Node | str | None] = (),
        *,
        attrs: Mapping[str, Any] | None = None,
        shape: Sequence[int] | None = None,
        dynamic: bool | None = None,
        value: np.ndarray | None = None,
        learning_rate_multiplier: float = 1.0,
        dtype: str = "float32",
        tags: Iterable[str] = (),
        location: SourceLocation | None = None,
        file_fields: Mapping[str, Any] | None = None,
    ) -> Node:
        """Create a node. Attributes not given take the op's defaults; inputs may be None.
        Each of ``tags`` names a group (``feature``, ``label``, ``criterion``,
        ``evaluation``, ``output``, or an alias such as ``criteria``) and the node joins it.

        Raises:
            GraphError: a duplicate name, an unknown input, too many inputs for the op, an
                unknown attribute or an attribute value of the wrong kind, an unknown tag.
            RegistryError: an unknown op.
        """
        key = name.lower()
        nodes = self._nodes
        if not name or key in nodes:
            self._check_new_name(name)  # raises
        if tags:
            tags = self._group_tags(name, tags)
        spec = self.registry.op(op)
        ref = self._ref
        resolved = []
        for i in inputs:
            if i is None or (type(i) is Node and i._net is ref):
                resolved.append(i)
            else:
                resolved.append(self.node(i))
        if value is not None and shape is None:
            shape = value.shape
        node = _fresh(name, spec.name, spec._defaults, shape, dynamic, value,
                      learning_rate_multiplier, dtype, tags, location, file_fields)
        if attrs:
            node._attrs = canonical_attrs(node, spec, attrs)
        hi = spec.arity[1]
        if hi is not None and len(resolved) > hi:
            self._check_arity(node, len(resolved))  # raises
        # the insert and the first link, inlined: this is the hot path of every builder
        me = id(node)
        nodes[key] = node
        self._by_id[me] = node
        users = self._users
        users[me] = {}
        node._net = ref
        if resolved:
            node._inputs = tuple(resolved)
            for new in resolved:
                if new is not None:
                    mine = users[id(new)]
                    mine[me] = mine.get(me, 0) + 1
        for group in tags:
            self._groups[group].setdefault(node, None)
        self._version += 1
        return node

    @staticmethod
    def _group_tags(name: str, tags: Iterable[str]) -> tuple[str, ...]:
        """The groups that ``tags`` name, in order without repeats; GraphError for one that
        names none."""
        if isinstance(tags, str):
            tags = (tags,)
        out: dict[str, None] = {}
        for tag in tags:
            try:
                out[group_name(str(tag))] = None
            except GraphError as exc:
                raise GraphError(exc.message, node=name) from None
        return tuple(out)

    def add_parameter(
        self,
        name: str,
        value: np.ndarray,
        *,
        learning_rate_multiplier: float = 1.0,
        location: SourceLocation | None = None,
    ) -> Node:
        """Create a LearnableParameter holding ``value`` (numpy order)."""
        return self.add(
            name, "LearnableParameter", value=value, shape=tuple(value.shape), dynamic=False,
            learning_rate_multiplier=learning_rate_multiplier, dtype=str(value.dtype),
            location=location,
        )

    def adopt(self, node: Node) -> Node:
        """Take a detached node into this network; its inputs must already be in it."""
        self.adopt_all([node])
        return node

    def adopt_all(self, nodes: Iterable[Node]) -> list[Node]:
        """Take several detached nodes in at once (inputs in this network or among them).

        Attributes are completed with the op defaults and checked. Everything is checked
        before anything changes.

        Raises:
            GraphError: a node already in a network, a duplicate or clashing name, an input
                outside this network and the set, too many inputs, a bad attribute.
        """
        todo = list(dict.fromkeys(nodes))
        if not todo:
            return todo
        incoming = {id(n) for n in todo}
        names: dict[str, Node] = {}
        fixed: list[dict[str, Any]] = []
        for n in todo:
            if n._net is not None:
                raise GraphError(f"node '{n.name}' already belongs to a network", node=n.name)
            if not n._name:
                raise GraphError("a node needs a non-empty name")
            low = n._name.lower()
            other = self._nodes.get(low) or names.get(low)
            if other is not None:
                raise GraphError(f"a node named '{other.name}' already exists in network "
                                 f"'{self.name}'; choose another name", node=n.name)
            names[low] = n
            for i in n._inputs:
                if i is not None and id(i) not in incoming and i._net is not self._ref:
                    raise GraphError(f"input '{i.name}' of '{n.name}' is not in network "
                                     f"'{self.name}'; add it first", node=n.name)
            spec = self.registry.op(n._op)
            self._check_arity(n, len(n._inputs))
            fixed.append(canonical_attrs(n, spec, n._attrs))
        for n, attrs in zip(todo, fixed):
            n._op = self.registry.op(n._op).name
            n._attrs = attrs
            self._insert(n)
        for n in todo:
            ins, n._inputs = n._inputs, ()
            if ins:
                self._link(n, ins)
        return todo

    def _check_new_name(self, name: str) -> None:
        if not name:
            raise GraphError("a node needs a non-empty name")
        existing = self._nodes.get(name.lower())
        if existing is not None:
            raise GraphError(
                f"a node named '{existing.name}' already exists in network '{self.name}'; "
                "choose another name", node=name,
            )

    def _check_arity(self, node: Node, count: int, *, complete: bool = False) -> None:
        spec = self.registry.find_op(node._op)
        if spec is None:
            return
        lo, hi = spec.arity
        if (hi is not None and count > hi) or (complete and count < lo):
            raise GraphError(f"{spec.name} operation '{node.name}' takes {spec.arity_text()} "
                             f"inputs, not {count}", node=node.name)

    def _insert(self, node: Node) -> None:
        self._nodes[node._name.lower()] = node
        self._users[id(node)] = {}
        self._by_id[id(node)] = node
        node._net = self._ref
        self._version += 1

    # ---- edges --------------------------------------------------------------------------
    def _link(self, node: Node, inputs: tuple[Node | None, ...]) -> None:
        """The one edge setter: replace ``node``'s inputs and keep the users maps in step."""
        users = self._users
        me = id(node)
        for old in node._inputs:
            if old is not None:
                mine = users[id(old)]
                count = mine[me] - 1
                if count:
                    mine[me] = count
                else:
                    del mine[me]
        node._inputs = inputs
        for new in inputs:
            if new is not None:
                mine = users[id(new)]
                mine[me] = mine.get(me, 0) + 1
        self._version += 1

    def _resolve_inputs(self, inputs: Sequence[Node | str | None]) -> tuple[Node | None, ...]:
        return _as_inputs([None if i is None else self.node(i) for i in inputs])

    def set_input(self, target: Node | str, index: int, value: Node | str | None) -> None:
        """Set input ``index`` of ``target``; ``index == len(inputs)`` appends (MEL SetInput).

        Raises:
            GraphError: index beyond the current input count or the op's arity, or unknown
                nodes.
        """
        node = self.node(target)
        new = None if value is None else self.node(value)
        inputs = _with_input(node, index, new)
        self._check_arity(node, len(inputs))
        self._link(node, tuple(inputs))

    def set_inputs(self, target: Node | str, inputs: Sequence[Node | str | None], *,
                   complete: bool = False) -> None:
        """Replace all inputs of ``target`` at once.

        Raises:
            GraphError: unknown nodes, more inputs than the op takes, or (with ``complete``)
                fewer than it needs.
        """
        ref = self._ref
        node = target if type(target) is Node and target._net is ref else self.node(target)
        resolved = tuple(inputs)
        for i in resolved:  # inputs already of this network (what loaders pass) need no lookup
            if i is not None and (type(i) is not Node or i._net is not ref):
                resolved = self._resolve_inputs(resolved)
                break
        self._check_arity(node, len(resolved), complete=complete)
        self._link(node, resolved)

    def replace_all_uses_with(
        self, old: Node | str, new: Node | str, exclude: Iterable[Node | str] = ()
    ) -> list[Node]:
        """Make every user of ``old`` (except ``exclude``) use ``new``; returns those changed."""
        old_node, new_node = self.node(old), self.node(new)
        skip = {self.node(e) for e in exclude}
        changed = []
        for user in self._users_of(old_node):
            if user in skip:
                continue
            self._link(user, tuple(new_node if i is old_node else i for i in user._inputs))
            changed.append(user)
        return changed

    # ---- fields and attributes ------------------------------------------------------------
    def update(
        self,
        ref: Node | str,
        *,
        value: Any = UNSET,
        shape: Any = UNSET,
        dynamic: Any = UNSET,
        learning_rate_multiplier: Any = UNSET,
        dtype: Any = UNSET,
        tags: Any = UNSET,
        location: Any = UNSET,
        file_fields: Any = UNSET,
    ) -> Node:
        """Change node fields; the version is bumped when something changed.

        A new ``value`` (a numpy array) replaces the old one; compiled code made before the
        change refuses to run, so an evaluator recompiles and sees the new weights.

        Raises:
            GraphError: an unknown node or a value that is not an array.
        """
        node = self.node(ref)
        fields = {"value": value, "shape": shape, "dynamic": dynamic,
                  "learning_rate_multiplier": learning_rate_multiplier, "dtype": dtype,
                  "tags": tags, "location": location, "file_fields": file_fields}
        if _apply_update(node, fields):
            self._version += 1
        return node

    def set_attrs(self, ref: Node | str, **attrs: Any) -> Node:
        """Change op attributes (checked against the op's AttrSpecs and coerced to their kind).

        Raises:
            GraphError: an unknown attribute or a value of the wrong kind.
        """
        node = self.node(ref)
        spec = self.registry.op(node._op)
        new = checked_attrs(node, spec, attrs)
        if any(node._attrs.get(k, UNSET) != v for k, v in new.items()):
            node._attrs = {**node._attrs, **new}  # never in place: dicts may be shared
            self._version += 1
        return node

    # ---- removal and renaming ----------------------------------------------------------
    def remove(self, ref: Node | str, *, detach_users: str = "refuse") -> None:
        """Remove a node.

        Args:
            detach_users: what to do with nodes that still use it: ``refuse`` (raise
                GraphError listing them) or ``all`` (set every such input to None).
        """
        self.remove_many([ref], detach_users=detach_users)

    def remove_many(self, refs: Iterable[Node | str], *, detach_users: str = "refuse") -> None:
        """Remove several nodes; all are checked before any is removed."""
        if detach_users not in ("refuse", "all"):
            raise GraphError(f"detach_users must be 'refuse' or 'all', not {detach_users!r}")
        nodes = list(dict.fromkeys(self.node(r) for r in refs))
        doomed = set(nodes)
        if detach_users == "refuse":
            for n in nodes:
                outside = [u.name for u in self._users_of(n) if u not in doomed]
                if outside:
                    raise GraphError(
                        f"cannot remove '{n.name}': still used by {', '.join(sorted(outside))}; "
                        "rewire those nodes first", node=n.name,
                    )
        for n in nodes:
            for user in self._users_of(n):
                if user not in doomed:
                    self._link(user, tuple(None if i is n else i for i in user._inputs))
        for n in nodes:
            self._link(n, ())
        for n in nodes:
            for members in self._groups.values():
                members.pop(n, None)
            del self._nodes[n._name.lower()]
            del self._users[id(n)]
            del self._by_id[id(n)]
            n._net = None
        self._version += 1

    def rename(self, ref: Node | str, new_name: str) -> Node:
        """Rename a node; inputs, users and groups follow it.

        Raises GraphError if ``new_name`` exists (case-insensitively, as CNTK: ``a`` -> ``A``
        fails unless it is the same node).
        """
        node = self.node(ref)
        existing = self._nodes.get(new_name.lower())
        if existing is not None and existing is not node:
            raise GraphError(f"cannot rename '{node.name}': a node named '{existing.name}' "
                             "already exists", node=node.name)
        if not new_name:
            raise GraphError("a node needs a non-empty name", node=node.name)
        # O(1): the renamed node moves to the end of the insertion order
        del self._nodes[node._name.lower()]
        node._name = new_name
        self._nodes[new_name.lower()] = node
        self._version += 1
        return node

    def rename_many(self, mapping: Mapping[str, str]) -> None:
        """Rename several nodes at once (all checked first); order-independent."""
        nodes = {self.node(old).name: new for old, new in mapping.items()}
        final = {k: n._name for k, n in self._nodes.items()}
        for old in nodes:
            final.pop(old.lower(), None)
        for old, new in nodes.items():
            if not new:
                raise GraphError("a node needs a non-empty name", node=old)
            if new.lower() in final:
                raise GraphError(f"cannot rename '{old}' to '{new}': that name is taken", node=old)
            final[new.lower()] = new
        objs = {old: self._nodes[old.lower()] for old in nodes}
        for old, node in objs.items():
            node._name = nodes[old]
        self._nodes = {n._name.lower(): n for n in self._nodes.values()}
        self._version += 1

    # ---- groups ---------------------------------------------------------------------------
    def group(self, name: str) -> list[Node]:
        """Members of a group: ``feature``, ``label``, ``criterion``, ``evaluation``, ``output``."""
        return list(self._groups[group_name(name)])

    def groups(self) -> dict[str, list[Node]]:
        """Every group (feature, label, criterion, evaluation, output) with its members."""
        return {g: list(m) for g, m in self._groups.items()}

    def add_to_group(self, group: str, ref: Node | str) -> None:
        """Add a node to a group (no effect if it is already a member)."""
        members = self._groups[group_name(group)]
        node = self.node(ref)
        if node not in members:
            members[node] = None
            self._version += 1

    def remove_from_group(self, group: str, ref: Node | str) -> None:
        """Take a node out of a group (the node stays in the network)."""
        members = self._groups[group_name(group)]
        node = self.node(ref)
        if node in members:
            del members[node]
            self._version += 1

    def groups_of(self, ref: Node | str) -> list[str]:
        """The groups a node is in."""
        node = self.node(ref)
        return [g for g, members in self._groups.items() if node in members]

    # ---- whole-network operations ----------------------------------------------------------
    def copy(self, name: str | None = None, *, share_values: bool = False) -> Network:
        """A copy (iterative, so any depth works); values copied once unless shared."""
        from netsurgeon.graph._edit import copy_network

        return copy_network(self, name, share_values=share_values)

    def lint(self) -> None:
        """Check internal consistency and attributes against the registry. Raises GraphError."""
        from netsurgeon.graph._lint import lint

        lint(self)

    def validate(self, registry: OpRegistry | None = None) -> None:
        """Check arity, inputs and cycles and infer every shape; raises ValidationError.

        Values are not touched: parameters whose shape was completed here get their values
        from :class:`~netsurgeon.graph.passes.InitializeParameters` (see ``prepare``).
        """
        from netsurgeon.graph.passes import CheckStructure, InferShapes

        reg = registry or self.registry
        CheckStructure(reg)(self)
        InferShapes(reg)(self)

    def __repr__(self) -> str:
        return f"<Network {self.name!r}: {len(self._nodes)} nodes>"
