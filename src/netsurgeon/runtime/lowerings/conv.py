"""Convolution, pooling and batch normalization (ndl-mel.md §B.9.7) in numpy order.

An image sample is (C, H, W) (CNTK [W x H x C]). Kernel, stride, padding attributes are
numpy-ordered tuples over the sample axes; shorter ones are extended on the left by
repeating their first element (CNTK repeats its last). A kernel whose channel extent equals
the input's channels convolves over the spatial axes only (the usual case); the output
channels come from ``map_count``.

Auto-padding pads k-1 cells in total per axis (CNTK's out = ⌊(in + k-1 - k)/s⌋ + 1). How the
cells are split between the low and high side matters: the low side gets ⌊(k-1)/2⌋ for odd
and even kernels (``netsurgeon.ops.conv.split_padding``), checked against CNTK 2.7's outputs
(the real CIFAR models, and even windows in tests/runtime/test_even_auto_padding.py).

``sharing`` false on some axis (a locally connected layer) has one kernel per output position
of that axis; see :func:`unshared_weight_shape` for CNTK's weight layout.
"""

from __future__ import annotations

import math

from netsurgeon.errors import EvaluationError
from netsurgeon.ops.conv import legacy_conv2d, split_padding
from netsurgeon.runtime.lowerings import lowering


class Geometry:
    """Per spatial axis (numpy order): kernel, stride, dilation, (low, high) padding.

    Reads the op's attributes through the registry's own ``conv_geometry`` (one source of
    truth for how short kernels/strides are completed). The leading (channel) axis must be
    reduced entirely by a convolution and left alone by a pooling.
    """

    def __init__(self, node, x_shape: tuple[int, ...], out_shape: tuple[int, ...],
                 pooling: bool, transpose: bool = False) -> None:
        from netsurgeon.ops.conv import channel_kernel_fits, conv_geometry

        rank = len(x_shape)
        if rank < 2:
            raise EvaluationError(f"input {x_shape} needs a channel axis and at least one "
                                  "spatial axis", node=node.name)
        geo = list(reversed(conv_geometry(x_shape, node.attrs, pooling=pooling)))
        c = geo[0]
        if not channel_kernel_fits(c, x_shape[0], pooling=pooling, transpose=transpose):
            raise EvaluationError(
                f"kernel over the channel axis ({c.kernel} of {x_shape[0]}, stride {c.stride}): "
                "only kernels spanning all channels (convolution) or one channel (pooling) "
                "are supported", node=node.name)
        self.spatial = list(range(1, rank))
        sp = [geo[i] for i in self.spatial]
        self.k = [g.kernel for g in sp]
        self.s = [g.stride for g in sp]
        self.d = [g.dilation for g in sp]
        self.sharing = all(g.sharing for g in geo)
        self.pads = []
        for n, i in enumerate(self.spatial):
            g = sp[n]
            eff = (g.kernel - 1) * g.dilation + 1
            # a transposed convolution is the gradient of the forward one from out to x
            size, out = (out_shape[i], x_shape[i]) if transpose else (x_shape[i], out_shape[i])
            if g.auto_pad:
                total = max((out - 1) * g.stride + eff - size, 0)
                self.pads.append(split_padding(eff, total))
            else:
                self.pads.append((g.lower, g.upper))

    @classmethod
    def unpadded(cls, kernel: tuple[int, ...], strides: tuple[int, ...]) -> Geometry:
        """Spatial axes 1.. with the given kernel and strides, no padding or dilation (the
        legacy MaxPooling/AveragePooling)."""
        g = cls.__new__(cls)
        g.spatial = list(range(1, len(kernel) + 1))
        g.k, g.s, g.d = list(kernel), list(strides), [1] * len(kernel)
        g.sharing = True
        g.pads = [(0, 0)] * len(kernel)
        return g

    @property
    def symmetric(self) -> bool:
        return all(lo == hi for lo, hi in self.pads)

    def pad_arg(self) -> str:
        """F.pad argument (last axis first)."""
        flat = []
        for lo, hi in reversed(self.pads):
            flat += [lo, hi]
        return "(" + ", ".join(map(str, flat)) + ")"


def _dims(shape) -> str:
    return ", ".join(str(int(d)) for d in shape)


