"""The native model format: a safetensors file whose metadata holds the graph as JSON.

Layout (any safetensors reader can open the weights)::

    u64 little-endian header length N
    N bytes of JSON: {"<tensor>": {"dtype", "shape", "data_offsets"}, ...,
                      "__metadata__": {"format": "netsurgeon", "version": "2",
                                       "graph": "<JSON text of the graph>"}}
    tensor bytes, in header order, C order

The graph (version 2) is stored by columns, one entry per node in insertion order, so that a
million-node graph is a few flat JSON lists rather than a million JSON objects::

    {"format": "netsurgeon", "version": 2, "name": ...,
     "ops": [op names], "op": [index into ops per node], "names": [node names],
     "arity": [input count per node], "inputs": [node index per input, -1 = missing],
     "shapes": [distinct shapes], "shape": [index into shapes, -1 = unknown],
     "dynamic": "1" / "0" / "-" (unknown) per node, one string,
     "extra": [[node index, {"attrs", "value", "lr", "dtype", "tags", "loc", "fields"}], ...],
     "groups": {group: [node index, ...]}, "metadata": {...}}

``extra`` lists only the nodes with something besides name, op, inputs, shape and flag:
attributes (all of the op's, so a later change of a registry default never changes a saved
model), the tensor holding the value, a multiplier other than 1, a dtype other than float32,
tags, the source location and the file fields. Version 1 files (one JSON object per node,
CNTK file facts among the attributes) are still read; their old CNTK attributes become
``cntk_v1`` file fields.

Loading executes no code (JSON only, no pickle) and maps the weights from disk: each
parameter is a copy-on-write view of the mapped file, so nothing is read until used and edits
never reach the file. Tensor names are the node names. Saving is atomic.

Files are untrusted. Every structure is checked before it is used, and every defect is one
FormatError naming the file and the JSON key (``graph JSON key 'extra[3][1].attrs.pad'``):
tensor dtypes are safetensors' numeric ones, shapes lists of at most 64 non-negative
integers, data offsets inside the data section, fitting the shape and overlapping no other
tensor, each tensor the value of one node; an ``__array__`` value has a numeric dtype
(``ARRAY_DTYPES``) and holds only numbers, so nothing allocated is more than a few times the
JSON it came from; decoded values nest at most ``MAX_DEPTH`` levels and JSON nested beyond
the interpreter's limit is an error, never a RecursionError. What load refuses, save refuses.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from netsurgeon import _inputs as inputs
from netsurgeon.errors import FormatError, NetsurgeonError, SourceLocation
from netsurgeon.formats._atomic import atomic_write
from netsurgeon.formats._native_json import (
    Bad,
    decode,
    encode,
    get,
    ints,
    kind_of,
    need_type,
    number,
    shape_of,
    strs,
)
from netsurgeon.graph import Network, Node
from netsurgeon.graph._bulk import collector_paused

__all__ = ["save", "load", "MAGIC_FORMAT", "GRAPH_VERSION", "looks_native"]

MAGIC_FORMAT = "netsurgeon"
GRAPH_VERSION = 2
_MAX_HEADER = 1 << 31
_METADATA = "__metadata__"  # safetensors' own key: a node of that name stores its value elsewhere

_DTYPES = {
    "float32": "F32", "float64": "F64", "float16": "F16", "bfloat16": "BF16",
    "int8": "I8", "int16": "I16", "int32": "I32", "int64": "I64",
    "uint8": "U8", "uint16": "U16", "uint32": "U32", "uint64": "U64", "bool": "BOOL",
}
_NUMPY = {v: k for k, v in _DTYPES.items() if k != "bfloat16"}
_ITEMSIZE = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I8": 1, "I16": 2, "I32": 4, "I64": 8,
             "U8": 1, "U16": 2, "U32": 4, "U64": 8, "BOOL": 1}
_FLAG = {True: "1", False: "0", None: "-"}
_UNFLAG = {"1": True, "0": False, "-": None}


def looks_native(head: bytes) -> bool:
    """True if the first bytes look like a safetensors file with a JSON header."""
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n < _MAX_HEADER and head[8:9] == b"{"




# ---- the graph by columns ----------------------------------------------------------------------
@dataclass
class _Columns:
    """A graph as the builder takes it, whatever the file version: per-node columns, op and
    shape tables, and the ``extra`` records with their values decoded."""

    name: str
    names: list[str]
    op_table: list[str]
    op: list[int]  # index into op_table, per node
    arity: list[int]  # input count, per node
    inputs: list[int]  # node indices, flat; -1 = missing
    shape_table: list[tuple[int, ...] | None]  # its last entry is None (index -1)
    shape: list[int]  # index into shape_table, per node
    dynamic: str  # "1", "0" or "-" per node
    extra: dict[int, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, list[int]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


def _tensor_keys(nodes: list[Node]) -> dict[Node, str]:
    """The tensor name of each node with a value: its name, but never safetensors' own
    ``__metadata__`` key nor another node's tensor name."""
    keys: dict[Node, str] = {}
    taken: set[str] = set()
    for n in nodes:
        if n.value is not None:
            key = n.name if n.name != _METADATA else _METADATA + ".value"
            while key in taken or key == _METADATA:
                key += "_"
            taken.add(key)
            keys[n] = key
    return keys


