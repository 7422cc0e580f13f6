"""The native model format: a safetensors file whose metadata holds the graph as JSON.

Layout (any safetensors reader can open the weights)::

    u64 little-endian header length N
    N bytes of JSON: {"<tensor>": {"dtype", "shape", "data_offsets"}, ...,
                      "__metadata__": {"format": "netsurgeon", "version": "1",
                                       "graph": "<JSON text of the graph>"}}
    tensor bytes, in header order, C order

Loading executes no code (JSON only, no pickle) and maps the weights from disk: each
parameter is a copy-on-write ``np.memmap`` view, so nothing is read until used and edits never
reach the file. Tensor names are the node names. Saving is atomic.
"""

from __future__ import annotations

import base64
import json
import mmap
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from netsurgeon.errors import FormatError
from netsurgeon.formats._atomic import atomic_write
from netsurgeon.graph import Network, Node

__all__ = ["save", "load", "MAGIC_FORMAT", "GRAPH_VERSION", "looks_native"]

MAGIC_FORMAT = "netsurgeon"
GRAPH_VERSION = 1
_MAX_HEADER = 1 << 31

_DTYPES = {
    "float32": "F32", "float64": "F64", "float16": "F16", "bfloat16": "BF16",
    "int8": "I8", "int16": "I16", "int32": "I32", "int64": "I64",
    "uint8": "U8", "uint16": "U16", "uint32": "U32", "uint64": "U64", "bool": "BOOL",
}
_NUMPY = {v: k for k, v in _DTYPES.items() if k != "bfloat16"}


def looks_native(head: bytes) -> bool:
    """True if the first bytes look like a safetensors file with a JSON header."""
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n < _MAX_HEADER and head[8:9] == b"{"


