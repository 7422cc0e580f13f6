"""``netsurgeon extract``: the sub-network between inputs and outputs of a real model, its
parameters copied, evaluating as the original does."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.commands.helpers import one_error

from netsurgeon import formats
from netsurgeon.cli import main
from netsurgeon.runtime import evaluate


@pytest.fixture
def cifar(cntk_dir):
    return cntk_dir / "models" / "cifar10.pretrained.cmf"


def test_the_classifier_head_of_cifar10(cifar, cntk_dir, tmp_path, capsys):
    out = tmp_path / "head.nsm"
    assert main(["extract", str(cifar), "--inputs", "z.p3", "--outputs", "z", "-o", str(out),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["parameters"] == 37578  # 64*576 + 64 + 10*64 + 10
    sub = formats.load(out)
    assert sorted(n.name for n in sub) == sorted(report["nodes"]) == sorted([
        "z.p3", "z.d1._.PlusArgs[0]", "z.d1.arrayOfFunctions[0].W",
        "z.d1.arrayOfFunctions[0].b", "z.d1._", "z.d1", "z.z.PlusArgs[0]", "z.z.W", "z.z.b",
        "z"])
    assert sub.node("z.p3").op == "InputValue" and sub.node("z.p3").shape == (64, 3, 3)
    assert [n.name for n in sub.group("output")] == ["z"]
    full = formats.load(cifar)
    np.testing.assert_array_equal(sub.node("z.z.W").value, full.node("z.z.W").value)
    # the head on the original's pooled features gives the original's output
    x = np.load(cntk_dir / "reference" / "inputs" / "cifar_3x3x32x32.npy")
    inner = evaluate(full, {"features": x}, ["z.p3", "z"])
    z = evaluate(sub, {"z.p3": inner["z.p3"]}, ["z"])["z"]
    np.testing.assert_allclose(z, inner["z"], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(z.reshape(3, 10), np.load(
        cntk_dir / "reference" / "cifar10.pretrained" / "z.npy"), rtol=1e-4, atol=1e-3)


def test_criteria_with_their_labels_to_a_cntk_file(cifar, tmp_path, capsys):
    out = tmp_path / "head.dnn"
    assert main(["extract", str(cifar), "--inputs", "z.p3,labels", "--outputs", "ce",
                 "--outputs", "errs", "-o", str(out)]) == 0
    assert "13 of 33 nodes" in capsys.readouterr().out
    sub = formats.load(out)
    assert [n.name for n in sub.group("criterion")] == ["ce"]
    assert [n.name for n in sub.group("evaluation")] == ["errs"]
    assert {n.name for n in sub.group("label")} == {"labels"}


def test_the_whole_network_from_its_inputs(cntk_dir, tmp_path, capsys):
    mc = cntk_dir / "models" / "MC.dnn"
    out = tmp_path / "mc.nsm"
    assert main(["extract", str(mc), "--inputs", "features", "--outputs", "z", "-o",
                 str(out)]) == 0
    sub = formats.load(out)
    assert sorted(n.name for n in sub) == ["b", "features", "w", "z", "z.PlusArgs[0]"]
    x = np.array([[1.0, 2.0], [-0.5, 0.25]], np.float32)
    np.testing.assert_array_equal(evaluate(sub, {"features": x}, ["z"])["z"],
                                  evaluate(formats.load(mc), {"features": x}, ["z"])["z"])


@pytest.mark.parametrize(("args", "words"), [
    (["--inputs", "z.p33", "--outputs", "z"], "no node named 'z.p33'"),
    (["--inputs", "z.p3", "--outputs", "ce"], "also need the input 'labels'"),
    (["--inputs", "z.p3,labels", "--outputs", "z"], "input 'labels' does not feed any"),
    (["--inputs", "z.p3,", "--outputs", "z"], "--inputs expects node names"),
])
def test_errors_are_one_line_and_write_nothing(cifar, tmp_path, capsys, args, words):
    out = tmp_path / "sub.nsm"
    assert main(["extract", str(cifar), *args, "-o", str(out)]) == 1
    assert words in one_error(capsys.readouterr().err)
    assert not out.exists()


def test_a_recurrent_section_gives_cntks_outputs(cntk_dir, tmp_path, capsys):
    """The slot tagger without its criteria: the LSTM loop comes along whole."""
    out = tmp_path / "tagger.nsm"
    assert main(["extract", str(cntk_dir / "models" / "slu.forward.nobn.cmf"), "--inputs",
                 "query", "--outputs", "z", "-o", str(out)]) == 0
    sub = formats.load(out)
    assert len(sub) == 29 and "slotLabels" not in sub and "ce" not in sub
    first10 = []
    for line in (cntk_dir / "data" / "atis.test.ctf").read_text().splitlines():
        if int(line.split("\t", 1)[0]) >= 10:
            break
        first10.append(line)
    data = tmp_path / "first10.ctf"
    data.write_text("\n".join(first10) + "\n")
    assert main(["eval", str(out), str(data), "--map", "query=S0", "--output", "z",
                 "--save-outputs", str(tmp_path / "o")]) == 0
    want = np.load(cntk_dir / "reference" / "slu.forward.nobn" / "z.first10.frames.npy")
    got = np.load(tmp_path / "o" / "z.npy").reshape(want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
