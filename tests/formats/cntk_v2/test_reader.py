"""CNTK v2 files written by the real CNTK 2.7 read as networks that evaluate as CNTK did: the
six shared models converted by CNTK (against the v1 originals and CNTK's references) and the
Block models built like CNTK's Python layers (against CNTK's outputs in v2/blocks/ref_*)."""

from __future__ import annotations

import numpy as np
import pytest
from tests.runtime.test_cntk_models import _rel, _run_ctf

from netsurgeon.formats import detect_format, load
from netsurgeon.runtime import evaluate

MODELS = ("LR_reg", "MC", "01_OneHidden", "cifar10.pretrained", "cifar10.ResNet",
          "slu.forward.nobn")
V1 = {"LR_reg": "LR_reg.dnn", "MC": "MC.dnn", "01_OneHidden": "01_OneHidden.dnn",
      "cifar10.pretrained": "cifar10.pretrained.cmf", "cifar10.ResNet": "cifar10.ResNet.cmf",
      "slu.forward.nobn": "slu.forward.nobn.cmf"}


def _v2(cntk_dir, name):
    return load(cntk_dir / "v2" / f"{name}.model")


@pytest.mark.parametrize("name", MODELS)
def test_detected_and_named_as_the_v1_original(cntk_dir, name):
    path = cntk_dir / "v2" / f"{name}.model"
    assert detect_format(path) == "cntk-v2"
    net, v1 = _v2(cntk_dir, name), load(cntk_dir / "models" / V1[name])
    kept = {n.name for n in v1.nodes} & {n.name for n in net.nodes}
    outputs = {n.name for g in ("output", "criterion", "evaluation") for n in v1.group(g)}
    assert outputs <= kept
    # an old v1 file keeps BatchNormalization's inverse standard deviation; CNTK converted it
    inverse = {bn.inputs[4].name for bn in v1.nodes if bn.op == "BatchNormalization"
               and bn.attrs["running_inv_std_dev"]}
    for node in kept - inverse:
        if v1.node(node).value is not None and net.node(node).value is not None:
            np.testing.assert_array_equal(net.node(node).value.reshape(-1),
                                          v1.node(node).value.reshape(-1))


def test_lr_reg_and_mc_on_their_test_sets(cntk_dir):
    net = _v2(cntk_dir, "LR_reg")
    sums, frames, labels = _run_ctf(net, cntk_dir / "data/Test_cntk_text.txt", ["p", "lr", "err"])
    p, y = frames["p"].reshape(-1), np.concatenate(labels).reshape(-1)
    assert len(p) == 500 and int(((p > 0.5) != (y > 0.5)).sum()) == 4
    np.testing.assert_allclose(p[:10], np.load(cntk_dir / "reference/LR_reg/p.first10.frames.npy"
                                               ).reshape(-1), rtol=1e-5, atol=1e-7)
    assert sums["lr"] == pytest.approx(14.54701, rel=1e-5)
    net = _v2(cntk_dir, "MC")
    sums, _, _ = _run_ctf(net, cntk_dir / "data/Test-3Classes_cntk_text.txt", ["z", "ce", "errs"],
                          minibatch=100)
    assert sums["errs"] == 51 and sums["ce"] == pytest.approx(121.735, rel=1e-5)


@pytest.mark.parametrize("name,inputs,ref", [
    ("01_OneHidden", "onehidden_4x784.npy", "01_OneHidden/z.z.npy"),
    ("cifar10.pretrained", "cifar_3x3x32x32.npy", "cifar10.pretrained/z.npy"),
    ("cifar10.ResNet", "cifar_3x3x32x32.npy", "cifar10.ResNet/z.npy"),
])
def test_image_and_mlp_models_equal_the_references(cntk_dir, name, inputs, ref):
    net = _v2(cntk_dir, name)
    x = np.load(cntk_dir / "reference/inputs" / inputs)
    out = net.group("output")[0].name
    got = evaluate(net, {"features": x}, [out])[out]
    want = np.load(cntk_dir / "reference" / ref)
    assert _rel(got.reshape(want.shape), want) <= 1e-5


