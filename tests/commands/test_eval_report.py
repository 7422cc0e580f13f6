"""Issue 15 trap: ``eval --output NODE`` reports the node (its sum over the real frames and that
sum per sample) without ``--save-outputs``, in the text and in ``--json``."""

from __future__ import annotations

import json

import numpy as np
import pytest

import netsurgeon
from netsurgeon.cli import main


@pytest.fixture
def mc(cntk_dir):
    return str(cntk_dir / "models/MC.dnn")


def test_output_is_reported_from_ctf_data(mc, cntk_dir, capsys):
    data = cntk_dir / "data/Test-3Classes_cntk_text.txt"
    assert main(["eval", mc, str(data), "--output", "z", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["nodes"]) == {"ce", "errs", "z"}
    assert report["nodes"]["errs"]["sum"] == 51
    z = report["nodes"]["z"]
    assert z["op"] == "Plus" and np.isfinite(z["sum"])
    assert z["per_sample"] == pytest.approx(z["sum"] / report["samples"])
    assert main(["eval", mc, str(data), "--output", "z"]) == 0
    text = capsys.readouterr().out
    assert "  z (Plus): sum = " in text and "per sample = " in text


def test_output_is_reported_from_arrays(mc, tmp_path, capsys):
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    np.save(tmp_path / "x.npy", x)
    assert main(["eval", mc, "--input", f"features={tmp_path / 'x.npy'}", "--output", "z",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["nodes"]) == ["z"]  # ce/errs need labels, which were not given
    want = netsurgeon.evaluate(netsurgeon.load(mc), {"features": x}, ["z"])["z"]
    assert report["nodes"]["z"]["sum"] == pytest.approx(float(want.sum()), rel=1e-5)
    assert report["nodes"]["z"]["per_sample"] == pytest.approx(float(want.sum()) / 5, rel=1e-5)


def test_sequence_output_sums_the_real_frames_only(cntk_dir, capsys):
    assert main(["eval", str(cntk_dir / "models/slu.forward.nobn.cmf"),
                 str(cntk_dir / "data/atis.test.ctf"), "--map", "query=S0",
                 "--map", "slotLabels=S2", "--max-sequences", "10", "--minibatch", "40",
                 "--output", "z", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    ref = np.load(cntk_dir / "reference/slu.forward.nobn/z.first10.frames.npy")
    assert report["samples"] == len(ref)  # 175 frames in 10 sequences (padded in batches)
    z = report["nodes"]["z"]
    assert z["sum"] == pytest.approx(float(ref.sum(dtype=np.float64)), rel=1e-4, abs=1e-2)
    assert z["per_sample"] == pytest.approx(z["sum"] / len(ref))
