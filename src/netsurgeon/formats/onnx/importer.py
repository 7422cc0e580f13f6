"""ONNX import: ``read(path) -> Network`` of registry ops (docs/onnx-import.md).

The file is read through :mod:`netsurgeon._inputs` (regular files only) and parsed by the
onnx package (imported here, lazily: ``import netsurgeon`` stays light). Nodes are converted in
dependency order (a cycle or a dangling input is an error naming the node); initializers and
Constant nodes stay numpy constants until an op needs them as node inputs (then they become
LearnableParameters named after the initializer), and everything computable from constants
alone is folded (:mod:`.importer_fold`). Data inputs become InputValues whose sample shape
drops the batch axes (:mod:`.importer_graph`), graph outputs go to the ``output`` group.
Every problem is one :class:`~netsurgeon.errors.FormatError` line naming the file and, where
there is one, the ONNX node and its op_type.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from netsurgeon._inputs import read_bytes
from netsurgeon.errors import FormatError, SourceLocation
from netsurgeon.formats.onnx.importer_detect import HEAD_BYTES, looks_onnx
from netsurgeon.formats.onnx.importer_fold import BATCH_SAFE, FOLD
from netsurgeon.formats.onnx.importer_graph import Builder, Value
from netsurgeon.formats.onnx.importer_tensors import ExternalData, tensor_array
from netsurgeon.graph import Network

__all__ = ["read", "read_model", "looks_onnx", "HEAD_BYTES"]

_DEFAULT_DOMAINS = ("", "ai.onnx")
_FLOAT_TYPES = (1, 10, 11, 16)


def read(path: str | os.PathLike[str], *, constant: bool = False,
         name: str | None = None) -> Network:
    """Read an ONNX model file as a validated Network.

    Args:
        path: a regular ``.onnx`` file; external data files are looked up beside it.
        constant: make every initializer a constant (learning-rate multiplier 0) instead of
            a learnable parameter.
        name: the network's name (default: the file name without its suffix).
    """
    p = Path(path)
    where = SourceLocation(str(p))
    data = read_bytes(p, "ONNX model", FormatError)
    model = _parse(data, where)
    return _convert(model, name or p.stem, where, ExternalData(p.parent, where), constant)


def read_model(model: Any, name: str = "model", *, constant: bool = False,
               folder: str | os.PathLike[str] | None = None) -> Network:
    """Convert an in-memory ``onnx.ModelProto`` (``folder``: where its external data is)."""
    where = SourceLocation(f"<{name}>")
    external = ExternalData(Path(folder) if folder is not None else None, where)
    return _convert(model, name, where, external, constant)


def _parse(data: bytes, where: SourceLocation) -> Any:
    import onnx
    from google.protobuf.message import DecodeError

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise FormatError(f"not an ONNX model, or a truncated or corrupted one ({exc})",
                          location=where) from None
    if not model.HasField("graph") or not model.graph.output:
        raise FormatError("the ONNX model holds no graph with outputs (truncated or not an "
                          "ONNX file)", location=where)
    return model


def _opset(model: Any, where: SourceLocation) -> int:
    for entry in model.opset_import:
        if entry.domain in _DEFAULT_DOMAINS:
            return int(entry.version)
    if not model.opset_import:
        return 1
    raise FormatError("the model imports no opset of the default ONNX domain",
                      location=where)


def _dims(value_info: Any) -> list[int | None]:
    """Declared dims (None where free) of a graph input or output."""
    shape = value_info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else None for d in shape.dim]


def _batch_rank(model: Any, inputs: list[Any], where: SourceLocation) -> int:
    """2 for CNTK's ``[Sequence, 1, ...]`` inputs (sequence and batch axes), else 1."""
    if model.producer_name == "CNTK" and inputs:
        dims = _dims(inputs[0])
        if len(dims) >= 2 and dims[0] is None and dims[1] == 1:
            return 2
    return 1


