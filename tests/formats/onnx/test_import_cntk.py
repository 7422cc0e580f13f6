"""CNTK 2.7's own ONNX files imported and evaluated against CNTK's reference outputs and
onnxruntime (../shared/cntk/onnx-from-cntk, MANIFEST.md)."""

from __future__ import annotations

import re

import numpy as np
import onnxruntime as ort
import pytest

from netsurgeon.errors import FormatError
from netsurgeon.formats.onnx.importer import read
from netsurgeon.runtime import evaluate


def _features(path, labels: bool = False):
    """The ``features`` (and ``labels``) rows of a CNTK text-format file."""
    rows, labs = [], []
    for line in path.read_text().splitlines():
        f = re.search(r"\|features ([^|]*)", line)
        if f:
            rows.append([float(v) for v in f[1].split()])
            labs.append([float(v) for v in re.search(r"\|labels ([^|]*)", line)[1].split()])
    return np.asarray(rows, np.float32), np.asarray(labs, np.float32)


def _ort(path, x):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options)
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _rel(got, want) -> float:
    return float(np.abs(got - want).max() / np.abs(want).max())


def test_lr_reg(cntk_dir):
    path = cntk_dir / "onnx-from-cntk/LR_reg.onnx"
    net = read(path)
    assert [n.name for n in net.group("feature")] == ["features"]
    assert net.node("w").op == "LearnableParameter" and net.node("w").learning_rate_multiplier == 1
    x, y = _features(cntk_dir / "data/Test_cntk_text.txt")
    p = evaluate(net, {"features": x}, ["p_Output"])["p_Output"].reshape(-1)
    assert int(((p > 0.5) != (y.reshape(-1) > 0.5)).sum()) == 4  # CNTK: 4/500
    ref = np.load(cntk_dir / "reference/LR_reg/p.first10.frames.npy").reshape(-1)
    assert _rel(p[:10], ref) < 1e-6
    assert _rel(p, _ort(path, x[:, None]).reshape(-1)) < 1e-6


def test_mc(cntk_dir):
    path = cntk_dir / "onnx-from-cntk/MC.onnx"
    net = read(path)
    x, y = _features(cntk_dir / "data/Test-3Classes_cntk_text.txt")
    z = evaluate(net, {"features": x}, ["z_Output"])["z_Output"].reshape(len(x), 3)
    assert int((z.argmax(1) != y.argmax(1)).sum()) == 51  # CNTK: errs 51
    ref = np.load(cntk_dir / "reference/MC/z.first10.frames.npy").reshape(10, 3)
    assert _rel(z[:10], ref) < 1e-6
    assert _rel(z, _ort(path, x[:, None]).reshape(z.shape)) < 1e-6


def test_one_hidden(cntk_dir):
    path = cntk_dir / "onnx-from-cntk/01_OneHidden.onnx"
    net = read(path)
    x = np.load(cntk_dir / "reference/inputs/onehidden_4x784.npy")
    z = evaluate(net, {"features": x}, ["z.z_Output"])["z.z_Output"]
    ref = np.load(cntk_dir / "reference/01_OneHidden/z.z.npy")
    assert _rel(z, ref) < 1e-6
    assert list(z.reshape(4, 10).argmax(1)) == [5, 5, 5, 8]
    assert _rel(z, _ort(path, x[:, None]).reshape(z.shape)) < 1e-6


def test_cifar10_pretrained_imports_although_onnxruntime_rejects_it(cntk_dir):
    """CNTK wrote this file with its (sequence, batch) axes in front of (C, H, W), so its
    Conv nodes look 3-D to onnxruntime ('dilations has incorrect size'). netsurgeon takes
    both leading axes as batch axes (docs/onnx-import.md) and gets CNTK's outputs."""
    path = cntk_dir / "onnx-from-cntk/cifar10.pretrained.onnx"
    with pytest.raises(Exception, match="dilations"):
        _ort(path, np.zeros((1, 1, 3, 32, 32), np.float32))
    net = read(path)
    x = np.load(cntk_dir / "reference/inputs/cifar_3x3x32x32.npy")
    z = evaluate(net, {"features": x}, ["z_Output"])["z_Output"]
    ref = np.load(cntk_dir / "reference/cifar10.pretrained/z.npy")
    assert _rel(z, ref) < 1e-5
    assert list(z.argmax(1)) == [3, 4, 6]


def test_slu_scan_is_a_clear_error(cntk_dir):
    path = cntk_dir / "onnx-from-cntk/slu.forward.nobn.onnx"
    with pytest.raises(FormatError, match=r"slu\.forward\.nobn\.onnx: node 'z\.x\.lstmState\._\."
                       r"ht' \(Scan\): Scan is supported in sequence models"):
        read(path)
