"""MaxUnpooling and ROIPooling against numpy references, and against the real CNTK 2.7.

The references are plain loops (no torch): MaxUnpooling puts each pooled value at the first
max (row-major) of its window in the pooling input, later windows overwriting earlier ones;
ROIPooling takes regions (x1, y1, x2, y2) in image pixels, scaled and rounded half away from
zero, split into bins ⌊i·w/n⌋ .. ⌈(i+1)·w/n⌉ clipped to the map, 0 for an empty bin. The
cases reuse the harness of ``test_op_reference`` (Case, X, C, build, expected).

The oracle tests (skipped without tests/oracle.py's cntk_eval) write each case as a CNTK v2
file and compare CNTK 2.7's outputs with netsurgeon's: equal to float precision for every
case CNTK computes. What CNTK 2.7 does differently is pinned down there too: it refuses
average ROI pooling, and its CPU kernel (unsigned arithmetic) empties the bins of a region
that start left of or above the map, which netsurgeon clips to the map.
"""

from __future__ import annotations

import importlib
import math
import sys

import numpy as np
import pytest
import torch
from tests.oracle import cntk_eval, cntk_outputs, needs_oracle
from tests.runtime.test_op_reference import B, C, Case, X, build, expected, ints, normal, pads

import netsurgeon
from netsurgeon import formats
from netsurgeon.errors import EvaluationError
from netsurgeon.graph import Network
from netsurgeon.runtime import _kernels as K

R = np.random.default_rng(99)


# ---- references ---------------------------------------------------------------------------
def unpool_ref(z, x, k, s, auto=(False, False), lo=(0, 0), hi=(0, 0)):
    """numpy MaxUnpooling of z (batch, C, *pooled) into the shape of x (batch, C, H, W)."""
    n, c, h, w = x.shape
    ph = pads(k[0], s[0], h, auto[0], lo[0], hi[0])
    pw = pads(k[1], s[1], w, auto[1], lo[1], hi[1])
    out = np.zeros(np.broadcast_shapes(x.shape, (z.shape[0], c, h, w)))
    z = np.broadcast_to(z, (len(out), *z.shape[1:]))
    x = np.broadcast_to(x, (len(out), *x.shape[1:]))
    for b in range(len(out)):
        for ch in range(c):
            for i in range(z.shape[2]):
                for j in range(z.shape[3]):
                    best, at = -np.inf, None
                    for di in range(k[0]):
                        for dj in range(k[1]):
                            r, q = i * s[0] + di - ph[0], j * s[1] + dj - pw[0]
                            if 0 <= r < h and 0 <= q < w and x[b, ch, r, q] > best:
                                best, at = x[b, ch, r, q], (r, q)
                    out[(b, ch, *at)] = z[b, ch, i, j]
    return out


def _round(v):
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def roi_ref(x, rois, out, scale):
    """numpy max ROIPooling of x (batch, C, H, W) over rois (batch, R, 4) or (R, 4)."""
    rois = np.broadcast_to(rois, (len(x), *rois.shape[-2:])) if rois.ndim == 2 else rois
    n, c, h, w = x.shape
    ph, pw = out
    y = np.zeros((n, rois.shape[1], c, ph, pw))
    for b in range(n):
        for r in range(rois.shape[1]):
            x1, y1, x2, y2 = (_round(float(v) * scale) for v in rois[b, r])
            win_w = np.float32(max(x2 - x1 + 1, 1)) / np.float32(pw)
            win_h = np.float32(max(y2 - y1 + 1, 1)) / np.float32(ph)
            for i in range(ph):
                hs = min(max(math.floor(i * win_h) + y1, 0), h)
                he = min(max(math.ceil((i + 1) * win_h) + y1, 0), h)
                for j in range(pw):
                    ws = min(max(math.floor(j * win_w) + x1, 0), w)
                    we = min(max(math.ceil((j + 1) * win_w) + x1, 0), w)
                    if he > hs and we > ws:
                        y[b, r, :, i, j] = x[b, :, hs:he, ws:we].max((1, 2))
    return y


