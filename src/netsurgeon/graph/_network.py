"""The mutable network IR: uniquely named nodes, ordered inputs, node groups.

Names are unique case-insensitively (CNTK compared them so); lookups try the exact name
first. Every edge change goes through ``_set_inputs``, which keeps the users maps in step.
Multi-node edits check everything first and then mutate, so a failed edit changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from netsurgeon.errors import GraphError, SourceLocation, close_matches
from netsurgeon.graph._node import GROUPS, Node
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
        net.add_to_group("output", h)
    """

    def __init__(self, name: str = "model", registry: "OpRegistry | None" = None) -> None:
        self.name = name
        self._nodes: dict[str, Node] = {}
        self._ci: dict[str, Node] = {}
        self._groups: dict[str, dict[Node, None]] = {g: {} for g in GROUPS}
        self.version = 0  # bumped on every edit; caches compare it
        self.metadata: dict[str, Any] = {}
        self.registry: OpRegistry = registry if registry is not None else OPS

    # ---- basic access -------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(list(self._nodes.values()))

    def __contains__(self, name: object) -> bool:
        if isinstance(name, Node):
            return self._nodes.get(name.name) is name
        return isinstance(name, str) and self.get(name) is not None

    @property
    def nodes(self) -> list[Node]:
        """Nodes in insertion order."""
        return list(self._nodes.values())

    def names(self) -> list[str]:
        return list(self._nodes)

    def sorted_nodes(self) -> list[Node]:
        """Nodes in CNTK's name order (case-insensitive), as Dump prints them."""
        return sorted(self._nodes.values(), key=lambda n: (n.name.lower(), n.name))

    def get(self, name: str) -> Node | None:
        """The node called ``name`` (exact, then case-insensitive), or None."""
        found = self._nodes.get(name)
        if found is None:
            found = self._ci.get(name.lower())
        return found

    def node(self, ref: "Node | str") -> Node:
        """Resolve a node or name. Raises GraphError listing close matches."""
        if isinstance(ref, Node):
            if self._nodes.get(ref.name) is not ref:
                raise GraphError(f"node '{ref.name}' is not in network '{self.name}'", node=ref.name)
            return ref
        found = self.get(ref)
        if found is None:
            raise GraphError(
                f"no node named '{ref}' in network '{self.name}'",
                hint=close_matches(ref, self._nodes),
            )
        return found

    def match(self, pattern: str) -> list[Node]:
        """Nodes matching a MEL pattern (§C.5), in CNTK name order."""
        pat = Pattern(pattern)
        if not pat.has_wildcard:
            found = self.get(pattern)
            return [found] if found is not None else []
        hits = [self._nodes[n] for n in pat.filter(self._nodes)]
        hits.sort(key=lambda n: (n.name.lower(), n.name))
        return hits

    # ---- creation -----------------------------------------------------------------------
    def add(
        self,
        name: str,
        op: str,
        inputs: Sequence["Node | str | None"] = (),
        *,
        attrs: Mapping[str, Any] | None = None,
        shape: Sequence[int] | None = None,
        value: "np.ndarray | None" = None,
        learning_rate_multiplier: float = 1.0,
        dtype: str = "float32",
        tags: Iterable[str] = (),
        location: SourceLocation | None = None,
    ) -> Node:
        """Create a node. Raises GraphError on a duplicate name or unknown op/input.

        Attributes not given take the op's defaults. Inputs may be None (not yet connected).
        """
        self._check_new_name(name)
        spec = self.registry.op(op)
        resolved = [None if i is None else self.node(i) for i in inputs]
        full_attrs = spec.default_attrs()
        if attrs:
            full_attrs.update(attrs)
        if value is not None and shape is None:
            shape = tuple(value.shape)
        node = Node(
            name, spec.name, attrs=full_attrs, shape=tuple(shape) if shape is not None else None,
            value=value, learning_rate_multiplier=learning_rate_multiplier, dtype=dtype,
            tags=set(tags), location=location,
        )
        self._insert(node)
        self._set_inputs(node, resolved)
        return node

    def add_parameter(
        self,
        name: str,
        value: "np.ndarray",
        *,
        learning_rate_multiplier: float = 1.0,
        location: SourceLocation | None = None,
    ) -> Node:
        """Create a LearnableParameter holding ``value`` (numpy order)."""
        return self.add(
            name, "LearnableParameter", value=value, shape=tuple(value.shape),
            learning_rate_multiplier=learning_rate_multiplier, dtype=str(value.dtype),
            location=location,
        )

    def adopt(self, node: Node) -> Node:
        """Insert a detached node object (no inputs yet); used by copiers and readers."""
        if node._network is not None:
            raise GraphError(f"node '{node.name}' already belongs to a network", node=node.name)
        self._check_new_name(node.name)
        self._insert(node)
        return node

    def _check_new_name(self, name: str) -> None:
        if not name:
            raise GraphError("a node needs a non-empty name")
        if name.lower() in self._ci:
            raise GraphError(
                f"a node named '{self._ci[name.lower()].name}' already exists in network "
                f"'{self.name}'; choose another name", node=name,
            )

    def _insert(self, node: Node) -> None:
        self._nodes[node.name] = node
        self._ci[node.name.lower()] = node
        node._network = self
        self.version += 1

    # ---- edges --------------------------------------------------------------------------
    def _set_inputs(self, node: Node, inputs: Sequence[Node | None]) -> None:
        for old in node._inputs:
            if old is not None:
                count = old._users.get(node, 0) - 1
                if count <= 0:
                    old._users.pop(node, None)
                else:
                    old._users[node] = count
        node._inputs = tuple(inputs)
        for new in node._inputs:
            if new is not None:
                new._users[node] = new._users.get(node, 0) + 1
        self.version += 1

    def set_input(self, target: "Node | str", index: int, value: "Node | str | None") -> None:
        """Set input ``index`` of ``target``; ``index == len(inputs)`` appends (MEL SetInput).

        Raises:
            GraphError: index beyond the current input count, or unknown nodes.
        """
        node = self.node(target)
        new = None if value is None else self.node(value)
        inputs = list(node._inputs)
        if index < 0 or index > len(inputs):
            raise GraphError(
                f"input index {index} out of range: '{node.name}' has {len(inputs)} inputs; "
                "set the inputs with lower indices first", node=node.name,
            )
        if index == len(inputs):
            inputs.append(new)
        else:
            inputs[index] = new
        self._set_inputs(node, inputs)

    def set_inputs(self, target: "Node | str", inputs: Sequence["Node | str | None"]) -> None:
        """Replace all inputs of ``target`` at once."""
        node = self.node(target)
        self._set_inputs(node, [None if i is None else self.node(i) for i in inputs])

    def replace_all_uses_with(
        self, old: "Node | str", new: "Node | str", exclude: Iterable["Node | str"] = ()
    ) -> list[Node]:
        """Make every user of ``old`` (except ``exclude``) use ``new``; returns the users changed."""
        old_node, new_node = self.node(old), self.node(new)
        skip = {self.node(e) for e in exclude}
        changed = []
        for user in list(old_node._users):
            if user in skip:
                continue
            self._set_inputs(user, [new_node if i is old_node else i for i in user._inputs])
            changed.append(user)
        return changed

    # ---- removal and renaming ----------------------------------------------------------
    def remove(self, ref: "Node | str", *, detach_users: str = "refuse") -> None:
        """Remove a node.

        Args:
            detach_users: what to do with nodes that still use it: ``refuse`` (raise
                GraphError listing them) or ``all`` (set every such input to None).
                ``first`` is accepted for MEL and behaves as ``all``: CNTK nulled only each
                user's first reference and left a second one dangling on a deleted node.
        """
        self.remove_many([ref], detach_users=detach_users)

    def remove_many(self, refs: Iterable["Node | str"], *, detach_users: str = "refuse") -> None:
        """Remove several nodes; all are checked before any is removed."""
        nodes = []
        seen: set[int] = set()
        for r in refs:
            n = self.node(r)
            if id(n) not in seen:
                seen.add(id(n))
                nodes.append(n)
        doomed = set(nodes)
        if detach_users == "refuse":
            for n in nodes:
                outside = [u.name for u in n._users if u not in doomed]
                if outside:
                    raise GraphError(
                        f"cannot remove '{n.name}': still used by {', '.join(sorted(outside))}; "
                        "rewire those nodes first", node=n.name,
                    )
        elif detach_users not in ("all", "first"):
            raise ValueError(f"detach_users must be refuse, all or first, not {detach_users!r}")
        for n in nodes:
            for user in list(n._users):
                if user in doomed and detach_users == "refuse":
                    continue
                self._set_inputs(user, [None if i is n else i for i in user._inputs])
        for n in nodes:
            self._set_inputs(n, [])
            for members in self._groups.values():
                members.pop(n, None)
            del self._nodes[n.name]
            del self._ci[n.name.lower()]
            n._network = None
        self.version += 1

    def rename(self, ref: "Node | str", new_name: str) -> Node:
        """Rename a node; inputs, users and groups follow it.

        Raises GraphError if ``new_name`` exists (case-insensitively, as CNTK: ``a`` -> ``A``
        fails unless it is the same node).
        """
        node = self.node(ref)
        existing = self._ci.get(new_name.lower())
        if existing is not None and existing is not node:
            raise GraphError(f"cannot rename '{node.name}': a node named '{existing.name}' already exists",
                             node=node.name)
        if not new_name:
            raise GraphError("a node needs a non-empty name", node=node.name)
        # O(1): the renamed node moves to the end of the insertion order
        del self._nodes[node.name]
        del self._ci[node.name.lower()]
        node.name = new_name
        self._nodes[new_name] = node
        self._ci[new_name.lower()] = node
        self.version += 1
        return node

    def rename_many(self, mapping: Mapping[str, str]) -> None:
        """Rename several nodes at once (all checked first); order-independent."""
        nodes = {self.node(old).name: new for old, new in mapping.items()}
        final = {k.lower(): k for k in self._nodes}
        for old in nodes:
            final.pop(old.lower(), None)
        for old, new in nodes.items():
            if new.lower() in final:
                raise GraphError(f"cannot rename '{old}' to '{new}': that name is taken", node=old)
            final[new.lower()] = new
        objs = {old: self._nodes[old] for old in nodes}
        for old, node in objs.items():
            node.name = nodes[old]
        self._nodes = {n.name: n for n in self._nodes.values()}
        self._ci = {k.lower(): n for k, n in self._nodes.items()}
        self.version += 1

    # ---- groups ---------------------------------------------------------------------------
    def group(self, name: str) -> list[Node]:
        """Members of a group (``feature``, ``label``, ``criterion``, ``evaluation``, ``output``)."""
        return list(self._groups[group_name(name)])

    def groups(self) -> dict[str, list[Node]]:
        return {g: list(m) for g, m in self._groups.items()}

    def add_to_group(self, group: str, ref: "Node | str") -> None:
        """Add a node to a group (no effect if it is already a member)."""
        self._groups[group_name(group)].setdefault(self.node(ref), None)
        self.version += 1

    def remove_from_group(self, group: str, ref: "Node | str") -> None:
        self._groups[group_name(group)].pop(self.node(ref), None)
        self.version += 1

    def groups_of(self, ref: "Node | str") -> list[str]:
        node = self.node(ref)
        return [g for g, members in self._groups.items() if node in members]

    # ---- whole-network operations ----------------------------------------------------------
    def copy(self, name: str | None = None) -> "Network":
        """A deep copy (values copied, iterative so any depth works)."""
        from netsurgeon.graph._copy import copy_network

        return copy_network(self, name)

    def lint(self) -> None:
        """Check internal consistency: names, ownership, users against inputs. Raises GraphError."""
        from netsurgeon.graph._lint import lint

        lint(self)

    def validate(self, registry: "OpRegistry | None" = None) -> None:
        """Infer shapes and check arity, inputs and cycles; raises ValidationError."""
        from netsurgeon.graph._validate import validate

        validate(self, registry or self.registry)

    def __repr__(self) -> str:
        return f"<Network {self.name!r}: {len(self._nodes)} nodes>"