def _convert(model: Any, name: str, where: SourceLocation, external: ExternalData,
             constant: bool) -> Network:
    graph = model.graph
    net = Network(name)
    init_names = {t.name for t in graph.initializer}
    data_inputs = [i for i in graph.input if i.name not in init_names]
    lengths = _lengths_input(data_inputs)
    b = Builder(net, where, 2 if lengths else _batch_rank(model, data_inputs, where), constant)
    b.opset = _opset(model, where)
    b.outputs = {o.name for o in graph.output}
    b.used = _used(graph) | b.outputs
    if lengths is not None:
        b.sequences, b.lengths = True, lengths.name
        data_inputs = [i for i in data_inputs if i is not lengths]
        b.set(lengths.name, Value(lengths.name))
    for t in graph.initializer:
        array = tensor_array(t, where, external, "initializer")
        b.const(t.name, array, learnable=t.data_type in _FLOAT_TYPES)
    for i, info in enumerate(data_inputs):
        _add_input(b, info, first=i == 0)
    for n in _order(graph, b, where):
        _convert_node(b, n)
    b.onnx_node = None
    for out in graph.output:
        v = b.value(out.name)
        node = b.node(v)
        if node.name not in {o.name for o in net.group("output")}:
            net.add_to_group("output", node)
    net.validate()
    return net


def _used(graph: Any) -> set[str]:
    """Every value name a node of ``graph`` or of its subgraphs reads."""
    names: set[str] = set()
    for n in graph.node:
        names.update(n.input)
        for a in n.attribute:
            if a.type == 5:  # GRAPH
                names |= _used(a.g) | {o.name for o in a.g.output}
    return names


def _lengths_input(inputs: list[Any]) -> Any:
    """The int64 ``lengths`` input ``(batch,)`` of a sequence model netsurgeon exported
    (its other inputs are ``(batch, time, *sample)``), or None."""
    for info in inputs:
        t = info.type.tensor_type
        if info.name == "lengths" and t.elem_type in (6, 7) and len(t.shape.dim) == 1 and \
                len(inputs) > 1:
            return info
    return None


def _add_input(b: Builder, info: Any, first: bool) -> None:
    dims = _dims(info)
    k = b.batch_rank
    if len(dims) < k:
        raise FormatError(f"input '{info.name}' has rank {len(dims)}: netsurgeon takes the "
                          f"first {k} axis/axes of every input as the batch axis",
                          location=b.where)
    sample = dims[k:]
    if any(d is None for d in sample):
        raise FormatError(f"input '{info.name}' has a free dimension {dims} after the batch "
                          "axis; netsurgeon needs fixed sample shapes", location=b.where)
    if first:
        b.batch_dims = tuple(dims[:k])
    node = b.net.add(b.unique(info.name), "InputValue", shape=tuple(sample), dynamic=True)
    b.net.add_to_group("feature", node)
    b.set(info.name, Value(info.name, node=node))


def _order(graph: Any, b: Builder, where: SourceLocation) -> list[Any]:
    """The nodes in dependency order (Kahn); a dangling input or a cycle is an error."""
    nodes = list(graph.node)
    producer: dict[str, int] = {}
    for i, n in enumerate(nodes):
        for out in n.output:
            if out in producer or out in b.values:
                raise FormatError(f"value '{out}' is produced twice (node '{n.name}')",
                                  location=where)
            if out:
                producer[out] = i
    users: dict[int, list[int]] = {}
    waiting = [0] * len(nodes)
    for i, n in enumerate(nodes):
        for name in {x for x in n.input if x}:
            if name in b.values:
                continue
            if name not in producer:
                raise FormatError(f"node '{n.name or n.output[0]}' ({n.op_type}): input "
                                  f"'{name}' is not produced by any node, input or "
                                  "initializer", location=where)
            users.setdefault(producer[name], []).append(i)
            waiting[i] += 1
    ready = [i for i, w in enumerate(waiting) if w == 0]
    order = []
    while ready:
        i = ready.pop()
        order.append(nodes[i])
        for j in users.get(i, ()):
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    if len(order) != len(nodes):
        stuck = next(n for i, n in enumerate(nodes) if waiting[i])
        raise FormatError(f"the graph has a cycle through node '{stuck.name or stuck.output[0]}'"
                          f" ({stuck.op_type})", location=where)
    return order


def _attrs(b: Builder, n: Any) -> dict[str, Any]:
    from onnx import helper

    out: dict[str, Any] = {}
    for a in n.attribute:
        value = helper.get_attribute_value(a)
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        elif a.type == 4:  # TENSOR
            value = tensor_array(value, b.where, None, f"attribute {a.name} of")
        out[a.name] = value
    return out


