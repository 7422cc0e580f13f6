"""``netsurgeon train`` and Mean/InvStdDev: the statistics it computes are written as computed.

CNTK 2.7 refuses a v1 file whose Mean/InvStdDev node says "not precomputed"
(hasComputed false), so every way out of training must leave the flag true with the values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tests.runtime import nets

from netsurgeon.cli import main
from netsurgeon.formats import cntk
from netsurgeon.graph import Network
from netsurgeon.runtime.batch import Minibatch
from netsurgeon.runtime.train import TrainConfig, Trainer, precompute


def mvn_network(mean: np.ndarray | None = None) -> Network:
    """features (3) -> PerDimMeanVarNormalization -> Times -> Sigmoid -> Logistic(labels).
    ``mean``: a value for the Mean node, its has_computed flag left false."""
    net = Network("mvn")
    x = net.add("features", "InputValue", shape=(3,))
    y = net.add("labels", "InputValue", shape=(1,))
    m = net.add("m", "Mean", inputs=(x,), value=mean)
    s = net.add("s", "InvStdDev", inputs=(x,))
    n = net.add("n", "PerDimMeanVarNormalization", inputs=(x, m, s))
    w = net.add_parameter("W", np.full((3, 1), 0.1, np.float32))
    p = net.add("p", "Sigmoid", inputs=(net.add("t", "Times", inputs=(w, n)),))
    net.add_to_group("feature", x)
    net.add_to_group("feature", y)
    net.add_to_group("criterion", net.add("lr", "Logistic", inputs=(y, p)))
    net.validate()
    return net


def data() -> np.ndarray:
    return nets.rng(3).normal(loc=[1, -2, 5], scale=[1, 3, 0.5], size=(40, 3)).astype(np.float32)


def batches(x: np.ndarray) -> list[Minibatch]:
    labels = (x[:, :1] > 1).astype(np.float32)
    return [Minibatch({"features": x[i:i + 10, None], "labels": labels[i:i + 10, None]},
                      np.ones(10, np.int64)) for i in range(0, len(x), 10)]


def write_ctf(path: Path, x: np.ndarray) -> Path:
    labels = (x[:, 0] > 1).astype(int)
    path.write_text("".join("|features " + " ".join(f"{v:.6g}" for v in row)
                            + f" |labels {c}\n" for row, c in zip(x, labels)))
    return path


def stored_flags(path: Path) -> dict[str, bool]:
    """hasComputed of each Mean/InvStdDev node as the file stores it."""
    net = cntk.read(path)
    return {n.name: n.attrs["has_computed"] for n in net if n.op in ("Mean", "InvStdDev")}


def test_trained_statistics_are_written_as_computed(tmp_path: Path):
    net = mvn_network()
    x = data()
    Trainer(net, TrainConfig(epochs=1, learning_rate=0.01)).fit(batches(x))
    cntk.write(net, tmp_path / "t.dnn")
    assert stored_flags(tmp_path / "t.dnn") == {"m": True, "s": True}
    back = cntk.read(tmp_path / "t.dnn")
    np.testing.assert_allclose(back.node("m").value, x.mean(0), rtol=1e-5)


def test_stored_but_not_computed_statistics_are_computed_in_training(tmp_path: Path):
    """A CNTK file may hold Mean/InvStdDev values with hasComputed false: CNTK recomputes
    those before training; so does netsurgeon, and writes them as computed."""
    cntk.write(mvn_network(mean=np.full((3,), 7.0, np.float32)), tmp_path / "in.dnn")
    net = cntk.read(tmp_path / "in.dnn")
    assert net.node("m").value is not None and net.node("m").attrs["has_computed"] is False
    x = data()
    assert [n.name for n in precompute(net, lambda: batches(x))] == ["m", "s"]
    np.testing.assert_allclose(net.node("m").value, x.mean(0), rtol=1e-5)
    cntk.write(net, tmp_path / "out.dnn")
    assert stored_flags(tmp_path / "out.dnn") == {"m": True, "s": True}


def test_train_command_writes_computed_statistics(tmp_path: Path):
    model = tmp_path / "mvn.dnn"
    cntk.write(mvn_network(), model)
    ctf = write_ctf(tmp_path / "train.ctf", data())
    out = tmp_path / "trained.dnn"
    assert main(["train", str(model), str(ctf), "-o", str(out), "--epochs", "1", "--lr", "0.01",
                 "--no-progress", "--out-format", "cntk"]) == 0
    assert stored_flags(out) == {"m": True, "s": True}


def test_resume_after_the_last_epoch_keeps_the_statistics(tmp_path: Path, capsys):
    """``--resume`` from a checkpoint of the last epoch trains nothing, but still saves the
    model: the Mean/InvStdDev the parameters were trained with must be in it, computed."""
    model = tmp_path / "mvn.dnn"
    cntk.write(mvn_network(), model)
    ctf = write_ctf(tmp_path / "train.ctf", data())
    ckpt = tmp_path / "t.ckpt"
    common = [str(model), str(ctf), "--epochs", "1", "--lr", "0.01", "--no-progress",
              "--out-format", "cntk", "--checkpoint", str(ckpt)]
    assert main(["train", *common, "-o", str(tmp_path / "a.dnn")]) == 0
    assert main(["train", *common, "-o", str(tmp_path / "b.dnn"), "--resume"]) == 0
    assert "nothing to train" in capsys.readouterr().out
    assert stored_flags(tmp_path / "b.dnn") == {"m": True, "s": True}
    a, b = cntk.read(tmp_path / "a.dnn"), cntk.read(tmp_path / "b.dnn")
    for name in ("m", "s", "W"):
        np.testing.assert_array_equal(b.node(name).value, a.node(name).value, err_msg=name)
