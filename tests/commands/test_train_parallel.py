"""Data-parallel training in several processes (gloo on the CPU): ``netsurgeon train`` and
``netsurgeon run`` started as ranks, by hand (the environment torchrun sets) or by torchrun.

DataParallelSGD in 2 processes equals 1 process with the same global minibatch, checkpoints
included; model averaging and block momentum reach its test error; a killed rank fails the
job cleanly and ``--resume`` continues from the intact checkpoint."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import CNTK

from netsurgeon import formats
from netsurgeon.cli import main
from netsurgeon.graph import Network
from netsurgeon.runtime import checkpoint

MC = CNTK / "models" / "MC.dnn"
TRAIN = CNTK / "data" / "Train-3Classes_cntk_text.txt"
TEST = CNTK / "data" / "Test-3Classes_cntk_text.txt"
HELLO = CNTK / "configs" / "HelloWorld-LogisticRegression"
WAIT = 120  # seconds a multi-process run may take before the test fails (no hang)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}


def _ranks(args: list[str], world: int = 2, cwd: Path | None = None) -> list[str]:
    """Run ``netsurgeon ARGS`` as ``world`` ranks (the variables torchrun would set); the
    stdout of each, after checking that all exited with 0."""
    port = str(_free_port())
    procs = [subprocess.Popen([sys.executable, "-m", "netsurgeon", *args], cwd=cwd, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(world),
                                       LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                                       MASTER_PORT=port))
             for r in range(world)]
    outs = [p.communicate(timeout=WAIT) for p in procs]
    for r, (p, (_out, err)) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, f"rank {r}: {err}"
    return [out for out, _ in outs]


def _torchrun(args: list[str], cwd: Path | None = None, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node",
                             "2", "--master-addr", "127.0.0.1", "--master-port",
                             str(_free_port()), "-m", "netsurgeon", *args], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(**env))


def _finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=WAIT)
    assert proc.returncode == 0, err[-3000:]
    return out


def _params(net: Network) -> dict[str, np.ndarray]:
    return {n.name: np.asarray(n.value) for n in net.nodes
            if n.op == "LearnableParameter" and n.value is not None}


def _assert_same_training(one: Path, two: Path) -> None:
    """Models and checkpoints ``X`` / ``X.ckpt`` equal to float32 rounding (summing each half
    of a minibatch first changes the last bits; 2e-6 seen on AMD EPYC, 5e-7 on Intel)."""
    a, b = _params(formats.load(one)), _params(formats.load(two))
    assert a.keys() == b.keys() and a
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-5, atol=1e-5, err_msg=name)
    ca, cb = checkpoint.read(f"{one}.ckpt"), checkpoint.read(f"{two}.ckpt")
    assert ca.keys() == cb.keys() and ca["epoch"] == cb["epoch"] == 3
    for ha, hb in zip(ca["history"], cb["history"], strict=True):
        assert ha["samples"] == hb["samples"]
        assert hb["loss"] == pytest.approx(ha["loss"], rel=1e-5)
        assert hb["metrics"] == pytest.approx(ha["metrics"], rel=1e-5, abs=1e-9)
    for part in ("params", "momentum"):
        assert ca[part].keys() == cb[part].keys()
        for name, value in ca[part].items():
            np.testing.assert_allclose(cb[part][name].numpy(), value.numpy(), rtol=1e-5,
                                       atol=1e-5, err_msg=f"{part} {name}")


def _train_args(model, data, out, *extra) -> list[str]:
    return ["train", str(model), str(data), "-o", str(out), "--minibatch", "50", "--lr", "0.01",
            "--momentum", "0.9", "--backend", "torch", "--no-progress", *extra]


# 2 processes importing torch: ~3 s, 4-10 s on 2 loaded cores; the one multi-process test
# of the quick suite
def test_two_ranks_train_mc_as_one_process(tmp_path, capsys):
    """DataParallelSGD: each rank takes half of every global minibatch of 50, the summed
    gradients give the one-process update; only rank 0 prints and writes."""
    assert main(_train_args(MC, TRAIN, tmp_path / "one.nsm", "--epochs", "3")) == 0
    one_log = capsys.readouterr().out
    outs = _ranks(_train_args(MC, TRAIN, tmp_path / "two.nsm", "--epochs", "3"))
    assert outs[0].startswith("data parallel training on 2 ranks\n") and outs[1] == ""
    assert outs[0].split("\n", 1)[1].replace("two.nsm", "one.nsm") == one_log
    _assert_same_training(tmp_path / "one.nsm", tmp_path / "two.nsm")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.nsm", "one.nsm.ckpt", "two.nsm",
                                                         "two.nsm.ckpt"]


def _conv_net(path: Path) -> None:
    """A small conv net: 1x6x6 images -> 4 maps 3x3 -> ReLU -> 2x2 max pooling -> 3 classes."""
    r = np.random.default_rng(5)
    net = Network("conv")
    x = net.add("features", "InputValue", shape=(1, 6, 6))
    y = net.add("labels", "InputValue", shape=(3,))
    w = net.add_parameter("conv.W", (r.normal(size=(4, 1, 3, 3)) * 0.3).astype(np.float32))
    c = net.add("conv", "Convolution", inputs=(w, x), attrs={
        "kernel_shape": (1, 3, 3), "map_count": (4,), "auto_padding": (False, True, True)})
    h = net.add("relu", "RectifiedLinear", inputs=(c,))
    p = net.add("pool", "Pooling", inputs=(h,), attrs={
        "kernel_shape": (1, 2, 2), "strides": (1, 2, 2), "pool_kind": "max"})
    w2 = net.add_parameter("out.W", (r.normal(size=(4, 3, 3, 3)) * 0.3).astype(np.float32))
    b2 = net.add_parameter("out.b", np.zeros(3, np.float32))
    z = net.add("z", "Plus", inputs=(net.add("t", "Times", inputs=(w2, p)), b2))
    net.add_to_group("criterion", net.add("ce", "CrossEntropyWithSoftmax", inputs=(y, z)))
    net.add_to_group("evaluation", net.add("errs", "ClassificationError", inputs=(y, z)))
    net.validate()
    formats.save(net, path)


def _conv_data(path: Path, count: int = 200) -> None:
    r = np.random.default_rng(6)
    x = r.normal(size=(count, 36)).astype(np.float32)
    label = (x[:, :12].sum(1) > 0).astype(int) + (x[:, 24:].sum(1) > 1)
    path.write_text("".join("|features " + " ".join(f"{v:.4f}" for v in row) + " |labels "
                            + " ".join("1" if k == c else "0" for k in range(3)) + "\n"
                            for row, c in zip(x, label)))


@pytest.mark.slow
def test_torchrun_trains_a_conv_net_and_a_cntk_config_as_one_process(tmp_path, hello, capsys):
    """torchrun -m netsurgeon train (a conv net), and netsurgeon run with
    ParallelTrain=[parallelizationMethod=DataParallelSGD] (ignored, with CNTK's message, in
    one process): the same models as one process."""
    _conv_net(tmp_path / "conv.nsm")
    _conv_data(tmp_path / "conv.ctf")
    args = ("--epochs", "3", "--minibatch", "32")
    job = _torchrun(_train_args(tmp_path / "conv.nsm", tmp_path / "conv.ctf",
                                tmp_path / "two.nsm", *args))
    assert main(_train_args(tmp_path / "conv.nsm", tmp_path / "conv.ctf", tmp_path / "one.nsm",
                            *args)) == 0
    config = [str(HELLO / "3Classes_bs.cntk"), "command=Train",
              "Train=[SGD=[maxEpochs=2;ParallelTrain=[parallelizationMethod=DataParallelSGD]]]"]
    capsys.readouterr()
    assert main(["run", *config, "modelPath=run1/MC.dnn"]) == 0
    single = capsys.readouterr().out
    assert "parallelTrain option is not enabled. ParallelTrain config will be ignored." in single
    _finish(job)
    _assert_same_training(tmp_path / "one.nsm", tmp_path / "two.nsm")
    log = _finish(_torchrun(["run", *config, "modelPath=run2/MC.dnn"], cwd=tmp_path))
    assert log.count("COMPLETED.") == 1  # rank 0 alone logs
    assert "DataParallelSGD training (myRank = 0, numNodes = 2, numGradientBits = 32)" in log
    finished, expected = _epoch_values(log), _epoch_values(single)
    assert len(finished) == len(expected) == 2
    for got, want in zip(finished, expected):
        assert got == pytest.approx(want, rel=1e-5)  # ce sums in float32, in another order
    names = sorted(p.name for p in (tmp_path / "run2").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "run1").iterdir())
    a = _params(formats.load(tmp_path / "run1" / "MC.dnn"))
    b = _params(formats.load(tmp_path / "run2" / "MC.dnn"))
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-5, atol=1e-5)


def _epoch_values(log: str) -> list[list[float]]:
    """The numbers of CNTK's ``Finished Epoch`` lines, but the epoch time."""
    return [[float(v) for v in re.findall(r"[-+]?\d+\.?\d*(?:e[-+]?\d+)?",
                                           line.split("; epochTime")[0])]
            for line in log.splitlines() if line.startswith("Finished Epoch")]


