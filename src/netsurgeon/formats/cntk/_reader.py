"""Read a CNTK v1 model file into a :class:`~netsurgeon.graph.Network` (cntk-model-format.md §2-6).

The file is memory-mapped (a small one read); parameter values are read-only numpy views of
the mapping (no copy, nothing read element by element in Python). Each node's payload is
decoded by the codec its registry op carries (``payloads/``). File-level facts a
byte-identical rewrite needs (model version, record order, group sections as stored) go to
``network.metadata["cntk"]``.
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
    decode_utf16,
    wide,
    wide_end,
)
from netsurgeon.formats.cntk._codec import OP_NAME, PRECISION
from netsurgeon.formats.cntk._context import PRECISIONS, ReadContext
from netsurgeon.formats.cntk._layer import resolve_op
from netsurgeon.graph import Network, Node
from netsurgeon.graph._batch import NodeBatch
from netsurgeon.graph._bulk import collector_paused
from netsurgeon.ops import OpRegistry

__all__ = ["read", "read_buffer", "MAX_VERSION", "GROUP_SECTIONS", "map_file", "READ_BELOW"]

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


#: files smaller than this are read into memory instead of mapped: for a small model the
#: mapping (mmap, the page fault, munmap when the network is dropped) costs more than reading
#: it, and its values are read-only views either way
READ_BELOW = 1 << 16


def map_file(path: str | os.PathLike[str], *, small: bool = False) -> Any:
    """The file's bytes as a read-only mmap (``b""`` for an empty file), or with ``small`` as
    ``bytes``; a file that is missing or not regular (FIFO, device, directory) is a
    CntkFormatError, raised before any read."""
    try:
        if small:
            return inputs.read_bytes(path, "model file", FormatError)
        return inputs.map_file(path, "model file", FormatError)[0]
    except FormatError as exc:
        if isinstance(exc, FileNotFoundError):  # stays a FileNotFoundError as well
            raise not_found_error(CntkFormatError, exc.message, path=str(path)) from None
        raise CntkFormatError(exc.message, path=str(path)) from None


def read(path: str | os.PathLike[str], name: str | None = None) -> Network:
    """Read the CNTK v1 model at ``path``. Raises CntkFormatError (a FormatError) on any defect.

    Parameter values are read-only views of the file's bytes: of a mapping, or for a file
    below :data:`READ_BELOW` bytes of the bytes read."""
    text, stem = _path_and_stem(path)
    try:
        small = os.stat(text).st_size < READ_BELOW
    except (OSError, ValueError):  # map_file names the problem
        small = False
    buf = map_file(text, small=small)
    with collector_paused():
        return read_buffer(buf, text, name or stem)


def _path_and_stem(path: str | os.PathLike[str]) -> tuple[str, str]:
    """``(str(Path(path)), Path(path).stem)``; a plain path (no ``.`` component, doubled or
    trailing slash) without making the Path, which costs as much as reading a small model."""
    text = os.fspath(path)
    if (type(text) is str and text and os.sep == "/" and "//" not in text and "/." not in text
            and not text.startswith(".") and not text.endswith("/")):
        base = text[text.rfind("/") + 1:]
        dot = base.rfind(".")
        return text, base[:dot] if 0 < dot < len(base) - 1 else base
    p = Path(path)
    return str(p), p.stem


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
    batch = NodeBatch(net)  # nodes, edges and groups go into the network at once, after ECN
    order: list[str] = []
    precisions: list[str] = []
    # the stored spelling of each name -> (node, its op): relations and groups look names up
    # by their bytes, without decoding them again (equal bytes are the same exact name)
    by_raw: dict[bytes, tuple[Node, Any]] = {}
    by_name: dict[str, tuple[Node, Any]] = {}  # the same by the exact name
    head_cache = _op_cache(net.registry)
    fixed_tag = default_precision or "float"
    tagged = version >= 7
    for index in range(count):
        r.section = "node list"
        head = _fast_head(r, tagged, fixed_tag, head_cache)
        if head is not None:
            tag, op_name, spec, codec, node_name, name_at, raw_name = head
        else:
            tag, op_name, spec, codec, node_name, name_at = _read_head(r, version,
                                                                       default_precision)
            raw_name = wide(node_name)[:-2]
        r.section = (node_name, op_name)  # "node 'name' (op) payload", formatted on error
        dtype, dtype_name = _TAG_TYPES[tag]
        ctx.dtype = dtype
        ctx.tag = tag
        parts = codec.read(r, ctx, spec)
        fields = parts.file_fields
        if op_name != spec.name:
            fields[OP_NAME] = op_name
        if "," in tag:
            fields[PRECISION] = tag
        lrm = parts.learning_rate_multiplier
        try:
            node = batch.add(node_name, spec, parts.attrs, parts.shape, parts.value,
                             1.0 if lrm is None else lrm, dtype_name, fields or None,
                             canonical=parts.canonical)
        except GraphError as exc:
            raise CntkFormatError(f"node record {index}: {exc.message}", path=path, offset=name_at,
                                  section="node list") from None
        by_raw[raw_name] = by_name[node_name] = (node, spec)
        order.append(node_name)
        precisions.append(tag)
    r.section = "node list"
    r.marker("ENodeList")

    # ---- relations ---------------------------------------------------------------------------
    r.section = "relation"
    r.marker("BRelation")
    relation_order: list[str] = []
    relations = _relations_at_once(r, by_name, count)
    if relations is not None:
        for node, node_name, inputs in relations:
            if inputs:  # a fresh node has none: leaves need no edge update
                batch.set_inputs(node, inputs)
            relation_order.append(node_name)
    else:
        seen: set[str] = set()
        for _ in range(count):
            found = _fast_relation(r, by_raw, seen)
            if found is not None:
                node, node_name, inputs = found
            else:
                node, node_name, inputs = _read_relation(r, batch, net.registry, seen)
            seen.add(node_name)
            if inputs:
                batch.set_inputs(node, inputs)
            relation_order.append(node_name)
    r.marker("ERelation")

    # ---- groups ------------------------------------------------------------------------------
    r.section = "root nodes"
    r.marker("BRootNodes")
    sections = _read_groups(r, batch, by_raw)
    r.section = "root nodes"
    r.marker("ERootNodes")
    r.section = "end"
    r.marker("ECN")
    batch.commit()

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
#: per group section: (marker base, group, begin marker as stored, the section's name)
_GROUP_MARKERS = tuple((base, group, wide("B" + base), f"root nodes: {base}")
                       for base, group in GROUP_SECTIONS)


def _read_groups(r: BinaryReader, batch: NodeBatch,
                 by_raw: dict[bytes, tuple[Node, Any]]) -> list[list[Any]]:
    """The group sections after BRootNodes: members join their groups (in ``batch``); returns
    the sections as stored (``[marker base, member names or None]``) for the rewrite."""
    buf = r.buf
    sections: list[list[Any]] = []
    for base, group, begin, section in _GROUP_MARKERS:
        r.section = section
        at = r.pos
        if buf[at:at + len(begin)] != begin:  # CNTK rewinds when a section is absent
            if base == "LabelNodes":
                # CNTK quirk: the end marker is read even when the begin marker is absent
                r.marker("ELabelNodes")
                sections.append([base, None])
            continue
        r.pos = at + len(begin)
        n = r.count("group size", 2)
        names = []
        for _ in range(n):
            at = r.pos
            end = wide_end(buf, at)
            entry = by_raw.get(buf[at:end]) if end >= 0 else None
            if entry is not None:  # the stored bytes of a node's name: that exact name
                member = entry[0].name
                r.pos = end + 2
            else:
                member = r.wstr("group member")
            names.append(member)
            if group is not None:
                batch.add_to_group(group, entry[0] if entry is not None else
                                   _stored(r, batch, member, at, f"group {base}"))
        if base == "PairNodes" and n:
            raise r.error("PairNodes is no longer supported; only an empty list loads")
        r.marker("E" + base)
        sections.append([base, names])
    return sections


class _TagTypes(dict):
    """Precision tag -> (element dtype, dtype name) of the node; a two-type Cast tag
    (``"<own type>,<input type>"``) takes its own (first) type. Filled on first use."""

    def __missing__(self, tag: str) -> tuple[np.dtype, str]:
        own = tag.split(",")[0]
        found = self[tag] = (_DTYPES[own], PRECISIONS[own])
        return found


_TAG_TYPES = _TagTypes()
#: the common precision tags as stored (UTF-16, no terminator) -> the tag
_PLAIN_TAGS = {wide(tag)[:-2]: tag for tag in PRECISIONS}
_FLOAT_TAG = wide("float")


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


def _fast_head(r: BinaryReader, tagged: bool, fixed_tag: str,
               cache: dict[bytes, tuple[str, Any, Any]]) -> tuple | None:
    """:func:`_read_head` in one pass for a plain record (precision float/double/half, a
    known op, a non-empty valid name), plus the name's stored bytes; else None (nothing
    consumed) and the caller reads it field by field. ``tagged``: the record starts with a
    precision tag (v >= 7); else its precision is ``fixed_tag``."""
    buf = r.buf
    pos = r.pos
    if tagged:
        if buf[pos:pos + 12] == _FLOAT_TAG:  # the common tag, terminator included
            tag = "float"
            pos += 12
        else:
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
            op_name = decode_utf16(raw_op, "strict", True)[0]
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
        node_name = decode_utf16(raw_name, "strict", True)[0]
    except UnicodeDecodeError:
        return None
    r.pos = end + 2
    return tag, op[0], op[1], op[2], node_name, name_at, raw_name


def _read_relation(r: BinaryReader, batch: NodeBatch, registry: OpRegistry, seen: set[str]
                   ) -> tuple[Node, str, list[Node]]:
    """One relation record read field by field (each defect reported at its offset)."""
    at = r.pos
    node_name = r.wstr("node name")
    node = _stored(r, batch, node_name, at, "relation")
    if node_name in seen:
        raise r.error(f"node '{node_name}' has two relation records", at)
    r.section = "relation"
    n_inputs = r.count("input count", 2)
    inputs = []
    for i in range(n_inputs):
        in_at = r.pos
        inputs.append(_stored(r, batch, r.wstr("input name"), in_at,
                              f"input {i} of '{node_name}'"))
    spec = registry.op(node.op)
    if not spec.accepts_arity(n_inputs):
        raise r.error(f"{node.op} node '{node_name}' has {n_inputs} inputs; it takes "
                      f"{spec.arity_text()}", at)
    return node, node_name, inputs


_E_RELATION = wide("ERelation")


def _relations_at_once(r: BinaryReader, by_name: dict[str, tuple[Node, Any]], count: int
                       ) -> list[tuple[Node, str, list[Node]]] | None:
    """The ``count`` relation records up to ERelation decoded as one UTF-16 text, when every
    record is well-formed (known names, no repeats, input counts below 65536 that the ops
    take): ``[(node, name, inputs)]``, with ``r.pos`` at ERelation; else None (nothing
    consumed) and the caller reads record by record, naming the defect.

    Every field of a relation record is whole UTF-16 units (names, and a u64 count that is
    four units), so the section decodes in one call and ``split("\\0")`` yields per record the
    name, the count's low unit (empty for 0), two or three empty tokens (its zero high
    units) and the input names."""
    buf, pos = r.buf, r.pos
    end = buf.find(_E_RELATION, pos)
    while end >= 0 and (end - pos) & 1:
        end = buf.find(_E_RELATION, end + 1)
    if end < 0:
        return None
    try:
        tokens = decode_utf16(buf[pos:end], "strict", True)[0].split("\0")
    except UnicodeDecodeError:
        return None
    last = len(tokens) - 1  # the text ends with a terminator: the last token is empty
    out = []
    seen: set[str] = set()
    t = 0
    for _ in range(count):
        if t + 4 > last:
            return None
        name, low = tokens[t], tokens[t + 1]
        if tokens[t + 2] or tokens[t + 3]:
            return None
        if low:
            if len(low) != 1:
                return None
            n = ord(low)
            t += 4
        else:  # a count of 0: four zero units
            if tokens[t + 4]:
                return None
            n = 0
            t += 5
        entry = by_name.get(name)
        if entry is None or name in seen or t + n > last:
            return None
        node, spec = entry
        lo, hi = spec.arity
        if n < lo or (hi is not None and n > hi):
            return None
        inputs = []
        for input_name in tokens[t:t + n]:
            found = by_name.get(input_name)
            if found is None:
                return None
            inputs.append(found[0])
        t += n
        seen.add(name)
        out.append((node, name, inputs))
    if t != last:
        return None
    r.pos = end
    return out


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


def _stored(r: BinaryReader, batch: NodeBatch, name: str, at: int, where: str) -> Node:
    """The node called exactly ``name`` (CNTK compares names exactly); else CntkFormatError
    at ``at`` saying ``where`` the name was found."""
    node = batch.get(name)
    if node is None or node.name != name:
        raise r.error(f"{where} names '{name}', which the node list does not hold", at)
    return node

