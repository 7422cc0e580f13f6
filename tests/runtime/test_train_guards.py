"""Issue 10: training refuses what it cannot use and keeps only finite, completed epochs.

Bad options are ArgumentErrors naming the option; NaN/Inf in the data is refused before any
change; a diverging loss stops training with one line while the network keeps the values of
the last completed epoch and its checkpoint stays byte-identical; a checkpoint that cannot be
read, or does not fit, is a one-line CheckpointError that leaves the trainer as it was; a
failed checkpoint write leaves the previous checkpoint intact and no temp file behind.
"""

from __future__ import annotations

import errno
import io
import math
import os
import zipfile

import numpy as np
import pytest
import torch
from tests.runtime import nets

from netsurgeon.errors import ArgumentError, EvaluationError, FormatError
from netsurgeon.formats._atomic import parse_temp_name
from netsurgeon.graph import Network
from netsurgeon.runtime import checkpoint
from netsurgeon.runtime.batch import Minibatch, SparseRows
from netsurgeon.runtime.checkpoint import CheckpointError
from netsurgeon.runtime.guards import NonFiniteError, check_inputs, first_non_finite
from netsurgeon.runtime.train import TrainConfig, Trainer


def _data(n=20, size=10, seed=0):
    r = nets.rng(seed)
    x = r.normal(size=(n, 2)).astype(np.float32)
    y = (x.sum(1, keepdims=True) > 0).astype(np.float32)
    return [Minibatch({"features": x[i:i + size, None], "labels": y[i:i + size, None]},
                      np.ones(len(x[i:i + size]), np.int64), first_line=i + 1)
            for i in range(0, n, size)]


def _linear() -> Network:
    """z = W·x + b with a SquareError criterion: its loss has no bound, so it can overflow."""
    net = Network("linear")
    x = net.add("features", "InputValue", shape=(2,))
    y = net.add("labels", "InputValue", shape=(1,))
    w = net.add_parameter("W", np.full((2, 1), 0.5, np.float32))
    b = net.add_parameter("b", np.zeros((1,), np.float32))
    z = net.add("z", "Plus", inputs=(net.add("t", "Times", inputs=(w, x)), b))
    net.add_to_group("criterion", net.add("se", "SquareError", inputs=(y, z)))
    net.validate()
    return net


def _values(net: Network) -> dict[str, bytes]:
    return {n.name: np.asarray(n.value).tobytes() for n in net.nodes if n.value is not None}


def _tensors(trainer: Trainer) -> dict[str, bytes]:
    return {k: t.detach().numpy().tobytes() for k, t in trainer.tensors.items()}


def _one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


# ---- 1. options ----------------------------------------------------------------------------
@pytest.mark.parametrize(("option", "value", "words"), [
    ("epochs", 0, "training option epochs = 0: give 1 or more"),
    ("epochs", 2.5, "training option epochs = 2.5: give 1 or more"),
    ("epochs", True, "training option epochs = True: give 1 or more"),
    ("minibatch_size", 0, "training option minibatch_size = 0: give 1 or more samples"),
    ("epoch_size", -1, "training option epoch_size = -1: give 0 (the whole data)"),
    ("learning_rate", math.nan, "training option learning_rate = nan: a rate is a finite"),
    ("learning_rate", math.inf, "training option learning_rate = inf: a rate is a finite"),
    ("learning_rate", -0.01, "training option learning_rate = -0.01: a rate is a finite"),
    ("learning_rate", [0.01, math.nan], "training option learning_rate = nan:"),
    ("learning_rate", [], "training option learning_rate = []: give at least one rate"),
    ("learning_rate", "0.01", "training option learning_rate = '0.01': a rate is a finite"),
    ("lr_unit", "epoch", "training option lr_unit = 'epoch': use 'sample' or 'minibatch'"),
    ("momentum", 1.0, "training option momentum = 1.0: give a number in [0, 1)"),
    ("momentum", math.nan, "training option momentum = nan: give a number in [0, 1)"),
    ("l2", -1.0, "training option l2 = -1.0: give a finite number >= 0"),
    ("l2", math.inf, "training option l2 = inf: give a finite number >= 0"),
    ("clip_threshold", 0.0, "training option clip_threshold = 0.0: give a number > 0"),
    ("clip_threshold", math.nan, "training option clip_threshold = nan: give a number > 0"),
    ("optimizer", "rmsprop", "training option optimizer = 'rmsprop': use sgd, adam or adagrad"),
    ("adam_betas", (0.9,), "training option adam_betas = (0.9,): give two numbers in [0, 1)"),
    ("adam_betas", (1.0, 0.999), "training option adam_betas = (1.0, 0.999): give two"),
    ("dropout_rate", 1.0, "training option dropout_rate = 1.0: give a number in [0, 1)"),
    ("dropout_rate", -0.5, "training option dropout_rate = -0.5: give a number in [0, 1)"),
    ("seed", 1.5, "training option seed = 1.5: give an integer"),
])
def test_a_bad_option_is_refused_naming_it(option, value, words):
    net = nets.logistic_regression()
    before = _values(net)
    with pytest.raises(ArgumentError) as info:
        Trainer(net, TrainConfig(**{option: value}))
    assert _one_line(info).startswith(words)
    assert _values(net) == before