def _needs_extra(n: Node, has_attrs: bool, tensor_of: dict[Node, str]) -> bool:
    return bool(has_attrs or n in tensor_of or n.learning_rate_multiplier != 1.0
                or n.dtype != "float32" or n.tags or n.location is not None or n.file_fields)


def _extra(n: Node, has_attrs: bool, tensor_of: dict[Node, str]) -> dict[str, Any]:
    """The ``extra`` record of a node (see :func:`_needs_extra`); Bad for a value the
    format cannot hold."""
    rec: dict[str, Any] = {}
    if has_attrs:
        rec["attrs"] = _encode_under(n.attrs, "attributes")
    key = tensor_of.get(n)
    if key is not None:
        rec["value"] = key
    if n.learning_rate_multiplier != 1.0:
        rec["lr"] = encode(float(n.learning_rate_multiplier))
    if n.dtype != "float32":
        rec["dtype"] = n.dtype
    if n.tags:
        rec["tags"] = sorted(n.tags)
    loc = n.location
    if loc is not None:
        rec["loc"] = [loc.file, loc.line, loc.column]
    if n.file_fields:
        rec["fields"] = _encode_under(n.file_fields, "file fields")
    return rec


def _encode_under(values: Any, key: str) -> Any:
    try:
        return encode(dict(values))
    except Bad as bad:
        raise bad.under(key) from None


def _graph_json(net: Network, tensor_of: dict[Node, str], path: str) -> str:
    nodes = net.nodes
    index = {n: i for i, n in enumerate(nodes)}
    op_index: dict[str, int] = {}
    shape_index: dict[tuple[int, ...] | None, int] = {None: -1}
    has_attrs: dict[str, bool] = {}
    names, ops, arity, inputs, shapes, flags, extra = [], [], [], [], [], [], []
    registry = net.registry
    for i, n in enumerate(nodes):
        names.append(n.name)
        op = n.op
        o = op_index.get(op)
        if o is None:
            o = op_index[op] = len(op_index)
            has_attrs[op] = bool(registry.op(op).attrs)
        ops.append(o)
        ins = n.inputs
        arity.append(len(ins))
        for inp in ins:
            inputs.append(-1 if inp is None else index[inp])
        shape = n.shape
        s = shape_index.get(shape)
        if s is None:
            s = shape_index[shape] = len(shape_index) - 1
        shapes.append(s)
        flags.append(_FLAG[n.dynamic])
        if _needs_extra(n, has_attrs[op], tensor_of):
            try:
                extra.append([i, _extra(n, has_attrs[op], tensor_of)])
            except Bad as bad:
                raise FormatError(f"{path}: cannot save node '{n.name}': its {bad.shown} "
                                  f"{bad.why}", node=n.name) from None
    try:
        metadata = encode(net.metadata)
    except Bad as bad:
        raise FormatError(f"{path}: cannot save the network's metadata: "
                          f"{bad.shown or 'it'} {bad.why}") from None
    doc = {
        "format": MAGIC_FORMAT,
        "version": GRAPH_VERSION,
        "name": net.name,
        "ops": list(op_index),
        "op": ops,
        "names": names,
        "arity": arity,
        "inputs": inputs,
        "shapes": [list(s) for s in shape_index if s is not None],
        "shape": shapes,
        "dynamic": "".join(flags),
        "extra": extra,
        "groups": {g: [index[n] for n in members]
                   for g, members in net.groups().items() if members},
        "metadata": metadata,
    }
    return json.dumps(doc, separators=(",", ":"), allow_nan=False)


