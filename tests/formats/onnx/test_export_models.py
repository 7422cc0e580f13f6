"""The real CNTK models exported to ONNX (output only, and whole graph with --keep-criteria),
checked with onnx's full checker and run in onnxruntime against CNTK 2.7's reference outputs;
criteria exported with --keep-criteria equal netsurgeon's own evaluation."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from netsurgeon import formats, mel
from netsurgeon.cli import main
from netsurgeon.runtime import evaluate
from netsurgeon.runtime.batch import SparseRows
from netsurgeon.runtime.readers import CTFReader, streams_for


def _session(path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _export(cntk_dir, tmp_path, model, keep):
    net = formats.load(cntk_dir / "models" / model)
    path = tmp_path / (model + ".onnx")
    assert formats.save(net, path, keep_criteria=keep) == "onnx"
    onnx.checker.check_model(str(path), full_check=True)
    return net, _session(path)


def _rel(got, want) -> float:
    return float(np.abs(np.asarray(got).reshape(want.shape) - want).max() / np.abs(want).max())


def _dense(value, mb) -> np.ndarray:
    if isinstance(value, SparseRows):
        return value.to_dense().reshape(mb.batch, mb.steps, -1)
    return np.asarray(value, np.float32)


@pytest.mark.parametrize("keep", [False, True], ids=["output", "whole"])
@pytest.mark.parametrize("model,inputs,ref,tol", [
    ("01_OneHidden.dnn", "onehidden_4x784.npy", "01_OneHidden/z.z.npy", 1e-5),
    ("cifar10.pretrained.cmf", "cifar_3x3x32x32.npy", "cifar10.pretrained/z.npy", 1e-4),
    ("cifar10.ResNet.cmf", "cifar_3x3x32x32.npy", "cifar10.ResNet/z.npy", 1e-4),
])
def test_reference_outputs(cntk_dir, tmp_path, model, inputs, ref, tol, keep):
    net, sess = _export(cntk_dir, tmp_path, model, keep)
    out = net.group("output")[0].name
    names = [o.name for o in sess.get_outputs()]
    assert names == ([out, "ce", "errs"] if keep else [out])
    x = np.load(cntk_dir / "reference/inputs" / inputs).astype(np.float32)
    feeds = {"features": x.reshape(len(x), *net.node("features").shape)}
    if keep:  # labels: a fixed one-hot per image
        labels = np.eye(10, dtype=np.float32)[np.arange(len(x)) % 10]
        feeds["labels"] = labels.reshape(len(x), *net.node("labels").shape)
    got = dict(zip(names, sess.run(None, feeds)))
    assert _rel(got[out], np.load(cntk_dir / "reference" / ref)) <= tol
    if keep:
        mine = evaluate(net, feeds, ["ce", "errs"])
        np.testing.assert_allclose(got["ce"], mine["ce"].reshape(1), rtol=1e-5)
        assert got["errs"].tolist() == mine["errs"].reshape(1).tolist()


def _ctf(net, path, mapping=None, max_sequences=None):
    specs = streams_for(net, mapping, None if mapping is None else list(mapping))
    mb = next(iter(CTFReader(path, specs, 100_000, max_sequences)))
    return mb, {k: _dense(v, mb) for k, v in mb.streams.items()}


def test_mc_whole_graph_on_test_data(cntk_dir, tmp_path):
    net, sess = _export(cntk_dir, tmp_path, "MC.dnn", True)
    _, feeds = _ctf(net, cntk_dir / "data/Test-3Classes_cntk_text.txt")
    z, ce, errs = sess.run(["z", "ce", "errs"], {k: v[:, 0] for k, v in feeds.items()})
    assert errs.tolist() == [51]
    assert float(ce[0]) == pytest.approx(121.735, rel=1e-5)
    ref = np.load(cntk_dir / "reference/MC/z.first10.frames.npy").reshape(10, 3)
    assert _rel(z[:10].reshape(10, 3), ref) <= 1e-5


def test_lr_reg_both_ways_on_test_data(cntk_dir, tmp_path):
    ref = np.load(cntk_dir / "reference/LR_reg/p.first10.frames.npy").reshape(-1)
    for keep in (False, True):
        net, sess = _export(cntk_dir, tmp_path, "LR_reg.dnn", keep)
        _, feeds = _ctf(net, cntk_dir / "data/Test_cntk_text.txt")
        wanted = [i.name for i in sess.get_inputs()]
        got = sess.run(None, {k: feeds[k][:, 0] for k in wanted})
        assert _rel(got[0][:10].reshape(-1), ref) <= 1e-5
    p, lr, err = got
    assert int(((p.reshape(-1) > 0.5) != (feeds["labels"].reshape(-1) > 0.5)).sum()) == 4
    assert float(lr[0]) == pytest.approx(14.54701, rel=1e-5)
    assert float(err[0]) == pytest.approx(3.44347, rel=1e-5)


def test_slu_lstm_scans_variable_length_sequences(cntk_dir, tmp_path):
    """The LSTM loop becomes one Scan; padded (batch, time, ...) inputs plus lengths."""
    net, sess = _export(cntk_dir, tmp_path, "slu.forward.nobn.cmf", True)
    assert [i.name for i in sess.get_inputs()] == ["query", "slotLabels", "lengths"]
    mapping = {"query": "S0", "slotLabels": "S2"}
    mb, feeds = _ctf(net, cntk_dir / "data/atis.test.ctf", mapping, 200)
    feeds["lengths"] = mb.lengths.astype(np.int64)
    z, errs = sess.run(["z", "errs"], feeds)
    assert z.shape == (200, mb.steps, 129)
    ref = np.load(cntk_dir / "reference/slu.forward.nobn/z.first10.frames.npy")
    real = np.arange(mb.steps)[None, :] < mb.lengths[:, None]
    assert _rel(z[:10][real[:10]], ref) <= 1e-4
    assert errs.tolist() == [82]  # CNTK's slot errors on the first 200 sequences


def test_slu_whole_atis_test_set_in_minibatches(cntk_dir, tmp_path):
    """All 893 sequences (10,984 words) in the reader's minibatches of up to 2000 words (6
    minibatches of 69-188 variable-length sequences): 321 slot errors, CNTK 2.7's number,
    both as the exported errs node and as argmax(z) != label per real word
    (bench/bench_onnx_atis.py times it)."""
    net, sess = _export(cntk_dir, tmp_path, "slu.forward.nobn.cmf", True)
    mapping = {"query": "S0", "slotLabels": "S2"}
    specs = streams_for(net, mapping, list(mapping))
    errs = argmax = words = 0
    sizes = []
    for mb in CTFReader(cntk_dir / "data/atis.test.ctf", specs, 2000):
        feeds = {k: _dense(v, mb) for k, v in mb.streams.items()}
        feeds["lengths"] = mb.lengths.astype(np.int64)
        z, e = sess.run(["z", "errs"], feeds)
        real = np.arange(mb.steps)[None, :] < mb.lengths[:, None]
        errs += int(e[0])
        argmax += int((z.argmax(-1) != feeds["slotLabels"].argmax(-1))[real].sum())
        words += int(real.sum())
        sizes.append(mb.batch)
    assert sum(sizes) == 893 and words == 10984 and len(sizes) > 1 and min(sizes) > 50
    assert errs == argmax == 321


def test_convert_command_and_mel_save_model(cntk_dir, tmp_path, capsys):
    out = tmp_path / "mc.onnx"
    assert main(["convert", str(cntk_dir / "models/MC.dnn"), str(out), "--keep-criteria",
                 "--opset", "21"]) == 0
    model = onnx.load(str(out))
    assert [o.name for o in model.graph.output] == ["z", "ce", "errs"]
    assert model.opset_import[0].version == 21
    assert main(["convert", str(cntk_dir / "models/MC.dnn"), str(tmp_path / "mc.bin"),
                 "--format", "onnx", "--outputs", "z.PlusArgs[0]"]) == 0
    model = onnx.load(str(tmp_path / "mc.bin"))
    assert [o.name for o in model.graph.output] == ["z.PlusArgs[0]"]
    assert [i.name for i in model.graph.initializer] == ["w"]
    assert formats.detect_format(out) == "onnx"
    script = tmp_path / "save.mel"
    script.write_text(f'm = LoadModel("{cntk_dir / "models/MC.dnn"}")\n'
                      f'SaveModel(m, "{tmp_path / "x.onnx"}", format=onnx)\n')
    mel.run(str(script))
    assert [o.name for o in onnx.load(str(tmp_path / "x.onnx")).graph.output] == ["z"]