def test_good_edge_options_are_accepted():
    cfg = TrainConfig(learning_rate=[0.0, 0.1], momentum=0.0, clip_threshold=math.inf,
                      epoch_size=0, dropout_rate=0.0, optimizer="ADAM", seed=np.int64(3))
    Trainer(nets.logistic_regression(), cfg)


def test_fit_checks_the_options_again():
    net = nets.logistic_regression()
    trainer = Trainer(net, TrainConfig())
    trainer.config.learning_rate = math.nan
    before = _values(net)
    with pytest.raises(ArgumentError, match=r"^training option learning_rate = nan"):
        trainer.fit(_data())
    assert _values(net) == before and trainer.epoch == 0


# ---- 2. NaN / Inf in the data --------------------------------------------------------------
def test_nan_in_a_minibatch_is_refused_before_any_change():
    net = nets.logistic_regression(w=np.ones((2, 1), np.float32))
    data = _data()
    data[1].streams["features"][2, 0, 1] = np.nan  # minibatch 2, sequence 3
    trainer = Trainer(net, TrainConfig(epochs=1, learning_rate=0.1))
    before = _values(net)
    with pytest.raises(EvaluationError) as info:
        trainer.fit(data)
    assert _one_line(info) == (
        "training stopped at epoch 1, minibatch 2 (data from line 11): input 'features' holds "
        "NaN or Inf (sequence 3 of the minibatch, data from line 11); no epoch was completed, "
        "nothing was written (remove or fix that data)")
    assert _values(net) == before and trainer.epoch == 0 and trainer.history == []


def test_step_refuses_inf_naming_the_input_and_sequence_id():
    net = nets.logistic_regression()
    trainer = Trainer(net, TrainConfig())
    mb = _data()[0]
    mb.streams["labels"][4, 0, 0] = -np.inf
    mb.sequence_ids = [f"s{i}" for i in range(10)]
    before = _tensors(trainer)
    with pytest.raises(NonFiniteError) as info:
        trainer.step(mb)
    assert _one_line(info) == ("input 'labels' holds NaN or Inf (sequence 's4', data from "
                               "line 1)")
    assert info.value.node == "labels"
    assert _tensors(trainer) == before


def test_nan_in_a_sparse_input_is_named():
    sparse = SparseRows(np.array([0, 1, 2, 3]), np.array([0, 1, 0]),
                        np.array([1.0, np.nan, 2.0], np.float32), 3, 2)
    mb = Minibatch({"x": sparse, "y": np.zeros((3, 1, 1), np.float32)}, np.ones(3, np.int64))
    with pytest.raises(NonFiniteError, match=r"^input 'x' holds NaN or Inf \(sequence 2 of"):
        check_inputs(mb)
    check_inputs(Minibatch({"n": np.array([[[1]], [[2]]])}, np.ones(2, np.int64)))  # ints


def test_finite_data_whose_squares_overflow_passes_and_nan_is_found_anywhere():
    """The quick check (a sum of squares) overflows on large finite values: the element
    scan behind it decides; NaN/Inf are found in float64, in float32 and in strided data."""
    big = np.full((3, 1, 2), 3e38, np.float32)
    check_inputs(Minibatch({"x": big}, np.ones(3, np.int64)))
    for dtype in (np.float32, np.float64):
        for bad in (np.nan, np.inf, -np.inf):
            data = np.ones((4, 1, 3), dtype)
            data[2, 0, 1] = bad
            for arr in (data, np.asfortranarray(data)):
                with pytest.raises(NonFiniteError, match=r"^input 'x' holds NaN or Inf "
                                                         r"\(sequence 3 of"):
                    check_inputs(Minibatch({"x": arr}, np.ones(4, np.int64)))


