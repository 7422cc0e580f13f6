"""Network -> ONNX graph: order the nodes the outputs need, bind inputs, call each op's entry
in the registry's ``onnx`` layer, turn recurrent loops into ``Scan``, declare the outputs.

A pure reader of the IR, like the runtime's code generator (``runtime/codegen``), and laid out
the same way: a value with the batch/time axis is ``(frames, *sample)``. Feed-forward networks
take inputs ``(batch, *sample)`` (dim_param ``batch``; each row one sample, so "frames" are
the batch). A network with PastValue/FutureValue runs in *sequence mode*: inputs are
``(batch, time, *sample)`` padded sequences plus an int64 ``lengths`` input ``(batch,)``;
values are flattened to frames inside, criteria skip the padding, and outputs with the
dynamic axis come back as ``(batch, time, *sample)``.

Every node's value is the ONNX tensor named as the node (helpers are ``<node>/<what>``); in
sequence mode a frame-valued output's flattened value is ``<node>/frames`` and the graph
output ``<node>`` is its (batch, time, ...) view.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from netsurgeon.errors import FormatError, NetsurgeonError
from netsurgeon.formats.onnx.export_context import Context, Value, refuse
from netsurgeon.formats.onnx.export_reshaping import CASTS as _CASTS
from netsurgeon.graph import (
    Network,
    Node,
    reachable_up,
    strongly_connected_components,
    topological_order,
)
from netsurgeon.ops import Category

__all__ = ["Exporter", "loop_units", "prune"]


def loop_units(net: Network, needed: list[Node]) -> list[list[Node]]:
    """The needed nodes in evaluation order, a recurrent loop (strongly connected component
    through delays) as one unit: the runtime's order."""
    needed_set = set(needed)
    order = topological_order(net, needed, skip_delayed=True)
    position = {n: i for i, n in enumerate(order)}
    units = []
    for comp in strongly_connected_components(net, order):
        comp = [n for n in comp if n in needed_set]
        if comp:
            comp.sort(key=lambda n: position[n])
            units.append(comp)
    return units


def _graph_inputs(graphs: list[Any]) -> set[str]:
    """Every tensor the nodes of these (sub)graphs read, subgraphs of theirs included."""
    names: set[str] = set()
    for g in graphs:
        for p in g.node:
            names.update(p.input)
            names |= _graph_inputs([a.g for a in p.attribute if a.HasField("g")]
                                   + [x for a in p.attribute for x in a.graphs])
    return names


def prune(ctx: Context, outputs: list[str]) -> None:
    """Drop the main-graph nodes nothing reads (what an entry left behind when a later one
    found a shorter way, e.g. a MatMul folded into a Gemm) and the constants no node reads."""
    needed = set(outputs)
    kept = []
    for p in reversed(ctx.main.nodes):
        if any(o in needed for o in p.output):
            kept.append(p)
            needed.update(p.input)
            needed |= _graph_inputs([a.g for a in p.attribute if a.HasField("g")]
                                    + [x for a in p.attribute for x in a.graphs])
    if len(kept) < len(ctx.main.nodes):
        ctx.main.nodes[:] = kept[::-1]
        ctx.initializers[:] = [t for t in ctx.initializers if t.name in needed]
        ctx.streamed[:] = [t for t in ctx.streamed if t.proto.name in needed]


def is_loop(unit: list[Node]) -> bool:
    return len(unit) > 1 or any(x is unit[0] for x in unit[0].inputs)


