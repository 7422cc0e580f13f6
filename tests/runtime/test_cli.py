"""``netsurgeon eval`` and ``netsurgeon train`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from netsurgeon.cli import main

HERE = Path(__file__).parent


def test_eval_ctf_json(cntk_dir, capsys):
    rc = main(["eval", str(cntk_dir / "models/MC.dnn"),
               str(cntk_dir / "data/Test-3Classes_cntk_text.txt"), "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == 500
    assert report["nodes"]["errs"]["sum"] == 51
    assert abs(report["nodes"]["ce"]["sum"] - 121.735) < 1e-3
    assert abs(report["nodes"]["errs"]["per_sample"] - 0.102) < 1e-9


def test_eval_sequences_with_map_and_saved_outputs(cntk_dir, tmp_path, capsys):
    rc = main(["eval", str(cntk_dir / "models/slu.forward.nobn.cmf"),
               str(cntk_dir / "data/atis.test.ctf"), "--map", "query=S0",
               "--map", "slotLabels=S2", "--max-sequences", "10", "--output", "z",
               "--save-outputs", str(tmp_path)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "errs (ClassificationError): sum = " in text
    z = np.load(tmp_path / "z.npy")
    ref = np.load(cntk_dir / "reference/slu.forward.nobn/z.first10.frames.npy")
    assert z.shape == ref.shape
    assert np.abs(z - ref).max() / np.abs(ref).max() < 1e-4
    lens = np.load(tmp_path / "z.lens.npy")
    ref_lens = np.load(cntk_dir / "reference/slu.forward.nobn/z.first10.lens.npy")
    assert lens.tolist() == ref_lens.tolist()


def test_eval_npy_inputs(cntk_dir, tmp_path):
    rc = main(["eval", str(cntk_dir / "models/cifar10.pretrained.cmf"), "--input",
               f"features={cntk_dir / 'reference/inputs/cifar_3x3x32x32.npy'}",
               "--output", "z", "--output", "z.p1", "--save-outputs", str(tmp_path)])
    assert rc == 0
    z = np.load(tmp_path / "z.npy")
    want = np.load(cntk_dir / "reference/cifar10.pretrained/z.npy")
    assert z.shape == want.shape
    assert np.abs(z - want).max() / np.abs(want).max() < 1e-4
    assert np.load(tmp_path / "z.p1.npy").shape == (3, 32, 15, 15)


def test_eval_errors_are_one_line(cntk_dir, capsys):
    rc = main(["eval", str(cntk_dir / "models/MC.dnn"),
               str(cntk_dir / "data/Test-3Classes_cntk_text.txt"), "--map", "featurs=features"])
    assert rc == 1
    assert "did you mean" in capsys.readouterr().err


def test_train_then_eval_and_resume(cntk_dir, tmp_path, capsys):
    out = tmp_path / "lr.nsm"
    train = str(cntk_dir / "data/Train_cntk_text.txt")
    args = ["train", str(HERE / "helloworld_lr.ndl"), train, "-o", str(out), "--lr", "0.04",
            "--minibatch", "25", "--no-progress"]
    assert main(args + ["--epochs", "2"]) == 0
    assert out.is_file() and Path(str(out) + ".ckpt").is_file()
    assert main(args + ["--epochs", "4", "--resume"]) == 0
    text = capsys.readouterr().out
    assert "resuming after epoch 2" in text and "epoch 4:" in text
    assert main(["eval", str(out), str(cntk_dir / "data/Test_cntk_text.txt"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["nodes"]["EP"]["per_sample"] < 0.05
