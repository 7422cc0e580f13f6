"""Convolution, pooling and batch normalization (ndl-mel.md §B.9.7) in numpy order.

An image sample is (C, H, W) (CNTK [W x H x C]). Kernel, stride, padding attributes are
numpy-ordered tuples over the sample axes; shorter ones are extended on the left by
repeating their first element (CNTK repeats its last). A kernel whose channel extent equals
the input's channels convolves over the spatial axes only (the usual case); the output
channels come from ``map_count``.

Auto-padding pads k-1 cells in total per axis (CNTK's out = ⌊(in + k-1 - k)/s⌋ + 1). How the
cells are split between the low and high side matters once stride > 1; CNTK puts the
kernel's centre on the first input cell, i.e. the low side gets ⌊(k-1)/2⌋ … see
``split_padding``; the real CIFAR models were checked against CNTK's outputs.
"""

from __future__ import annotations

import math

from netsurgeon.errors import EvaluationError
from netsurgeon.runtime.lowerings import attr, lowering


def _full(values, rank: int, default) -> tuple:
    """Extend a numpy-ordered per-axis tuple to ``rank`` by repeating its first element."""
    if values is None or values == () or values == []:
        return (default,) * rank
    if not isinstance(values, (list, tuple)):
        values = (values,)
    values = tuple(values)
    if len(values) >= rank:
        return values[len(values) - rank:]
    return (values[0],) * (rank - len(values)) + values


