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
parameter is a copy-on-write ``np.memmap`` view, so nothing is read until used and edits never
reach the file. Tensor names are the node names. Saving is atomic.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import json
import math
import mmap
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from netsurgeon.errors import FormatError, NetsurgeonError, SourceLocation
from netsurgeon.formats._atomic import atomic_write
from netsurgeon.graph import Network, Node

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
_FLAG = {True: "1", False: "0", None: "-"}
_UNFLAG = {"1": True, "0": False, "-": None}


def looks_native(head: bytes) -> bool:
    """True if the first bytes look like a safetensors file with a JSON header."""
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n < _MAX_HEADER and head[8:9] == b"{"


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a graph is converted.

    NOTE: why. A network holds no reference cycles (nodes keep only a weak reference to it),
    so the collector has nothing to free here, but its passes over a million fresh nodes cost
    more than building them. It is switched back on afterwards only if it was on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# ---- JSON encoding of attribute, file-field and metadata values --------------------------------
def _encode(value: Any) -> Any:
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return {"__bytes__": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, np.generic):
        return _encode(value.item())
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1:
            if "__tuple__" in value:
                return tuple(_decode(v) for v in value["__tuple__"])
            if "__bytes__" in value:
                return base64.b64decode(value["__bytes__"])
            if "__float__" in value:
                return float(value["__float__"])
        if "__array__" in value and len(value) == 2:
            return np.array(value["__array__"], dtype=value["dtype"])
        return {k: _decode(v) for k, v in value.items()}
    return value


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

    def check(self) -> None:
        n = len(self.names)
        if not len(self.op) == len(self.arity) == len(self.shape) == len(self.dynamic) == n:
            raise ValueError(f"the node columns have different lengths (names: {n})")
        if sum(self.arity) != len(self.inputs):
            raise ValueError("the input counts do not add up to the inputs listed")
        if self.shape_table[-1:] != [None]:
            raise ValueError("the shape table lacks its final None")


def _tensor_key(name: str) -> str:
    return name if name != _METADATA else _METADATA + ".value"


def _needs_extra(n: Node, has_attrs: bool, tensor_of: dict[Node, str]) -> bool:
    return bool(has_attrs or n in tensor_of or n.learning_rate_multiplier != 1.0
                or n.dtype != "float32" or n.tags or n.location is not None or n.file_fields)


def _extra(n: Node, has_attrs: bool, tensor_of: dict[Node, str]) -> dict[str, Any]:
    """The ``extra`` record of a node (see :func:`_needs_extra`)."""
    rec: dict[str, Any] = {}
    if has_attrs:
        rec["attrs"] = _encode(dict(n.attrs))
    key = tensor_of.get(n)
    if key is not None:
        rec["value"] = key
    if n.learning_rate_multiplier != 1.0:
        rec["lr"] = _encode(n.learning_rate_multiplier)
    if n.dtype != "float32":
        rec["dtype"] = n.dtype
    if n.tags:
        rec["tags"] = sorted(n.tags)
    loc = n.location
    if loc is not None:
        rec["loc"] = [loc.file, loc.line, loc.column]
    if n.file_fields:
        rec["fields"] = _encode(dict(n.file_fields))
    return rec


def _graph_json(net: Network, tensor_of: dict[Node, str]) -> str:
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
            extra.append([i, _extra(n, has_attrs[op], tensor_of)])
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
        "metadata": _encode(net.metadata),
    }
    return json.dumps(doc, separators=(",", ":"), allow_nan=False)


