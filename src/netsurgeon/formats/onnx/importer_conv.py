"""ONNX Conv, pooling and BatchNormalization as registry ops.

Geometry is made explicit at import: ``auto_pad`` SAME_* / VALID become lower/upper pads,
and ``ceil_mode`` becomes extra upper padding (with PyTorch's and onnxruntime's rule that the
last window starts inside the input), so Convolution/Pooling run with ``auto_padding`` off and
``ceil_out_dim`` false, exactly as ONNX computes them. Kernels are given over the spatial axes
only: Convolution then spans all input channels and Pooling leaves them alone (the registry's
rule for a kernel of lower rank than the input).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from netsurgeon.formats.onnx.importer_common import data
from netsurgeon.formats.onnx.importer_graph import Builder, Value

__all__ = ["CONVERTERS"]


def _ints(values: Any, rank: int, default: int) -> list[int]:
    vals = [int(v) for v in values] if values is not None else [default] * rank
    if len(vals) != rank:
        raise ValueError(f"{vals} has not one entry per spatial axis ({rank})")
    return vals


def _geometry(b: Builder, at: dict[str, Any], spatial: tuple[int, ...],
              kernel: list[int], ceil: bool = False) -> tuple[list[int], ...]:
    """(strides, dilations, lower pads, upper pads) per spatial axis."""
    rank = len(spatial)
    try:
        strides = _ints(at.get("strides"), rank, 1)
        dil = _ints(at.get("dilations"), rank, 1)
        pads = [int(p) for p in at.get("pads", [0] * 2 * rank)]
    except ValueError as exc:
        raise b.error(str(exc)) from None
    if len(pads) == 2 * rank + 2 and pads[0] == pads[rank + 1] == 0:
        pads = pads[1:rank + 1] + pads[rank + 2:]  # CNTK's exporter pads the channel axis too
    if len(pads) != 2 * rank:
        raise b.error(f"pads {pads} must hold {2 * rank} values (begin and end per spatial "
                      "axis)")
    lo, hi = pads[:rank], pads[rank:]
    mode = at.get("auto_pad", "NOTSET")
    for i, (size, k, s, d) in enumerate(zip(spatial, kernel, strides, dil)):
        eff = (k - 1) * d + 1
        if mode in ("SAME_UPPER", "SAME_LOWER"):
            total = max((-(-size // s) - 1) * s + eff - size, 0)
            small = total // 2
            lo[i], hi[i] = (small, total - small) if mode == "SAME_UPPER" else (total - small,
                                                                                small)
        elif mode == "VALID":
            lo[i] = hi[i] = 0
        elif mode != "NOTSET":
            raise b.error(f"auto_pad {mode!r} is unknown")
        if ceil:
            span = size + lo[i] + hi[i] - eff
            out = -(-span // s) + 1
            if (out - 1) * s >= size + lo[i]:  # the last window would start in the padding
                out -= 1
            hi[i] += max((out - 1) * s + eff - (size + lo[i] + hi[i]), 0)
    return strides, dil, lo, hi


def _weight(b: Builder, v: Value | None, what: str) -> np.ndarray:
    if v is None or not v.is_const:
        raise b.error(f"the {what} must be a constant (an initializer)")
    assert v.array is not None
    return v.array


def _conv(b: Builder, n: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    x = data(b, ins[0])
    w = _weight(b, ins[1], "weight")
    spatial = x.shape[1:]
    if w.ndim != len(spatial) + 2:
        raise b.error(f"weight {list(w.shape)} does not fit an input of sample shape "
                      f"{list(x.shape)} (channels, *spatial)")
    kernel = [int(k) for k in at.get("kernel_shape", w.shape[2:])]
    strides, dil, lo, hi = _geometry(b, at, spatial, kernel)
    group, maps = int(at.get("group", 1)), int(w.shape[0])
    out = n.output[0]
    has_bias = len(ins) > 2 and ins[2] is not None
    name = out + ".conv" if has_bias else out
    wn = b.node(ins[1])
    if group == 1:
        conv = b.add(name, "Convolution", [wn, x.node], kernel_shape=kernel, map_count=(maps,),
                     strides=strides, auto_padding=(False,), lower_pad=lo, upper_pad=hi,
                     dilation=dil)
    else:
        conv = b.add(name, "GroupedConvolution", [wn, x.node], kernel_shape=kernel,
                     strides=strides, dilation=dil, lower_pad=lo, upper_pad=hi, groups=group)
    if has_bias:
        bias = b.param(ins[2], (maps,) + (1,) * len(spatial))
        conv = b.add(out, "Plus", [conv, bias])
    return [Value(out, node=conv)]


def _conv_transpose(b: Builder, n: Any, ins: list[Value | None],
                    at: dict[str, Any]) -> list[Value]:
    """ConvTranspose (group 1) as a transposed Convolution: the full result cropped at the
    low pads to the ONNX output size (output_padding and an output_shape beyond the full
    result are zeros, plus the bias), W kept as ONNX stores it, (C_in, C_out, *kernel)."""
    x = data(b, ins[0])
    w = _weight(b, ins[1], "weight")
    spatial = [int(d) for d in x.shape[1:]]
    rank = len(spatial)
    if w.ndim != rank + 2 or w.shape[0] != x.shape[0]:
        raise b.error(f"weight {list(w.shape)} does not fit an input of sample shape "
                      f"{list(x.shape)} (channels, *spatial)")
    if int(at.get("group", 1)) != 1:
        raise b.error("grouped ConvTranspose is not supported")
    kernel = [int(k) for k in at.get("kernel_shape", w.shape[2:])]
    try:
        strides, dil = _ints(at.get("strides"), rank, 1), _ints(at.get("dilations"), rank, 1)
        extra = _ints(at.get("output_padding"), rank, 0)
        pads = _ints(at.get("pads"), 2 * rank, 0)
    except ValueError as exc:
        raise b.error(str(exc)) from None
    full = [s * (d - 1) + (k - 1) * dl + 1 for s, d, k, dl in zip(strides, spatial, kernel, dil)]
    auto = _text(at.get("auto_pad", "NOTSET"))
    lo, hi = pads[:rank], pads[rank:]
    if "output_shape" in at or auto in ("SAME_UPPER", "SAME_LOWER"):
        sizes = [int(v) for v in at["output_shape"]][-rank:] if "output_shape" in at else \
            [d * s for d, s in zip(spatial, strides)]
        total = [f + e - size for f, e, size in zip(full, extra, sizes)]
        if any(t < 0 for t in total):
            raise b.error(f"output shape {sizes} is larger than the full result {full}")
        first = [t // 2 if auto == "SAME_UPPER" else t - t // 2 for t in total]
        lo, hi = first, [t - f for t, f in zip(total, first)]
    sizes = [f + e - a - z for f, e, a, z in zip(full, extra, lo, hi)]
    if min(sizes) < 1 or min(lo + hi) < 0:
        raise b.error(f"pads {lo + hi} leave no output of the full result {full}")
    maps = int(w.shape[1])
    out = n.output[0]
    has_bias = len(ins) > 2 and ins[2] is not None
    conv = b.add(out + ".conv" if has_bias else out, "Convolution", [b.node(ins[1]), x.node],
                 kernel_shape=kernel, map_count=(maps,), strides=strides,
                 auto_padding=(False,), lower_pad=lo, upper_pad=hi, dilation=dil,
                 transpose=True, output_shape=(maps, *sizes))
    if has_bias:
        conv = b.add(out, "Plus", [conv, b.param(ins[2], (maps,) + (1,) * rank)])
    return [Value(out, node=conv)]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pool(kind: str):
    def convert(b: Builder, n: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
        x = data(b, ins[0])
        if b.uses(n, 1):
            raise b.error("the Indices output of MaxPool is not supported")
        spatial = x.shape[1:]
        kernel = [int(k) for k in at["kernel_shape"]]
        if len(kernel) != len(spatial):
            raise b.error(f"kernel {kernel} does not fit the spatial axes of {list(x.shape)}")
        ceil = bool(at.get("ceil_mode", 0))
        strides, dil, lo, hi = _geometry(b, at, spatial, kernel, ceil)
        if any(d != 1 for d in dil):
            raise b.error("dilated pooling is not supported")
        include = bool(at.get("count_include_pad", 0))
        if ceil and include and kind == "average":
            _, _, _, plain = _geometry(b, at, spatial, kernel)
            if plain != hi:
                raise b.error("ceil_mode with count_include_pad is not supported")
        node = b.add(n.output[0], "Pooling", [x.node], kernel_shape=kernel, strides=strides,
                     auto_padding=(False,), lower_pad=lo, upper_pad=hi, pool_kind=kind,
                     pool_include_pad=include)
        return [Value(n.output[0], node=node)]

    return convert


def _global_pool(operation: str):
    def convert(b: Builder, n: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
        x = data(b, ins[0])
        rank = len(x.shape)
        if rank < 2:
            raise b.error(f"needs (channels, *spatial) samples, not {list(x.shape)}")
        axes = tuple(b.registry_axis(i, rank) for i in range(1, rank))
        node = b.add(n.output[0], "ReduceElements", [x.node], operation=operation, axes=axes,
                     keep_dimensions=True)
        return [Value(n.output[0], node=node)]

    return convert


def _batch_norm(b: Builder, n: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    x = data(b, ins[0])
    if any(b.uses(n, i) for i in range(1, len(n.output))) or at.get("training_mode", 0):
        raise b.error("training-mode BatchNormalization (running statistics as outputs) is "
                      "not supported")
    arrays = [_weight(b, v, what) for v, what in zip(ins[1:5], ("scale", "bias", "mean",
                                                                  "var"))]
    channels = x.shape[0] if x.shape else 0
    if any(a.size != channels for a in arrays):
        raise b.error(f"statistics of {[a.size for a in arrays]} values do not fit "
                      f"{channels} channels")
    scale, bias = (b.param(v, (channels,)) for v in ins[1:3])
    mean, var = (b.param(v, (channels,), multiplier=0.0) for v in ins[3:5])
    epsilon = float(at.get("epsilon", 1e-5))
    node = b.add(n.output[0], "BatchNormalization", [x.node, scale, bias, mean, var],
                 spatial=len(x.shape) > 1, epsilon=epsilon,
                 normalization_time_constant=5000.0, blend_time_constant=0.0,
                 image_layout="CHW")
    return [Value(n.output[0], node=node)]


def _lrn(b: Builder, n: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    """x / (bias + alpha/size · Σ_window x²)^beta over a window of ``size`` channels:
    the window sum is average pooling (padded cells counted) over the channel axis of the
    sample viewed as (1, C, *spatial); the power is Exp(-beta · Log(·)) (its base is at least
    ``bias`` > 0)."""
    x = data(b, ins[0])
    shape = tuple(x.shape)
    if not 2 <= len(shape) <= 3:
        raise b.error(f"needs (channels, *spatial) samples with 1 or 2 spatial axes, not "
                      f"{list(shape)}")
    size = int(at["size"])
    alpha, beta = float(at.get("alpha", 1e-4)), float(at.get("beta", 0.75))
    bias = float(at.get("bias", 1.0))
    if bias <= 0 or size < 1:
        raise b.error(f"bias {bias} and size {size} must be positive")
    out = n.output[0]
    lo = (size - 1) // 2
    ones = [1] * (len(shape) - 1)
    zeros = [0] * (len(shape) - 1)
    sq = b.add(out + ".square", "ElementTimes", [x.node, x.node])
    image = b.add(out + ".channels", "Reshape", [sq], shape=(1,) + shape)
    avg = b.add(out + ".window", "Pooling", [image], kernel_shape=[size] + ones,
                strides=[1] + ones, auto_padding=(False,), lower_pad=[lo] + zeros,
                upper_pad=[size - 1 - lo] + zeros, pool_kind="average",
                pool_include_pad=True)
    mean = b.add(out + ".mean", "Reshape", [avg], shape=shape)
    scaled = b.add(out + ".scaled", "ElementTimes", [mean, b.scalar(out + ".alpha", alpha)])
    base = b.add(out + ".base", "Plus", [scaled, b.scalar(out + ".bias", bias)])
    log = b.add(out + ".log", "Log", [base])
    power = b.add(out + ".power", "ElementTimes", [log, b.scalar(out + ".beta", -beta)])
    inverse = b.add(out + ".inverse", "Exp", [power])
    return [Value(out, node=b.add(out, "ElementTimes", [x.node, inverse]))]


CONVERTERS = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "LRN": _lrn,
    "MaxPool": _pool("max"),
    "AveragePool": _pool("average"),
    "GlobalAveragePool": _global_pool("Mean"),
    "GlobalMaxPool": _global_pool("Max"),
    "BatchNormalization": _batch_norm,
}
