"""Rewrites of an exported ONNX model that only an inference session wants.

The exported file keeps one ONNX operation per netsurgeon node, so that it reads like the
network; the onnxruntime backend runs a leaner copy: a constant scale of a dense layer's input
(``Mul(x, c)`` feeding ``Gemm``/``MatMul``'s first operand, as CNTK's ``featScaled = s .* x``)
is moved into the weight matrix, so the product reads ``x`` itself and one pass over the
input disappears. onnxruntime's own graph optimisations do not do this (they keep the Mul).
Results change only by rounding: ``(x·c)·W`` becomes ``x·(c·W)``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

__all__ = ["fold_input_scales", "for_inference"]


def for_inference(model: Any) -> Any:
    """``model`` (an ``onnx.ModelProto``, changed in place and returned) rewritten for an
    inference session: see the module docstring."""
    fold_input_scales(model)
    return model


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