# ---- save ------------------------------------------------------------------------------------
def save(net: Network, path: str | os.PathLike[str]) -> None:
    """Write ``net`` to ``path`` atomically (temporary file, then rename)."""
    arrays: list[tuple[str, np.ndarray]] = []
    tensor_of = _tensor_keys(net.nodes)
    for n, key in tensor_of.items():
        arr = np.asarray(n.value)
        if str(arr.dtype) not in _DTYPES:
            raise FormatError(f"{path}: cannot store dtype {arr.dtype} of node '{n.name}'; "
                              "convert its value to a float or integer type", node=n.name)
        arrays.append((key, arr))
    header: dict[str, Any] = {}
    offset = 0
    for name, arr in arrays:
        size = arr.nbytes
        header[name] = {"dtype": _DTYPES[str(arr.dtype)], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    with collector_paused():
        graph = _graph_json(net, tensor_of, str(path))
    header[_METADATA] = {"format": MAGIC_FORMAT, "version": str(GRAPH_VERSION), "graph": graph}
    blob = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    blob += b" " * (-len(blob) % 8)  # align the data section to 8 bytes, as safetensors does
    with atomic_write(path) as out:
        out.write(struct.pack("<Q", len(blob)))
        out.write(blob)
        for _, arr in arrays:
            if arr.size:
                out.write(memoryview(np.ascontiguousarray(arr)).cast("B"))


# ---- load ------------------------------------------------------------------------------------
@dataclass
class _Tensor:
    """A checked header entry: where a tensor's bytes are and what they hold."""

    dtype: str
    shape: tuple[int, ...]
    begin: int  # offset in the data section


def _parse_json(text: bytes | str, path: Path, what: str) -> Any:
    """``json.loads`` with every failure (syntax, encoding, nesting, huge integers) a
    FormatError naming the file and the JSON."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text)
    except RecursionError:
        raise FormatError(f"{path}: {what} is nested too deeply to be a netsurgeon model"
                          ) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limit
        raise FormatError(f"{path}: {what} is malformed: {str(exc)[:120]}") from None


def _read_header(path: Path, f: BinaryIO, size: int) -> tuple[dict[str, Any], int]:
    head = f.read(8)
    if len(head) < 8:
        raise FormatError(f"{path}: truncated native model (no header length at offset 0)")
    (n,) = struct.unpack("<Q", head)
    if n < 2 or n > size - 8 or n > _MAX_HEADER:
        raise FormatError(f"{path}: header length {n} at offset 0 does not fit the file of "
                          f"{size} bytes")
    raw = f.read(n)
    if len(raw) < n:
        raise FormatError(f"{path}: truncated native model (the header ends at byte "
                          f"{8 + len(raw)}, not {8 + n})")
    header = _parse_json(raw, path, "the JSON header (offset 8)")
    if not isinstance(header, dict):
        raise FormatError(f"{path}: the JSON header (offset 8) is {kind_of(header)}, not an "
                          "object")
    return header, 8 + n


def _tensor_table(header: dict[str, Any], data_size: int) -> dict[str, _Tensor]:
    """Every tensor entry of the header, checked: a known dtype, a shape, offsets inside the
    data section that fit the shape and overlap no other tensor's. Raises Bad."""
    table: dict[str, _Tensor] = {}
    spans: list[tuple[int, int, str]] = []
    for key, info in header.items():
        if key == _METADATA:
            continue
        if type(info) is not dict:
            raise Bad(key, f"must be an object (dtype, shape, data_offsets), not {kind_of(info)}")
        dtype = info.get("dtype")
        if type(dtype) is not str or dtype not in _ITEMSIZE:
            raise Bad(f"{key}.dtype", f"is {kind_of(dtype)}, not a safetensors dtype "
                       f"({', '.join(_ITEMSIZE)})")
        shape = shape_of(info.get("shape"), f"{key}.shape")
        offsets = info.get("data_offsets")
        if type(offsets) is not list or len(offsets) != 2 or not set(map(type, offsets)) <= {int}:
            raise Bad(f"{key}.data_offsets", f"must be [begin, end], two integers, not "
                       f"{kind_of(offsets)}")
        begin, end = offsets
        if not 0 <= begin <= end <= data_size:
            raise Bad(f"{key}.data_offsets", f"[{begin}, {end}] is not inside the data section "
                       f"of {data_size} bytes")
        if math.prod(d for d in shape if d) * _ITEMSIZE[dtype] >= 1 << 63:
            raise Bad(f"{key}.shape", f"{list(shape)} is too big for any array")
        need = math.prod(shape) * _ITEMSIZE[dtype]
        if end - begin != need:
            raise Bad(f"{key}.data_offsets", f"[{begin}, {end}] holds {end - begin} bytes; "
                       f"shape {list(shape)} of {dtype} needs {need}")
        table[key] = _Tensor(dtype, shape, begin)
        if end > begin:
            spans.append((begin, end, key))
    spans.sort()
    for (b0, e0, k0), (b1, e1, k1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise Bad(f"{k1}.data_offsets", f"[{b1}, {e1}] overlaps tensor '{k0}' at "
                       f"[{b0}, {e0}]")
    return table


def _graph_doc(path: Path, header: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The graph JSON of the header's metadata, and its version (1 or 2)."""
    meta = header.get(_METADATA)
    if meta is not None and type(meta) is not dict:
        raise FormatError(f"{path}: header key '__metadata__' must be an object holding the "
                          f"netsurgeon graph, not {kind_of(meta)}")
    if not isinstance(meta, dict) or meta.get("format") != MAGIC_FORMAT or "graph" not in meta:
        raise FormatError(f"{path}: a safetensors file without a netsurgeon graph in its metadata")
    if type(meta["graph"]) is not str:
        raise FormatError(f"{path}: header key '__metadata__.graph' must be a string (the graph "
                          f"JSON), not {kind_of(meta['graph'])}")
    doc = _parse_json(meta["graph"], path, "the graph JSON in the metadata")
    if type(doc) is not dict:
        raise FormatError(f"{path}: the graph JSON in the metadata is {kind_of(doc)}, not an "
                          "object")
    version = doc.get("version", 0)
    if type(version) is str and version.isdigit() and len(version) < 5:
        version = int(version)
    if type(version) is not int or not 1 <= version <= GRAPH_VERSION:
        raise FormatError(f"{path}: graph format version {kind_of(version)} is not supported (this "
                          f"netsurgeon reads versions 1 to {GRAPH_VERSION}; a newer netsurgeon "
                          "wrote it, or the file is damaged)")
    return doc, version


def load(path: str | os.PathLike[str]) -> Network:
    """Read a native model; weights are memory-mapped copy-on-write views of the file.

    The file is untrusted: every defect (a header or graph JSON of the wrong structure, a
    non-numeric dtype, offsets outside the data or overlapping, nesting beyond the limits)
    is a FormatError naming the file and the key, and nothing allocated is larger than a
    small multiple of the file's size."""
    path = Path(path)
    with inputs.open_regular(path, "model file", FormatError) as (f, size):
        header, data_start = _read_header(path, f, size)
        try:
            tensors = _tensor_table(header, size - data_start)
        except Bad as bad:
            raise FormatError(f"{path}: header key '{bad.shown}' {bad.why}") from None
        with collector_paused():
            doc, version = _graph_doc(path, header)
            buffer = None
            if tensors and size > data_start:
                try:
                    buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
                except (OSError, ValueError) as exc:
                    raise FormatError(f"{path}: cannot memory-map the model file: {exc}"
                                      ) from None
            try:
                columns = _columns_v2(doc) if version == 2 else _columns_v1(doc)
                return _build(path, columns, tensors, buffer, data_start)
            except Bad as bad:
                raise FormatError(f"{path}: graph JSON key '{bad.shown}' {bad.why}") from None
            except (KeyError, TypeError, ValueError, IndexError, AttributeError,
                    OverflowError, RecursionError) as exc:  # a defect the checks missed
                raise FormatError(f"{path}: the graph JSON is inconsistent: {exc!r:.200}"
                                  ) from None


def _columns_v2(doc: dict[str, Any]) -> _Columns:
    """The columns of a version 2 graph, every one checked (raises Bad naming the key)."""
    names = strs(get(doc, "names"), "names")
    n = len(names)
    op_table = strs(get(doc, "ops"), "ops")
    shapes = need_type(get(doc, "shapes"), list, "shapes", "a list of shapes")
    shape_table: list[tuple[int, ...] | None] = [shape_of(s, f"shapes[{k}]")
                                                 for k, s in enumerate(shapes)]
    inputs = ints(get(doc, "inputs"), "inputs", -1, n)
    c = _Columns(
        name=need_type(doc.get("name", ""), str, "name", "a string"), names=names,
        op_table=op_table, op=ints(get(doc, "op"), "op", 0, len(op_table)),
        arity=ints(get(doc, "arity"), "arity", 0, len(inputs) + 1), inputs=inputs,
        shape_table=[*shape_table, None],
        shape=ints(get(doc, "shape"), "shape", -1, len(shape_table)),
        dynamic=need_type(get(doc, "dynamic"), str, "dynamic", "a string of 1, 0 and -"),
    )
    for key in ("op", "arity", "shape", "dynamic"):
        if len(getattr(c, key)) != n:
            raise Bad(key, f"has {len(getattr(c, key))} entries for {n} nodes")
    if c.dynamic.strip("10-"):
        raise Bad("dynamic", "must hold only the characters 1, 0 and -")
    if sum(c.arity) != len(inputs):
        raise Bad("inputs", f"has {len(inputs)} entries; the arities add up to {sum(c.arity)}")
    extra = need_type(doc.get("extra", []), list, "extra", "a list of [node index, record]")
    for k, item in enumerate(extra):
        if type(item) is not list or len(item) != 2:
            raise Bad(f"extra[{k}]", f"must be [node index, record], not {kind_of(item)}")
        i = ints(item[:1], f"extra[{k}]", 0, n)[0]
        if i in c.extra:
            raise Bad(f"extra[{k}]", f"is a second record of node {i}")
        try:
            c.extra[i] = _record(item[1])
        except Bad as bad:
            raise bad.under(1).under(k).under("extra") from None
    groups = need_type(doc.get("groups", {}), dict, "groups", "an object")
    c.groups = {g: ints(m, f"groups.{g}", 0, n) for g, m in groups.items()}
    c.metadata = _metadata(doc)
    return c


def _metadata(doc: dict[str, Any]) -> dict[str, Any]:
    try:
        metadata = decode(doc.get("metadata", {}))
    except Bad as bad:
        raise bad.under("metadata") from None
    return need_type(metadata, dict, "metadata", "an object")


def _record(rec: Any) -> dict[str, Any]:
    """A node's ``extra`` record, checked and decoded (the keyword arguments of
    ``Network.add``, with the tensor name under ``value``)."""
    need_type(rec, dict, "", "an object")
    out: dict[str, Any] = {}
    for key in ("attrs", "fields"):
        if key in rec:
            try:
                value = decode(need_type(rec[key], dict, "", "an object"))
            except Bad as bad:
                raise bad.under(key) from None
            if value:
                out["attrs" if key == "attrs" else "file_fields"] = value
    if rec.get("value") is not None:
        out["value"] = need_type(rec["value"], str, "value", "a tensor name")
    if "lr" in rec:
        try:
            out["learning_rate_multiplier"] = number(decode(rec["lr"]), "")
        except Bad as bad:
            raise bad.under("lr") from None
    if rec.get("dtype"):
        dtype = rec["dtype"]
        if type(dtype) is not str or dtype not in _DTYPES:
            raise Bad("dtype", f"is {kind_of(dtype)}, not a numeric dtype ({', '.join(_DTYPES)})")
        out["dtype"] = dtype
    if rec.get("tags"):
        out["tags"] = strs(rec["tags"], "tags")
    if rec.get("loc"):
        out["location"] = _location(rec["loc"])
    return out


def _location(loc: Any) -> SourceLocation:
    if (type(loc) is not list or not 1 <= len(loc) <= 3
            or type(loc[0]) not in (str, type(None))
            or any(type(x) not in (int, type(None)) for x in loc[1:])):
        raise Bad("loc", f"must be [file, line, column] (a string and two integers), not "
                   f"{kind_of(loc)}")
    return SourceLocation(*loc)


def _columns_v1(doc: dict[str, Any]) -> _Columns:
    """A version 1 graph (one object per node, inputs by name) as columns; old CNTK
    attributes become file fields. Raises Bad naming the key."""
    from netsurgeon.formats.cntk._legacy import split_legacy_attrs
    from netsurgeon.ops import OPS

    records = need_type(get(doc, "nodes"), list, "nodes", "a list of node objects")
    exact: dict[str, int] = {}
    for i, rec in enumerate(records):
        need_type(rec, dict, f"nodes[{i}]", "an object")
        exact[need_type(rec.get("name"), str, f"nodes[{i}].name", "a string")] = i
    folded = {name.lower(): i for name, i in exact.items()}

    def find(name: Any, key: str) -> int:
        found = exact.get(name) if type(name) is str else None
        if found is None and type(name) is str:
            found = folded.get(name.lower())
        if found is None:
            raise Bad(key, f"is {kind_of(name)}, which names no node")
        return found

    ops: dict[str, int] = {}
    shapes: dict[tuple[int, ...], int] = {}
    c = _Columns(name=need_type(doc.get("name", ""), str, "name", "a string"), names=[],
                 op_table=[], op=[], arity=[], inputs=[], shape_table=[], shape=[], dynamic="",
                 metadata=_metadata(doc))
    flags = []
    for i, rec in enumerate(records):
        at = f"nodes[{i}]"
        c.names.append(rec["name"])
        op = need_type(rec.get("op"), str, f"{at}.op", "an operation name")
        c.op.append(ops.setdefault(op, len(ops)))
        ins = rec.get("inputs")
        ins = [] if ins is None else need_type(ins, list, f"{at}.inputs", "a list of names")
        c.arity.append(len(ins))
        c.inputs.extend(-1 if name is None else find(name, f"{at}.inputs[{k}]")
                        for k, name in enumerate(ins))
        shape = rec.get("shape")
        c.shape.append(-1 if shape is None else
                       shapes.setdefault(shape_of(shape, f"{at}.shape"), len(shapes)))
        dynamic = rec.get("dynamic")
        if dynamic not in _FLAG or type(dynamic) not in (bool, type(None)):
            raise Bad(f"{at}.dynamic", f"must be true, false or null, not {kind_of(dynamic)}")
        flags.append(_FLAG[dynamic])
        plain = {k: rec[k] for k in ("value", "dtype", "tags", "loc", "lr") if k in rec}
        try:
            extra = _record(plain)
            attrs = rec.get("attrs")
            attrs = {} if attrs is None else decode(need_type(attrs, dict, "attrs",
                                                                "an object"))
        except Bad as bad:
            raise bad.under(at) from None
        spec = OPS.find_op(op)
        if attrs and spec is not None:
            attrs, fields = split_legacy_attrs(spec, attrs)
            if fields:
                extra["file_fields"] = fields
        if attrs:
            extra["attrs"] = attrs
        if extra:
            c.extra[i] = extra
    c.op_table = list(ops)
    c.shape_table = [*shapes, None]
    c.dynamic = "".join(flags)
    groups = doc.get("groups")
    groups = {} if groups is None else need_type(groups, dict, "groups", "an object")
    for group, names in groups.items():
        members = need_type(names, list, f"groups.{group}", "a list of node names")
        c.groups[group] = [find(name, f"groups.{group}[{k}]") for k, name in enumerate(members)]
    return c


def _build(path: Path, c: _Columns, tensors: dict[str, _Tensor], buffer,
           data_start: int) -> Network:
    net = Network(c.name or path.stem)
    has_op = net.registry.has_op
    for o, op in enumerate(c.op_table):
        if not has_op(op) and o in c.op:
            at = c.names[c.op.index(o)]
            raise FormatError(f"{path}: node '{at}' has unknown operation '{op}'; a newer "
                              "netsurgeon wrote it, or the file is damaged", node=at)
    created: list[Node] = []
    later: list[tuple[Node, list[int]]] = []  # nodes with an input after them in the file
    used: dict[str, str] = {}  # tensor name -> the node it is the value of
    add, extra, flat, ops, shapes = net.add, c.extra, c.inputs, c.op_table, c.shape_table
    at = 0
    try:
        for i, (name, o, k, s, d) in enumerate(zip(c.names, c.op, c.arity, c.shape, c.dynamic)):
            if k == 1:  # the common case, spelled out: most nodes have one input
                j = flat[at]
                wanted = [j]
                ins = [created[j]] if 0 <= j < i else [None] if j < 0 else []
            else:
                wanted = flat[at:at + k]
                ins = ([None if j < 0 else created[j] for j in wanted]
                       if all(j < i for j in wanted) else [])
            at += k
            rec = extra.get(i)
            if rec is None:
                node = add(name, ops[o], ins, shape=shapes[s], dynamic=_UNFLAG[d])
            else:
                if "value" in rec:
                    rec = {**rec, "value": _tensor(path, tensors, rec["value"], name, used,
                                                   buffer, data_start)}
                node = add(name, ops[o], ins, shape=shapes[s], dynamic=_UNFLAG[d], **rec)
            created.append(node)
            if k and not ins:
                later.append((node, wanted))
        for node, wanted in later:
            net.set_inputs(node, [None if j < 0 else created[j] for j in wanted])
        for group, members in c.groups.items():
            for j in members:
                net.add_to_group(group, created[j])
    except NetsurgeonError as exc:
        if isinstance(exc, FormatError):
            raise
        text = exc.message
        if exc.node is not None and f"'{exc.node}'" not in text:
            text = f"node '{exc.node}': {text}"
        raise FormatError(f"{path}: {text}", node=exc.node, hint=exc.hint) from None
    net.metadata = c.metadata
    return net


def _tensor(path: Path, tensors: dict[str, _Tensor], key: str, node: str, used: dict[str, str],
            buffer, data_start: int) -> np.ndarray:
    """The value of ``node``: a copy-on-write view of tensor ``key`` in the mapped file."""
    info = tensors.get(key)
    if info is None or info.dtype not in _NUMPY:
        why = "is not in the header" if info is None else f"has dtype {info.dtype}, which " \
              "netsurgeon cannot read"
        raise FormatError(f"{path}: tensor '{key}', the value of node '{node}', {why}",
                          node=node)
    if key in used:
        raise FormatError(f"{path}: tensor '{key}' is the value of node '{used[key]}' and of "
                          f"node '{node}'; each node needs a tensor of its own", node=node)
    used[key] = node
    dtype = np.dtype(_NUMPY[info.dtype])
    count = math.prod(info.shape)
    if count == 0:
        return np.zeros(info.shape, dtype)
    return np.frombuffer(buffer, dtype=dtype, count=count,
                         offset=data_start + info.begin).reshape(info.shape)