def _as_images(x) -> str:
    return x.expr if x.dynamic else f"{x.expr}.unsqueeze(0)"


def _back(node, expr: str) -> str:
    if node.dynamic:
        return expr
    return f"{expr}.squeeze(0)"


@lowering("Convolution")
def _convolution(em, node, args):
    w, x = args
    return _convolve(em, node, w, x, None)


@lowering("ConvolutionPlus")
def _convolution_plus(em, node, args):
    """FuseLinear's ``Plus(Convolution(W, x), b)``: the convolution with its per-channel bias."""
    w, x, b = args
    channels = int(node.shape[0])
    if b.dynamic or math.prod(b.shape) != channels:
        raise EvaluationError(f"ConvolutionPlus needs a constant bias of {channels} values (one "
                              "per output channel, as FuseLinear makes it)", node=node.name)
    return _convolve(em, node, w, x, em.static(f"{b.expr}.reshape({channels})", b.node.name))


def _convolve(em, node, w, x, bias: str | None) -> str:
    """Any convolution; ``bias`` is the expression of a (C_out,) bias added in the call."""
    if node.attrs["convolution_2d"]:
        return _convolution_2d(em, node, w, x, bias)
    transpose = node.attrs["transpose"]
    g = Geometry(node, tuple(x.shape), tuple(node.shape), pooling=False, transpose=transpose)
    if not g.sharing:
        if transpose:
            raise EvaluationError("a transposed convolution with sharing=false (locally "
                                  "connected) is not supported", node=node.name)
        return _unshared_convolution(em, node, w, x, g, bias)
    nd = len(g.spatial)
    if nd not in (1, 2, 3):
        raise EvaluationError(f"{nd}-d convolution is not supported", node=node.name)
    c_in = x.shape[0]
    c_out = node.shape[0]
    ksz = c_in * math.prod(g.k)
    # W: numpy (C_out, C_in, kH, kW) = CNTK [kW x kH x C x K]. A legacy 2-D weight matrix
    # CNTK [K x kW·kH·C] (numpy (kW·kH·C, K)) is reinterpreted in memory order as
    # kernelShape ++ [K], exactly as CNTK 2.7 converts legacy models (checked against the
    # reference outputs of cifar10.ResNet); no transpose.
    if math.prod(w.shape) != c_out * ksz:
        raise EvaluationError(f"weight shape {w.shape} does not fit {c_out} maps of kernel "
                              f"{(c_in, *g.k)}", node=node.name)
    bias = bias or "None"
    xs = _as_images(x)
    if transpose:
        # CNTK keeps the forward convolution's W: numpy (C_in, C_out, k...) = torch's layout
        weight = w.expr if tuple(w.shape) == (c_in, c_out, *g.k) else \
            em.static(f"{w.expr}.reshape({c_in}, {c_out}, {_dims(g.k)})", w.node.name)
        full = (f"F.conv_transpose{nd}d({xs}, {weight}, {bias}, ({_dims(g.s)},), 0, 0, 1, "
                f"({_dims(g.d)},))")
        crop = ", ".join(f"{lo}:{lo + node.shape[i]}" for (lo, _), i in zip(g.pads, g.spatial))
        return _back(node, f"K.fit_spatial({full}, ({_dims(lo for lo, _ in g.pads)},), "
                           f"({_dims(node.shape[1:])},))" if crop else full)
    weight = w.expr if tuple(w.shape) == (c_out, c_in, *g.k) else \
        em.static(f"{w.expr}.reshape({c_out}, {c_in}, {_dims(g.k)})", w.node.name)
    if g.symmetric:
        padding = f"({_dims([lo for lo, _ in g.pads])},)"
    else:
        xs = f"F.pad({xs}, {g.pad_arg()})"
        padding = "0"
    dil = f", ({_dims(g.d)},)" if any(d != 1 for d in g.d) else ""
    return _back(node, f"F.conv{nd}d({xs}, {weight}, {bias}, ({_dims(g.s)},), {padding}{dil})")


