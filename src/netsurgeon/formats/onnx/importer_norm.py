"""ONNX LayerNormalization, RMSNormalization, InstanceNormalization and
MeanVarianceNormalization as
compositions of registry ops (BatchNormalization, which has an op, is in importer_conv).

Each normalises over some sample axes: ``mean = ReduceElements(Mean)``, ``centered = x −
mean``, ``variance = ReduceElements(Mean, centered²)``, ``normalized = centered ·
Reciprocal(Sqrt(variance + ε))``, then the learnable scale and bias. Helper nodes are
``<output>.mean``, ``.centered``, ``.variance``, ``.std``, ``.normalized``, ``.scaled``.
"""

from __future__ import annotations

from math import prod
from typing import Any

from netsurgeon.formats.onnx.importer_common import Attrs, Converter, Inputs, data, out
from netsurgeon.formats.onnx.importer_graph import Builder, Value
from netsurgeon.graph import Node

__all__ = ["CONVERTERS"]


def normalized(b: Builder, name: str, x: Value, indices: list[int], epsilon: float,
               centre: bool = True) -> tuple[Node, Node | None, Node]:
    """(x − mean) / √(variance + ε) over the numpy sample axes ``indices`` of ``x``; with
    ``centre`` false x / √(mean(x²) + ε) (RMS normalisation). Returns the result, the mean
    (None without ``centre``) and 1/√(variance + ε), both with the reduced axes kept."""
    rank = len(x.shape)
    codes = tuple(sorted(b.registry_axis(i, rank) for i in set(indices)))

    def mean(suffix: str, v: Node) -> Node:
        return b.add(name + suffix, "ReduceElements", [v], operation="Mean", axes=codes,
                     keep_dimensions=True)

    average = mean(".mean", x.node) if centre else None
    centered = b.add(name + ".centered", "Minus", [x.node, average]) if average else x.node
    square = b.add(name + ".square", "ElementTimes", [centered, centered])
    shifted = b.add(name + ".varianceEps", "Plus", [mean(".variance", square),
                                                     b.scalar(name + ".epsilon", epsilon)])
    inverse = b.add(name + ".inverse", "Reciprocal", [b.add(name + ".std", "Sqrt", [shifted])])
    return b.add(name + ".normalized", "ElementTimes", [centered, inverse]), average, inverse


def _affine(b: Builder, n: Any, y: Node, scale: Value | None, bias: Value | None,
            shape: tuple[int, ...]) -> list[Value]:
    """y · scale + bias (either absent), both constants: of ``shape``'s size reshaped to it,
    others broadcast as ONNX does."""
    name = n.output[0]
    steps = [s for s, v in (("scaled", scale), ("plus", bias)) if v is not None]
    for step, v in (("scaled", scale), ("plus", bias)):
        if v is None:
            continue
        if not v.is_const or v.array is None:
            raise b.error(f"the {'scale' if step == 'scaled' else 'bias'} must be a constant "
                          "(an initializer)")
        fits = v.array.size == prod(shape)
        param = b.param(v, shape) if fits else b.operand(v, len(y.shape or ()))
        target = name if step == steps[-1] else f"{name}.{step}"
        y = b.add(target, "ElementTimes" if step == "scaled" else "Plus", [y, param])
    if not steps:
        y = b.add(name, "Pass", [y])
    return out(n, y)


def _layer_norm(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """Normalises over the axes from ``axis`` (default −1) to the last; the optional Mean and
    InvStdDev outputs are the composition's own nodes (reduced axes kept as 1)."""
    x = data(b, ins[0])
    first = b.sample_axis(x, int(at.get("axis", -1)))
    indices = list(range(first, len(x.shape)))
    y, average, inverse = normalized(b, n.output[0], x, indices, float(at.get("epsilon", 1e-5)))
    bias = ins[2] if len(ins) > 2 else None
    values = _affine(b, n, y, ins[1], bias, tuple(x.shape[first:]))
    for index, node in ((1, average), (2, inverse)):
        if b.uses(n, index):
            values.append(Value(n.output[index], node=b.add(n.output[index], "Pass", [node])))
    return values


def _rms_norm(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """x / √(mean(x²) + ε) over the axes from ``axis`` (default −1), times the scale."""
    x = data(b, ins[0])
    first = b.sample_axis(x, int(at.get("axis", -1)))
    y, _, _ = normalized(b, n.output[0], x, list(range(first, len(x.shape))),
                         float(at.get("epsilon", 1e-5)), centre=False)
    return _affine(b, n, y, ins[1], None, tuple(x.shape[first:]))


def _instance_norm(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """Per channel, over the spatial axes of (C, *spatial) samples."""
    x = data(b, ins[0])
    if len(x.shape) < 2:
        raise b.error(f"needs (channels, *spatial) samples, not {list(x.shape)}")
    y, _, _ = normalized(b, n.output[0], x, list(range(1, len(x.shape))),
                         float(at.get("epsilon", 1e-5)))
    shape = (x.shape[0],) + (1,) * (len(x.shape) - 1)
    return _affine(b, n, y, ins[1], ins[2], shape)


def _mean_variance(b: Builder, n: Any, ins: Inputs, at: Attrs) -> list[Value]:
    """Over ``axes`` (default 0, 2, 3: that includes the batch axis, which is refused)."""
    x = data(b, ins[0])
    indices = [b.sample_axis(x, int(a)) for a in at.get("axes", (0, 2, 3))]
    y, _, _ = normalized(b, n.output[0], x, indices, 1e-9)
    return out(n, b.add(n.output[0], "Pass", [y]))


CONVERTERS: dict[str, Converter] = {
    "LayerNormalization": _layer_norm,
    "RMSNormalization": _rms_norm,
    "InstanceNormalization": _instance_norm,
    "MeanVarianceNormalization": _mean_variance,
}