def regions(count, size, batch=B, snap=None):
    """Well-formed regions (x1 <= x2, y1 <= y2, non-negative) up to ``size`` pixels."""
    a = R.uniform(0, size, (batch, count, 2, 2))
    if snap:
        a = np.round(a * snap) / snap  # corners on .5: rounding half away from zero
    lo, top = a.min(2), a.max(2)
    return np.stack([lo[..., 0], lo[..., 1], top[..., 0], top[..., 1]], -1).astype(np.float32)


def _unpool(cid, xs, k, s, auto=(False, False), lo=(0, 0), hi=(0, 0), x=None, const=False,
            **extra):
    """MaxUnpooling(z, x) with z random (independent of the pooled values) and x small
    integers (ties in most windows)."""
    x = ints(B, *xs) if x is None else x
    ph = [pads(k[i], s[i], xs[i + 1], auto[i], lo[i], hi[i]) for i in range(2)]
    ceil = extra.get("ceil_out_dim", False)
    rnd = math.ceil if ceil else math.floor
    pooled = [rnd((xs[i + 1] + sum(ph[i]) - k[i]) / s[i]) + 1 for i in range(2)]
    z = normal(B, xs[0], *pooled)
    attrs = {"kernel_shape": (1, *k), "strides": (1, *s), "auto_padding": (False, *auto),
             "lower_pad": (0, *lo), "upper_pad": (0, *hi), **extra}
    return Case(cid, "MaxUnpooling", [X(z), C(x[0]) if const else X(x)],
                lambda z, x: unpool_ref(z, x[None] if const else x, k, s, auto, lo, hi),
                attrs=attrs)


def _roi(cid, x, rois, out, scale, const=False):
    return Case(cid, "ROIPooling", [X(x), C(rois[0]) if const else X(rois)],
                lambda x, r: roi_ref(x, r, out, scale),
                attrs={"roi_output_shape": out, "pool_kind": "max", "spatial_scale": scale})


_FMAP = normal(B, 3, 7, 9)
CASES = [
    _unpool("MaxUnpooling-overlapping", (2, 4, 5), (3, 3), (1, 1)),
    _unpool("MaxUnpooling-auto-padding", (2, 5, 6), (3, 3), (2, 2), auto=(True, True)),
    _unpool("MaxUnpooling-explicit-asymmetric", (3, 5, 6), (2, 3), (2, 1), lo=(1, 0),
            hi=(0, 2)),
    _unpool("MaxUnpooling-2x2", (2, 6, 5), (2, 2), (2, 2), x=normal(B, 2, 6, 5)),
    _unpool("MaxUnpooling-constant-pool-input", (2, 4, 6), (2, 2), (2, 2), const=True),
    _unpool("MaxUnpooling-ceil-out-dim", (2, 5, 7), (2, 2), (2, 2), ceil_out_dim=True),
    _roi("ROIPooling-max", _FMAP, regions(12, 18), (3, 4), 0.5),
    _roi("ROIPooling-past-the-map", _FMAP, regions(10, 30, snap=2), (2, 3), 0.5),
    _roi("ROIPooling-7x7-bins", _FMAP, regions(6, 9), (7, 7), 1.0),
    _roi("ROIPooling-fast-rcnn-scale", _FMAP, regions(8, 150), (2, 2), 1 / 16),
    _roi("ROIPooling-constant-rois", _FMAP, regions(5, 18, batch=1), (2, 2), 0.5, const=True),
    Case("ROIPooling-one-region", "ROIPooling", [X(_FMAP), X(regions(1, 9)[:, 0])],
         lambda x, r: roi_ref(x, r[:, None], (2, 2), 1.0)[:, 0],
         attrs={"roi_output_shape": (2, 2), "spatial_scale": 1.0}),
    Case("ROIPooling-outside-corners", "ROIPooling", [X(_FMAP), X(R.uniform(
        -6, 14, (B, 10, 4)).astype(np.float32))],
         lambda x, r: roi_ref(x, r, (3, 2), 1.0),
         attrs={"roi_output_shape": (3, 2), "spatial_scale": 1.0}),
]