def _test_error(path: Path) -> float:
    from netsurgeon.runtime import Evaluator
    from netsurgeon.runtime.readers import CTFReader, streams_for

    net = formats.load(path)
    (mb,) = CTFReader(TEST, streams_for(net), 500)
    return float(Evaluator(net, ["errs"]).run(mb)["errs"].sum()) / mb.samples


@pytest.mark.slow
def test_model_averaging_and_block_momentum_reach_the_one_process_test_error(tmp_path):
    args = ("--epochs", "3", "--sync-period", "200")
    jobs = {m: _torchrun(_train_args(MC, TRAIN, tmp_path / f"{m}.nsm", "--parallel", m, *args))
            for m in ("model-averaging", "block-momentum")}
    assert main(_train_args(MC, TRAIN, tmp_path / "one.nsm", "--epochs", "3")) == 0
    reference = _test_error(tmp_path / "one.nsm")
    assert reference < 0.09  # it converged
    for method, job in jobs.items():
        out = _finish(job)
        assert out.startswith(f"{method} parallel training on 2 ranks, block 200 samples")
        assert "epoch 3: 1000 samples" in out  # each sample once per epoch over the ranks
        assert abs(_test_error(tmp_path / f"{method}.nsm") - reference) <= 0.005, method


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _rank_of(pid: int) -> str | None:
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return next((e[5:].decode() for e in env if e.startswith(b"RANK=")), None)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_a_killed_rank_fails_the_job_and_resume_continues(tmp_path):
    out = tmp_path / "mc.nsm"
    ckpt = Path(f"{out}.ckpt")
    job = _torchrun(_train_args(MC, TRAIN, out, "--epochs", "400"),
                    NETSURGEON_DIST_TIMEOUT="20")
    deadline = time.monotonic() + WAIT
    while not ckpt.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ckpt.exists(), job.communicate()[1][-2000:]
    workers = _children(job.pid)
    victim = next(p for p in workers if _rank_of(p) == "1")
    os.kill(victim, signal.SIGKILL)
    _, err = job.communicate(timeout=WAIT)
    assert job.returncode != 0 and "SIGKILL" in err
    assert not any(Path(f"/proc/{p}").exists() for p in workers)  # no rank left behind
    assert not out.exists()  # the job did not finish, nothing half-written
    epoch = checkpoint.read(ckpt)["epoch"]  # intact
    assert 1 <= epoch < 400
    log = _finish(_torchrun(_train_args(MC, TRAIN, out, "--epochs", str(epoch + 1),
                                        "--resume")))
    assert f"resuming after epoch {epoch} from {ckpt}" in log
    assert f"epoch {epoch + 1}: 1000 samples" in log and out.exists()
    assert checkpoint.read(ckpt)["epoch"] == epoch + 1


def test_device_and_precision_errors_are_one_line(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["eval", str(MC), str(TEST), "--device", "cuda"]) == 1
    assert capsys.readouterr().err == ("netsurgeon: error: device 'cuda': no CUDA device; use "
                                       "--device cpu\n")
    out = tmp_path / "mc.nsm"
    assert main(_train_args(MC, TRAIN, out, "--precision", "float16")) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "float16 needs a CUDA device" in err and not out.exists()


def test_parallel_without_torchrun_trains_in_one_process(tmp_path, capsys):
    out = tmp_path / "mc.nsm"
    assert main(_train_args(MC, TRAIN, out, "--parallel", "block-momentum", "--device", "auto",
                            "--epoch-size", "100")) == 0
    captured = capsys.readouterr()
    assert "--parallel block-momentum without torchrun: training in one process" in captured.err
    assert "epoch 1: 100 samples" in captured.out and out.exists()
