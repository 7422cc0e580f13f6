"""Convolution, pooling and batch normalization, as ``runtime/lowerings/conv`` computes them.

Images are (C, H, W) samples (CNTK [W x H x C]); kernels, strides and pads per spatial axis
come from the registry's ``conv_geometry`` with the runtime's rules (auto-padding pads k-1
cells per axis, the low side ⌊(k-1)/2⌋, ``ops.conv.split_padding``), so the ONNX pads
are exactly the runtime's (ONNX Conv/Pool take asymmetric pads). A weight is reinterpreted
in memory order as (C_out, C_in, *kernel), as CNTK 2.7 does and the runtime does.

NOTE: :class:`Geometry` repeats the runtime's (formats never import torch-side modules);
both read ``ops.conv.conv_geometry``, and the CIFAR reference tests check both.
"""

from __future__ import annotations

import math

import numpy as np

from netsurgeon.formats.onnx._layer import export_entry
from netsurgeon.formats.onnx.export_context import refuse
from netsurgeon.ops.conv import legacy_conv2d, split_padding


class Geometry:
    """Per spatial axis (numpy order, axes 1..): kernel, stride, dilation, (low, high) pads."""

    def __init__(self, node, x_shape, out_shape, pooling: bool, transpose: bool = False):
        from netsurgeon.ops.conv import channel_kernel_fits, conv_geometry

        if len(x_shape) < 2:
            raise refuse(node, f"input {tuple(x_shape)} needs a channel axis and a spatial one")
        geo = list(reversed(conv_geometry(x_shape, node.attrs, pooling=pooling)))
        c = geo[0]
        if not channel_kernel_fits(c, x_shape[0], pooling=pooling, transpose=transpose):
            raise refuse(node, f"kernel over the channel axis ({c.kernel} of {x_shape[0]}): only "
                               "kernels spanning all channels (convolution) or one (pooling)")
        sp = geo[1:]
        self.k = [g.kernel for g in sp]
        self.s = [g.stride for g in sp]
        self.d = [g.dilation for g in sp]
        self.sharing = all(g.sharing for g in geo)
        self.pads: list[tuple[int, int]] = []
        for i, g in enumerate(sp, start=1):
            eff = (g.kernel - 1) * g.dilation + 1
            size, out = (out_shape[i], x_shape[i]) if transpose else (x_shape[i], out_shape[i])
            if g.auto_pad:
                self.pads.append(split_padding(eff, max((out - 1) * g.stride + eff - size, 0)))
            else:
                self.pads.append((g.lower, g.upper))

    @classmethod
    def unpadded(cls, kernel, strides) -> Geometry:
        g = cls.__new__(cls)
        g.k, g.s, g.d = list(kernel), list(strides), [1] * len(kernel)
        g.sharing = True
        g.pads = [(0, 0)] * len(kernel)
        return g

    def onnx_pads(self) -> list[int]:
        """ONNX ``pads``: all low sides, then all high sides."""
        return [lo for lo, _ in self.pads] + [hi for _, hi in self.pads]

    def pad_input(self) -> list[int]:
        """ONNX ``Pad`` pads of an (N, C, *spatial) tensor."""
        return [0, 0] + [lo for lo, _ in self.pads] + [0, 0] + [hi for _, hi in self.pads]


def _images(ctx, x) -> str:
    return x.name if x.dynamic else ctx.add("Unsqueeze", [x.name, ctx.ints([0])], "batch")


def _back(ctx, node, name: str) -> str:
    return name if node.dynamic else ctx.add("Squeeze", [name, ctx.ints([0])], "unbatch")


@export_entry("Convolution")
def _convolution(ctx, node, args):
    w, x = args
    if node.attrs["convolution_2d"]:
        return _convolution_2d(ctx, node, w, x)
    transpose = node.attrs["transpose"]
    g = Geometry(node, tuple(x.shape), tuple(node.shape), pooling=False, transpose=transpose)
    if not g.sharing:
        raise refuse(node, "a locally connected convolution (sharing=false) has no ONNX "
                           "equivalent")
    c_in, c_out = x.shape[0], node.shape[0]
    xs = _images(ctx, x)
    if transpose:
        # CNTK keeps the forward convolution's W: (C_in, C_out, *k), ONNX's ConvTranspose
        if math.prod(w.shape) != c_in * c_out * math.prod(g.k):
            raise refuse(node, f"weight shape {w.shape} does not fit the kernel")
        weight = ctx.reshape(w, (c_in, c_out, *g.k), "weight")
        full = ctx.add("ConvTranspose", [xs, weight], "conv_transpose", strides=g.s,
                       dilations=g.d)
        return _back(ctx, node, _fit_spatial(ctx, node, full, g))
    if math.prod(w.shape) != c_out * c_in * math.prod(g.k):
        raise refuse(node, f"weight shape {w.shape} does not fit {c_out} maps of kernel "
                           f"{(c_in, *g.k)}")
    weight = ctx.reshape(w, (c_out, c_in, *g.k), "weight")
    out = ctx.add("Conv", [xs, weight], "Conv", kernel_shape=g.k, strides=g.s, dilations=g.d,
                  pads=g.onnx_pads())
    return _back(ctx, node, out)