#: cases netsurgeon computes that CNTK 2.7 does not, or computes otherwise
NOT_IN_CNTK = {
    "MaxUnpooling-ceil-out-dim": "the v2 Unpooling op has no ceilOutDim: CNTK pools the "
                                 "input with floor and refuses the larger pooled operand",
    "MaxUnpooling-constant-pool-input": "CNTK needs both operands on the minibatch axis "
                                        "('FrameRange's dynamic axis is inconsistent with "
                                        "matrix')",
    "ROIPooling-constant-rois": "the same: CNTK needs the ROIs on the minibatch axis",
    "ROIPooling-one-region": "CNTK needs the ROIs as a matrix [4 x R] (R = 1 here); a vector "
                             "[4] fails ('vector::_M_range_check')",
    "ROIPooling-outside-corners": "inverted regions and corners outside the map: CNTK's CPU "
                                  "kernel works in unsigned integers (see the last test)",
}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_op_matches_numpy(case: Case):
    net, feeds = build(case)
    got = netsurgeon.evaluate(net, feeds, ["y"])["y"]
    want = expected(case)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_references_put_each_value_at_its_windows_max():
    """The reference itself on a hand-checked example (CNTK 2.7's output for it): ties take
    the first max, overlapping windows overwrite (5 at (2, 1), not 2 + 4 + 5)."""
    x = np.array([[2, 1, 1, 0, 0], [0, 0, 0, 0, 2], [1, 2, 1, 1, 2], [2, 1, 1, 1, 2]], float)
    z = np.arange(1, 7, dtype=float).reshape(2, 3)
    want = np.zeros((4, 5))
    want[0, 0], want[1, 4], want[2, 1] = 1, 6, 5
    np.testing.assert_array_equal(unpool_ref(z[None, None], x[None, None], (3, 3), (1, 1))[0, 0],
                                  want)
    fmap = np.arange(48, dtype=float).reshape(1, 1, 6, 8)
    got = roi_ref(fmap, np.array([[[1, 1, 4, 3]]]), (2, 2), 1.0)
    np.testing.assert_array_equal(got[0, 0, 0], [[18, 20], [26, 28]])


def test_average_roi_pooling_is_refused_as_in_cntk():
    case = _roi("roi-average", _FMAP, regions(3, 9), (2, 2), 1.0)
    case.attrs["pool_kind"] = "average"
    net, feeds = build(case)
    with pytest.raises(EvaluationError, match="max ROI pooling only") as info:
        netsurgeon.evaluate(net, feeds, ["y"])
    assert info.value.node == "y"


def test_pooled_values_that_do_not_fit_the_geometry_are_an_error():
    net = Network("u")
    z = net.add("z", "InputValue", shape=(2, 3, 3))
    x = net.add("x", "InputValue", shape=(2, 4, 6))
    net.add_to_group("output", net.add("y", "MaxUnpooling", [z, x], attrs={
        "kernel_shape": (1, 2, 2), "strides": (1, 2, 2), "auto_padding": (False,)}))
    net.validate()
    with pytest.raises(EvaluationError, match="do not fit a pooling") as info:
        netsurgeon.evaluate(net, {"z": normal(2, 2, 3, 3), "x": normal(2, 2, 4, 6)}, ["y"])
    assert info.value.node == "y"


def test_gradients_reach_the_values_written():
    x = torch.tensor(ints(2, 3, 4, 5), dtype=torch.float32)
    z = torch.randn(2, 3, 2, 3, requires_grad=True)
    out = K.max_unpool(z, x, (3, 3), (1, 1), ((0, 0), (0, 0)))
    out.sum().backward()
    # a window's value counts where it was written, not where a later window overwrote it
    ids = torch.arange(1, 7, dtype=torch.float32).reshape(1, 1, 2, 3).expand(2, 3, 2, 3)
    written = K.max_unpool(ids, x, (3, 3), (1, 1), ((0, 0), (0, 0))).flatten(2)
    want = torch.zeros(2, 3, 7).scatter_(-1, written.long(), 1.0)[..., 1:]
    assert torch.equal(z.grad.flatten(2), want)
    assert 0 < float(want.sum()) < want.numel()  # some windows were overwritten
    fmap = torch.randn(2, 3, 7, 9, requires_grad=True)
    K.roi_pool(fmap, torch.tensor(regions(4, 9, batch=2)), (2, 2), 1.0).sum().backward()
    assert fmap.grad.abs().sum() > 0


