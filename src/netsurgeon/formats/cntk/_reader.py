"""Read a CNTK v1 model file into a :class:`~netsurgeon.graph.Network` (cntk-model-format.md §2-6).

The file is memory-mapped; parameter values are read-only numpy views of the mapping (no
copy, nothing read element by element in Python). Each node's payload is decoded by the codec
its registry op carries (``payloads.py``). File-level facts a byte-identical rewrite needs (model
version, record order, group sections as stored) go to ``network.metadata["cntk"]``.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import numpy as np

from netsurgeon import _inputs as inputs
from netsurgeon.errors import FormatError, GraphError, not_found_error
from netsurgeon.formats.cntk import payloads  # noqa: F401  (attaches the cntk_v1 layer)
from netsurgeon.formats.cntk._binary import (
    MAGIC,
    U64,
    BinaryReader,
    CntkFormatError,
    wide,
    wide_end,
)
from netsurgeon.formats.cntk._codec import OP_NAME, PRECISION
from netsurgeon.formats.cntk._context import PRECISIONS, ReadContext
from netsurgeon.formats.cntk._layer import resolve_op
from netsurgeon.graph import Network, Node
from netsurgeon.graph._bulk import collector_paused

__all__ = ["read", "read_buffer", "MAX_VERSION", "GROUP_SECTIONS", "map_file"]

#: CNTK's CURRENT_CNTK_MODEL_VERSION: newer files are refused, as CNTK does
MAX_VERSION = 31

#: group sections in the order CNTK reads them: marker base -> netsurgeon group (None = ignored)
GROUP_SECTIONS: tuple[tuple[str, str | None], ...] = (
    ("FeatureNodes", "feature"),
    ("LabelNodes", "label"),
    ("CriterionNodes", "criterion"),
    ("CriteriaNodes", "criterion"),
    ("NodesReqMultiSeqHandling", None),
    ("EvalNodes", "evaluation"),
    ("OutputNodes", "output"),
    ("PairNodes", None),
)
_TRAILING_KEEP = 1 << 20  # bytes after ECN kept for a byte-identical rewrite


def map_file(path: str | os.PathLike[str]) -> Any:
    """The file's bytes as a read-only mmap (``b""`` for an empty file); a file that is missing
    or not regular (FIFO, device, directory) is a CntkFormatError, raised before any read."""
    try:
        return inputs.map_file(path, "model file", FormatError)[0]
    except FormatError as exc:
        if isinstance(exc, FileNotFoundError):  # stays a FileNotFoundError as well
            raise not_found_error(CntkFormatError, exc.message, path=str(path)) from None
        raise CntkFormatError(exc.message, path=str(path)) from None


def read(path: str | os.PathLike[str], name: str | None = None) -> Network:
    """Read the CNTK v1 model at ``path``. Raises CntkFormatError (a FormatError) on any defect."""
    p = Path(path)
    buf = map_file(p)
    with collector_paused():
        return read_buffer(buf, str(p), name or p.stem)


def _precision_from_bmat(buf: Any) -> str:
    """Before v7 there is no precision tag: CNTK v2 uses the element size after the first BMAT."""
    marker = wide("BMAT")
    at = buf.find(marker)
    if at >= 0 and at + len(marker) + 8 <= len(buf):
        size = int.from_bytes(bytes(buf[at + len(marker): at + len(marker) + 8]), "little")
        return {4: "float", 8: "double", 2: "half"}.get(size, "float")
    return "float"


def read_buffer(buf: Any, path: str | None = None, name: str = "model") -> Network:
    """Parse a whole file held in ``buf`` (bytes, bytearray, memoryview or mmap).

    Parameter values are read-only views of ``buf`` (a memoryview is copied once to bytes).
    """
    if isinstance(buf, memoryview):
        buf = buf.tobytes()
    r = BinaryReader(buf, path)
    r.section = "header"
    if len(buf) >= 8 and bytes(buf[:8]) != MAGIC:
        raise r.error("not a CNTK v1 model file (it does not start with the 'BCN' signature)", 0)
    r.marker("BCN")
    versioned = r.optional_marker("BVersion")
    if versioned:
        r.section = "version"
        at = r.pos
        version = r.u64("model version")
        if not 1 <= version <= MAX_VERSION:
            raise r.error(f"model version {version} is not supported (1..{MAX_VERSION}); a newer "
                          "CNTK wrote this file, or it is corrupt", at)
        r.marker("EVersion")
    else:
        version = 1
    net = Network(name)
    default_precision = None if version >= 7 else _precision_from_bmat(buf)
    ctx = ReadContext(version, np.dtype(PRECISIONS[default_precision or "float"]), net, r)

    # ---- node records -------------------------------------------------------------------
    r.section = "node list"
    count = r.count("node count", 6 if version < 7 else 8)
    r.marker("BNodeList")
    order: list[str] = []
    precisions: list[str] = []
    # the stored spelling of each name -> (node, its op): relations and groups look names up
    # by their bytes, without decoding them again (equal bytes are the same exact name)
    by_raw: dict[bytes, tuple[Node, Any]] = {}
    head_cache = _op_cache(net.registry)
    fixed_tag = default_precision or "float"
    for index in range(count):
        r.section = "node list"
        head = _fast_head(r, version, fixed_tag, head_cache)
        if head is not None:
            tag, op_name, spec, codec, node_name, name_at, raw_name = head
        else:
            tag, op_name, spec, codec, node_name, name_at = _read_head(r, version,
                                                                       default_precision)
            raw_name = None
        r.section = f"node '{node_name}' ({op_name}) payload"
        own = tag.split(",")[0] if "," in tag else tag  # Cast: "<own type>,<input type>"
        ctx.dtype = _DTYPES[own]
        ctx.tag = tag
        parts = codec.read(r, ctx, spec)
        fields = parts.file_fields
        if op_name != spec.name:
            fields[OP_NAME] = op_name
        if "," in tag:
            fields[PRECISION] = tag
        lrm = parts.learning_rate_multiplier
        try:
            node = net.add(
                node_name, spec.name, attrs=parts.attrs, shape=parts.shape, value=parts.value,
                learning_rate_multiplier=lrm if lrm is not None else 1.0,
                dtype=PRECISIONS[own], file_fields=fields or None,
            )
        except GraphError as exc:
            raise CntkFormatError(f"node record {index}: {exc.message}", path=path, offset=name_at,
                                  section="node list") from None
        by_raw[raw_name if raw_name is not None else wide(node_name)[:-2]] = (node, spec)
        order.append(node_name)
        precisions.append(tag)
    r.section = "node list"
    r.marker("ENodeList")

    # ---- relations ---------------------------------------------------------------------------
    r.section = "relation"
    r.marker("BRelation")
    relation_order: list[str] = []
    seen: set[str] = set()
    for _ in range(count):
        found = _fast_relation(r, by_raw, seen)
        if found is not None:
            node, node_name, inputs = found
        else:
            node, node_name, inputs = _read_relation(r, net, seen)
        seen.add(node_name)
        if inputs:  # a fresh node has none: leaves need no edge update
            net.set_inputs(node, inputs)
        relation_order.append(node_name)
    r.marker("ERelation")

    # ---- groups ------------------------------------------------------------------------------
    r.section = "root nodes"
    r.marker("BRootNodes")
    sections: list[list[Any]] = []
    for base, group in GROUP_SECTIONS:
        r.section = f"root nodes: {base}"
        if not r.optional_marker("B" + base):
            if base == "LabelNodes":
                # CNTK quirk: the end marker is read even when the begin marker is absent
                r.marker("ELabelNodes")
                sections.append([base, None])
            continue
        n = r.count("group size", 2)
        names = []
        for _ in range(n):
            at = r.pos
            member = r.wstr("group member")
            names.append(member)
            if group is not None:
                entry = by_raw.get(wide(member)[:-2])
                net.add_to_group(group, entry[0] if entry is not None else
                                 _stored(r, net, member, at, f"group {base}"))
        if base == "PairNodes" and n:
            raise r.error("PairNodes is no longer supported; only an empty list loads")
        r.marker("E" + base)
        sections.append([base, names])
    r.section = "root nodes"
    r.marker("ERootNodes")
    r.section = "end"
    r.marker("ECN")

    # ---- file facts ---------------------------------------------------------------------------
    meta: dict[str, Any] = {
        "version": int(version),
        "versioned": versioned,
        "node_order": order,
        "group_sections": sections,
    }
    if relation_order != order:
        meta["relation_order"] = relation_order
    distinct = sorted(set(precisions))
    meta["precision"] = precisions[0] if precisions else (default_precision or "float")
    if len(distinct) > 1:
        meta["mixed_precision"] = True
    if version < 7:
        meta["untagged_precision"] = default_precision
    if r.remaining:
        if r.remaining > _TRAILING_KEEP:
            meta["trailing_bytes_dropped"] = r.remaining
        else:
            meta["trailing"] = base64.b64encode(bytes(buf[r.pos:])).decode("ascii")
    net.metadata["cntk"] = meta
    return net


_DTYPES = {tag: np.dtype(name) for tag, name in PRECISIONS.items()}
#: the common precision tags as stored (UTF-16, no terminator) -> the tag
_PLAIN_TAGS = {wide(tag)[:-2]: tag for tag in PRECISIONS}


_OP_CACHES: dict[int, tuple[Any, dict[bytes, tuple[str, Any, Any]]]] = {}


def _op_cache(registry: Any) -> dict[bytes, tuple[str, Any, Any]]:
    """Stored operation names (UTF-16, no terminator) -> (name, spec, codec), per registry;
    only names :func:`resolve_op` knows enter it."""
    found = _OP_CACHES.get(id(registry))
    if found is None or found[0] is not registry:
        found = _OP_CACHES[id(registry)] = (registry, {})
    return found[1]


def _read_head(r: BinaryReader, version: int, default_precision: str | None
               ) -> tuple[str, str, Any, Any, str, int]:
    """A node record's precision tag, operation and name, read field by field (each defect
    reported at its offset): ``(tag, op name, spec, codec, node name, offset of the name)``."""
    start = r.pos
    if version >= 7:
        tag = r.wstr("precision tag")
        base = tag.split(",")[0]
        if base not in PRECISIONS:
            raise r.error(f"precision tag {tag!r} is not float, double or half", start)
        if "," in tag and (version < 31 or tag.split(",")[1] not in PRECISIONS):
            raise r.error(f"precision tag {tag!r} is not valid in a version {version} file",
                          start)
    else:
        tag = default_precision or "float"
    op_at = r.pos
    op_name = r.wstr("operation name")
    name_at = r.pos
    node_name = r.wstr("node name")
    if not node_name:
        raise r.error("empty node name", name_at)
    try:
        spec, codec = resolve_op(op_name)
    except KeyError:
        raise r.error(f"unknown node type '{op_name}' (node '{node_name}'); CNTK's v1 loader "
                      "does not know it either", op_at) from None
    return tag, op_name, spec, codec, node_name, name_at


def _fast_head(r: BinaryReader, version: int, fixed_tag: str,
               cache: dict[bytes, tuple[str, Any, Any]]) -> tuple | None:
    """:func:`_read_head` in one pass for a plain record (precision float/double/half, a
    known op, a non-empty valid name), plus the name's stored bytes; else None (nothing
    consumed) and the caller reads it field by field."""
    buf = r.buf
    pos = r.pos
    if version >= 7:
        end = wide_end(buf, pos)
        if end < 0:
            return None
        tag = _PLAIN_TAGS.get(buf[pos:end])
        if tag is None:
            return None
        pos = end + 2
    else:
        tag = fixed_tag
    end = wide_end(buf, pos)
    if end < 0:
        return None
    raw_op = buf[pos:end]
    op = cache.get(raw_op)
    if op is None:
        try:
            op_name = raw_op.decode("utf-16-le")
            spec, codec = resolve_op(op_name)
        except (UnicodeDecodeError, KeyError):
            return None
        op = cache[raw_op] = (op_name, spec, codec)
    name_at = end + 2
    end = wide_end(buf, name_at)
    if end <= name_at:
        return None
    raw_name = buf[name_at:end]
    try:
        node_name = raw_name.decode("utf-16-le")
    except UnicodeDecodeError:
        return None
    r.pos = end + 2
    return tag, op[0], op[1], op[2], node_name, name_at, raw_name


def _read_relation(r: BinaryReader, net: Network, seen: set[str]
                   ) -> tuple[Node, str, list[Node]]:
    """One relation record read field by field (each defect reported at its offset)."""
    at = r.pos
    node_name = r.wstr("node name")
    node = _stored(r, net, node_name, at, "relation")
    if node_name in seen:
        raise r.error(f"node '{node_name}' has two relation records", at)
    r.section = "relation"
    n_inputs = r.count("input count", 2)
    inputs = []
    for i in range(n_inputs):
        in_at = r.pos
        inputs.append(_stored(r, net, r.wstr("input name"), in_at,
                              f"input {i} of '{node_name}'"))
    if not spec_accepts(net, node, n_inputs):
        raise r.error(f"{node.op} node '{node_name}' has {n_inputs} inputs; it takes "
                      f"{net.registry.op(node.op).arity_text()}", at)
    return node, node_name, inputs


def _fast_relation(r: BinaryReader, by_raw: dict[bytes, tuple[Node, Any]], seen: set[str]
                   ) -> tuple[Node, str, list[Node]] | None:
    """:func:`_read_relation` in one pass for a well-formed record (names looked up by their
    stored bytes); else None (nothing consumed)."""
    buf, at, size = r.buf, r.pos, r.size
    end = wide_end(buf, at)
    if end < 0:
        return None
    entry = by_raw.get(buf[at:end])
    if entry is None:
        return None
    node, spec = entry
    name = node.name
    pos = end + 2
    if name in seen or pos + 8 > size:
        return None
    (n,) = U64.unpack_from(buf, pos)
    pos += 8
    lo, hi = spec.arity
    if n > (size - pos) >> 1 or n < lo or (hi is not None and n > hi):
        return None
    inputs = []
    for _ in range(n):
        end = wide_end(buf, pos)
        if end < 0:
            return None
        found = by_raw.get(buf[pos:end])
        if found is None:
            return None
        inputs.append(found[0])
        pos = end + 2
    r.pos = pos
    return node, name, inputs


def _stored(r: BinaryReader, net: Network, name: str, at: int, where: str) -> Node:
    """The node called exactly ``name`` (CNTK compares names exactly); else CntkFormatError
    at ``at`` saying ``where`` the name was found."""
    node = net.get(name)
    if node is None or node.name != name:
        raise r.error(f"{where} names '{name}', which the node list does not hold", at)
    return node


def spec_accepts(net: Network, node: Node, count: int) -> bool:
    """Whether ``node``'s op takes ``count`` inputs."""
    return net.registry.op(node.op).accepts_arity(count)
