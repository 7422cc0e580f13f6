"""Issue 10 through ``netsurgeon train``: bad options are argparse errors (exit 2), anything
else one line and exit 1 with nothing written or replaced; a diverging run keeps the last
completed epoch's checkpoint byte-identical; ``--resume`` refuses checkpoints that cannot be
read or do not fit, and a good resume equals training straight."""

from __future__ import annotations

import argparse
import io
import os
import zipfile

import numpy as np
import pytest
import torch
from tests.commands.helpers import listing, one_error

from netsurgeon import formats
from netsurgeon.cli import main
from netsurgeon.commands.train import _rates, expand_rates
from netsurgeon.runtime import checkpoint


def _train(model, data, out, *extra) -> int:
    return main(["train", str(model), str(data), "-o", str(out), "--no-progress",
                 "--minibatch", "10", *map(str, extra)])


def _params(path) -> dict[str, list]:
    net = formats.load(path)
    return {n.name: np.asarray(n.value).tolist() for n in net.nodes if n.op == "LearnableParameter"}


# ---- 1. options ------------------------------------------------------------------------------
@pytest.mark.parametrize(("option", "value", "words"), [
    ("--lr", "nan", "argument --lr: rate nan in 'nan': a learning rate is a finite number >= 0"),
    ("--lr", "inf", "argument --lr: rate inf in 'inf': a learning rate is a finite number >= 0"),
    ("--lr", "-1", "argument --lr: rate -1 in '-1': a learning rate is a finite number >= 0"),
    ("--lr", "0.01,nan", "argument --lr: rate nan in '0.01,nan': a learning rate is a finite"),
    ("--lr", "0.01*0", "argument --lr: '0.01*0' in '0.01*0': repeat a rate 1 or more epochs"),
    ("--lr", "0.01*x", "argument --lr: cannot read '0.01*x'; use 0.01, 0.01,0.005 or "
                       "0.01*2:0.005"),
    ("--lr", "", "argument --lr: cannot read ''"),
    ("--epochs", "0", "argument --epochs: 0: give 1 or more"),
    ("--epochs", "1.5", "argument --epochs: '1.5' is not a whole number"),
    ("--minibatch", "0", "argument --minibatch: 0: give 1 or more"),
    ("--epoch-size", "-1", "argument --epoch-size: -1: give 0 or more"),
    ("--momentum", "1", "argument --momentum: 1: give a finite number in [0, 1)"),
    ("--momentum", "nan", "argument --momentum: nan: give a finite number in [0, 1)"),
    ("--dropout", "1", "argument --dropout: 1: give a finite number in [0, 1)"),
    ("--l2", "inf", "argument --l2: inf: give a finite number >= 0"),
    ("--l2", "-0.1", "argument --l2: -0.1: give a finite number >= 0"),
    ("--clip", "0", "argument --clip: 0: give a finite number > 0 or inf"),
    ("--clip", "nan", "argument --clip: nan: give a finite number > 0 or inf"),
    ("--clip", "x", "argument --clip: 'x' is not a number"),
    ("--threads", "0", "argument --threads: 0: give 1 or more"),
])
def test_a_bad_option_is_an_argparse_error(lr_model, ctf, tmp_path, capsys, option, value,
                                           words):
    before = listing(tmp_path)
    with pytest.raises(SystemExit) as info:
        _train(lr_model, ctf, tmp_path / "o.nsm", option, value)
    assert info.value.code == 2  # argparse's status for a usage error; main does not return
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(f"netsurgeon train: error: {words}")
    assert "Traceback" not in err
    assert listing(tmp_path) == before


def test_learning_rate_forms():
    assert _rates("0.01") == [(0.01, 1)]
    assert _rates("0.01,0.005") == [(0.01, 1), (0.005, 1)]
    assert _rates("0.01*2:0.005") == [(0.01, 2), (0.005, 1)]
    assert _rates("0") == [(0.0, 1)]
    assert expand_rates(_rates("0.01*2:0.005"), 5) == [0.01, 0.01, 0.005]
    assert expand_rates(_rates("0.01*3:0.005"), 2) == [0.01, 0.01]
    with pytest.raises(argparse.ArgumentTypeError):
        _rates("0.01*-1")


