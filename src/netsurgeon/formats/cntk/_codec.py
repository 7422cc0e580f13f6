"""The entries of the ``cntk_v1`` layer: a payload codec per node type, and the file fields.

A codec reads one node type's payload into a :class:`Parts` (registry attributes, and file
fields for what the file stored that is not an attribute) and writes it back for any model
version. File fields are kept under ``cntk_v1.<field>`` in ``node.file_fields``; a codec
declares the ones it may write in ``file_fields`` and the graph lint holds nodes to it.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from netsurgeon.formats.cntk._binary import CntkFormatError
from netsurgeon.formats.cntk._context import DTYPE_TAGS, Parts

if TYPE_CHECKING:
    from netsurgeon.formats.cntk._binary import BinaryReader, BinaryWriter
    from netsurgeon.formats.cntk._context import ReadContext, WriteContext
    from netsurgeon.graph import Node
    from netsurgeon.ops import OpSpec

__all__ = ["PayloadCodec", "Codec", "EMPTY", "PREFIX", "key", "OP_NAME", "PRECISION",
           "COMMON_FIELDS"]

#: the layer part of every file-field key
PREFIX = "cntk_v1."


def key(name: str) -> str:
    """The file-field key of CNTK field ``name`` (``matrix_name`` -> ``cntk_v1.matrix_name``)."""
    return PREFIX + name


#: the operation name as the file spelled it, when that is a read alias (``ErrorPrediction``)
OP_NAME = key("op_name")
#: a two-type precision tag (``double,float``: a v31 Cast), kept verbatim
PRECISION = key("precision")
#: the file fields the reader may give a node of any type
COMMON_FIELDS = frozenset({OP_NAME, PRECISION})


@runtime_checkable
class PayloadCodec(Protocol):
    """What the ``cntk_v1`` layer holds per op: one node type's payload, every model version.

    ``check`` and ``prepare`` run for every node before anything is written (``check`` raises
    CntkFormatError for a node the version cannot hold; ``prepare`` may record overrides in
    the context); ``precision_tag`` is the record's precision string (v >= 7).
    """

    file_fields: frozenset[str]

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts: ...

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None: ...

    def check(self, node: Node, ctx: WriteContext) -> None: ...

    def prepare(self, node: Node, ctx: WriteContext) -> None: ...

    def precision_tag(self, node: Node, ctx: WriteContext) -> str: ...


class Codec:
    """Base codec: an empty payload, the node's own precision tag, the common file fields.

    Subclasses list the file fields they write besides the common ones in ``own_fields``
    (short names, without the ``cntk_v1.`` prefix).
    """

    own_fields: tuple[str, ...] = ()

    @cached_property
    def file_fields(self) -> frozenset[str]:
        return COMMON_FIELDS | {key(name) for name in self.own_fields}

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        return Parts()

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        return None

    def check(self, node: Node, ctx: WriteContext) -> None:
        return None

    def prepare(self, node: Node, ctx: WriteContext) -> None:
        return None

    def precision_tag(self, node: Node, ctx: WriteContext) -> str:
        tag = node.file_fields.get(PRECISION)
        if tag and ctx.version >= 31:
            return str(tag)
        found = DTYPE_TAGS.get(node.dtype)
        if found is None:
            raise CntkFormatError(f"node '{node.name}' has element type {node.dtype}; CNTK files "
                                  "hold float32, float64 or float16", node=node.name)
        return found

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


#: the codec every op with an empty payload shares (cntk-model-format.md §7.3)
EMPTY = Codec()
