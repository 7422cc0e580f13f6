"""What a payload codec sees while reading or writing one node record."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from netsurgeon.formats.cntk._binary import BinaryReader
    from netsurgeon.graph import Network, Node

__all__ = ["ReadContext", "WriteContext", "Parts", "PRECISIONS", "DTYPE_TAGS"]

#: precision tag -> numpy dtype name (the node's ``dtype``)
PRECISIONS = {"float": "float32", "double": "float64", "half": "float16"}
#: numpy dtype name -> precision tag
DTYPE_TAGS = {v: k for k, v in PRECISIONS.items()}


@dataclass
class ReadContext:
    """File-level facts while reading: model version, element type, the network being built."""

    version: int
    dtype: np.dtype
    network: Network
    reader: BinaryReader
    #: the precision tag of the record being read (``float``; ``double,float`` for a v31 Cast)
    tag: str = "float"


@dataclass
class WriteContext:
    """File-level facts while writing: version, and parameter values to store differently."""

    version: int
    network: Network
    #: node -> array to store instead of node.value (BatchNormalization inverse std before v13)
    value_overrides: dict[Node, np.ndarray] = field(default_factory=dict)
    #: node -> inputs to store instead of node.inputs (BatchNormalization before v19)
    input_overrides: dict[Node, list[Node]] = field(default_factory=dict)
    #: BatchNormalization node -> running sample count taken from a dropped 6th input
    run_counts: dict[Node, int] = field(default_factory=dict)
    #: detached nodes to store besides the network's (BatchNormalization's run count, v >= 19)
    extra_nodes: list[Node] = field(default_factory=list)

    def fresh_name(self, base: str) -> str:
        """``base``, or ``base`` with a number, unused by the network and the extra nodes."""
        taken = {n.name.lower() for n in self.extra_nodes}
        name, k = base, 1
        while self.network.get(name) is not None or name.lower() in taken:
            k += 1
            name = f"{base}{k}"
        return name

    def dtype_of(self, node: Node) -> np.dtype:
        return np.dtype(node.dtype if node.dtype in DTYPE_TAGS else "float32")


class Parts:
    """What a codec read for one node: attributes, file fields (full ``cntk_v1.`` keys), and
    for leaves shape, value and multiplier. (A slotted class: one is made per node read.)

    ``canonical``: the codec's guarantee that every attribute is one of the op's and has its
    canonical type (checked once per op and layout, see ``NodeBatch.add``).
    """

    __slots__ = ("attrs", "file_fields", "shape", "value", "learning_rate_multiplier",
                 "canonical")

    def __init__(self, attrs: dict[str, Any] | None = None,
                 file_fields: dict[str, Any] | None = None, shape: tuple[int, ...] | None = None,
                 value: np.ndarray | None = None,
                 learning_rate_multiplier: float | None = None) -> None:
        self.attrs: dict[str, Any] = {} if attrs is None else attrs
        self.file_fields: dict[str, Any] = {} if file_fields is None else file_fields
        self.shape = shape
        self.value = value
        self.learning_rate_multiplier = learning_rate_multiplier
        self.canonical = False

    def __repr__(self) -> str:
        return (f"Parts(attrs={self.attrs!r}, file_fields={self.file_fields!r}, "
                f"shape={self.shape!r}, value={self.value!r}, "
                f"learning_rate_multiplier={self.learning_rate_multiplier!r})")