def test_slu_on_the_whole_atis_test_set(cntk_dir):
    net = _v2(cntk_dir, "slu.forward.nobn")
    mapping = {"query": "S0", "slotLabels": "S2"}
    sums, _, _ = _run_ctf(net, cntk_dir / "data/atis.test.ctf", ["errs"], mapping)
    assert sums["errs"] == 321
    delays = [n for n in net.nodes if n.op == "PastValue"]
    assert len(delays) == 2
    assert [d.attrs["initial_state"] for d in delays] == [pytest.approx(0.1)] * 2


# ---- Block models (v2/blocks, MANIFEST.md there) ------------------------------------------
def _blocks(cntk_dir):
    return cntk_dir / "v2" / "blocks"


def _node_of(net, uid):
    return net.metadata["cntk_v2"]["outputs"][uid]


@pytest.mark.parametrize("model,features,outputs", [
    ("mlp_dense", "mlp_features.npy", ["Block32_Output_0", "Block14_Output_0"]),
    ("conv_bn_pool", "conv_features.npy",
     ["Block135_Output_0", "Block94_Output_0", "Block110_Output_0", "Block119_Output_0"]),
    ("nested_seq", "nested_features.npy", ["z"]),
    ("avgpool", "avgpool_features.npy", ["Block431_Output_0"]),
])
def test_block_models_equal_cntk(cntk_dir, model, features, outputs):
    d = _blocks(cntk_dir)
    net = load(d / f"{model}.model")
    x = np.load(d / features)
    for uid in outputs:
        node = uid if uid in net else _node_of(net, uid)
        got = evaluate(net, {"features": x}, [node])[node]
        want = np.load(d / f"ref_{model}" / f"{uid}.npy")
        np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-5,
                                   atol=1e-5 * np.abs(want).max())


def test_mlp_criteria_blocks_per_sample(cntk_dir):
    d = _blocks(cntk_dir)
    net = load(d / "mlp_dense.model")
    feeds = {"features": np.load(d / "mlp_features.npy"), "labels": np.load(d / "mlp_labels.npy")}
    got = evaluate(net, feeds, ["ce", "errs"])
    for name in ("ce", "errs"):
        want = np.load(d / "ref_mlp_dense" / f"{name}.npy")
        np.testing.assert_allclose(np.asarray(got[name]).reshape(-1).sum(), want.sum(),
                                   rtol=1e-5)


def test_lstm_tagger_block_model(cntk_dir):
    d = _blocks(cntk_dir)
    net = load(d / "lstm_tagger.model")
    lens = np.load(d / "lstm_lens.npy")
    frames = np.load(d / "lstm_query.npy")
    batch = np.zeros((len(lens), lens.max(), frames.shape[1]), np.float32)
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    for i, (s, n) in enumerate(zip(starts, lens)):
        batch[i, :n] = frames[s:s + n]
    mask = np.arange(lens.max())[None, :] < lens[:, None]
    for uid in ("classify", "embed", "Block222_Output_0", "Block222_Output_1"):
        node = uid if uid in net else _node_of(net, uid)
        got = evaluate(net, {"query": batch}, [node], lengths=lens)[node]
        want = np.load(d / "ref_lstm_tagger" / f"{uid}.npy")
        np.testing.assert_allclose(np.asarray(got)[mask], want, rtol=1e-5, atol=1e-5)


def test_block_names_reach_a_layer_with_wildcards(cntk_dir):
    net = load(_blocks(cntk_dir) / "lstm_tagger.model")
    assert net.node("classify").op == "Plus"
    assert {n.op for n in net.match("classify.*")} >= {"LearnableParameter", "Times"}
    assert net.node("embed.E").shape == (943, 50)