# ---- save ------------------------------------------------------------------------------------
def save(net: Network, path: str | os.PathLike[str]) -> None:
    """Write ``net`` to ``path`` atomically (temporary file, then rename)."""
    arrays: list[tuple[str, np.ndarray]] = []
    tensor_of: dict[Node, str] = {}
    for n in net.nodes:
        if n.value is not None:
            arr = np.asarray(n.value)
            if str(arr.dtype) not in _DTYPES:
                raise FormatError(f"cannot store dtype {arr.dtype} of node '{n.name}'; convert "
                                  "its value to a float or integer type", node=n.name)
            tensor_of[n] = _tensor_key(n.name)
            arrays.append((tensor_of[n], arr))
    header: dict[str, Any] = {}
    offset = 0
    for name, arr in arrays:
        size = arr.nbytes
        header[name] = {"dtype": _DTYPES[str(arr.dtype)], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    with _collector_paused():
        graph = _graph_json(net, tensor_of)
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
def _read_header(path: Path) -> tuple[dict[str, Any], int, int]:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise FormatError(f"{path}: truncated native model (no header length at offset 0)")
        (n,) = struct.unpack("<Q", head)
        if n < 2 or n > size - 8 or n > _MAX_HEADER:
            raise FormatError(f"{path}: header length {n} at offset 0 does not fit the file of "
                              f"{size} bytes")
        raw = f.read(n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path}: the JSON header (offset 8) is malformed: {exc}") from exc
    if not isinstance(header, dict):
        raise FormatError(f"{path}: the JSON header (offset 8) is not an object")
    return header, 8 + n, size


def load(path: str | os.PathLike[str]) -> Network:
    """Read a native model; weights are memory-mapped copy-on-write views of the file."""
    path = Path(path)
    header, data_start, size = _read_header(path)
    meta = header.get(_METADATA) or {}
    if not isinstance(meta, dict) or meta.get("format") != MAGIC_FORMAT or "graph" not in meta:
        raise FormatError(f"{path}: a safetensors file without a netsurgeon graph in its metadata")
    with _collector_paused():
        try:
            doc = json.loads(meta["graph"])
            version = int(doc.get("version", 0))
        except (json.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
            raise FormatError(f"{path}: the graph JSON in the metadata is malformed: {exc}"
                              ) from exc
        if version > GRAPH_VERSION or version < 1:
            raise FormatError(f"{path}: graph format version {version} is not supported (this "
                              f"netsurgeon reads versions 1 to {GRAPH_VERSION}; upgrade "
                              "netsurgeon)")
        buffer = None
        if size > data_start:
            with open(path, "rb") as f:
                buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        try:
            columns = _columns_v2(doc) if version == 2 else _columns_v1(doc)
            return _build(path, columns, header, buffer, data_start, size)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise FormatError(f"{path}: the graph JSON is inconsistent: {exc!r}") from exc


def _columns_v2(doc: dict[str, Any]) -> _Columns:
    columns = _Columns(
        name=str(doc.get("name", "")), names=doc["names"], op_table=doc["ops"], op=doc["op"],
        arity=doc["arity"], inputs=doc["inputs"],
        shape_table=[tuple(int(d) for d in s) for s in doc["shapes"]] + [None],
        shape=doc["shape"], dynamic=doc["dynamic"],
        extra={int(i): rec for i, rec in doc.get("extra", ())},
        groups={str(g): list(members) for g, members in (doc.get("groups") or {}).items()},
        metadata=_decode(doc.get("metadata") or {}),
    )
    for rec in columns.extra.values():
        for key in ("attrs", "fields", "lr"):
            if key in rec:
                rec[key] = _decode(rec[key])
    return columns


def _columns_v1(doc: dict[str, Any]) -> _Columns:
    """A version 1 graph (one object per node, inputs by name) as columns; old CNTK
    attributes become file fields."""
    from netsurgeon.formats.cntk._legacy import split_legacy_attrs
    from netsurgeon.ops import OPS

    records = doc["nodes"]
    exact = {rec["name"]: i for i, rec in enumerate(records)}
    folded = {name.lower(): i for name, i in exact.items()}
    ops: dict[str, int] = {}
    shapes: dict[tuple[int, ...], int] = {}
    c = _Columns(name=str(doc.get("name", "")), names=[], op_table=[], op=[], arity=[],
                 inputs=[], shape_table=[], shape=[], dynamic="",
                 metadata=_decode(doc.get("metadata") or {}))
    flags = []
    for i, rec in enumerate(records):
        c.names.append(rec["name"])
        c.op.append(ops.setdefault(rec["op"], len(ops)))
        ins = rec.get("inputs") or []
        c.arity.append(len(ins))
        c.inputs.extend(-1 if name is None else exact.get(name, folded[name.lower()])
                        for name in ins)
        shape = rec.get("shape")
        c.shape.append(-1 if shape is None else
                       shapes.setdefault(tuple(int(d) for d in shape), len(shapes)))
        flags.append(_FLAG[rec.get("dynamic")])
        extra = {k: rec[k] for k in ("value", "dtype", "tags", "loc") if rec.get(k) is not None}
        if "lr" in rec:
            extra["lr"] = float(rec["lr"])
        attrs = _decode(rec.get("attrs") or {})
        spec = OPS.find_op(rec["op"])
        if attrs and spec is not None:
            attrs, fields = split_legacy_attrs(spec, attrs)
            if fields:
                extra["fields"] = fields
        if attrs:
            extra["attrs"] = attrs
        if extra:
            c.extra[i] = extra
    c.op_table = list(ops)
    c.shape_table = [*shapes, None]
    c.dynamic = "".join(flags)
    for group, names in (doc.get("groups") or {}).items():
        c.groups[str(group)] = [exact.get(name, folded[name.lower()]) for name in names]
    return c


def _build(path: Path, c: _Columns, header: dict, buffer, data_start: int, size: int) -> Network:
    c.check()
    net = Network(c.name or path.stem)
    for op in c.op_table:
        if not net.registry.has_op(op):
            at = c.names[c.op.index(c.op_table.index(op))]
            raise FormatError(f"{path}: node '{at}' has unknown operation '{op}'; a newer "
                              "netsurgeon wrote it, or the file is damaged", node=at)
    created: list[Node] = []
    later: list[tuple[Node, list[int]]] = []  # nodes with an input after them in the file
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
                node = add(name, ops[o], ins, shape=shapes[s], dynamic=_UNFLAG[d],
                           **_fields(path, rec, header, buffer, data_start, size))
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
        raise FormatError(f"{path}: {exc.message}", node=exc.node, hint=exc.hint) from None
    net.metadata = c.metadata
    return net


def _fields(path: Path, rec: dict[str, Any], header: dict, buffer, data_start: int,
            size: int) -> dict[str, Any]:
    """The keyword arguments of ``Network.add`` an ``extra`` record gives."""
    out: dict[str, Any] = {}
    if rec.get("attrs"):
        out["attrs"] = rec["attrs"]
    if rec.get("value") is not None:
        out["value"] = _tensor(path, header, rec["value"], buffer, data_start, size)
    if "lr" in rec:
        out["learning_rate_multiplier"] = float(rec["lr"])
    if rec.get("dtype"):
        out["dtype"] = str(rec["dtype"])
    if rec.get("tags"):
        out["tags"] = [str(t) for t in rec["tags"]]
    if rec.get("loc"):
        out["location"] = SourceLocation(*rec["loc"])
    if rec.get("fields"):
        out["file_fields"] = rec["fields"]
    return out


def _tensor(path: Path, header: dict, key: str, buffer, data_start: int, size: int) -> np.ndarray:
    info = header.get(key)
    if not isinstance(info, dict) or info.get("dtype") not in _NUMPY:
        raise FormatError(f"{path}: tensor '{key}' is missing or has an unsupported dtype",
                          node=key)
    begin, end = (int(x) for x in info["data_offsets"])
    shape = tuple(int(d) for d in info["shape"])
    dtype = np.dtype(_NUMPY[info["dtype"]])
    count = math.prod(shape)
    if begin < 0 or end < begin or data_start + end > size or end - begin != count * dtype.itemsize:
        raise FormatError(f"{path}: tensor '{key}' has data offsets [{begin}, {end}) that do not "
                          f"fit its shape {shape} or the file", node=key)
    if count == 0:
        return np.zeros(shape, dtype)
    return np.frombuffer(buffer, dtype=dtype, count=count, offset=data_start + begin).reshape(shape)

