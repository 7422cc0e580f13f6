"""ONNX export: which nodes become outputs, the opset, the ModelProto, the file.

``to_model(net)`` returns a complete ``onnx.ModelProto``; ``save(net, path)`` writes one
atomically without copying the parameters into the protobuf (``export_write``). Outputs are
the ``outputs`` named, else the network's output group, else every root that is not a
criterion or evaluation node (or, when there is none, what the criteria read);
``keep_criteria`` adds the criterion and evaluation nodes.
Nothing is written unless the whole graph exports.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from netsurgeon.errors import FormatError
from netsurgeon.formats.onnx.export_context import Streamed
from netsurgeon.graph import Network, Node, roots
from netsurgeon.ops import Category

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "select_outputs", "export", "to_model", "save"]

#: the newest opset onnxruntime 1.30 runs (onnx 1.23 defines up to 28; ORT refuses > 26)
DEFAULT_OPSET = 26
#: the oldest opset the entries are written for (Reduce* take their axes as an input)
MIN_OPSET = 18


def select_outputs(net: Network, names: Iterable[str] | None = None,
                   keep_criteria: bool = False) -> list[Node]:
    """The nodes to export as graph outputs, in order, each once.

    Raises:
        GraphError: a name that is not a node (with close matches).
    """
    if names:
        chosen = [net.node(n) for n in names]
    else:
        chosen = net.group("output")
        if not chosen:
            skip = set(net.group("criterion")) | set(net.group("evaluation"))
            ops = net.registry.op_set(Category.CRITERION) | net.registry.op_set(
                Category.EVALUATION) | net.registry.op_set(Category.LEAF)
            chosen = [n for n in roots(net) if n not in skip and n.op not in ops]
        if not chosen:  # only criteria at the top: export what they score
            chosen = [i for n in roots(net) for i in n.inputs
                      if i is not None and i.op not in ops and i not in skip]
    if keep_criteria:
        chosen = chosen + net.group("criterion") + net.group("evaluation")
    unique = list(dict.fromkeys(chosen))
    if not unique:
        raise FormatError(f"network '{net.name}' has nothing to export: no output, and no root "
                          "besides criteria", hint="name the nodes with --outputs")
    return unique


def _opset(opset: int | None) -> int:
    import onnx

    if opset is None:
        return DEFAULT_OPSET
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= int(opset) <= newest:
        raise FormatError(f"ONNX opset {opset} is not supported; use {MIN_OPSET} to {newest} "
                          f"(default {DEFAULT_OPSET}, the newest onnxruntime runs)")
    return int(opset)


def export(net: Network, outputs: Iterable[str] | None = None, *, keep_criteria: bool = False,
           opset: int | None = None) -> tuple[Any, list[Streamed]]:
    """The ModelProto without the parameters' data, and the parameters to stream into it."""
    import onnx

    from netsurgeon import __version__
    from netsurgeon.formats.onnx.export_graph import Exporter

    version = _opset(opset)
    if any(n.shape is None or n.dynamic is None for n in net.nodes):
        net.validate()
    chosen = select_outputs(net, outputs, keep_criteria)
    exporter = Exporter(net, chosen, version)
    graph = exporter.graph()
    ops = [onnx.helper.make_opsetid("", version)]
    model = onnx.helper.make_model(graph, opset_imports=ops, producer_name="netsurgeon",
                                   producer_version=__version__,
                                   ir_version=onnx.helper.find_min_ir_version_for(ops))
    return model, exporter.ctx.streamed


def to_model(net: Network, outputs: Iterable[str] | None = None, *,
             keep_criteria: bool = False, opset: int | None = None) -> Any:
    """A complete in-memory ``onnx.ModelProto`` of ``net`` (parameters copied in)."""
    from netsurgeon.formats.onnx.export_write import fill_data

    model, streamed = export(net, outputs, keep_criteria=keep_criteria, opset=opset)
    return fill_data(model, streamed)


def save(net: Network, path: str | os.PathLike[str], outputs: Iterable[str] | None = None, *,
         keep_criteria: bool = False, opset: int | None = None) -> bool:
    """Export ``net`` and write it to ``path`` atomically (nothing is written if any node
    cannot be exported). Returns True when the tensors went to ``<path>.data``."""
    from netsurgeon.formats._atomic import output_path
    from netsurgeon.formats.onnx.export_write import write_model

    output_path(path)
    model, streamed = export(net, outputs, keep_criteria=keep_criteria, opset=opset)
    return write_model(model, streamed, path)