# ---- 2. NaN in the training data ---------------------------------------------------------------
def test_nan_in_the_training_data(lr_model, tmp_path, capsys):
    data = tmp_path / "bad.ctf"
    data.write_text("|features 1 2 |labels 1\n|features 3 nan |labels 0\n")
    model_bytes = lr_model.read_bytes()
    assert _train(lr_model, data, tmp_path / "o.nsm") == 1
    assert one_error(capsys.readouterr().err) == (
        f"{data}:2: stream 'features': 'nan' is not a finite float32 number (NaN, Inf and "
        "values beyond ±3.403e+38 cannot be read)")
    assert listing(tmp_path) == ["bad.ctf", "lr.nsm"]
    assert lr_model.read_bytes() == model_bytes


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_training_data_that_is_no_regular_file(lr_model, tmp_path, capsys, kind):
    data = tmp_path / "data"
    data.mkdir() if kind == "directory" else os.mkfifo(data)
    assert _train(lr_model, data, tmp_path / "o.nsm") == 1
    line = one_error(capsys.readouterr().err)
    assert line.startswith(f"{data}: cannot read the data file: it is a "
                           + ("directory" if kind == "directory" else "FIFO"))
    assert listing(tmp_path) == ["data", "lr.nsm"]


# ---- 3. a diverging loss ---------------------------------------------------------------------
@pytest.fixture
def mc(cntk_dir, tmp_path):
    """CNTK's MC.dnn (3 classes) and its training data."""
    return cntk_dir / "models/MC.dnn", cntk_dir / "data/Train-3Classes_cntk_text.txt"


def test_divergence_in_the_first_epoch_writes_nothing(mc, tmp_path, capsys):
    out = tmp_path / "o.nsm"
    assert _train(*mc, out, "--minibatch", "100", "--lr", "1e38") == 1
    assert one_error(capsys.readouterr().err) == (
        "training stopped at epoch 1, minibatch 1 (data from line 1): the update made "
        "parameter 'b' NaN or Inf; no epoch was completed, nothing was written (lower the "
        "learning rate or clip the gradients: --lr, --clip)")
    assert listing(tmp_path) == []


def test_divergence_keeps_the_checkpoint_and_model_of_the_last_epoch(mc, tmp_path, capsys):
    out, ckpt = tmp_path / "o.nsm", tmp_path / "o.nsm.ckpt"
    assert _train(*mc, out, "--minibatch", "100", "--lr", "0.01") == 0
    saved, model = ckpt.read_bytes(), out.read_bytes()
    capsys.readouterr()
    assert _train(*mc, out, "--minibatch", "100", "--lr", "0.01,1e38", "--epochs", "3",
                  "--resume") == 1
    assert one_error(capsys.readouterr().err) == (
        "training stopped at epoch 2, minibatch 1 (data from line 1): the update made "
        f"parameter 'w' NaN or Inf; the parameters and checkpoint {ckpt} of epoch 1 are kept "
        "(lower the learning rate or clip the gradients: --lr, --clip)")
    assert ckpt.read_bytes() == saved and out.read_bytes() == model
    assert listing(tmp_path) == ["o.nsm", "o.nsm.ckpt"]


def test_divergence_in_epoch_two_leaves_the_epoch_one_checkpoint(mc, tmp_path, capsys):
    out, ckpt = tmp_path / "o.nsm", tmp_path / "o.nsm.ckpt"
    assert _train(*mc, out, "--minibatch", "100", "--lr", "0.01,1e38", "--epochs", "2") == 1
    assert "training stopped at epoch 2" in one_error(capsys.readouterr().err)
    assert listing(tmp_path) == ["o.nsm.ckpt"]  # -o is written only after the last epoch
    state = checkpoint.read(ckpt)
    assert state["epoch"] == 1 and len(state["history"]) == 1
    assert all(bool(torch.isfinite(v).all()) for v in state["params"].values())
    assert _train(*mc, tmp_path / "one.nsm", "--minibatch", "100", "--lr", "0.01") == 0
    one = checkpoint.read(tmp_path / "one.nsm.ckpt")
    assert all(torch.equal(one["params"][k], v) for k, v in state["params"].items())


