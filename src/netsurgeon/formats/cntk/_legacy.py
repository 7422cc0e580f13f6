"""Attributes older netsurgeon versions kept for CNTK files, turned into ``cntk_v1`` file fields.

Before file fields existed, what a CNTK file stored beyond the op's attributes lived in
``node.attrs``: raw payload fields as ``cntk_<field>``, the read alias as ``legacy_name``, and
a few registry attributes that are file fields now (InputValue placeholders, legacy shapes,
BatchNormalization's minibatch count, ...). Native files of graph version 1 hold them;
:func:`split_legacy_attrs` sorts them out on load so the node looks as if read from the CNTK
file today.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from netsurgeon.formats.cntk._codec import PREFIX
from netsurgeon.formats.cntk._layer import CNTK_V1
from netsurgeon.ops import OpSpec

__all__ = ["split_legacy_attrs"]

#: old attribute -> file field (short name), where the name changed
_RENAMED = {"legacy_name": "op_name", "cntk_op_name": "op_name"}
#: former registry attributes that are file fields now -> the values the writer assumes
#: (their old defaults), which need no file field
_FORMER_ATTRS: dict[str, tuple[Any, ...]] = {
    "rows_placeholder": (0,), "cols_placeholder": (0,), "legacy_shape": (False,),
    "num_dynamic_axes": (1,), "legacy_cols": (1,), "minibatch_count": (0,), "eval_mode": (False,),
    "legacy_version": ((), (0x00010004, 0x00010004)),
}


def _frozen(value: Any) -> Any:
    return tuple(_frozen(v) for v in value) if isinstance(value, list | tuple) else value


def split_legacy_attrs(spec: OpSpec, attrs: Mapping[str, Any]
                       ) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(attributes, file fields)`` of a node of op ``spec`` stored with old-style ``attrs``.

    Keys the op declares stay attributes; old CNTK keys become ``cntk_v1.`` file fields
    (values the writer assumes anyway are dropped, lists become tuples); a file field the op's
    codec no longer writes is dropped. Anything else stays an attribute (and is refused when
    the node is added, naming it).
    """
    kept: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    codec = CNTK_V1.get(spec)
    declared = codec.file_fields if codec is not None else frozenset()
    for name, value in attrs.items():
        if name in spec.attrs:
            kept[name] = value
            continue
        if name in _RENAMED:
            short = _RENAMED[name]
        elif name.startswith("cntk_"):
            short = name[len("cntk_"):]
        elif name in _FORMER_ATTRS:
            short = name
            if _frozen(value) in _FORMER_ATTRS[name]:
                continue
        else:
            kept[name] = value
            continue
        if PREFIX + short in declared:
            fields[PREFIX + short] = _frozen(value)
    return kept, fields
