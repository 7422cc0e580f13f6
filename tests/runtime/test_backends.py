"""Evaluation backends (torch, compile, onnxruntime, auto): equal results, the auto choice."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.runtime.nets import mlp

import netsurgeon
from netsurgeon.errors import EvaluationError
from netsurgeon.graph import Network
from netsurgeon.runtime import Evaluator, evaluate
from netsurgeon.runtime import backends as B
from netsurgeon.runtime.evaluate import batch_from_arrays


def _load(cntk_dir, name):
    net = netsurgeon.load(cntk_dir / "models" / name)
    net.validate()
    return net


def _inputs(net, batch, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((batch,) + tuple(net.node("features").shape), dtype=np.float32)
    labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    return {"features": x, "labels": labels}


def _close(got, ref):
    for name, value in ref.items():
        scale = max(float(np.abs(value).max()), 1e-30)
        assert float(np.abs(got[name] - value).max()) / scale <= 1e-5, name


@pytest.mark.parametrize("model", ["01_OneHidden.dnn", "cifar10.pretrained.cmf"])
def test_onnxruntime_equals_torch(cntk_dir, model):
    net = _load(cntk_dir, model)
    data = _inputs(net, 5)
    ref = evaluate(net, data, backend="torch")
    got = evaluate(net, data, backend="onnxruntime")
    assert set(got) == set(ref) == {"z.z" if "OneHidden" in model else "z", "ce", "errs"}
    _close(got, ref)


def test_onnxruntime_one_sample_and_one_padded_sequence(cntk_dir):
    # one sequence takes the per-call fast path (no reduction over the lengths): one sample,
    # then one sequence of 2 frames
    net = _load(cntk_dir, "01_OneHidden.dnn")
    data = _inputs(net, 1)
    _close(evaluate(net, data, backend="onnxruntime"), evaluate(net, data, backend="torch"))
    rng = np.random.default_rng(2)
    feeds = {"features": rng.random((1, 2, 784), dtype=np.float32),
             "labels": np.eye(10, dtype=np.float32)[rng.integers(0, 10, (1, 2))]}
    ref = evaluate(net, feeds, lengths=[2], backend="torch")
    got = evaluate(net, feeds, lengths=[2], backend="onnxruntime")
    _close(got, ref)
    assert got["z.z"].shape == ref["z.z"].shape


def test_onnxruntime_drops_padding_of_a_feed_forward_net(cntk_dir):
    # sequences of 3, 1 and 2 frames through a feed-forward net: onnxruntime sees the 6 real
    # frames only, the criterion sums those, and padded frames come back as zeros
    net = _load(cntk_dir, "01_OneHidden.dnn")
    rng = np.random.default_rng(1)
    x = rng.random((3, 3, 784), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, (3, 3))]
    feeds = {"features": x, "labels": y}
    ref = evaluate(net, feeds, lengths=[3, 1, 2], backend="torch")
    got = evaluate(net, feeds, lengths=[3, 1, 2], backend="onnxruntime")
    _close(got, ref)
    assert not got["z.z"][1, 1:].any()


def test_exporter_refusal_is_an_error_only_when_asked_for(monkeypatch):
    net = Network("rev")
    x = net.add("features", "InputValue", shape=(4,))
    r = net.add("r", "TimeReverse", inputs=(x,))
    net.add_to_group("output", r)
    net.validate()
    seq = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    with pytest.raises(EvaluationError, match=r"backend onnxruntime cannot run network 'rev': "
                       r".*TimeReverse"):
        evaluate(net, {"features": seq}, lengths=[3, 3], backend="onnxruntime")
    monkeypatch.setenv(B.MODE_VARIABLE, "now")
    ev = Evaluator(net)
    batch, _ = batch_from_arrays(net, {"features": seq}, [3, 3])
    ev.backends(batch).made["compile"] = None  # no real torch.compile in a fast test
    out = ev.run(batch)
    assert np.array_equal(out["r"].numpy().reshape(2, 3, 4), seq[:, ::-1])
    s = ev.backends(batch)
    assert s.made["onnxruntime"] is None and "TimeReverse" in s.why_not["onnxruntime"]


class _Fake:
    """A backend that counts its calls and returns the torch result."""

    def __init__(self, torch_fn, delay: float = 0.0):
        self.torch_fn, self.delay, self.calls = torch_fn, delay, 0

    def __call__(self, batch):
        import time

        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        return self.torch_fn(batch)


def test_auto_picks_the_fastest_per_bucket_once_and_shares_it(monkeypatch):
    net = mlp()
    monkeypatch.setenv(B.MODE_VARIABLE, "now")
    ev = Evaluator(net, ["z"])
    x = np.random.default_rng(0).random((8, 6), dtype=np.float32)
    big, _ = batch_from_arrays(net, {"features": x})
    small, _ = batch_from_arrays(net, {"features": x[:1]})
    s = ev.backends(big)
    s.made["torch"] = _Fake(s.compiled, delay=0.001)
    fast = s.made["compile"] = _Fake(s.compiled)
    slow = s.made["onnxruntime"] = _Fake(s.compiled, delay=0.002)
    ev.run(big)
    assert ev.chosen(big) == "compile" and s.choices[B.bucket(8), B.threads()].settled()
    timed = fast.calls + slow.calls
    assert slow.calls == B.TIMED_CALLS + 2  # two untimed calls, then 3 rounds of one call
    assert ev.chosen(small) == "torch"  # its bucket is measured at its own first batch
    for _ in range(5):
        ev.run(big)
    assert fast.calls + slow.calls == timed + 5 and slow.calls == B.TIMED_CALLS + 2
    # another Evaluator of the same network and outputs reuses the choices (network.derived)
    again = Evaluator(net, ["z"])
    assert again.backends(big) is s and again.chosen(big) == "compile"
    net.add("extra", "Sigmoid", inputs=(net.node("z"),))  # an edit: a new version, new set
    assert again.backends(big) is not s


def _measured_now(monkeypatch):
    """An Evaluator of :func:`mlp` measuring at the first batch, an 8-frame batch, and its
    backend set with a slow fake torch."""
    monkeypatch.setenv(B.MODE_VARIABLE, "now")
    net = mlp()
    ev = Evaluator(net, ["z"])
    x = np.random.default_rng(0).random((8, 6), dtype=np.float32)
    batch, _ = batch_from_arrays(net, {"features": x})
    s = ev.backends(batch)
    s.made["torch"] = _Fake(s.compiled, delay=0.001)
    return ev, batch, s


def test_auto_falls_back_to_torch_when_its_choice_fails(monkeypatch):
    ev, batch, s = _measured_now(monkeypatch)
    s.made["onnxruntime"] = None
    fails = False

    def flaky(b):
        if fails:
            raise B.BackendFailure("onnxruntime failed on network 'mlp': a new shape")
        return s.compiled(b)

    s.made["compile"] = flaky
    ref = ev.run(batch)["z"]
    assert ev.chosen(batch) == "compile"
    fails = True
    assert bool((ev.run(batch)["z"] == ref).all())
    assert ev.chosen(batch) == "torch" and "a new shape" in s.why_not["compile"]
    s.made["compile"] = flaky
    with pytest.raises(EvaluationError, match="a new shape"):  # asked for: an error
        s.run("compile", batch)


def test_a_bucket_settled_on_onnxruntime_gets_its_extent_and_still_falls_back(monkeypatch):
    ev, batch, s = _measured_now(monkeypatch)
    s.made["compile"] = None
    failure: Exception | None = None
    shapes = []

    def session(b, shape=None):
        shapes.append(shape)
        if failure is not None:
            raise failure
        return s.compiled(b)

    s.made["onnxruntime"] = session
    ref = ev.run(batch)["z"]
    ev.run(batch)
    assert ev.chosen(batch) == "onnxruntime"
    assert shapes[-1] == (8, 1, True)  # the batch's extent, worked out once
    failure = EvaluationError("input 'features' is missing")  # the user's: raised as is
    with pytest.raises(EvaluationError, match="missing"):
        ev.run(batch)
    assert s.made["onnxruntime"] is session and ev.chosen(batch) == "onnxruntime"
    failure = B.BackendFailure("onnxruntime failed on network 'mlp': a new shape")
    assert bool((ev.run(batch)["z"] == ref).all())  # torch ran it
    assert ev.chosen(batch) == "torch"
    assert s.made["onnxruntime"] is None and "a new shape" in s.why_not["onnxruntime"]


def test_auto_measures_lazily_and_off_measures_nothing(monkeypatch):
    net = mlp()
    x = np.random.default_rng(0).random((4, 6), dtype=np.float32)
    batch, _ = batch_from_arrays(net, {"features": x})
    monkeypatch.setenv(B.MODE_VARIABLE, "off")
    ev = Evaluator(net, ["z"])
    s = ev.backends(batch)
    ort = s.made["onnxruntime"] = _Fake(s.compiled, delay=0.001)
    monkeypatch.setattr(B, "MEASURE_AFTER_S", 0.0)
    ev.run(batch)
    assert ort.calls == 0 and ev.chosen(batch) == "torch"
    monkeypatch.setenv(B.MODE_VARIABLE, "lazy")
    ev.run(batch)  # spent >= MEASURE_AFTER_S (0 here): torch and onnxruntime are timed
    assert ort.calls == B.TIMED_CALLS + 2
    # compile waits until the bucket has spent its guessed cost
    assert not s.choices[B.bucket(4), B.threads()].compile_tried
    with pytest.raises(EvaluationError, match="NETSURGEON_AUTO='fast'; use lazy, now or off"):
        monkeypatch.setenv(B.MODE_VARIABLE, "fast")
        ev.run(batch)


def test_unknown_backends_are_one_line_errors():
    net = mlp()
    with pytest.raises(EvaluationError, match="unknown backend 'tensorrt'; use one of auto, "
                       "torch, compile, onnxruntime"):
        Evaluator(net, backend="tensorrt")
    from netsurgeon.runtime.train import Trainer

    with pytest.raises(EvaluationError, match="onnxruntime backend only evaluates"):
        Trainer(net, backend="onnxruntime")


def test_cli_eval_backend_and_threads(cntk_dir, tmp_path, capsys):
    import torch

    from netsurgeon.cli import main

    net = _load(cntk_dir, "01_OneHidden.dnn")
    data = _inputs(net, 7)
    np.save(tmp_path / "x.npy", data["features"])
    np.save(tmp_path / "y.npy", data["labels"])
    model = str(cntk_dir / "models/01_OneHidden.dnn")
    sums = {}
    before = torch.get_num_threads()
    try:
        for backend in ("torch", "onnxruntime"):
            rc = main(["eval", model, "--input", f"features={tmp_path / 'x.npy'}", "--input",
                       f"labels={tmp_path / 'y.npy'}", "--backend", backend, "--threads", "1",
                       "--json"])
            assert rc == 0
            sums[backend] = json.loads(capsys.readouterr().out)["nodes"]["ce"]["sum"]
            assert torch.get_num_threads() == 1 and B.threads() == 1
    finally:
        B.set_threads(before)
    assert sums["onnxruntime"] == pytest.approx(sums["torch"], rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["01_OneHidden.dnn", "cifar10.pretrained.cmf"])
def test_compile_equals_torch_without_recompiling_per_batch(cntk_dir, model):
    import torch._dynamo

    net = _load(cntk_dir, model)
    torch._dynamo.utils.counters.clear()
    for size in (32, 48, 256, 7, 5):
        data = _inputs(net, size, seed=size)
        _close(evaluate(net, data, backend="compile"), evaluate(net, data, backend="torch"))
    # sizes >= 16 share one graph and 5, 7 another (dynamo keeps small convolutions apart)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] <= 2


@pytest.mark.slow
def test_onnxruntime_runs_a_sequence_model(cntk_dir):
    net = _load(cntk_dir, "slu.forward.nobn.cmf")
    rng = np.random.default_rng(0)
    lengths = [4, 2, 3]
    q = np.eye(943, dtype=np.float32)[rng.integers(0, 943, (3, 4))]
    ref = evaluate(net, {"query": q}, ["z"], lengths=lengths, backend="torch")
    _close(evaluate(net, {"query": q}, ["z"], lengths=lengths, backend="onnxruntime"), ref)


# ---- training ------------------------------------------------------------------------------
def _train_batch(net, size=8, seed=0):
    from netsurgeon.runtime.batch import Minibatch

    data = _inputs(net, size, seed)
    dout = net.node("labels").shape[-1]
    labels = np.eye(dout, dtype=np.float32)[np.argmax(data["labels"][:, :dout], 1) % dout]
    return Minibatch({"features": data["features"][:, None], "labels": labels[:, None]},
                     np.ones(size, np.int64))


def test_train_auto_tries_compile_on_real_steps_and_keeps_the_faster(monkeypatch):
    from netsurgeon.runtime.backends_train import TRIAL_STEPS, TrainBackend
    from netsurgeon.runtime.train import TrainConfig, Trainer

    net = mlp()
    trainer = Trainer(net, TrainConfig(learning_rate=0.1))
    runner = trainer._runner
    assert isinstance(runner, TrainBackend) and trainer.backend == "auto"
    kinds = []

    def fake_compiled(self, batch, strict):  # stands in for torch.compile: same code, slower
        import time

        kinds.append("compile")
        time.sleep(0.03)
        return self.module.run_minibatch(batch)

    monkeypatch.setattr(TrainBackend, "_run_compiled", fake_compiled)
    monkeypatch.setenv(B.MODE_VARIABLE, "now")
    batch = _train_batch(net)
    losses = [trainer.step(batch)[0] for _ in range(3 * TRIAL_STEPS + 4)]
    assert losses[-1] < losses[0]  # every measured step is a real step
    # 5 eager steps, one that compiles, then compiled and eager steps in turn (5 each)
    assert len(kinds) == TRIAL_STEPS + 1
    assert runner.chosen(batch) == "torch"
    kinds.clear()
    monkeypatch.setenv(B.MODE_VARIABLE, "off")
    other = Trainer(net, TrainConfig(learning_rate=0.1))
    for _ in range(6):
        other.step(batch)
    assert kinds == [] and other._runner.chosen(batch) == "torch"


@pytest.mark.slow
def test_train_compile_equals_torch(cntk_dir):
    from netsurgeon.runtime.train import TrainConfig, Trainer

    results = {}
    for backend in ("torch", "compile"):
        net = _load(cntk_dir, "01_OneHidden.dnn")
        trainer = Trainer(net, TrainConfig(learning_rate=1e-4), criteria=["ce"], metrics=[],
                          backend=backend)
        losses = [trainer.step(_train_batch(net, 16, seed))[0] for seed in range(3)]
        trainer.write_back()
        results[backend] = losses, np.asarray(net.node("z.W").value).copy()
    assert results["compile"][0] == pytest.approx(results["torch"][0], rel=1e-5)
    w, ref = results["compile"][1], results["torch"][1]
    assert np.abs(w - ref).max() <= 1e-5 * np.abs(ref).max()
