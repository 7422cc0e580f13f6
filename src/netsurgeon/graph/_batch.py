"""Adding many nodes to a network in one step: :class:`NodeBatch`, for file readers.

NOTE: why a batch and not ``Network.add`` per node. A reader of a model file makes every node
from parts it has decoded itself: an op the registry resolved, attribute values of their
canonical types, inputs that are nodes it made. ``Network.add`` pays per node for what such a
caller cannot get wrong (keyword parsing, input resolution by name, a registry lookup, the
index and users maps updated one node at a time), which is most of the cost of loading a small
model. A batch checks only what the IR's invariants need, as each node comes (so an error is
still raised at the record that causes it): a non-empty name unique case-insensitively among
the network's nodes and the batch's, an op of the network's registry, attributes completed and
canonical, inputs that are nodes of the batch or of the network, no more than the op takes.
:meth:`NodeBatch.commit` then inserts every node, its edges and its group memberships at
once. Until then the nodes are detached (``node.network`` is None) and the network is
unchanged; a network edited meanwhile refuses the commit (the checks no longer hold).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from netsurgeon.errors import GraphError
from netsurgeon.graph._node import Node, _exact_kinds, _fresh, canonical_attrs

if TYPE_CHECKING:
    import numpy as np

    from netsurgeon.graph._network import Network
    from netsurgeon.ops import OpSpec

__all__ = ["NodeBatch", "canonical_kinds"]



class NodeBatch:
    """Nodes made for ``net`` and checked one by one, inserted by :meth:`commit`.

    Example::

        batch = NodeBatch(net)
        x = batch.add("x", net.registry.op("InputValue"), shape=(3,))
        y = batch.add("y", net.registry.op("Sigmoid"))
        batch.set_inputs(y, (x,))
        batch.commit()  # both nodes and the edge are in net now
    """

    __slots__ = ("_net", "_keys", "_ids", "_specs", "_order", "_linked", "_groups", "_done",
                 "_version")

    def __init__(self, net: Network) -> None:
        self._net = net
        self._keys: dict[str, Node] = {}  # lower-case name -> node, in the order added
        self._ids: dict[int, OpSpec] = {}  # id(node) -> its op, for the input checks
        self._specs: set[int] = set()  # ids of the OpSpecs found to be the registry's
        self._order: list[Node] = []
        self._linked: list[Node] = []  # the nodes with inputs
        self._groups: dict[str, dict[Node, None]] = {}  # group -> members joining it
        self._done = False
        self._version = net._version  # the network must not change until the commit

    def __len__(self) -> int:
        return len(self._order)

    def add(self, name: str, spec: OpSpec, attrs: Mapping[str, Any] | None = None,
            shape: Sequence[int] | None = None, value: np.ndarray | None = None,
            learning_rate_multiplier: float = 1.0, dtype: str = "float32",
            file_fields: Mapping[str, Any] | None = None, *, canonical: bool = False) -> Node:
        """A new node of op ``spec`` (an OpSpec of the network's registry) without inputs.

        Attributes not given take the op's defaults; ``shape`` defaults to the value's.
        ``canonical`` is the caller's guarantee that every key of ``attrs`` is an attribute
        of ``spec`` whose value has exactly the type :func:`canonical_kinds` gives for it
        (what a decoder checked once for all the nodes it makes): they are then taken as
        they are, as the check would take them, without the check.

        Raises:
            GraphError: an empty or taken name (as ``Network.add`` words it), an op that is
                not the registry's, an unknown attribute or one of the wrong kind.
        """
        key = name.lower()
        if not name or key in self._keys or key in self._net._nodes or self._done:
            self._name_taken(name)  # raises
        if id(spec) not in self._specs:
            self._check_spec(spec)
        if value is not None and shape is None:
            shape = value.shape
        node = _fresh(name, spec.name, spec._defaults, shape, None, value,
                      learning_rate_multiplier, dtype, (), None, file_fields)
        if attrs:
            node._attrs = {**spec._defaults, **attrs} if canonical else \
                canonical_attrs(node, spec, attrs)
        self._keys[key] = node
        self._ids[id(node)] = spec
        self._order.append(node)
        return node

    def get(self, name: str) -> Node | None:
        """The node called ``name`` (case-insensitively) in the batch or the network."""
        key = name.lower()
        found = self._keys.get(key)
        return found if found is not None else self._net._nodes.get(key)

    def set_inputs(self, node: Node, inputs: Sequence[Node | None]) -> None:
        """Give ``node`` (of this batch) its inputs: nodes of the batch or the network, or None.

        Raises:
            GraphError: a node not of this batch, an input of neither, more inputs than the op
                takes.
        """
        ids = self._ids
        spec = ids.get(id(node))
        if spec is None or self._done:
            raise GraphError(f"node '{node.name}' is not waiting in this batch", node=node.name)
        ref = self._net._ref
        resolved = tuple(inputs)
        for i in resolved:
            if i is not None and id(i) not in ids and (type(i) is not Node or i._net is not ref):
                raise GraphError(f"input of '{node.name}' is neither in the batch nor in network "
                                 f"'{self._net.name}'", node=node.name)
        hi = spec.arity[1]
        if hi is not None and len(resolved) > hi:
            raise GraphError(f"{spec.name} operation '{node.name}' takes {spec.arity_text()} "
                             f"inputs, not {len(resolved)}", node=node.name)
        if resolved and not node._inputs:
            self._linked.append(node)
        elif node._inputs and not resolved:
            self._linked.remove(node)
        node._inputs = resolved

    def add_to_group(self, group: str, node: Node) -> None:
        """Make ``node`` (of the batch or the network) a member of ``group`` (a canonical
        group name: ``feature``, ``label``, ``criterion``, ``evaluation``, ``output``) when
        the batch is committed; a repeat is no change.

        Raises:
            GraphError: an unknown group, a node of neither the batch nor the network.
        """
        if self._done:
            raise GraphError("this batch was committed already")
        members = self._groups.get(group)
        if members is None:
            if group not in self._net._groups:
                raise GraphError(f"'{group}' is not a canonical group name (one of "
                                 f"{', '.join(self._net._groups)})")
            members = self._groups[group] = {}
        if id(node) not in self._ids and node._net is not self._net._ref:
            raise GraphError(f"node '{node.name}' is neither in the batch nor in network "
                             f"'{self._net.name}'", node=node.name)
        members[node] = None

    def commit(self) -> list[Node]:
        """Insert every node, with its inputs, into the network (in the order added), then
        the group memberships (in the order joined)."""
        net = self._net
        if self._done:
            raise GraphError("this batch was committed already")
        if net._version != self._version:  # its checks no longer hold
            raise GraphError(f"network '{net.name}' changed while the batch was open; "
                             "add the nodes again")
        self._done = True
        ref = net._ref
        nodes, by_id, users = net._nodes, net._by_id, net._users
        order = self._order
        for key, node in self._keys.items():
            nodes[key] = node
            me = id(node)
            by_id[me] = node
            users[me] = {}
            node._net = ref
        linked = self._linked
        for node in linked:
            me = id(node)
            for i in node._inputs:
                if i is not None:
                    mine = users[id(i)]
                    mine[me] = mine.get(me, 0) + 1
        joined = 0
        for group, members in self._groups.items():
            into = net._groups[group]
            for node in members:
                if node not in into:
                    into[node] = None
                    joined += 1
        # what an add per node, a link per node with inputs and a join per new member bump
        net._version += len(order) + len(linked) + joined
        return order

    # ---- errors ----------------------------------------------------------------------------
    def _name_taken(self, name: str) -> None:
        if self._done:
            raise GraphError("this batch was committed already")
        if not name:
            raise GraphError("a node needs a non-empty name")
        existing = self.get(name)
        assert existing is not None
        raise GraphError(f"a node named '{existing.name}' already exists in network "
                         f"'{self._net.name}'; choose another name", node=name)

    def _check_spec(self, spec: OpSpec) -> None:
        found = self._net.registry.find_op(spec.name)
        if found is not spec:
            raise GraphError(f"op {spec.name!r} is not the one network '{self._net.name}' has "
                             "in its registry")
        self._specs.add(id(spec))


def canonical_kinds(spec: OpSpec) -> Mapping[str, Any]:
    """``spec``'s attributes -> the exact type of their canonical values: ``int``, ``float``,
    ``bool`` or ``str``, or ``(item type,)`` for a tuple of them; ``any`` attributes are not
    listed (their values are always checked). What ``NodeBatch.add(canonical=True)`` relies
    on."""
    return _exact_kinds(spec)