def test_nan_data_does_not_reach_precomputed_nodes():
    """Mean/InvStdDev are computed from the data before the first step: NaN data must be
    refused there too, or the network would be changed before the refusal."""
    net = Network("mvn")
    x = net.add("features", "InputValue", shape=(2,))
    y = net.add("labels", "InputValue", shape=(1,))
    m = net.add("m", "Mean", inputs=(x,))
    s = net.add("s", "InvStdDev", inputs=(x,))
    n = net.add("n", "PerDimMeanVarNormalization", inputs=(x, m, s))
    w = net.add_parameter("W", np.zeros((2, 1), np.float32))
    p = net.add("p", "Sigmoid", inputs=(net.add("t", "Times", inputs=(w, n)),))
    net.add_to_group("criterion", net.add("lr", "Logistic", inputs=(y, p)))
    net.validate()
    data = _data()
    data[0].streams["features"][0, 0, 0] = np.nan
    before = _values(net)
    with pytest.raises(EvaluationError, match=r"input 'features' holds NaN or Inf"):
        Trainer(net, TrainConfig()).fit(data)
    assert _values(net) == before
    assert m.value is None and s.value is None


def test_first_non_finite():
    assert first_non_finite([]) is None
    assert first_non_finite([torch.ones(2), torch.zeros(3)]) is None
    assert first_non_finite([torch.ones(2), torch.tensor([1.0, math.inf]),
                             torch.tensor([math.nan])]) == 1


# ---- 3. a diverging loss -------------------------------------------------------------------
def test_a_loss_that_overflows_stops_before_the_update():
    net = _linear()
    trainer = Trainer(net, TrainConfig(epochs=1, learning_rate=1e30))
    data = _data()
    with pytest.raises(EvaluationError) as info:
        trainer.fit(data)
    assert _one_line(info) == (
        "training stopped at epoch 1, minibatch 2 (data from line 11): the loss (criterion "
        "'se') is inf; no epoch was completed, nothing was written (lower the learning rate "
        "or clip the gradients: --lr, --clip)")
    assert np.array_equal(net.node("W").value, np.full((2, 1), 0.5, np.float32))
    assert bool(torch.isfinite(trainer.tensors["W"]).all())  # the refused step changed nothing


def test_divergence_keeps_the_values_and_checkpoint_of_the_last_epoch(tmp_path):
    ckpt = tmp_path / "lin.ckpt"
    net = _linear()
    trainer = Trainer(net, TrainConfig(epochs=1, learning_rate=[0.01, 1e30],
                                       checkpoint=str(ckpt)))
    trainer.fit(_data())
    saved, after_one = ckpt.read_bytes(), _values(net)
    trainer.config.epochs = 2
    with pytest.raises(EvaluationError) as info:
        trainer.fit(_data())
    assert _one_line(info) == (
        "training stopped at epoch 2, minibatch 2 (data from line 11): the loss (criterion "
        f"'se') is inf; the parameters and checkpoint {ckpt} of epoch 1 are kept (lower the "
        "learning rate or clip the gradients: --lr, --clip)")
    assert ckpt.read_bytes() == saved  # minibatch 1 of epoch 2 did change the tensors
    assert _values(net) == after_one
    assert trainer.epoch == 1 and len(trainer.history) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["lin.ckpt"]


def test_an_update_that_overflows_names_the_parameter_at_the_end_of_the_epoch():
    # the sigmoid saturates: the loss stays finite, so only the end-of-epoch check sees it
    net = nets.logistic_regression()
    trainer = Trainer(net, TrainConfig(epochs=2, learning_rate=1e38))
    trainer.epoch = 1  # as if resumed: the kept values are those of epoch 1
    before = _values(net)
    with pytest.raises(EvaluationError) as info:
        trainer.fit(_data())
    assert _one_line(info) == (
        "training stopped at the end of epoch 2 (2 minibatches): an update made parameter 'W' "
        "NaN or Inf; the parameters of epoch 1 are kept (lower the learning rate or clip the "
        "gradients: --lr, --clip)")
    assert info.value.node == "W" and _values(net) == before
    assert trainer.epoch == 1 and trainer.history == []


def test_a_parameter_that_is_not_finite_before_training_is_named():
    net = _linear()
    w = net.node("W")
    net.update(w, value=np.full(w.value.shape, np.nan, np.float32))
    with pytest.raises(EvaluationError) as info:
        Trainer(net, TrainConfig(learning_rate=0.01)).fit(_data())
    assert _one_line(info) == (
        "training stopped at epoch 1, minibatch 1 (data from line 1): parameter 'W' holds NaN "
        "or Inf before training; no epoch was completed, nothing was written (fix or "
        "re-initialise that parameter)")


