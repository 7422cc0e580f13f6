"""``netsurgeon compare``: two models, or one model on torch and onnxruntime, on the real
models; exit status 0 (match), 1 (an output differs), 2 (an error)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from netsurgeon import formats
from netsurgeon.cli import main

pytest.importorskip("onnxruntime")


@pytest.fixture
def cifar_input(cntk_dir, tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.load(cntk_dir / "reference/inputs/cifar_3x3x32x32.npy").astype(np.float32))
    return path


def test_torch_and_onnxruntime_agree_on_cifar(cntk_dir, cifar_input, capsys):
    model = cntk_dir / "models" / "cifar10.pretrained.cmf"
    assert main(["compare", str(model), "--input", f"features={cifar_input}", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (row,) = report["outputs"]
    assert row["output"] == "z" and row["match"] and 0 < row["max_abs"] < 1e-4


def test_a_v1_model_and_its_cntk_v2_conversion_are_equal(cntk_dir, cifar_input, capsys):
    v1, v2 = cntk_dir / "models/cifar10.pretrained.cmf", cntk_dir / "v2/cifar10.pretrained.model"
    assert main(["compare", str(v1), str(v2), "--input", f"features={cifar_input}"]) == 0
    assert "PASS z" in capsys.readouterr().out


def test_sequence_models_compare_the_real_frames(cntk_dir, tmp_path):
    rng = np.random.default_rng(0)
    lengths = np.array([5, 3, 7])
    x = np.zeros((3, 7, 943), np.float32)
    for b, n in enumerate(lengths):
        x[b, np.arange(n), rng.integers(0, 943, n)] = 1
    np.save(tmp_path / "q.npy", x)
    np.save(tmp_path / "l.npy", lengths)
    model = cntk_dir / "models" / "slu.forward.nobn.cmf"
    args = ["compare", str(model), "--input", f"query={tmp_path / 'q.npy'}", "--rtol", "1e-4"]
    assert main(args + ["--lengths", str(tmp_path / "l.npy")]) == 0
    assert main(args) == 2  # the ONNX export of a sequence model needs the lengths


def test_a_changed_model_differs_with_exit_1(cntk_dir, cifar_input, tmp_path, capsys):
    net = formats.load(cntk_dir / "models" / "cifar10.pretrained.cmf")
    w = next(n for n in net.nodes if n.op == "LearnableParameter" and n.value.size > 100)
    net.update(w, value=np.asarray(w.value) * 1.01)
    changed = tmp_path / "changed.nsm"
    formats.save(net, changed)
    original = cntk_dir / "models" / "cifar10.pretrained.cmf"
    assert main(["compare", str(original), str(changed), "--input",
                 f"features={cifar_input}"]) == 1
    assert "FAIL z" in capsys.readouterr().out


@pytest.mark.parametrize("extra, words", [
    (["--backends", "torch,tf"], "unknown backend 'tf'"),
    (["--backends", "torch"], "give a second model or at least two --backends"),
    (["--output", "nope"], "'nope' is not a node"),
])
def test_errors_are_one_line_with_exit_2(cntk_dir, cifar_input, capsys, extra, words):
    model = cntk_dir / "models" / "cifar10.pretrained.cmf"
    assert main(["compare", str(model), "--input", f"features={cifar_input}", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and "\n" not in err


def test_ctf_data_feeds_the_inputs(cntk_dir, capsys):
    model = cntk_dir / "models" / "slu.forward.nobn.cmf"
    assert main(["compare", str(model), "--data", str(cntk_dir / "data" / "atis.test.ctf"),
                 "--map", "query=S0", "--map", "slotLabels=S2", "--max-sequences", "20",
                 "--rtol", "1e-4", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)["outputs"]
    assert row["match"] and row["shape"][-1] == 129
    assert main(["compare", str(model), "--data", "x.ctf", "--input", "query=q.npy"]) == 2
