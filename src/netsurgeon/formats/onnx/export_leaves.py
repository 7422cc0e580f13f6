"""Leaves: inputs (graph inputs, bound by the exporter), parameters and precomputed statistics
(initializers named as their nodes), the environment flag (a constant: export is inference)."""

from __future__ import annotations

from netsurgeon.formats.onnx._layer import export_entry
from netsurgeon.formats.onnx.export_context import refuse


@export_entry("InputValue", "SparseInputValue")
def _input(ctx, node, args):
    # the exporter binds inputs to graph inputs before any entry runs (sparse ones are dense)
    raise refuse(node, "an input node is bound by the exporter, not exported as an op")


@export_entry("LearnableParameter", "Mean", "InvStdDev")
def _parameter(ctx, node, args):
    if node.value is None:
        raise refuse(node, "the parameter has no value; initialise, train or load it first")
    return ctx.parameter(node)


@export_entry("EnvironmentInput")
def _environment(ctx, node, args):
    name = node.attrs["property_name"]
    if name != "isTraining":
        raise refuse(node, f"EnvironmentInput property {name!r} is unknown")
    return ctx.const([0.0], "is_training")  # an exported model runs inference
