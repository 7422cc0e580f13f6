"""Auto-padding of even kernels: CNTK pads ⌊(k−1)/2⌋ cells before and the rest after (a
window of 2 pads only at the end). The rule came from CNTK 2.7 itself (the oracle, and the v2
AveragePooling reference in ../shared/cntk/v2/blocks); here it is checked against a numpy
reference always and against CNTK 2.7 where the oracle is built."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from netsurgeon.formats import save
from netsurgeon.graph import Network
from netsurgeon.runtime import evaluate

ORACLE = Path(os.environ.get("CNTK_ORACLE_DIR", "/tmp/cntk-oracle"))
CASES = [(2, 1, "max"), (2, 2, "average"), (4, 1, "average"), (4, 3, "max"), (2, 3, "max"),
         (2, 1, "conv"), (4, 2, "conv")]
X = np.random.default_rng(0).normal(size=(2, 2, 7, 8)).astype(np.float32)
W = np.random.default_rng(1).normal(size=(3, 2, 4, 4)).astype(np.float32)


def _net(k: int, s: int, kind: str) -> Network:
    net = Network("p")
    x = net.add("features", "InputValue", shape=(2, 7, 8))
    if kind == "conv":
        w = net.add_parameter("W", W[:, :, :k, :k].copy())
        y = net.add("p", "Convolution", inputs=(w, x), attrs={
            "kernel_shape": (2, k, k), "map_count": (3,), "strides": (2, s, s),
            "auto_padding": (False, True, True)})
    else:
        y = net.add("p", "Pooling", inputs=(x,), attrs={
            "kernel_shape": (1, k, k), "strides": (1, s, s),
            "auto_padding": (False, True, True), "pool_kind": kind})
    net.add_to_group("output", y)
    net.validate()
    return net


def _reference(k: int, s: int, kind: str) -> np.ndarray:
    """Windows starting at i·s − ⌊(k−1)/2⌋; pooling over the valid cells, convolution over a
    zero-padded input."""
    x = X.astype(np.float64)
    n, c, h, w = x.shape
    lo = (k - 1) // 2
    oh, ow = -(-h // s), -(-w // s)
    padded = np.zeros((n, c, h + k, w + k))
    padded[:, :, lo:lo + h, lo:lo + w] = x
    out = np.zeros((n, 3 if kind == "conv" else c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r, q = i * s - lo, j * s - lo
            if kind == "conv":
                patch = padded[:, :, r + lo:r + lo + k, q + lo:q + lo + k]
                out[:, :, i, j] = np.einsum("nchw,mchw->nm", patch, W[:, :, :k, :k])
                continue
            block = x[:, :, max(r, 0):min(r + k, h), max(q, 0):min(q + k, w)]
            out[:, :, i, j] = block.max((2, 3)) if kind == "max" else block.mean((2, 3))
    return out


@pytest.mark.parametrize("k,s,kind", CASES)
def test_even_kernels_pad_the_end(k, s, kind):
    got = evaluate(_net(k, s, kind), {"features": X}, ["p"])["p"]
    np.testing.assert_allclose(got, _reference(k, s, kind), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not (ORACLE / "bin" / "cntk_eval").exists(),
                    reason="the CNTK 2.7 oracle is not built (bash ../shared/tools/cntk-oracle/"
                           "build.sh)")
@pytest.mark.parametrize("k,s,kind", CASES)
def test_even_kernels_equal_cntk(tmp_path, k, s, kind):
    net = _net(k, s, kind)
    save(net, tmp_path / "p.dnn")
    np.save(tmp_path / "x.npy", X)
    run = subprocess.run(f". {ORACLE}/env.sh && cntk_eval {tmp_path}/p.dnn "
                         f"features={tmp_path}/x.npy --output p --outdir {tmp_path}/o",
                         shell=True, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-500:]
    want = np.load(tmp_path / "o" / "p.npy")
    got = evaluate(net, {"features": X}, ["p"])["p"]
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-5, atol=1e-5)