# ---- 4. --resume ---------------------------------------------------------------------------
@pytest.fixture
def trained(lr_model, ctf, tmp_path, capsys):
    """One epoch of SGD with momentum: (out, checkpoint, its bytes)."""
    out = tmp_path / "o.nsm"
    assert _train(lr_model, ctf, out, "--lr", "0.1", "--momentum", "0.5") == 0
    capsys.readouterr()
    ckpt = tmp_path / "o.nsm.ckpt"
    return out, ckpt, ckpt.read_bytes()


def _zip_without_torch() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("notes.txt", "hello")
    return buf.getvalue()


def _with_nan(raw: bytes) -> bytes:
    state = torch.load(io.BytesIO(raw), weights_only=True)
    state["params"]["W"] = torch.full_like(state["params"]["W"], float("nan"))
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


@pytest.mark.parametrize(("damage", "words"), [
    (lambda raw: b"", "cannot read the checkpoint: the file is empty (delete it, or train "
                      "without --resume)"),
    (lambda raw: bytes(range(256)) * 2, "cannot read the checkpoint: it is not a checkpoint "
                                        "written by netsurgeon train"),
    (lambda raw: raw[:len(raw) // 2], "cannot read the checkpoint: it is damaged, truncated or "
                                      "not a netsurgeon checkpoint (PytorchStreamReader failed"),
    (lambda raw: _zip_without_torch(), "it is damaged, truncated or not a netsurgeon "
                                       "checkpoint (file in archive is not in a subdirectory"),
    (_with_nan, "cannot read the checkpoint: 'params' value of 'W' holds NaN or Inf"),
])
def test_resume_refuses_a_damaged_checkpoint(trained, lr_model, ctf, capsys, damage, words):
    out, ckpt, raw = trained
    model = out.read_bytes()
    ckpt.write_bytes(damage(raw))
    bad = ckpt.read_bytes()
    assert _train(lr_model, ctf, out, "--lr", "0.1", "--momentum", "0.5", "--epochs", "2",
                  "--resume") == 1
    line = one_error(capsys.readouterr().err)
    assert line.startswith(f"{ckpt}: ") and words in line
    assert ckpt.read_bytes() == bad and out.read_bytes() == model


def test_resume_refuses_a_checkpoint_of_another_network(trained, ctf, tmp_path, capsys):
    out, ckpt, raw = trained
    other = tmp_path / "other.nsm"
    net = formats.load(out)
    net.update("W", value=np.zeros((3, 1), np.float32))
    net.update("features", shape=(3,))
    formats.save(net, other)
    data = tmp_path / "three.ctf"
    data.write_text("|features 1 2 3 |labels 1\n")
    assert _train(other, data, out, "--epochs", "2", "--momentum", "0.5", "--checkpoint", ckpt,
                  "--resume") == 1
    assert one_error(capsys.readouterr().err) == (
        f"{ckpt}: parameter 'W' is (2, 1) in the checkpoint but (3, 1) in the network "
        "(train without --resume to start afresh)")
    assert ckpt.read_bytes() == raw


def test_resume_refuses_another_optimizer(trained, lr_model, ctf, capsys):
    out, ckpt, raw = trained
    assert _train(lr_model, ctf, out, "--epochs", "2", "--optimizer", "adam", "--resume") == 1
    assert one_error(capsys.readouterr().err) == (
        f"{ckpt}: the checkpoint was written with optimizer sgd, this run uses adam; resume "
        "with --optimizer sgd (train without --resume to start afresh)")
    assert ckpt.read_bytes() == raw


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_checkpoint_path_that_is_no_file(lr_model, ctf, tmp_path, capsys, kind):
    """The checkpoint is written too: train checks that before it reads or trains."""
    ckpt = tmp_path / "c.ckpt"
    if kind == "directory":
        ckpt.mkdir()
    else:
        os.mkfifo(ckpt)  # refused by its stat: never opened, so it cannot block
    assert _train(lr_model, ctf, tmp_path / "o.nsm", "--checkpoint", ckpt, "--resume") == 1
    why = {"directory": "it is a directory (give a file name inside it)",
           "fifo": "it is a FIFO (named pipe) (netsurgeon writes only regular files"}[kind]
    assert one_error(capsys.readouterr().err).startswith(f"cannot write {ckpt}: {why}")
    assert listing(tmp_path) == ["c.ckpt", "lr.nsm", "train.ctf"]


def test_resume_without_a_checkpoint(lr_model, ctf, tmp_path, capsys):
    assert _train(lr_model, ctf, tmp_path / "o.nsm", "--resume") == 1
    assert one_error(capsys.readouterr().err) == (
        f"{tmp_path / 'o.nsm.ckpt'}: cannot read the checkpoint: not found (train without "
        "--resume to start afresh)")
    assert listing(tmp_path) == ["lr.nsm", "train.ctf"]


def test_a_good_resume_equals_training_straight(trained, lr_model, ctf, tmp_path, capsys):
    out, ckpt, _ = trained
    assert _train(lr_model, ctf, out, "--lr", "0.1", "--momentum", "0.5", "--epochs", "2",
                  "--resume") == 0
    text = capsys.readouterr().out
    assert f"resuming after epoch 1 from {ckpt}" in text and "epoch 2: 40 samples" in text
    assert "epoch 1:" not in text  # only the epochs this run trained
    straight = tmp_path / "straight.nsm"
    assert _train(lr_model, ctf, straight, "--lr", "0.1", "--momentum", "0.5",
                  "--epochs", "2") == 0
    assert _params(out) == _params(straight)
    assert checkpoint.read(ckpt)["epoch"] == 2


def test_nothing_to_train(trained, lr_model, ctf, capsys):
    out, ckpt, raw = trained
    assert _train(lr_model, ctf, out, "--lr", "0.1", "--momentum", "0.5", "--resume") == 0
    assert ("nothing to train: the checkpoint is at epoch 1 and --epochs is 1"
            in capsys.readouterr().out)
    assert ckpt.read_bytes() == raw


# ---- 7. where train writes -------------------------------------------------------------------
def test_out_and_checkpoint_being_one_file(lr_model, ctf, tmp_path, capsys):
    out = tmp_path / "o.nsm"
    assert _train(lr_model, ctf, out, "--checkpoint", out) == 1
    assert one_error(capsys.readouterr().err) == (
        f"-o {out} and --checkpoint {out} are the same file; give the checkpoint another name")
    (tmp_path / "link.ckpt").symlink_to(out)
    assert _train(lr_model, ctf, out, "--checkpoint", tmp_path / "link.ckpt") == 1
    assert "are the same file" in one_error(capsys.readouterr().err)
    assert listing(tmp_path) == ["link.ckpt", "lr.nsm", "train.ctf"]


def test_places_to_write_are_checked_before_training(lr_model, ctf, tmp_path, capsys):
    ckpt = tmp_path / "c.ckpt"
    out = tmp_path / "no" / "o.nsm"
    assert _train(lr_model, ctf, out, "--checkpoint", ckpt) == 1
    assert one_error(capsys.readouterr().err) == (
        f"cannot write {out}: directory {tmp_path / 'no'} does not exist (create it first)")
    assert not ckpt.exists()
    assert _train(lr_model, ctf, tmp_path / "o.nsm", "--checkpoint", tmp_path) == 1
    assert one_error(capsys.readouterr().err) == (
        f"cannot write {tmp_path}: it is a directory (give a file name inside it)")
    assert listing(tmp_path) == ["lr.nsm", "train.ctf"]