def _fit_spatial(ctx, node, full: str, g: Geometry) -> str:
    """Crop a transposed convolution's full output at the low pads to the validated size,
    zero-padding at the end where it is short (the runtime's ``K.fit_spatial``)."""
    nd = len(g.k)
    axes = list(range(2, 2 + nd))
    starts = [lo for lo, _ in g.pads]
    sizes = [int(d) for d in node.shape[1:]]
    cropped = ctx.add("Slice", [full, ctx.ints(starts),
                                ctx.ints([s + n for s, n in zip(starts, sizes)]),
                                ctx.ints(axes)], "crop")
    shape = ctx.add("Shape", [cropped], "cropped_shape", start=2)
    missing = ctx.add("Sub", [ctx.ints(sizes), shape], "missing")
    zeros = ctx.ints([0] * (2 + nd))
    pads = ctx.add("Concat", [zeros, ctx.ints([0, 0]), missing], "pads", axis=0)
    return ctx.add("Pad", [cropped, pads], "fit")


def _convolution_2d(ctx, node, w, x) -> str:
    """The legacy 2-D convolution: W is CNTK [K x kW·kH·C]; images CHW or HWC."""
    if len(x.shape) != 3:
        raise refuse(node, "a legacy 2-D convolution needs an image input")
    g = legacy_conv2d(x.shape, node.shape, node.attrs)
    hwc, c_in, c_out, pad = g.hwc, g.c_in, g.c_out, g.pad
    (kh, kw), (sh, sw) = g.kernel, g.strides
    xs = _images(ctx, x)
    if hwc:
        xs = ctx.add("Transpose", [xs], "to_chw", perm=[0, 3, 1, 2])
        weight = ctx.add("Transpose", [ctx.reshape(w, (c_out, kh, kw, c_in), "weight")],
                         "weight_chw", perm=[0, 3, 1, 2])
    else:
        weight = ctx.reshape(w, (c_out, c_in, kh, kw), "weight")
    h, wd = (x.shape[0], x.shape[1]) if hwc else (x.shape[1], x.shape[2])
    pads = []
    for k, s, size in ((kh, sh, h), (kw, sw, wd)):
        out = (size - 1) // s + 1
        pads.append(split_padding(k, max((out - 1) * s + k - size, 0)) if pad else (0, 0))
    out = ctx.add("Conv", [xs, weight], "Conv", kernel_shape=[kh, kw], strides=[sh, sw],
                  pads=[pads[0][0], pads[1][0], pads[0][1], pads[1][1]])
    if hwc:
        out = ctx.add("Transpose", [out], "to_hwc", perm=[0, 2, 3, 1])
    return _back(ctx, node, out)


def _pool(ctx, node, xs: str, channels: int, kind: str, g: Geometry,
          include: bool = False) -> str:
    """Max or average pooling of images ``xs`` (N, C, *spatial); ``include`` counts padded
    cells in an average. ONNX pools need pads below the kernel; larger pads are explicit."""
    if any(d != 1 for d in g.d):
        raise refuse(node, "dilated pooling is not supported")
    native = all(lo < k and hi < k for (lo, hi), k in zip(g.pads, g.k))
    if kind == "max":
        if native:
            return ctx.add("MaxPool", [xs], "MaxPool", kernel_shape=g.k, strides=g.s,
                           pads=g.onnx_pads())
        low = ctx.const(np.asarray(-np.inf), "minus_inf")
        padded = ctx.add("Pad", [xs, ctx.ints(g.pad_input()), low], "pad")
        return ctx.add("MaxPool", [padded], "MaxPool", kernel_shape=g.k, strides=g.s)
    if kind == "average":
        if native:
            return ctx.add("AveragePool", [xs], "AveragePool", kernel_shape=g.k, strides=g.s,
                           pads=g.onnx_pads(), count_include_pad=int(include))
        # pads of a kernel or more: a depthwise convolution with 1/k weights (onnxruntime
        # fuses an explicit Pad into AveragePool and then refuses the pads)
        area = float(np.prod(g.k))
        kernel = ctx.const(np.full((channels, 1, *g.k), 1 / area), "mean_kernel")
        total = ctx.add("Conv", [xs, kernel], "window_mean", kernel_shape=g.k, strides=g.s,
                        pads=g.onnx_pads(), group=channels)
        if include:
            return total
        spatial = ctx.add("Shape", [xs], "spatial", start=2)
        ones = ctx.add("ConstantOfShape", [ctx.add("Concat", [ctx.ints([1, 1]), spatial],
                                                   "ones_shape", axis=0)],
                       "ones", value=ctx.onnx.numpy_helper.from_array(np.ones(1, ctx.dtype)))
        share = ctx.add("Conv", [ones, ctx.const(np.full((1, 1, *g.k), 1 / area),
                                                 "share_kernel")],
                        "real_share", kernel_shape=g.k, strides=g.s, pads=g.onnx_pads())
        return ctx.add("Div", [total, share], "average")
    raise refuse(node, f"pooling kind {kind!r} is not supported; use max or average")