def _constant(b: Builder, n: Any, at: dict[str, Any]) -> np.ndarray:
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in at:
            dtype = np.int64 if key.startswith("value_int") else np.float32
            return at[key] if key == "value" else np.asarray(at[key], dtype)
    raise b.error(f"Constant with {sorted(at)} is not supported (numbers only)")


def _convert_node(b: Builder, n: Any) -> None:
    from netsurgeon.formats.onnx.importer_ops import CONVERTERS

    b.onnx_node = n
    if n.domain not in _DEFAULT_DOMAINS:
        raise b.error(f"ops of domain '{n.domain}' are not supported")
    ins: list[Value | None] = [b.value(x) if x else None for x in n.input]
    if b.lengths is not None and b.lengths in n.input:
        raise b.error(f"reads the sequence lengths '{b.lengths}' (a mask over padded steps), "
                      "which netsurgeon's sequences carry themselves; not supported")
    at = _attrs(b, n)
    if n.op_type == "Constant":
        b.const(n.output[0], _constant(b, n, at))
        return
    given = [v for v in ins if v is not None]
    if n.op_type in FOLD and given and all(v.is_const for v in given) or (
            n.op_type == "Shape" and given):
        _fold(b, n, ins, at)
        return
    convert = CONVERTERS.get(n.op_type)
    if convert is None:
        raise b.error(f"ONNX op {n.op_type} is not supported")
    if given and all(v.is_const for v in given):
        raise b.error(f"all its inputs are constants and netsurgeon does not compute "
                      f"{n.op_type} at import (the ops it folds are in docs/onnx-import.md)")
    leads = {b.lead(v) for v in ins if v is not None and not v.is_const}
    if len(leads) > 1:
        raise b.error("mixes values shaped (batch, time, ...) with frames (batch·time, ...)")
    for v in convert(b, n, ins, at):
        if v.node is not None and v.lead is None:
            v.lead = (leads.pop() if len(leads) == 1 else b.batch_rank) if v.node.dynamic else 0
            leads.add(v.lead)
        b.set(v.name, v)


def _fold(b: Builder, n: Any, ins: list[Value | None], at: dict[str, Any]) -> None:
    given = [v for v in ins if v is not None]
    batch = any(v.batch for v in given)
    if n.op_type == "Shape" and not given[0].is_const:  # a node value: batch axes as 0
        x = given[0]
        lead = b.lead(x)
        dims = np.asarray([0] * lead + list(x.shape), np.int64)
        kept = range(len(dims))[at.get("start", 0):at.get("end")]
        # only a Shape that includes a batch axis holds the batch size (as 0)
        b.const(n.output[0], dims[kept.start:kept.stop], batch=any(i < lead for i in kept))
        return
    if batch and n.op_type == "Expand" and not ins[0].batch:
        # a constant broadcast over the batch (the batch size written as 0): netsurgeon
        # broadcasts constants over the batch axis itself, so expand the sample axes only
        assert ins[0].array is not None and ins[1].array is not None
        dims = [int(d) for d in ins[1].array.reshape(-1)]
        k = min(b.batch_rank, len(dims))
        dims = [1 if d == 0 else d for d in dims[:k]] + dims[k:]
        try:
            result = ins[0].array * np.ones(dims, ins[0].array.dtype)
        except ValueError as exc:
            raise b.error(f"cannot compute it from its constant inputs: {exc}") from None
        b.const(n.output[0], result, learnable=ins[0].learnable)
        return
    if batch and n.op_type not in BATCH_SAFE:
        raise b.error("computes with the batch size (from Shape), which netsurgeon does not "
                      "know at import")
    arrays = [v.array if v is not None else None for v in ins]
    try:
        result = np.asarray(FOLD[n.op_type](arrays, at))
    except (ValueError, IndexError, TypeError, KeyError, ZeroDivisionError) as exc:
        raise b.error(f"cannot compute it from its constant inputs: {exc}") from None
    learnable = any(v.learnable for v in given) and result.dtype.kind == "f"
    b.const(n.output[0], result, learnable=learnable, batch=batch)
