"""A node of a :class:`~netsurgeon.graph.Network`.

NOTE: why every field is read-only. A network caches what it derives from its nodes: the name
index, the users of every node, and the edit counter that compiled code compares before it
runs. A node that belongs to a network therefore changes only through that network
(``net.update``, ``net.set_attrs``, ``net.set_inputs``, ``net.rename``), or through the node
methods of the same names, which forward to it. A *detached* node (no network yet, as
BrainScript builds them) has nothing to keep in step, so the same methods change it directly.

NOTE: why no back references. A node keeps its inputs, never its users, and only a weak
reference to its network: the network holds the users maps. So nothing forms a reference
cycle and a dropped network (with its weights) is freed at once by reference counting.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from netsurgeon._sentinel import Sentinel
from netsurgeon.errors import GraphError, SourceLocation

if TYPE_CHECKING:
    import numpy as np

    from netsurgeon.graph._network import Network
    from netsurgeon.ops import OpRegistry

__all__ = ["Node", "GROUPS", "UNSET", "detached"]

#: The five node groups a network keeps, in CNTK's order.
GROUPS: tuple[str, ...] = ("feature", "label", "criterion", "evaluation", "output")


#: marks an :meth:`Node.update` field that was not given
UNSET: Any = Sentinel("UNSET")

_NO_FIELDS: dict[str, Any] = {}
_NO_TAGS: frozenset[str] = frozenset()  # shared: an empty frozenset per node costs the collector

#: the fields :meth:`Network.update` may change, besides attributes, inputs and the name
FIELDS = ("value", "shape", "dynamic", "learning_rate_multiplier", "dtype", "tags", "location",
          "file_fields")


class Node:
    """One named operation in a network. Every field is read-only; see the module notes.

    Attributes:
        name: unique (case-insensitively) within its network.
        op: the registry's canonical op name (``Times``).
        inputs: the ordered inputs; a missing input is None.
        attrs: the op's attributes (read-only mapping; every attribute of ``OpSpec.attrs``
            once the node is in a network, defaults filled in, values in canonical form).
        shape: output sample shape in numpy order, or None before shape inference.
        dynamic: whether the output carries the batch/sequence axis (None = not inferred).
        tags: tag texts given to the node (``criterion``...); group membership is the
            network's, tags are copied with the node, groups are not (as in CNTK).
        value: parameter or precomputed tensor (numpy), else None. Replace it with
            ``net.update(node, value=...)``; writing into the array in place is seen by code
            compiled before only where that code shares the array's memory.
        learning_rate_multiplier: 0 freezes a parameter.
        dtype: element type name (``float32``, ``float64``, ``float16``).
        location: where the node was defined in a source file, if known.
        file_fields: what a file format stored that is not an op attribute (a matrix name,
            the legacy spelling of the op, header words), kept for byte-identical round
            trips; keys are ``<format layer>.<field>`` (``cntk_v1.matrix_name``).
    """

    __slots__ = ("_name", "_op", "_inputs", "_attrs", "_shape", "_dynamic", "_tags", "_value",
                 "_lrm", "_dtype", "_location", "_file_fields", "_net", "__weakref__")

    def __init__(
        self,
        name: str,
        op: str,
        inputs: Sequence[Node | None] = (),
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
    ) -> None:
        """A detached node: attributes are kept as given until a network adopts it (use
        :func:`detached` for one whose attributes are checked and completed at once)."""
        self._name = name
        self._op = op
        self._inputs: tuple[Node | None, ...] = _as_inputs(inputs) if inputs else ()
        self._attrs: dict[str, Any] = dict(attrs) if attrs else {}
        self._shape = tuple(int(d) for d in shape) if shape is not None else None
        self._dynamic = dynamic
        self._tags: frozenset[str] = frozenset(tags) if tags else _NO_TAGS
        self._value = value
        self._lrm = float(learning_rate_multiplier)
        self._dtype = dtype
        self._location = location
        # None when empty: most nodes have none, and a dict per node costs the collector
        self._file_fields: dict[str, Any] | None = dict(file_fields) if file_fields else None
        self._net: weakref.ref[Network] | None = None

    # ---- read-only fields ---------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def op(self) -> str:
        return self._op

    @property
    def inputs(self) -> tuple[Node | None, ...]:
        """The ordered inputs; a missing input is None."""
        return self._inputs

    @property
    def attrs(self) -> Mapping[str, Any]:
        """The op attributes (read-only; change them with ``set_attrs``)."""
        return MappingProxyType(self._attrs)

    @property
    def shape(self) -> tuple[int, ...] | None:
        return self._shape

    @property
    def dynamic(self) -> bool | None:
        return self._dynamic

    @property
    def tags(self) -> frozenset[str]:
        return self._tags

    @property
    def value(self) -> np.ndarray | None:
        return self._value

    @property
    def learning_rate_multiplier(self) -> float:
        return self._lrm

    @property
    def dtype(self) -> str:
        return self._dtype

    @property
    def location(self) -> SourceLocation | None:
        return self._location

    @property
    def file_fields(self) -> Mapping[str, Any]:
        """File-format fields that are not op attributes (read-only)."""
        return MappingProxyType(self._file_fields or _NO_FIELDS)

    @property
    def network(self) -> Network | None:
        """The network this node belongs to, or None for a detached node."""
        return self._net() if self._net is not None else None

    @property
    def users(self) -> list[Node]:
        """Nodes of the same network that take this node as an input, in no particular order
        (always empty for a detached node)."""
        net = self.network
        return net._users_of(self) if net is not None else []

    @property
    def needs_gradient(self) -> bool:
        """CNTK's NeedsGradient: true when the learning-rate multiplier is above 0."""
        return self._lrm > 0

    # ---- changes (forwarded to the network when there is one) --------------------------------
    def update(self, **fields: Any) -> Node:
        """Change fields (``value``, ``shape``, ``dynamic``, ``learning_rate_multiplier``,
        ``dtype``, ``tags``, ``location``, ``file_fields``); see :meth:`Network.update`."""
        net = self.network
        if net is not None:
            net.update(self, **fields)
        else:
            _apply_update(self, fields)
        return self

    def set_attrs(self, **attrs: Any) -> Node:
        """Change op attributes; see :meth:`Network.set_attrs`. A detached node checks them
        against the shared registry when it knows the op."""
        net = self.network
        if net is not None:
            net.set_attrs(self, **attrs)
            return self
        from netsurgeon.ops import OPS

        spec = OPS.find_op(self._op)
        # a new dict, never an update in place: nodes may share their op's default dict
        self._attrs = {**self._attrs, **(checked_attrs(self, spec, attrs) if spec else attrs)}
        return self

    def set_inputs(self, inputs: Sequence[Node | None]) -> Node:
        """Replace all inputs; see :meth:`Network.set_inputs`."""
        net = self.network
        if net is not None:
            net.set_inputs(self, inputs)
        else:
            self._inputs = _as_inputs(inputs)
        return self

    def set_input(self, index: int, value: Node | None) -> Node:
        """Set input ``index``; ``index == len(inputs)`` appends. See :meth:`Network.set_input`."""
        net = self.network
        if net is not None:
            net.set_input(self, index, value)
        else:
            self._inputs = _as_inputs(_with_input(self, index, value))
        return self

    def replace_input_with(self, old: Node, new: Node | None) -> int:
        """Make every input that is ``old`` be ``new``; returns how many were replaced."""
        count = sum(1 for i in self._inputs if i is old)
        if count:
            self.set_inputs([new if i is old else i for i in self._inputs])
        return count

    def rename(self, new_name: str) -> Node:
        """Rename the node; see :meth:`Network.rename`."""
        net = self.network
        if net is not None:
            net.rename(self, new_name)
        else:
            if not new_name:
                raise GraphError("a node needs a non-empty name", node=self._name)
            self._name = new_name
        return self

    def __repr__(self) -> str:
        ins = ", ".join("NULL" if i is None else i._name for i in self._inputs)
        return f"<Node {self._name}={self._op}({ins})>"


