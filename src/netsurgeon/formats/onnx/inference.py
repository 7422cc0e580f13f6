"""Rewrites of an exported ONNX model that only an inference session wants.

The exported file keeps one ONNX operation per netsurgeon node, so that it reads like the
network; the onnxruntime backend runs a leaner copy: a constant scale of a dense layer's input
(``Mul(x, c)`` feeding ``Gemm``/``MatMul``'s first operand, as CNTK's ``featScaled = s .* x``)
is moved into the weight matrix, so the product reads ``x`` itself and one pass over the
input disappears; and a per-channel constant added to a bias-less ``Conv`` (CNTK's
``Plus(Convolution(W, x), b)``) becomes the Conv's own bias, so onnxruntime fuses the
convolution with its activation as it does for a module's ``nn.Conv2d``. onnxruntime's own
graph optimisations do neither (they keep the Mul, and the Add unless it is laid out as
``(1, C, 1, 1)``). Results change only by rounding: ``(x·c)·W`` becomes ``x·(c·W)``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["fold_conv_biases", "fold_input_scales", "for_inference"]


def for_inference(model: Any) -> Any:
    """``model`` (an ``onnx.ModelProto``, changed in place and returned) rewritten for an
    inference session: see the module docstring."""
    fold_input_scales(model)
    fold_conv_biases(model)
    return model


def fold_conv_biases(model: Any) -> int:
    """Make ``Add(Conv(x, W), b)`` one ``Conv(x, W, b)`` where the Conv has no bias, its
    output is read by that Add alone and ``b`` is a constant holding one value per output
    channel (shape ``(C, 1, 1)``, ``(1, C, 1, 1)``, ...) or a scalar. Returns the number of Add
    nodes removed."""
    from onnx import numpy_helper

    graph = model.graph
    constants = {t.name: t for t in graph.initializer}
    readers = _reads(graph)
    outputs = {o.name for o in graph.output}
    convs = {n.output[0]: n for n in graph.node
             if n.op_type == "Conv" and len(n.input) == 2 and n.input[1] in constants}
    removed = []
    for node in graph.node:
        if node.op_type != "Add" or len(node.input) != 2:
            continue
        bias_name, x = _constant_operand(node, constants)
        conv = convs.get(x)
        if bias_name is None or conv is None or readers[x] != 1 or x in outputs:
            continue
        weight = constants[conv.input[1]]
        channels, rank = weight.dims[0], len(weight.dims)  # the output's rank: (N, C, *k)
        bias = numpy_helper.to_array(constants[bias_name])
        if bias.size == 1:
            per_channel = bias.reshape(()).repeat(channels)
        elif bias.ndim <= rank and bias.size == channels and \
                (1,) * (rank - bias.ndim) + bias.shape == (1, channels) + (1,) * (rank - 2):
            per_channel = bias.reshape(channels)
        else:
            continue
        name = f"{conv.input[1]}/bias"
        graph.initializer.append(numpy_helper.from_array(per_channel, name))
        conv.input.append(name)
        conv.output[0] = node.output[0]
        removed.append(node)
    for node in removed:
        graph.node.remove(node)
    _drop_unread_initializers(graph)
    return len(removed)


def fold_input_scales(model: Any) -> int:
    """Fold ``Mul(x, c)`` into the weight of the one ``Gemm``/``MatMul`` that reads it as its
    first operand, where ``c`` is a constant scalar or a row of the contracted size and the
    weight a constant matrix. Returns the number of Mul nodes removed."""
    from onnx import numpy_helper

    graph = model.graph
    constants = {t.name: t for t in graph.initializer}
    readers = _reads(graph)
    outputs = {o.name for o in graph.output}
    by_first_input = {}
    for node in graph.node:
        if node.op_type in ("Gemm", "MatMul") and node.input:
            by_first_input.setdefault(node.input[0], node)
    removed = []
    for node in graph.node:
        if node.op_type != "Mul" or len(node.input) != 2:
            continue
        out = node.output[0]
        product = by_first_input.get(out)
        if product is None or readers[out] != 1 or out in outputs:
            continue
        scale_name, x = _constant_operand(node, constants)
        if scale_name is None or len(product.input) < 2 or product.input[1] not in constants:
            continue
        weight = numpy_helper.to_array(constants[product.input[1]])
        scale = numpy_helper.to_array(constants[scale_name])
        trans = _transposes(product)
        if weight.ndim != 2 or trans[0]:
            continue
        k = weight.shape[1] if trans[1] else weight.shape[0]
        if scale.size == 1:
            folded = weight * scale.reshape(())
        elif scale.size == k and scale.shape[-1] == k:
            row = scale.reshape(-1)
            folded = weight * (row[None, :] if trans[1] else row[:, None])
        else:
            continue
        name = f"{product.input[1]}/scaled"
        graph.initializer.append(numpy_helper.from_array(folded.astype(weight.dtype), name))
        product.input[0], product.input[1] = x, name
        removed.append(node)
    for node in removed:
        graph.node.remove(node)
    _drop_unread_initializers(graph)
    return len(removed)


def _constant_operand(node: Any, constants: dict[str, Any]) -> tuple[str | None, str]:
    """(the constant input's name, the other input) of a binary node, or (None, '')."""
    a, b = node.input
    if a in constants and b not in constants:
        return a, b
    if b in constants and a not in constants:
        return b, a
    return None, ""


def _transposes(node: Any) -> tuple[bool, bool]:
    """Gemm's (transA, transB); MatMul transposes nothing."""
    if node.op_type != "Gemm":
        return False, False
    flags = {a.name: a.i for a in node.attribute}
    return bool(flags.get("transA", 0)), bool(flags.get("transB", 0))


def _reads(graph: Any) -> Counter:
    """How often each name is read by the graph's nodes and by the nodes of their subgraphs
    (a Scan or Loop body reads the outer graph's values by name)."""
    count: Counter = Counter()
    todo = [graph]
    while todo:
        g = todo.pop()
        for node in g.node:
            count.update(node.input)
            for attr in node.attribute:
                if attr.HasField("g"):
                    todo.append(attr.g)
                todo.extend(attr.graphs)
    return count


def _drop_unread_initializers(graph: Any) -> None:
    read = set(_reads(graph))
    read.update(o.name for o in graph.output)
    keep = [t for t in graph.initializer if t.name in read]
    if len(keep) != len(graph.initializer):
        del graph.initializer[:]
        graph.initializer.extend(keep)
