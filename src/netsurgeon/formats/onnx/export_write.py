"""Writing an exported model: the ModelProto bytes with the parameter arrays streamed in.

Parameters are not copied into the protobuf: the model is serialized without them and each
initializer is written as its header followed by the array's own buffer (protobuf accepts
fields in any order, so ``raw_data`` may come last). A model whose file would pass
:data:`EXTERNAL_DATA_THRESHOLD` (protobuf's 2 GB limit, less a margin) keeps its large
tensors in ``<model file>.data`` beside it instead, each at an offset aligned to 4096 bytes.
Both files go through :func:`~netsurgeon.formats._atomic.atomic_write`: a fresh data file
replaces the old one (never appended to), and the model is renamed into place only after it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from netsurgeon.formats._atomic import atomic_write, output_path
from netsurgeon.formats.onnx.export_context import Streamed

__all__ = ["EXTERNAL_DATA_THRESHOLD", "EXTERNAL_MIN_BYTES", "write_model", "fill_data",
           "data_path_for"]

#: file size from which tensors move to external data (module-level: tests lower it)
EXTERNAL_DATA_THRESHOLD = 2 ** 31 - 2 ** 26
#: tensors smaller than this stay inside the model file even with external data
EXTERNAL_MIN_BYTES = 1024
_ALIGN = 4096

_GRAPH_FIELD = 7  # ModelProto.graph
_INITIALIZER_FIELD = 5  # GraphProto.initializer
_RAW_DATA_FIELD = 9  # TensorProto.raw_data
_HEAD_FIELDS = ("ir_version", "producer_name", "producer_version", "domain", "model_version",
                "doc_string")  # ModelProto fields 1-6


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, length: int) -> bytes:
    """The tag and length of a length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(length)


def data_path_for(path: str | os.PathLike[str]) -> Path:
    """Where the external data of a model written to ``path`` goes."""
    p = Path(path)
    return p.with_name(p.name + ".data")


def fill_data(model: Any, streamed: Iterable[Streamed]) -> Any:
    """Put the streamed arrays into ``model``'s initializers (an in-memory ModelProto)."""
    for s in streamed:
        t = model.graph.initializer.add()
        t.CopyFrom(s.proto)
        t.raw_data = s.array.tobytes()
    return model


def _buffer(arr: np.ndarray) -> memoryview:
    return memoryview(np.ascontiguousarray(arr)).cast("B")


def _estimate(model: Any, streamed: list[Streamed]) -> int:
    return model.ByteSize() + sum(s.array.nbytes + s.proto.ByteSize() + 32 for s in streamed)


def write_model(model: Any, streamed: list[Streamed], path: str | os.PathLike[str]) -> bool:
    """Write ``model`` plus the streamed initializers to ``path`` atomically; returns True when
    the tensors went to external data (``data_path_for(path)``)."""
    output_path(path)  # a clear error before any work
    external = _estimate(model, streamed) >= EXTERNAL_DATA_THRESHOLD
    if not external:
        with atomic_write(path) as out:
            _write_inline(model, streamed, out)
        return False
    data_path = data_path_for(path)
    output_path(data_path)
    inline, outside = [], []
    for s in streamed:
        (outside if s.array.nbytes >= EXTERNAL_MIN_BYTES else inline).append(s)
    # the model file is renamed last: a failure on the way leaves the old pair untouched
    with atomic_write(path) as out, atomic_write(data_path) as data:
        headers = _write_external(outside, data, data_path.name)
        _write_inline(model, inline, out, headers)
    return True


def _write_external(streamed: list[Streamed], data: BinaryIO, location: str) -> list[bytes]:
    """Write the arrays to ``data``; returns each tensor's header pointing at its bytes."""
    from onnx import TensorProto

    headers = []
    offset = 0
    for s in streamed:
        pad = -offset % _ALIGN
        if pad:
            data.write(b"\0" * pad)
            offset += pad
        data.write(_buffer(s.array))
        proto = TensorProto()
        proto.CopyFrom(s.proto)
        proto.data_location = TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", str(offset)),
                           ("length", str(s.array.nbytes))):
            entry = proto.external_data.add()
            entry.key, entry.value = key, value
        offset += s.array.nbytes
        encoded = proto.SerializeToString()
        headers.append(_field(_INITIALIZER_FIELD, len(encoded)) + encoded)
    return headers


def _write_inline(model: Any, streamed: list[Streamed], out: BinaryIO,
                  extra: list[bytes] = ()) -> None:
    """Serialize ``model`` with the streamed tensors' data written from their buffers."""
    from onnx import ModelProto

    # fields in number order, as every writer does (readers sniff the first ones): 1-6, the
    # graph (7) with the streamed initializers, then the rest (opset_import, ...)
    head, tail = ModelProto(), ModelProto()
    tail.CopyFrom(model)  # small: the parameters are not in it
    tail.ClearField("graph")
    for name in _HEAD_FIELDS:
        if tail.HasField(name):
            setattr(head, name, getattr(tail, name))
            tail.ClearField(name)
    graph_bytes = model.graph.SerializeToString()
    pieces: list[tuple[bytes, memoryview | None]] = []
    size = len(graph_bytes) + sum(len(e) for e in extra)
    for s in streamed:
        header = s.proto.SerializeToString()
        data = _buffer(s.array)
        body_len = len(header) + len(_field(_RAW_DATA_FIELD, data.nbytes)) + data.nbytes
        lead = _field(_INITIALIZER_FIELD, body_len) + header + _field(_RAW_DATA_FIELD, data.nbytes)
        pieces.append((lead, data))
        size += len(lead) + data.nbytes
    out.write(head.SerializeToString())
    out.write(_field(_GRAPH_FIELD, size))
    out.write(graph_bytes)
    for e in extra:
        out.write(e)
    for tensor_head, data in pieces:
        out.write(tensor_head)
        out.write(data)
    out.write(tail.SerializeToString())
