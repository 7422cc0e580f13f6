"""A node of a :class:`~netsurgeon.graph.Network`.

NOTE: why inputs are read-only. Every edge lives twice, as ``a.inputs[i] is b`` and as
``a in b.users``; only ``Network`` edits edges, through one private method, so the two views
never drift apart (torch.fx once left erased nodes in their inputs' users).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netsurgeon.errors import SourceLocation

if TYPE_CHECKING:
    import numpy as np

    from netsurgeon.graph._network import Network

__all__ = ["Node", "GROUPS"]

#: The five node groups a network keeps, in CNTK's order.
GROUPS: tuple[str, ...] = ("feature", "label", "criterion", "evaluation", "output")


class Node:
    """One named operation in a network.

    Attributes:
        name: unique (case-insensitively) within its network.
        op: the registry op name (``Times``).
        attrs: op attributes (see the op's ``OpSpec.attrs``).
        shape: output sample shape in numpy order, or None before validation.
        dynamic: whether the output carries the batch/sequence axis (None = not inferred).
        tags: tag texts given to the node (``criterion``...); group membership is the
            network's, tags are copied with the node, groups are not (as in CNTK).
        value: parameter or precomputed tensor (numpy), else None.
        learning_rate_multiplier: 0 freezes a parameter.
        dtype: element type name (``float32``, ``float64``, ``float16``).
        location: where the node was defined in a source file, if known.
    """

    __slots__ = (
        "name", "op", "_inputs", "attrs", "shape", "dynamic", "tags", "value",
        "learning_rate_multiplier", "dtype", "location", "_users", "_network", "__weakref__",
    )

    def __init__(
        self,
        name: str,
        op: str,
        *,
        attrs: dict[str, Any] | None = None,
        shape: tuple[int, ...] | None = None,
        value: "np.ndarray | None" = None,
        learning_rate_multiplier: float = 1.0,
        dtype: str = "float32",
        tags: set[str] | None = None,
        location: SourceLocation | None = None,
    ) -> None:
        self.name = name
        self.op = op
        self._inputs: tuple[Node | None, ...] = ()
        self.attrs: dict[str, Any] = dict(attrs) if attrs else {}
        self.shape = tuple(shape) if shape is not None else None
        self.dynamic: bool | None = None
        self.tags: set[str] = set(tags) if tags else set()
        self.value = value
        self.learning_rate_multiplier = float(learning_rate_multiplier)
        self.dtype = dtype
        self.location = location
        self._users: dict[Node, int] = {}
        self._network: Network | None = None

    @property
    def inputs(self) -> tuple["Node | None", ...]:
        """The ordered inputs; a missing input is None. Edit through the network."""
        return self._inputs

    @property
    def users(self) -> list["Node"]:
        """Nodes that take this node as an input, in no particular order."""
        return list(self._users)

    @property
    def network(self) -> "Network | None":
        return self._network

    @property
    def needs_gradient(self) -> bool:
        """CNTK's NeedsGradient: true when the learning-rate multiplier is above 0."""
        return self.learning_rate_multiplier > 0

    @property
    def is_parameter(self) -> bool:
        return self.op == "LearnableParameter"

    def __repr__(self) -> str:
        ins = ", ".join("NULL" if i is None else i.name for i in self._inputs)
        return f"<Node {self.name}={self.op}({ins})>"