def unshared_weight_shape(node, x_shape: tuple[int, ...], g: Geometry) -> tuple[int, ...]:
    """numpy shape W is read as for a locally connected convolution (``sharing`` false on
    some axis): ``(M, P_1, …, P_n, C, k_1, …, k_n)``.

    CNTK's ConvolveGeometry keeps one kernel per *kernel index*; per CNTK axis i the index
    ranges over the output positions of that axis when ``sharing[i]`` is false and over
    ``mapCount[i]`` when it is true, and the engine reads kernel k at flat offset
    ``k · kernelSize`` (kernels contiguous, CNTK axis 0 fastest in both). In numpy order that
    is W = (kernel index axes) ++ (kernel axes); for the channel axis both choices give the
    map count M (the kernel spans all channels, one position), for a spatial axis P_j is its
    output size when unshared and 1 (the kernel is broadcast) when shared. W is reinterpreted
    in memory order, like CNTK does, so any W with that many elements works (NDL's
    ``LearnableParameter(outMap, kernelSize · positions)`` included).
    """
    from netsurgeon.ops.conv import conv_geometry

    geo = list(reversed(conv_geometry(x_shape, node.attrs)))
    out = tuple(int(d) for d in node.shape)
    maps = tuple(reversed(node.attrs["map_count"]))  # CNTK order
    if len(maps) == len(x_shape) and any(int(m) != 1 for m in maps[:-1]):
        raise EvaluationError(f"map_count {tuple(reversed(maps))} has maps on spatial axes; "
                              "a locally connected convolution supports maps on the channel "
                              "axis only", node=node.name)
    positions = tuple(out[i] if not geo[i].sharing else 1 for i in g.spatial)
    return (out[0], *positions, int(x_shape[0]), *g.k)


def _unshared_convolution(em, node, w, x, g: Geometry, bias: str | None) -> str:
    """Locally connected convolution: the windows of x (``Tensor.unfold`` per spatial axis,
    after padding) contracted with one kernel per output position (``torch.einsum``, i.e.
    one batched matrix product over the positions)."""
    nd = len(g.spatial)
    shape = unshared_weight_shape(node, tuple(x.shape), g)
    full = (shape[0], *(int(node.shape[i]) for i in g.spatial), *shape[1 + nd:])
    if math.prod(w.shape) != math.prod(shape):
        raise EvaluationError(
            f"weight shape {tuple(w.shape)} ({math.prod(w.shape)} values) does not fit a locally "
            f"connected convolution: it needs numpy {shape} = {math.prod(shape)} values "
            f"(maps, per-position kernel index, channels, kernel), i.e. CNTK "
            f"{list(reversed(shape))}", node=node.name)
    weight = em.static(f"{w.expr}.reshape({_dims(shape)}).expand({_dims(full)})", w.node.name)
    xs = _as_images(x)
    if any(lo or hi for lo, hi in g.pads):
        xs = f"F.pad({xs}, {g.pad_arg()})"
    for n, (k, s, d) in enumerate(zip(g.k, g.s, g.d)):
        xs = f"{xs}.unfold({2 + n}, {(k - 1) * d + 1}, {s})"
    if any(d != 1 for d in g.d):
        xs += "[" + ", ".join([":"] * (2 + nd) + [f"::{d}" for d in g.d]) + "]"
    letters = "pqrstu"[:nd], "abcdef"[:nd]
    pos, ker = letters
    spec = f"nz{pos}{ker},m{pos}z{ker}->nm{pos}"
    out = f"torch.einsum('{spec}', {xs}, {weight})"
    if bias:
        out = f"({out} + {bias}.reshape(-1{', 1' * nd}))"
    return _back(node, out)