def test_divergence_in_the_first_epoch_writes_no_checkpoint(tmp_path):
    ckpt = tmp_path / "lr.ckpt"
    net = nets.logistic_regression()
    before = _values(net)
    with pytest.raises(EvaluationError, match=r"no epoch was completed, nothing was written"):
        Trainer(net, TrainConfig(learning_rate=1e38, checkpoint=str(ckpt))).fit(_data())
    assert list(tmp_path.iterdir()) == [] and _values(net) == before


# ---- 4. checkpoints that cannot be read or do not fit ---------------------------------------
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Checkpoints after one epoch of the LR network: SGD with momentum, and Adam."""
    root = tmp_path_factory.mktemp("ckpt")
    sgd, adam = root / "sgd.ckpt", root / "adam.ckpt"
    Trainer(nets.logistic_regression(), TrainConfig(learning_rate=0.1, momentum=0.5,
                                                    checkpoint=str(sgd))).fit(_data())
    Trainer(nets.logistic_regression(), TrainConfig(optimizer="adam", learning_rate=0.1,
                                                    checkpoint=str(adam))).fit(_data())
    return sgd, adam


def _resume(path, config=None, net=None):
    """Try to resume; returns the one-line message and asserts nothing changed."""
    net = net or nets.logistic_regression()
    trainer = Trainer(net, config or TrainConfig(epochs=2, learning_rate=0.1, momentum=0.5))
    values, tensors = _values(net), _tensors(trainer)
    buffers = [b.clone() for b in trainer.momentum_buffers.values()]
    opt = trainer.optimizer.state_dict() if trainer.optimizer is not None else None
    with pytest.raises(CheckpointError) as info:
        trainer.load_checkpoint(path)
    assert _values(net) == values and _tensors(trainer) == tensors
    assert trainer.epoch == 0 and trainer.history == []
    assert all(torch.equal(a, b) for a, b in zip(buffers, trainer.momentum_buffers.values()))
    if opt is not None:
        assert trainer.optimizer.state_dict()["state"] == opt["state"]
    return _one_line(info)


def _edited(saved_path, tmp_path, edit) -> str:
    state = torch.load(saved_path, weights_only=True)
    edit(state)
    path = tmp_path / "edited.ckpt"
    torch.save(state, path)
    return str(path)


def test_resume_from_an_empty_file(tmp_path):
    p = tmp_path / "c.ckpt"
    p.write_bytes(b"")
    assert _resume(p) == (f"{p}: cannot read the checkpoint: the file is empty "
                          "(delete it, or train without --resume)")


def test_resume_from_random_bytes(tmp_path):
    p = tmp_path / "c.ckpt"
    p.write_bytes(nets.rng(1).bytes(300))
    assert _resume(p).startswith(f"{p}: cannot read the checkpoint: it is not a checkpoint "
                                 "written by netsurgeon train")


@pytest.mark.parametrize("keep", [0.5, 0.99])
def test_resume_from_a_truncated_checkpoint(saved, tmp_path, keep):
    raw = saved[0].read_bytes()
    p = tmp_path / "c.ckpt"
    p.write_bytes(raw[:int(len(raw) * keep)])
    assert _resume(p).startswith(f"{p}: cannot read the checkpoint: it is damaged, truncated "
                                 "or not a netsurgeon checkpoint (PytorchStreamReader failed")


def test_resume_from_a_zip_that_is_no_torch_file(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("notes.txt", "hello")
    p = tmp_path / "c.ckpt"
    p.write_bytes(buf.getvalue())
    assert _resume(p) == (f"{p}: cannot read the checkpoint: it is damaged, truncated or not a "
                          "netsurgeon checkpoint (file in archive is not in a subdirectory: "
                          "notes.txt) (delete it, or train without --resume)")


def test_resume_from_a_pickle_with_code_is_refused(tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.remove, (str(tmp_path / "victim"),))

    (tmp_path / "victim").write_text("x")
    p = tmp_path / "c.ckpt"
    torch.save({"epoch": 1, "params": {"W": Boom()}}, p)
    assert "it is damaged, truncated or not a netsurgeon checkpoint" in _resume(p)
    assert (tmp_path / "victim").exists()


def test_resume_from_a_checkpoint_of_another_network(saved):
    assert _resume(saved[0], net=nets.mlp()) == (
        f"{saved[0]}: the checkpoint has parameter 'b' that the network does not have (was it "
        "written for another network?) (train without --resume to start afresh)")


def test_resume_with_a_parameter_of_another_shape(saved, tmp_path):
    def edit(state):
        state["params"]["W"] = torch.zeros(3, 1)

    assert _resume(_edited(saved[0], tmp_path, edit)).endswith(
        "edited.ckpt: parameter 'W' is (3, 1) in the checkpoint but (2, 1) in the network "
        "(train without --resume to start afresh)")


def test_resume_with_a_parameter_missing(saved, tmp_path):
    def edit(state):
        del state["params"]["b"]

    assert "the checkpoint has no value for parameter(s) 'b'" in _resume(
        _edited(saved[0], tmp_path, edit))


def test_resume_with_a_momentum_that_does_not_fit(saved, tmp_path):
    def edit(state):
        state["momentum"]["W"] = torch.zeros(5)

    assert "the momentum of 'W' does not fit the network" in _resume(
        _edited(saved[0], tmp_path, edit))


def test_resume_with_another_optimizer(saved):
    assert _resume(saved[0], TrainConfig(epochs=2, optimizer="adam")) == (
        f"{saved[0]}: the checkpoint was written with optimizer sgd, this run uses adam; "
        "resume with --optimizer sgd (train without --resume to start afresh)")
    assert "written with optimizer adam, this run uses sgd" in _resume(saved[1])


def test_resume_with_an_optimizer_state_that_does_not_fit(saved, tmp_path):
    adam = TrainConfig(epochs=2, optimizer="adam")

    def wrong_shape(state):
        entry = next(iter(state["optimizer"]["state"].values()))
        entry["exp_avg"] = torch.zeros(7)

    def one_param_less(state):
        state["optimizer"]["param_groups"][0]["params"].pop()

    def nan_moment(state):
        entry = next(iter(state["optimizer"]["state"].values()))
        entry["exp_avg_sq"] = torch.full_like(entry["exp_avg_sq"], math.nan)

    assert "the optimizer's 'exp_avg' of a (7,) parameter does not fit" in _resume(
        _edited(saved[1], tmp_path, wrong_shape), adam)
    assert "the optimizer state has 1 parameters, the network 2 trainable ones" in _resume(
        _edited(saved[1], tmp_path, one_param_less), adam)
    assert "the optimizer's 'exp_avg_sq' holds NaN or Inf" in _resume(
        _edited(saved[1], tmp_path, nan_moment), adam)


@pytest.mark.parametrize(("edit", "words"), [
    (lambda s: s["params"].__setitem__("W", torch.full((2, 1), math.nan)),
     "'params' value of 'W' holds NaN or Inf"),
    (lambda s: s["momentum"].__setitem__("b", torch.tensor([math.inf])),
     "'momentum' value of 'b' holds NaN or Inf"),
    (lambda s: s.__setitem__("epoch", -1), "'epoch' is -1, not a count of epochs"),
    (lambda s: s.__setitem__("epoch", "1"), "'epoch' is '1', not a count of epochs"),
    (lambda s: s.__setitem__("version", 99), "format 'netsurgeon-checkpoint' version 99"),
    (lambda s: s.__setitem__("params", {}), "it has no parameter values ('params')"),
    (lambda s: s["params"].__setitem__("W", torch.zeros(2, 1, dtype=torch.int64)),
     "'params' entry 'W' is not a float tensor"),
    (lambda s: s["history"][0].__setitem__("loss", math.nan), "epoch 1 has loss nan"),
])
def test_resume_from_a_checkpoint_with_bad_contents(saved, tmp_path, edit, words):
    line = _resume(_edited(saved[0], tmp_path, edit))
    assert f"edited.ckpt: cannot read the checkpoint: {words}" in line
    assert line.endswith("(delete it, or train without --resume)")


def test_resume_from_a_list(tmp_path):
    p = tmp_path / "c.ckpt"
    torch.save([1, 2], p)
    assert "it holds a list, not a training state" in _resume(p)


def test_resume_from_a_directory_a_fifo_or_nothing(tmp_path):
    os.mkfifo(tmp_path / "pipe")  # refused by its stat: never opened, so it cannot block
    assert _resume(tmp_path) == (f"{tmp_path}: cannot read the checkpoint: it is a directory "
                                 "(train without --resume to start afresh)")
    assert _resume(tmp_path / "pipe").startswith(
        f"{tmp_path / 'pipe'}: cannot read the checkpoint: it is a FIFO (named pipe)")
    assert _resume(tmp_path / "none").startswith(
        f"{tmp_path / 'none'}: cannot read the checkpoint: not found")


def test_a_good_resume_equals_training_straight(saved):
    straight = nets.logistic_regression()
    Trainer(straight, TrainConfig(epochs=2, learning_rate=0.1, momentum=0.5)).fit(_data())
    resumed = nets.logistic_regression()
    trainer = Trainer(resumed, TrainConfig(epochs=2, learning_rate=0.1, momentum=0.5))
    trainer.load_checkpoint(saved[0])
    assert trainer.epoch == 1 and len(trainer.history) == 1
    trainer.fit(_data())
    assert trainer.epoch == 2
    assert _values(resumed) == _values(straight)


# ---- 8. atomic checkpoint writes -----------------------------------------------------------
def _temps(directory) -> list[str]:
    return [p.name for p in directory.iterdir() if parse_temp_name(p.name)]


def test_a_failing_torch_save_keeps_the_previous_checkpoint(saved, tmp_path, monkeypatch):
    ckpt = tmp_path / "c.ckpt"
    ckpt.write_bytes(saved[0].read_bytes())
    real_save = torch.save

    def half_then_fail(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise RuntimeError("interrupted")

    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(RuntimeError, match="interrupted"):
        checkpoint.write(ckpt, {"epoch": 2, "params": {"W": torch.zeros(2, 1)}})
    monkeypatch.setattr(torch, "save", real_save)
    assert ckpt.read_bytes() == saved[0].read_bytes() and _temps(tmp_path) == []


def test_a_failing_rename_keeps_the_previous_checkpoint(saved, tmp_path, monkeypatch):
    ckpt = tmp_path / "c.ckpt"
    ckpt.write_bytes(saved[0].read_bytes())
    trainer = Trainer(nets.logistic_regression(), TrainConfig(
        epochs=2, learning_rate=0.1, momentum=0.5, checkpoint=str(ckpt)))
    trainer.load_checkpoint(ckpt)

    def no_rename(src, dst, *a, **k):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(FormatError) as info:
        trainer.fit(_data())
    assert _one_line(info) == f"cannot write {ckpt}: input/output error (the disk or network " \
                              "file system reported a failure)"
    assert ckpt.read_bytes() == saved[0].read_bytes() and _temps(tmp_path) == []


def _full_disk(monkeypatch, under) -> None:
    """os.write fails with ENOSPC for files opened under ``under`` (only those)."""
    real_open, real_write = os.open, os.write
    fds: set[int] = set()

    def tracking_open(path, *a, **k):
        fd = real_open(path, *a, **k)
        if os.fsdecode(path).startswith(str(under)):
            fds.add(fd)
        return fd

    def full(fd, data):
        if fd in fds:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "open", tracking_open)
    monkeypatch.setattr(os, "write", full)


def test_a_full_disk_while_writing_a_checkpoint_is_one_line(saved, tmp_path, monkeypatch):
    """torch turns a failed write of its zip stream into a RuntimeError about 'unexpected
    pos'; the writer reports the OSError instead."""
    ckpt = tmp_path / "c.ckpt"
    ckpt.write_bytes(saved[0].read_bytes())
    _full_disk(monkeypatch, tmp_path)
    with pytest.raises(FormatError) as info:  # bigger than the writer's 1 MiB buffer
        checkpoint.write(ckpt, {"epoch": 2, "params": {"W": torch.zeros(1 << 19)}})
    assert _one_line(info) == (f"cannot write {ckpt}: no space left on device (free some space "
                               "or write elsewhere)")
    with pytest.raises(FormatError, match="no space left on device"):  # fails at the flush
        checkpoint.write(tmp_path / "small.ckpt", {"epoch": 2, "params": {"W": torch.zeros(2)}})
    monkeypatch.undo()
    assert ckpt.read_bytes() == saved[0].read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.ckpt"]


def test_a_checkpoint_round_trips(tmp_path):
    p = tmp_path / "c.ckpt"
    checkpoint.write(p, {"epoch": 3, "history": [], "params": {"W": torch.ones(2)}})
    state = checkpoint.read(p)
    assert state["format"] == checkpoint.FORMAT and state["version"] == checkpoint.VERSION
    assert state["epoch"] == 3 and torch.equal(state["params"]["W"], torch.ones(2))
    assert checkpoint.optimizer_kind(state) == "sgd"