def detached(
    name: str,
    op: str,
    inputs: Sequence[Node | None] = (),
    *,
    registry: OpRegistry | None = None,
    attrs: Mapping[str, Any] | None = None,
    **fields: Any,
) -> Node:
    """A detached node whose op is resolved and attributes completed and checked now.

    Raises:
        RegistryError: unknown op. GraphError: unknown attribute or a value of the wrong kind.
    """
    from netsurgeon.ops import OPS

    spec = (registry or OPS).op(op)
    node = Node(name, spec.name, inputs, **fields)
    node._attrs = canonical_attrs(node, spec, attrs)
    return node


# ---- helpers the graph package shares (private to it) -------------------------------------------
def _fresh(name: str, op: str, attrs: dict[str, Any], shape: Sequence[int] | None,
           dynamic: bool | None, value: Any, lrm: float, dtype: str, tags: Iterable[str],
           location: SourceLocation | None, file_fields: Mapping[str, Any] | None) -> Node:
    """A node without inputs from already-checked parts (``Network.add``'s fast path)."""
    node = Node.__new__(Node)
    node._name = name
    node._op = op
    node._inputs = ()
    node._attrs = attrs
    node._shape = tuple(map(int, shape)) if shape is not None else None
    node._dynamic = dynamic
    node._tags = frozenset(tags) if tags else _NO_TAGS
    node._value = value
    node._lrm = float(lrm)
    node._dtype = dtype
    node._location = location
    node._file_fields = dict(file_fields) if file_fields else None
    node._net = None
    return node