# ---- JSON encoding of attribute values ---------------------------------------------------
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
        return value.item()
    if isinstance(value, np.ndarray):
        return {"__array__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, float) and not np.isfinite(value):
        return {"__float__": repr(value)}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "__tuple__" in value and len(value) == 1:
            return tuple(_decode(v) for v in value["__tuple__"])
        if "__bytes__" in value and len(value) == 1:
            return base64.b64decode(value["__bytes__"])
        if "__float__" in value and len(value) == 1:
            return float(value["__float__"])
        if "__array__" in value and len(value) == 2:
            return np.array(value["__array__"], dtype=value["dtype"])
        return {k: _decode(v) for k, v in value.items()}
    return value


# ---- save ------------------------------------------------------------------------------------
def _graph_json(net: Network, tensor_of: dict[Node, str]) -> str:
    nodes = []
    for n in net.nodes:
        rec: dict[str, Any] = {"name": n.name, "op": n.op,
                               "inputs": [None if i is None else i.name for i in n.inputs]}
        if n.attrs:
            rec["attrs"] = _encode(n.attrs)
        if n.shape is not None:
            rec["shape"] = list(n.shape)
        if n.dynamic is not None:
            rec["dynamic"] = n.dynamic
        if n.dtype != "float32":
            rec["dtype"] = n.dtype
        if n.learning_rate_multiplier != 1.0:
            rec["lr"] = n.learning_rate_multiplier
        if n.tags:
            rec["tags"] = sorted(n.tags)
        if n in tensor_of:
            rec["value"] = tensor_of[n]
        if n.location is not None:
            rec["loc"] = [n.location.file, n.location.line, n.location.column]
        nodes.append(rec)
    doc = {
        "format": MAGIC_FORMAT,
        "version": GRAPH_VERSION,
        "name": net.name,
        "nodes": nodes,
        "groups": {g: [n.name for n in members] for g, members in net.groups().items() if members},
        "metadata": _encode(net.metadata),
    }
    return json.dumps(doc, separators=(",", ":"), allow_nan=False)


def save(net: Network, path: str | os.PathLike[str]) -> None:
    """Write ``net`` to ``path`` atomically (temporary file, then rename)."""
    arrays: list[tuple[str, np.ndarray]] = []
    tensor_of: dict[Node, str] = {}
    for n in net.nodes:
        if n.value is not None:
            arr = np.asarray(n.value)
            if str(arr.dtype) not in _DTYPES:
                raise FormatError(f"cannot store dtype {arr.dtype} of node '{n.name}'", node=n.name)
            tensor_of[n] = n.name
            arrays.append((n.name, arr))
    header: dict[str, Any] = {}
    offset = 0
    for name, arr in arrays:
        size = arr.nbytes
        header[name] = {"dtype": _DTYPES[str(arr.dtype)], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    header["__metadata__"] = {"format": MAGIC_FORMAT, "version": str(GRAPH_VERSION),
                              "graph": _graph_json(net, tensor_of)}
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
            raise FormatError(f"{path}: header length {n} at offset 0 does not fit the file of {size} bytes")
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
    meta = header.get("__metadata__") or {}
    if meta.get("format") != MAGIC_FORMAT or "graph" not in meta:
        raise FormatError(f"{path}: a safetensors file without a netsurgeon graph in its metadata")
    try:
        doc = json.loads(meta["graph"])
        version = int(doc.get("version", 0))
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise FormatError(f"{path}: the graph JSON in the metadata is malformed: {exc}") from exc
    if version > GRAPH_VERSION or version < 1:
        raise FormatError(f"{path}: graph format version {version} is not supported (this netsurgeon "
                          f"reads up to version {GRAPH_VERSION}; upgrade netsurgeon)")
    buffer = None
    if size > data_start:
        with open(path, "rb") as f:
            buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    try:
        return _build(path, doc, header, buffer, data_start, size)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise FormatError(f"{path}: the graph JSON is inconsistent: {exc!r}") from exc


def _tensor(path: Path, header: dict, key: str, buffer, data_start: int, size: int) -> np.ndarray:
    info = header.get(key)
    if not isinstance(info, dict) or info.get("dtype") not in _NUMPY:
        raise FormatError(f"{path}: tensor '{key}' is missing or has an unsupported dtype", node=key)
    begin, end = (int(x) for x in info["data_offsets"])
    shape = tuple(int(d) for d in info["shape"])
    dtype = np.dtype(_NUMPY[info["dtype"]])
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if begin < 0 or end < begin or data_start + end > size or end - begin != count * dtype.itemsize:
        raise FormatError(f"{path}: tensor '{key}' has data offsets [{begin}, {end}) that do not fit "
                          f"its shape {shape} or the file", node=key)
    if count == 0:
        return np.zeros(shape, dtype)
    return np.frombuffer(buffer, dtype=dtype, count=count, offset=data_start + begin).reshape(shape)


def _build(path: Path, doc: dict, header: dict, buffer, data_start: int, size: int) -> Network:
    from netsurgeon.errors import SourceLocation

    net = Network(str(doc.get("name", path.stem)))
    records = doc["nodes"]
    nodes: list[Node] = []
    for rec in records:
        value = None
        if rec.get("value") is not None:
            value = _tensor(path, header, rec["value"], buffer, data_start, size)
        loc = rec.get("loc")
        node = Node(
            rec["name"], rec["op"], attrs=_decode(rec.get("attrs") or {}),
            shape=tuple(rec["shape"]) if rec.get("shape") is not None else None, value=value,
            learning_rate_multiplier=float(rec.get("lr", 1.0)), dtype=rec.get("dtype", "float32"),
            tags=set(rec.get("tags", ())),
            location=SourceLocation(*loc) if loc else None,
        )
        node.dynamic = rec.get("dynamic")
        if not net.registry.has_op(node.op):
            raise FormatError(f"{path}: node '{node.name}' has unknown operation '{node.op}'", node=node.name)
        node.op = net.registry.op(node.op).name
        net.adopt(node)
        nodes.append(node)
    for node, rec in zip(nodes, records):
        if rec["inputs"]:
            net.set_inputs(node, rec["inputs"])
    for group, names in (doc.get("groups") or {}).items():
        for name in names:
            net.add_to_group(group, name)
    net.metadata = _decode(doc.get("metadata") or {})
    return net