class Exporter:
    """One export run: ``Exporter(net, outputs, opset).graph()`` -> (GraphProto, streamed)."""

    def __init__(self, net: Network, outputs: list[Node], opset: int) -> None:
        import onnx

        self.onnx = onnx
        self.net = net
        self.outputs = outputs
        self.registry = net.registry
        self.needed = reachable_up(net, outputs)
        self.units = loop_units(net, self.needed)
        self.entries = self._entries()
        inputs = self.registry.op_set(Category.INPUT)
        rank = {n: i for i, n in enumerate(net.group("feature"))}  # graph inputs in this order
        self.inputs = sorted((u[0] for u in self.units if u[0].op in inputs),
                             key=lambda n: rank.get(n, len(rank)))
        delays = self.registry.op_set(Category.DELAY)
        sequences = any(n.op in delays for n in self.needed)
        dtype = np.float64 if self.inputs and all(
            np.dtype(n.dtype or "float32") == np.float64 for n in self.inputs) else np.float32
        self.ctx = Context(onnx, np.dtype(dtype), opset, sequences,
                           reserved=[n.name for n in net.nodes])
        self.values: dict[Node, Value] = {}
        self.out_set = set(outputs)
        uses = self.ctx.uses
        for n in self.needed:
            for i in n.inputs:
                if i is not None:
                    uses[i] = uses.get(i, 0) + 1
        for n in self.out_set:
            uses[n] = uses.get(n, 0) + 1

    # ---- checks before anything is built ---------------------------------------------------
    def _entries(self) -> dict[str, Any]:
        """Every needed op's entry; the first node whose op has none is a one-line error."""
        if "onnx" not in {layer.name for layer in self.registry.layers()}:
            raise FormatError("this network's op registry has no ONNX layer attached (import "
                              "netsurgeon.formats.onnx, or attach its ONNX layer)")
        found: dict[str, Any] = {}
        for unit in self.units:
            for node in unit:
                if node.op in found:
                    continue
                entry = self.registry.entry("onnx", node.op)
                if entry is None:
                    reason = self.registry.unsupported_reason("onnx", node.op) or \
                        "no ONNX export entry is registered"
                    raise refuse(node, reason)
                found[node.op] = entry
        return found

    # ---- building ----------------------------------------------------------------------------
    def graph(self) -> Any:
        """The GraphProto (initializers of parameters without data) and the streamed list."""
        helper = self.onnx.helper
        ctx = self.ctx
        graph_inputs = self._bind_inputs()
        unit_of = {n: i for i, u in enumerate(self.units) for n in u}
        for unit in self.units:
            if unit[0] in self.values:  # an input
                continue
            if is_loop(unit):
                from netsurgeon.formats.onnx.export_recurrent import export_loop

                export_loop(self, unit, unit_of)
            else:
                node = unit[0]
                args = [self.values[i] for i in node.inputs if i is not None]
                self.values[node] = self.run(node, args, self._target(node))
        graph_outputs = [self._declare_output(n) for n in self.outputs]
        prune(ctx, [o.name for o in graph_outputs])
        doc = (f"exported by netsurgeon from network '{self.net.name}'"
               + ("; sequence mode: inputs (batch, time, ...) plus lengths" if ctx.sequences
                  else ""))
        return helper.make_graph(ctx.main.nodes, self.net.name or "netsurgeon", graph_inputs,
                                 graph_outputs, initializer=ctx.initializers, doc_string=doc)

    def _bind_inputs(self) -> list[Any]:
        helper = self.onnx.helper
        ctx = self.ctx
        declared = []
        for node in self.inputs:
            sample = [int(d) for d in node.shape or ()]
            lead = ["batch", "time"] if ctx.sequences else ["batch"]
            declared.append(helper.make_tensor_value_info(node.name, ctx.elem, lead + sample))
            name = node.name
            if ctx.sequences:
                ctx.node = node
                if ctx.batch is None:
                    ctx.batch = ctx.add("Shape", [name], "batch_size", start=0, end=1)
                    ctx.steps = ctx.add("Shape", [name], "time_steps", start=1, end=2)
                name = ctx.add("Reshape", [name, ctx.ints((-1, *sample))], "frames")
            if ctx.frame_source is None:
                ctx.frame_source = name
            self.values[node] = Value(name, node, True, tuple(sample))
        if ctx.sequences:
            ctx.lengths = ctx.names.mint("lengths")
            declared.append(helper.make_tensor_value_info(
                ctx.lengths, self.onnx.TensorProto.INT64, ["batch"]))
        return declared

    def _target(self, node: Node) -> str:
        if self.ctx.sequences and node.dynamic and node in self.out_set:
            return self.ctx.names.mint(node.name + "/frames")
        return node.name

    def run(self, node: Node, args: list[Value], target: str) -> Value:
        """Export one node with ``args``; its value ends up in the tensor ``target``."""
        ctx = self.ctx
        ctx.node = node
        start = len(ctx.scope.nodes)
        try:
            name = self.entries[node.op](ctx, node, args)
        except FormatError as exc:
            if exc.message.startswith("cannot export node"):
                raise
            raise refuse(node, exc.message) from None
        except NetsurgeonError as exc:
            raise refuse(node, exc.message) from None
        except Exception as exc:  # an entry that cannot handle these attributes or shapes
            raise refuse(node, f"{type(exc).__name__}: {exc}") from exc
        self._rename(name, target, start)
        if name != target:
            ctx.renamed(name, target)
        return Value(target, node, bool(node.dynamic), tuple(node.shape or ()))

    def _rename(self, name: str, target: str, start: int) -> None:
        """Make the node's value the tensor ``target``: rename the helper that computed it,
        or add an Identity when the value is another node's tensor or a constant."""
        ctx = self.ctx
        if name == target:
            return
        made = ctx.scope.nodes[start:]
        if any(name in p.output for p in made):
            for p in made:
                for field in (p.output, p.input):
                    for i, x in enumerate(field):
                        if x == name:
                            field[i] = target
                if target in p.output:
                    p.name = ctx.node_names.mint(ctx.node.name)
            return
        ctx.scope.nodes.append(self.onnx.helper.make_node(
            "Identity", [name], [target], name=ctx.node_names.mint(ctx.node.name)))

    def _elem(self, node: Node) -> int:
        """The output's ONNX element type: the export's, or what a Cast makes."""
        if node.op == "Cast" and node.attrs["precision"] in _CASTS:
            return self.onnx.helper.np_dtype_to_tensor_dtype(
                np.dtype(_CASTS[node.attrs["precision"]]))
        return self.ctx.elem

    def _declare_output(self, node: Node) -> Any:
        helper = self.onnx.helper
        ctx = self.ctx
        v = self.values[node]
        sample = [int(d) for d in v.shape]
        elem = self._elem(node)
        if not v.dynamic:
            return helper.make_tensor_value_info(v.name, elem, sample)
        if ctx.sequences and v.name != node.name:
            ctx.node = node
            shape = ctx.add("Concat", [ctx.batch, ctx.steps, ctx.ints(sample)], "seq_shape",
                            axis=0)
            ctx.main.nodes.append(helper.make_node(
                "Reshape", [v.name, shape], [node.name], name=ctx.node_names.mint(node.name)))
            return helper.make_tensor_value_info(node.name, elem, ["batch", "time", *sample])
        lead = ["batch", "time"] if ctx.sequences else ["batch"]
        return helper.make_tensor_value_info(v.name, elem, lead + sample)