def _convolution_2d(em, node, w, x, bias: str | None):
    """The legacy 7-argument 2-D convolution; W is CNTK [K x kW·kH·C] (reinterpreted in
    memory order as the kernel, as CNTK 2.7 does); images CHW or HWC."""
    if len(x.shape) != 3:
        raise EvaluationError("a legacy 2-D convolution needs an image input", node=node.name)
    g = legacy_conv2d(x.shape, node.shape, node.attrs)
    hwc, c_in, c_out, pad = g.hwc, g.c_in, g.c_out, g.pad
    (kh, kw), (sh, sw) = g.kernel, g.strides
    xs = _as_images(x)
    if hwc:
        xs = f"{xs}.permute(0, 3, 1, 2)"
        weight = em.static(f"{w.expr}.reshape({c_out}, {kh}, {kw}, {c_in}).permute(0, 3, 1, 2)",
                           w.node.name)
    else:
        weight = em.static(f"{w.expr}.reshape({c_out}, {c_in}, {kh}, {kw})", w.node.name)
    h, wd = (x.shape[0], x.shape[1]) if hwc else (x.shape[1], x.shape[2])
    pads = []
    for k, s, size in ((kh, sh, h), (kw, sw, wd)):
        out = (size - 1) // s + 1
        pads.append(split_padding(k, max((out - 1) * s + k - size, 0)) if pad else (0, 0))
    xs = f"F.pad({xs}, ({pads[1][0]}, {pads[1][1]}, {pads[0][0]}, {pads[0][1]}))"
    out = f"F.conv2d({xs}, {weight}, {bias or 'None'}, ({sh}, {sw}))"
    if hwc:
        out = f"{out}.permute(0, 2, 3, 1)"
    return _back(node, out)


