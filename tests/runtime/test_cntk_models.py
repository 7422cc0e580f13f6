"""The real CNTK models evaluated on the reference inputs, against CNTK 2.7's own outputs."""

from __future__ import annotations

import numpy as np
import pytest

from netsurgeon.formats import load
from netsurgeon.runtime import Evaluator, evaluate
from netsurgeon.runtime.readers import CTFReader, streams_for


def _model(cntk_dir, name):
    net = load(cntk_dir / "models" / name)
    net.validate()
    return net


def _rel(got, want) -> float:
    return float(np.abs(np.asarray(got) - want).max() / np.abs(want).max())


def _run_ctf(net, path, outputs, mapping=None, minibatch=256, max_sequences=None):
    ev = Evaluator(net, outputs)
    specs = streams_for(net, mapping, None if mapping is None else list(mapping))
    sums = {o: 0.0 for o in outputs if not net.node(o).dynamic}
    frames = {o: [] for o in outputs if net.node(o).dynamic}
    labels = []
    for mb in CTFReader(path, specs, minibatch, max_sequences):
        out = ev.run(mb)
        mask = mb.frame_mask()
        for o in sums:
            sums[o] += float(out[o].sum())
        for o in frames:
            v = out[o].numpy()
            frames[o].append(v if mask is None else v[mask > 0])
        lab = mb.streams.get("labels")
        if lab is not None:
            labels.append(np.asarray(lab).reshape(-1, np.asarray(lab).shape[-1]))
    return sums, {o: np.concatenate(v) for o, v in frames.items()}, labels


def test_lr_reg_on_test_data(cntk_dir):
    net = _model(cntk_dir, "LR_reg.dnn")
    sums, frames, labels = _run_ctf(net, cntk_dir / "data/Test_cntk_text.txt", ["p", "lr", "err"])
    p = frames["p"].reshape(-1)
    y = np.concatenate(labels).reshape(-1)
    assert len(p) == 500
    assert int(((p > 0.5) != (y > 0.5)).sum()) == 4
    ref = np.load(cntk_dir / "reference/LR_reg/p.first10.frames.npy").reshape(-1)
    np.testing.assert_allclose(p[:10], ref, rtol=1e-5, atol=1e-7)
    assert sums["err"] == pytest.approx(3.44347, rel=1e-5)
    assert sums["lr"] == pytest.approx(14.54701, rel=1e-5)


def test_mc_on_test_data(cntk_dir):
    net = _model(cntk_dir, "MC.dnn")
    sums, frames, _ = _run_ctf(net, cntk_dir / "data/Test-3Classes_cntk_text.txt",
                               ["z", "ce", "errs"], minibatch=100)
    assert sums["errs"] == 51
    assert sums["ce"] == pytest.approx(121.735, rel=1e-5)
    ref = np.load(cntk_dir / "reference/MC/z.first10.frames.npy").reshape(10, 3)
    np.testing.assert_allclose(frames["z"].reshape(-1, 3)[:10], ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model,inputs,ref,argmax", [
    ("01_OneHidden.dnn", "onehidden_4x784.npy", "01_OneHidden/z.z.npy", [5, 5, 5, 8]),
    ("cifar10.pretrained.cmf", "cifar_3x3x32x32.npy", "cifar10.pretrained/z.npy", [3, 4, 6]),
    ("cifar10.ResNet.cmf", "cifar_3x3x32x32.npy", "cifar10.ResNet/z.npy", [3, 8, 2]),
])
def test_reference_outputs(cntk_dir, model, inputs, ref, argmax):
    net = _model(cntk_dir, model)
    out_node = net.group("output")[0].name
    x = np.load(cntk_dir / "reference/inputs" / inputs)
    got = evaluate(net, {"features": x}, [out_node])[out_node]
    want = np.load(cntk_dir / "reference" / ref)
    got = got.reshape(want.shape)
    assert _rel(got, want) <= 1e-4
    assert got.reshape(len(x), -1).argmax(1).tolist() == argmax


def test_slu_lstm_on_atis(cntk_dir):
    net = _model(cntk_dir, "slu.forward.nobn.cmf")
    mapping = {"query": "S0", "slotLabels": "S2"}
    data = cntk_dir / "data/atis.test.ctf"
    _, frames, _ = _run_ctf(net, data, ["z"], mapping, max_sequences=10)
    ref = np.load(cntk_dir / "reference/slu.forward.nobn/z.first10.frames.npy")
    assert frames["z"].shape == ref.shape == (175, 129)
    assert _rel(frames["z"], ref) <= 1e-4
    sums, _, _ = _run_ctf(net, data, ["errs"], mapping, max_sequences=200)
    assert sums["errs"] == 82
    sums, _, _ = _run_ctf(net, data, ["errs", "ce"], mapping)
    assert sums["errs"] == 321