def split_padding(k: int, total: int, mode: str) -> tuple[int, int]:
    """Low/high split of ``total`` auto-padding cells for a kernel of ``k``."""
    if mode == "center":
        lo = min((k - 1) // 2 if k % 2 else k // 2, total)
    elif mode == "same_lower":
        lo = (total + 1) // 2
    else:  # same_upper
        lo = total // 2
    return lo, total - lo


class Geometry:
    """Per spatial axis: kernel, stride, (low, high) padding, plus output channels."""

    def __init__(self, em, node, x_shape: tuple[int, ...], out_shape: tuple[int, ...],
                 pooling: bool) -> None:
        rank = len(x_shape)
        self.kernel = _full(attr(node, "kernel_shape", "kernel"), rank, 1)
        self.stride = _full(attr(node, "strides", "stride", default=1), rank, 1)
        self.auto = _full(attr(node, "auto_padding", "auto_pad", default=True), rank, True)
        self.lower = _full(attr(node, "lower_pad", default=0), rank, 0)
        self.upper = _full(attr(node, "upper_pad", default=0), rank, 0)
        mode = em.config.get("autopad", "center")
        channels = x_shape[0]
        # the leading (channel) axis is convolved completely when the kernel spans it
        if rank >= 2 and (self.kernel[0] == channels or pooling and self.kernel[0] == 1) \
                and not (self.auto[0] and self.kernel[0] > 1 and not pooling and False):
            self.spatial = list(range(1, rank))
        else:
            raise EvaluationError(
                f"kernel {self.kernel} over input {x_shape}: only kernels spanning the whole "
                "channel axis (convolution) or 1 channel (pooling) are supported", node=node.name)
        self.k = [int(self.kernel[i]) for i in self.spatial]
        self.s = [int(self.stride[i]) for i in self.spatial]
        self.pads = []
        for n, i in enumerate(self.spatial):
            k, s, size = self.k[n], self.s[n], x_shape[i]
            if self.auto[i]:
                out = out_shape[i] if i < len(out_shape) else (size - 1) // s + 1
                total = max((out - 1) * s + k - size, 0)
                self.pads.append(split_padding(k, total, mode))
            else:
                self.pads.append((int(self.lower[i]), int(self.upper[i])))

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
    if not bool(attr(node, "sharing", default=True)) or (
            isinstance(attr(node, "sharing"), (list, tuple)) and not all(attr(node, "sharing"))):
        raise EvaluationError("Convolution with sharing=false (locally connected) is not "
                              "supported by the PyTorch runtime yet", node=node.name)
    if attr(node, "transpose", default=False):
        raise EvaluationError("transposed Convolution is not supported yet", node=node.name)
    g = Geometry(em, node, tuple(x.shape), tuple(node.shape), pooling=False)
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
    weight = w.expr if tuple(w.shape) == (c_out, c_in, *g.k) else \
        em.static(f"{w.expr}.reshape({c_out}, {c_in}, {_dims(g.k)})", w.node.name)
    xs = _as_images(x)
    if g.symmetric:
        padding = f"({_dims([lo for lo, _ in g.pads])},)"
    else:
        xs = f"F.pad({xs}, {g.pad_arg()})"
        padding = "0"
    bias = getattr(em, "bias", None) or "None"
    return _back(node, f"F.conv{nd}d({xs}, {weight}, {bias}, ({_dims(g.s)},), {padding})")


def _pool_kind(node) -> str:
    kind = attr(node, "pool_kind", "pooling_type", "kind", default="max")
    if isinstance(kind, int):
        return {1: "max", 2: "average"}.get(kind, "none")
    return str(kind).lower()


def _pool(em, node, x, kind: str, geometry: Geometry) -> str:
    g = geometry
    nd = len(g.spatial)
    xs = _as_images(x)
    ks, ss = f"({_dims(g.k)},)", f"({_dims(g.s)},)"
    include = bool(attr(node, "include_pad", "pool_include_pad", default=False))
    if kind == "max":
        if g.symmetric and all(lo * 2 <= k for (lo, _), k in zip(g.pads, g.k)):
            return _back(node, f"F.max_pool{nd}d({xs}, {ks}, {ss}, ({_dims([p[0] for p in g.pads])},))")
        return _back(node, f"F.max_pool{nd}d(F.pad({xs}, {g.pad_arg()}, value=float('-inf')), {ks}, {ss})")
    if kind in ("average", "avg"):
        if g.symmetric and all(lo * 2 <= k for (lo, _), k in zip(g.pads, g.k)):
            return _back(node, f"F.avg_pool{nd}d({xs}, {ks}, {ss}, ({_dims([p[0] for p in g.pads])},), "
                               f"count_include_pad={include})")
        if include:
            return _back(node, f"F.avg_pool{nd}d(F.pad({xs}, {g.pad_arg()}), {ks}, {ss})")
        ones = em.tmp("ones")
        em.pre(f"{ones} = F.pad(torch.ones_like({xs}[:1, :1]), {g.pad_arg()})")
        return _back(node, f"F.avg_pool{nd}d(F.pad({xs}, {g.pad_arg()}), {ks}, {ss}) / "
                           f"F.avg_pool{nd}d({ones}, {ks}, {ss})")
    raise EvaluationError(f"pooling kind {kind!r} is not supported", node=node.name)


@lowering("Pooling")
def _pooling(em, node, args):
    x = args[0]
    g = Geometry(em, node, tuple(x.shape), tuple(node.shape), pooling=True)
    return _pool(em, node, x, _pool_kind(node), g)


@lowering("MaxPooling", "AveragePooling")
def _legacy_pool(em, node, args):
    x = args[0]
    g = Geometry.__new__(Geometry)
    kh = int(attr(node, "window_height", default=1))
    kw = int(attr(node, "window_width", default=1))
    sh = int(attr(node, "vertical_subsample", default=1))
    sw = int(attr(node, "horizontal_subsample", default=1))
    g.spatial, g.k, g.s, g.pads = [1, 2], [kh, kw], [sh, sw], [(0, 0), (0, 0)]
    if len(x.shape) != 3:
        raise EvaluationError("legacy pooling needs an image input", node=node.name)
    layout = str(attr(node, "image_layout", default="HWC"))
    if layout in ("HWC", "legacy"):
        # (H, W, C) in numpy order: pool over the leading two axes
        perm_in = f"{_as_images(x)}.permute(0, 3, 1, 2)"
        xi = type(x)(perm_in, x.node, True, (x.shape[2], x.shape[0], x.shape[1]))
        out = _pool(em, node, xi, "max" if node.op == "MaxPooling" else "average", g)
        out = out if node.dynamic else f"{out}.unsqueeze(0)"
        return _back(node, f"({out}).permute(0, 2, 3, 1)")
    return _pool(em, node, x, "max" if node.op == "MaxPooling" else "average", g)


@lowering("BatchNormalization")
def _batch_norm(em, node, args):
    """Inference: running statistics. Training: minibatch statistics, running ones updated."""
    x, scale, bias, mean, var = args[:5]
    spatial = bool(attr(node, "spatial", default=False))
    eps = float(attr(node, "epsilon", default=1e-5))
    rank = len(x.shape)
    if spatial:
        stat = (-1,) + (1,) * (rank - 1)
    else:
        stat = tuple(x.shape)
    stat_text = "(" + ", ".join(map(str, stat)) + ("," if len(stat) == 1 else "") + ")"
    inv_std = bool(attr(node, "running_inv_std_dev", default=False))
    if em.training and not em.in_loop:
        tc = float(attr(node, "normalization_time_constant", default=0.0))
        if math.isinf(tc):
            factor = 0.0
        elif tc <= 0:
            factor = 1.0
        else:
            factor = -1.0  # computed from the minibatch size at run time
        reduce_dims = (0,) + (tuple(range(2, rank + 1)) if spatial else ())
        builder = em.builder
        for a in (mean, var):
            t = builder.globals.get(a.expr)
            if t is not None:
                em.state_tensors.append(t)
        if inv_std:
            raise EvaluationError("training a BatchNormalization that stores inverse standard "
                                  "deviations (model version < 13) is not supported; convert "
                                  "the statistics first", node=node.name)
        fac = em.glob(factor, "bn_factor") if factor >= 0 else None
        factor_expr = fac if fac else f"1.0 - math.exp(-{x.expr}.shape[0] / {tc})"
        em.globals.setdefault("math", math)
        return (f"K.batch_norm_train({x}, {scale}, {bias}, {mean}, {var}, {stat_text}, "
                f"{reduce_dims}, {eps}, {factor_expr}, {em.mask})")
    if inv_std:
        # model version < 13 stores the running inverse standard deviation; CNTK converts it
        # on load to var = 1/isd² + ε and then normalizes with 1/√(var + ε) (matches
        # CNTK 2.7's cifar10.ResNet outputs to 6e-7; using isd directly is off by 5e-5)
        norm = (f"({x} - {mean}.reshape({stat_text})) * torch.rsqrt("
                f"{var}.reshape({stat_text}).pow(-2) + {2 * eps})")
    else:
        norm = f"({x} - {mean}.reshape({stat_text})) * torch.rsqrt({var}.reshape({stat_text}) + {eps})"
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