@export_entry("Pooling")
def _pooling(ctx, node, args):
    x = args[0]
    g = Geometry(node, tuple(x.shape), tuple(node.shape), pooling=True)
    out = _pool(ctx, node, _images(ctx, x), x.shape[0], node.attrs["pool_kind"], g,
                node.attrs["pool_include_pad"])
    return _back(ctx, node, out)


def _legacy_pool(kind: str):
    """The entry of the legacy 2-D MaxPooling / AveragePooling (no padding)."""

    def entry(ctx, node, args):
        x = args[0]
        attrs = node.attrs
        if len(x.shape) != 3:
            raise refuse(node, "legacy pooling needs an image input")
        g = Geometry.unpadded((attrs["window_height"], attrs["window_width"]),
                              (attrs["vertical_subsample"], attrs["horizontal_subsample"]))
        xs = _images(ctx, x)
        if attrs["image_layout"] != "HWC":
            return _back(ctx, node, _pool(ctx, node, xs, x.shape[0], kind, g))
        xs = ctx.add("Transpose", [xs], "to_chw", perm=[0, 3, 1, 2])
        out = ctx.add("Transpose", [_pool(ctx, node, xs, x.shape[2], kind, g)], "to_hwc",
                      perm=[0, 2, 3, 1])
        return _back(ctx, node, out)

    return entry


export_entry("MaxPooling")(_legacy_pool("max"))
export_entry("AveragePooling")(_legacy_pool("average"))


@export_entry("BatchNormalization")
def _batch_norm(ctx, node, args):
    """Inference with the running statistics: (x - mean) / sqrt(var + eps) * scale + bias, per
    channel (spatial) or per element. Model versions < 13 store the inverse standard deviation:
    CNTK converts it to var = 1/isd² + eps and then adds eps again (the runtime's rule)."""
    x, scale, bias, mean, var = args[:5]
    fused = _batch_norm_op(ctx, node, x, scale, bias, mean, var)
    if fused is not None:
        return fused
    rank = len(x.shape)
    stat = (-1,) + (1,) * (rank - 1) if node.attrs["spatial"] else tuple(x.shape)
    eps = node.attrs["epsilon"]

    def per(v, hint):
        return ctx.add("Reshape", [v.name, ctx.ints(stat)], hint)

    v = per(var, "var")
    if node.attrs["running_inv_std_dev"]:
        v = ctx.add("Pow", [v, ctx.scalar(-2.0, "minus_two")], "var_from_isd")
        eps = 2 * eps
    inv = ctx.add("Reciprocal", [ctx.add("Sqrt", [ctx.add("Add", [v, ctx.scalar(eps, "eps")],
                                                          "var_eps")], "std")], "inv_std")
    mul = ctx.add("Mul", [inv, per(scale, "scale")], "mul")
    add = ctx.add("Sub", [per(bias, "bias"), ctx.add("Mul", [per(mean, "mean"), mul],
                                                      "mean_mul")], "add")
    return ctx.add("Add", [ctx.add("Mul", [x.name, mul], "scaled"), add], "BatchNormalization")


def _batch_norm_op(ctx, node, x, scale, bias, mean, var) -> str | None:
    """ONNX's BatchNormalization (inference) for the per-channel (spatial) case with constant
    statistics, the form onnxruntime folds into a preceding Conv; None when it does not
    apply. An inverse standard deviation becomes the variance CNTK derives from it
    (1/isd² + eps, computed here: BatchNormalization adds eps once more)."""
    stats = (scale, bias, mean, var)
    if not node.attrs["spatial"] or not x.dynamic or not x.shape or \
            any(v.dynamic for v in stats):
        return None
    channels = x.shape[0]
    if any(math.prod(v.shape) != channels for v in stats):
        return None
    eps = float(node.attrs["epsilon"])

    def vector(v):
        return ctx.reshape(v, (channels,), "vector")

    if node.attrs["running_inv_std_dev"]:
        if var.node.value is None:
            return None
        isd = np.asarray(var.node.value, np.float64).reshape(channels)
        with np.errstate(divide="ignore"):
            variance = ctx.const(1.0 / (isd * isd) + eps, "var_from_isd")
    else:
        variance = vector(var)
    return ctx.add("BatchNormalization", [x.name, vector(scale), vector(bias), vector(mean),
                                          variance], "BatchNormalization", epsilon=eps)


@export_entry("GroupedConvolution")
def _grouped_convolution(ctx, node, args):
    """ONNX's own grouped Conv (the op imported models use): W (M, C/groups, *kernel)."""
    from netsurgeon.ops.imported import per_axis

    w, x = args
    attrs = node.attrs
    rank = len(attrs["kernel_shape"])
    lo, hi = per_axis(attrs["lower_pad"], rank), per_axis(attrs["upper_pad"], rank)
    out = ctx.add("Conv", [_images(ctx, x), w.name], "Conv",
                  kernel_shape=list(attrs["kernel_shape"]),
                  strides=list(per_axis(attrs["strides"], rank)),
                  dilations=list(per_axis(attrs["dilation"], rank)),
                  pads=list(lo) + list(hi), group=int(attrs["groups"]))
    return _back(ctx, node, out)