def _as_inputs(inputs: Sequence[Node | None]) -> tuple[Node | None, ...]:
    out = tuple(inputs)
    for i in out:
        if i is not None and not isinstance(i, Node):
            raise GraphError(f"an input must be a Node or None, not {type(i).__name__}")
    return out


def _with_input(node: Node, index: int, value: Node | None) -> list[Node | None]:
    inputs = list(node._inputs)
    if index < 0 or index > len(inputs):
        raise GraphError(f"input index {index} out of range: '{node._name}' has {len(inputs)} "
                         "inputs; set the inputs with lower indices first", node=node._name)
    if index == len(inputs):
        inputs.append(value)
    else:
        inputs[index] = value
    return inputs


def canonical_attrs(node: Node, spec: Any, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """``spec``'s defaults updated with ``given``, coerced; errors name the node.

    Without ``given`` the result is the op's shared default dict itself (no copy): attribute
    changes always replace a node's dict, never update it in place. Values that already have
    their canonical type (an ``int`` for an ``int`` attribute, a tuple of floats for
    ``floats``) are taken as they are, so readers of files pay no coercion per node.
    """
    from netsurgeon.errors import ArgumentError

    if not given:
        return spec._defaults
    exact = _exact_kinds(spec)
    out = dict(spec._defaults)
    for key, value in given.items():
        want = exact.get(key)
        t = type(value)
        if t is not want:
            if t is not tuple or type(want) is not tuple:
                break
            item = want[0]
            for v in value:
                if type(v) is not item:
                    break
            else:
                out[key] = value
                continue
            break
        out[key] = value
    else:
        return out  # every value already canonical: what coercion would return, uncopied
    try:
        return spec.canonical_attrs(given)
    except ArgumentError as exc:
        raise GraphError(exc.message, node=node._name, hint=exc.hint) from None


#: attribute kind -> the type a canonical value has (a tuple: a tuple of that type)
_CANONICAL_TYPES: dict[str, Any] = {"int": int, "float": float, "bool": bool, "str": str,
                                    "ints": (int,), "floats": (float,), "bools": (bool,)}
_EXACT_KINDS: dict[int, tuple[Any, dict[str, Any]]] = {}


def _exact_kinds(spec: Any) -> dict[str, Any]:
    """``spec``'s attributes -> the exact type of their canonical values (``any`` excluded:
    its values are copied); cached per op."""
    found = _EXACT_KINDS.get(id(spec))
    if found is None or found[0] is not spec:
        kinds = {k: _CANONICAL_TYPES[a.kind] for k, a in spec.attrs.items()
                 if a.kind in _CANONICAL_TYPES}
        found = _EXACT_KINDS[id(spec)] = (spec, kinds)
    return found[1]


def checked_attrs(node: Node, spec: Any, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` coerced to the kinds ``spec`` declares; errors name the node."""
    from netsurgeon.errors import ArgumentError

    out = {}
    for key, value in given.items():
        try:
            out[key] = spec.attr_spec(key).coerce(value)
        except ArgumentError as exc:
            raise GraphError(f"{spec.name} attribute '{key}': {exc.message}", node=node._name,
                             hint=exc.hint) from None
    return out


def _apply_update(node: Node, fields: Mapping[str, Any]) -> bool:
    """Set ``fields`` on ``node`` (checked); returns whether anything changed."""
    changed = False
    for key, value in fields.items():
        if value is UNSET:
            continue
        if key == "value":
            if value is not None and not hasattr(value, "shape"):
                raise GraphError(f"value of '{node._name}' must be a numpy array or None, not "
                                 f"{type(value).__name__}", node=node._name)
            changed |= value is not node._value
            node._value = value
        elif key == "shape":
            shape = tuple(int(d) for d in value) if value is not None else None
            changed |= shape != node._shape
            node._shape = shape
        elif key == "dynamic":
            flag = None if value is None else bool(value)
            changed |= flag != node._dynamic
            node._dynamic = flag
        elif key == "learning_rate_multiplier":
            lrm = float(value)
            changed |= lrm != node._lrm
            node._lrm = lrm
        elif key == "dtype":
            changed |= value != node._dtype
            node._dtype = str(value)
        elif key == "tags":
            tags = frozenset(value) if value else _NO_TAGS
            changed |= tags != node._tags
            node._tags = tags
        elif key == "location":
            changed |= value != node._location
            node._location = value
        elif key == "file_fields":
            new = dict(value) if value else None
            changed |= new != node._file_fields
            node._file_fields = new
        else:
            raise GraphError(f"'{key}' is not a node field that update() changes (fields: "
                             f"{', '.join(FIELDS)}; attributes go through set_attrs, inputs "
                             "through set_inputs, the name through rename)", node=node._name)
    return changed
