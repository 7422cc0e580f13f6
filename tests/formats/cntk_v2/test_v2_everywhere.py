"""CNTK v2 models through every command and front-end, as v1 models: dump, validate, eval on
a test set, BS.Network.Load + CloneFunction, MEL, and conversion to native, v1 and ONNX."""

from __future__ import annotations

import json

import numpy as np
import pytest

from netsurgeon import formats
from netsurgeon.cli import main
from netsurgeon.runtime import evaluate


def test_dump_and_validate(cntk_dir, capsys):
    model = cntk_dir / "v2" / "blocks" / "lstm_tagger.model"
    assert main(["dump", str(model)]) == 0
    out = capsys.readouterr().out
    assert "classify.W=LearnableParameter" in out and "embed.E=LearnableParameter" in out
    assert main(["validate", str(model)]) == 0


def test_eval_counts_cntks_errors_on_the_test_set(cntk_dir, capsys):
    model = cntk_dir / "v2" / "MC.model"
    data = cntk_dir / "data" / "Test-3Classes_cntk_text.txt"
    assert main(["eval", str(model), str(data), "--output", "errs", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["nodes"]["errs"]["sum"] == 51 and report["samples"] == 500


def test_clone_function_of_a_loaded_v2_model(cntk_dir):
    from netsurgeon.lang.brainscript import build_from_text

    path = cntk_dir / "v2" / "blocks" / "mlp_dense.model"
    net = build_from_text(f"""
        network = BS.Network.Load ("{path}")
        hidden = BS.Network.CloneFunction (network.features, network.Block14, parameters="constant")
        x = Input (784)
        h = hidden (x)
    """)
    original = formats.load(path)
    assert net.get("h.Block14.W").learning_rate_multiplier == 0
    np.testing.assert_array_equal(net.get("h.Block14.W").value, original.get("Block14.W").value)
    x = np.random.default_rng(0).random((2, 784), np.float32)
    np.testing.assert_allclose(evaluate(net, {"x": x}, ["h"])["h"],
                               evaluate(original, {"features": x}, ["Block14"])["Block14"],
                               rtol=1e-6)


@pytest.mark.parametrize("suffix", [".nsm", ".dnn", ".onnx"])
def test_conversions_evaluate_equal(cntk_dir, tmp_path, suffix):
    source = cntk_dir / "v2" / "blocks" / "conv_bn_pool.model"
    out = tmp_path / f"m{suffix}"
    assert main(["convert", str(source), str(out)]) == 0
    net, back = formats.load(source), formats.load(out)
    x = np.load(cntk_dir / "v2" / "blocks" / "conv_features.npy")
    name = net.group("output")[0].name
    target = name if name in back else back.group("output")[0].name
    want = evaluate(net, {"features": x}, [name])[name]
    got = evaluate(back, {"features": x}, [target])[target]
    np.testing.assert_allclose(np.asarray(got).reshape(want.shape), want, rtol=1e-5,
                               atol=1e-5)