def test_standalone_module_copies_the_kernels(tmp_path, monkeypatch):
    """write_module copies max_unpool, roi_pool and what they call (range_max, roi_bins)."""
    from netsurgeon.runtime.standalone import write_module

    net = Network("s")
    x = net.add("x", "InputValue", shape=(3, 7, 9))
    r = net.add("r", "InputValue", shape=(4, 4))
    p = net.add("p", "Pooling", [x], attrs={"kernel_shape": (1, 2, 2), "strides": (1, 2, 2),
                                            "auto_padding": (False,), "pool_kind": "max"})
    u = net.add("u", "MaxUnpooling", [p, x], attrs={"kernel_shape": (1, 2, 2),
                                                   "strides": (1, 2, 2), "auto_padding": (False,)})
    roi = net.add("roi", "ROIPooling", [u, r], attrs={"roi_output_shape": (2, 3),
                                                      "spatial_scale": 0.5})
    net.add_to_group("output", roi)
    net.validate()
    write_module(net, tmp_path / "roimod.py")
    source = (tmp_path / "roimod.py").read_text()
    assert "def range_max(" in source and "def roi_bins(" in source
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("roimod").load()
    feeds = {"x": normal(2, 3, 7, 9), "r": regions(4, 18, batch=2)}
    with torch.no_grad():
        got = module(**{k: torch.tensor(v) for k, v in feeds.items()})["roi"]
    want = netsurgeon.evaluate(net, feeds, ["roi"])["roi"]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)
    sys.modules.pop("roimod", None)


# ---- the real CNTK 2.7 --------------------------------------------------------------------
def _cntk(net: Network, feeds: dict[str, np.ndarray], tmp_path, output: str = "y"):
    written = tmp_path / "op.model"
    assert formats.save(net, written) == "cntk-v2"
    paths = {}
    for name, data in feeds.items():
        np.save(tmp_path / f"{name}.npy", np.ascontiguousarray(data, np.float32))
        paths[name] = tmp_path / f"{name}.npy"
    return cntk_outputs(written, paths, [output], tmp_path / "cntk")[output]


@needs_oracle
@pytest.mark.parametrize("case", [c for c in CASES if c.id not in NOT_IN_CNTK],
                         ids=lambda c: c.id)
def test_cntk_computes_what_netsurgeon_computes(case, tmp_path):
    net, feeds = build(case)
    theirs = _cntk(net, feeds, tmp_path)
    mine = np.asarray(netsurgeon.evaluate(net, feeds, ["y"])["y"])
    np.testing.assert_allclose(mine.reshape(theirs.shape), theirs, rtol=1e-6, atol=1e-6)


@needs_oracle
def test_cntk_refuses_average_roi_pooling(tmp_path):
    case = _roi("roi-average", _FMAP, regions(3, 9), (2, 2), 1.0)
    case.attrs["pool_kind"] = "average"
    net, feeds = build(case)
    written = tmp_path / "avg.model"
    formats.save(net, written)
    for name, data in feeds.items():
        np.save(tmp_path / f"{name}.npy", data)
    p = cntk_eval(str(written), "--outdir", str(tmp_path), "--output", "y",
                  *(f"{n}={tmp_path / n}.npy" for n in feeds))
    assert p.returncode != 0 and "Average ROI pooling is not supported" in p.stderr


@needs_oracle
def test_cntk_cpu_empties_bins_starting_outside_the_map(tmp_path):
    """Region (-2, -1, 3, 2) in 2 x 2 bins: CNTK 2.7's CPU kernel adds the negative corner in
    unsigned arithmetic, so the three bins starting outside the map are 0; netsurgeon (as
    Fast R-CNN) clips them to the map. The bin inside agrees."""
    case = _roi("roi-outside", _FMAP[:1], np.float32([[[-2, -1, 3, 2]]]), (2, 2), 1.0)
    net, feeds = build(case)
    theirs = _cntk(net, feeds, tmp_path)[0, 0]
    mine = np.asarray(netsurgeon.evaluate(net, feeds, ["y"])["y"])[0, 0]
    assert (theirs[:, 0, 0] == 0).all() and (theirs[:, 0, 1] == 0).all() \
        and (theirs[:, 1, 0] == 0).all()
    np.testing.assert_allclose(mine[:, 1, 1], theirs[:, 1, 1], rtol=1e-6)
    np.testing.assert_allclose(mine, expected(case)[0, 0], rtol=1e-6)