def _pool(em, node, x, kind: str, geometry: Geometry, include: bool = False) -> str:
    """Max or average pooling; ``include`` counts padded cells in an average."""
    g = geometry
    nd = len(g.spatial)
    xs = _as_images(x)
    ks, ss = f"({_dims(g.k)},)", f"({_dims(g.s)},)"
    if any(d != 1 for d in g.d):
        raise EvaluationError("dilated pooling is not supported", node=node.name)
    if all(k == 1 for k in g.k) and not any(lo or hi for lo, hi in g.pads) and kind in (
            "max", "average") and all(-(-int(x.shape[i]) // s) == int(node.shape[i])
                                      for i, s in zip(g.spatial, g.s)):
        # a one-cell window is the cell: a strided slice (no indices kept for the backward)
        return _back(node, f"{xs}[:, :, " + ", ".join(f"::{s}" for s in g.s) + "]")
    # torch pools pad symmetrically, at most half the kernel; otherwise pad explicitly
    native = g.symmetric and all(lo * 2 <= k for (lo, _), k in zip(g.pads, g.k))
    ps = f"({_dims([p[0] for p in g.pads])},)"
    if kind == "max":
        if native:
            return _back(node, f"F.max_pool{nd}d({xs}, {ks}, {ss}, {ps})")
        padded = f"F.pad({xs}, {g.pad_arg()}, value=float('-inf'))"
        return _back(node, f"F.max_pool{nd}d({padded}, {ks}, {ss})")
    if kind == "average":
        if native:
            return _back(node, f"F.avg_pool{nd}d({xs}, {ks}, {ss}, {ps}, "
                               f"count_include_pad={include})")
        if include:
            return _back(node, f"F.avg_pool{nd}d(F.pad({xs}, {g.pad_arg()}), {ks}, {ss})")
        ones = em.tmp("ones")
        em.pre(f"{ones} = F.pad(torch.ones_like({xs}[:1, :1]), {g.pad_arg()})")
        return _back(node, f"F.avg_pool{nd}d(F.pad({xs}, {g.pad_arg()}), {ks}, {ss}) / "
                           f"F.avg_pool{nd}d({ones}, {ks}, {ss})")
    raise EvaluationError(f"pooling kind {kind!r} is not supported; use max or average",
                          node=node.name)


@lowering("Pooling")
def _pooling(em, node, args):
    x = args[0]
    g = Geometry(node, tuple(x.shape), tuple(node.shape), pooling=True)
    return _pool(em, node, x, node.attrs["pool_kind"], g, node.attrs["pool_include_pad"])


def _legacy_pool(kind: str):
    """The lowering of the legacy 2-D MaxPooling / AveragePooling (no padding)."""

    def lower(em, node, args):
        x = args[0]
        attrs = node.attrs
        g = Geometry.unpadded((attrs["window_height"], attrs["window_width"]),
                              (attrs["vertical_subsample"], attrs["horizontal_subsample"]))
        if len(x.shape) != 3:
            raise EvaluationError("legacy pooling needs an image input", node=node.name)
        if attrs["image_layout"] != "HWC":
            return _pool(em, node, x, kind, g)
        # (H, W, C) in numpy order: pool over the leading two axes
        perm_in = f"{_as_images(x)}.permute(0, 3, 1, 2)"
        xi = type(x)(perm_in, x.node, True, (x.shape[2], x.shape[0], x.shape[1]))
        out = _pool(em, node, xi, kind, g)
        out = out if node.dynamic else f"{out}.unsqueeze(0)"
        return _back(node, f"({out}).permute(0, 2, 3, 1)")

    return lower


lowering("MaxPooling")(_legacy_pool("max"))
lowering("AveragePooling")(_legacy_pool("average"))


def _time_constant(node, name: str, training: bool) -> float:
    value = node.attrs[name]
    if value < 0 and training:
        raise EvaluationError(f"{name} = {value}: CNTK's negative (corpus-level, cumulative) "
                              "time constant is not supported in training; use 0 (minibatch "
                              "only), a positive number of samples or inf", node=node.name)
    return value


@lowering("BatchNormalization", state_inputs=(3, 4))
def _batch_norm(em, node, args):
    """Inference: running statistics. Training: as CNTK's time constants say —
    ``blend_time_constant`` inf normalizes with the running statistics (inference mode, what
    CloneFunction's constant mode sets), otherwise the minibatch statistics (over real frames
    only) blended with the running ones; ``normalization_time_constant`` inf leaves the
    running statistics alone, otherwise they are updated in place (see ``K.batch_norm_train``).
    """
    x, scale, bias, mean, var = args[:5]
    spatial, eps = node.attrs["spatial"], node.attrs["epsilon"]
    rank = len(x.shape)
    if spatial:
        stat = (-1,) + (1,) * (rank - 1)
    else:
        stat = tuple(x.shape)
    stat_text = "(" + ", ".join(map(str, stat)) + ("," if len(stat) == 1 else "") + ")"
    inv_std = node.attrs["running_inv_std_dev"]
    norm_tc = _time_constant(node, "normalization_time_constant", em.training)
    blend_tc = _time_constant(node, "blend_time_constant", em.training)
    frozen = math.isinf(norm_tc) and math.isinf(blend_tc)  # inference mode, also in training
    if em.training and not em.in_loop and not frozen:
        reduce_dims = (0,) + (tuple(range(2, rank + 1)) if spatial else ())
        if inv_std:  # the Trainer converts these to variances before compiling
            raise EvaluationError("training a BatchNormalization that stores inverse standard "
                                  "deviations (model version < 13) needs its statistics "
                                  "converted first (the Trainer does this)", node=node.name)
        mask = em.mask if x.dynamic else "None"
        tcs = ", ".join(repr(v) if math.isfinite(v) else "math.inf" for v in (norm_tc, blend_tc))
        em.globals.setdefault("math", math)
        return (f"K.batch_norm_train({x}, {scale}, {bias}, {mean}, {var}, {stat_text}, "
                f"{reduce_dims}, {eps}, {tcs}, {mask})")
    if inv_std:
        # model version < 13 stores the running inverse standard deviation; CNTK converts it
        # on load to var = 1/isd² + ε and then normalizes with 1/√(var + ε) (matches
        # CNTK 2.7's cifar10.ResNet outputs to 6e-7; using isd directly is off by 5e-5)
        norm = (f"({x} - {mean}.reshape({stat_text})) * torch.rsqrt("
                f"{var}.reshape({stat_text}).pow(-2) + {2 * eps})")
    else:
        norm = (f"({x} - {mean}.reshape({stat_text})) * "
                f"torch.rsqrt({var}.reshape({stat_text}) + {eps})")
    if not em.training:
        # fold into one multiply-add with constants computed once
        if inv_std:
            inv = f"torch.rsqrt({var}.reshape({stat_text}).pow(-2) + {2 * eps})"
        else:
            inv = f"torch.rsqrt({var}.reshape({stat_text}) + {eps})"
        mul = em.static(f"({inv} * {scale}.reshape({stat_text}))", node.name + "_mul")
        add = em.static(f"({bias}.reshape({stat_text}) - {mean}.reshape({stat_text}) * {mul})",
                        node.name + "_add")
        if mul.startswith("g_") and add.startswith("g_"):
            return f"torch.addcmul({add}, {x}, {mul})"
    return f"{norm} * {scale}.reshape({stat_text}) + {bias}.reshape({stat_text})"
