"""Training: HelloWorld from scratch, frozen and shared parameters, optimizers, checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.runtime import nets

from netsurgeon.graph import Network
from netsurgeon.runtime import Evaluator, evaluate
from netsurgeon.runtime.batch import Minibatch
from netsurgeon.runtime.readers import CTFReader, streams_for
from netsurgeon.runtime.train import TrainConfig, Trainer

HERE = Path(__file__).parent


def _helloworld():
    from netsurgeon.lang.ndl import build_network

    path = HERE / "helloworld_lr.ndl"
    return build_network(path.read_text(), source=str(path), name="lr")


def _test_errors(net, cntk_dir, out="s"):
    ev = Evaluator(net, [out])
    wrong = 0
    for mb in CTFReader(cntk_dir / "data/Test_cntk_text.txt", streams_for(net), 500):
        p = ev.run(mb)[out].numpy().reshape(-1)
        wrong += int(((p > 0.5) != (mb.streams["labels"].reshape(-1) > 0.5)).sum())
    return wrong


def _batches(x, y, size):
    out = []
    for i in range(0, len(x), size):
        xs, ys = x[i:i + size], y[i:i + size]
        out.append(Minibatch({"features": xs[:, None], "labels": ys[:, None]},
                             np.ones(len(xs), np.int64)))
    return out


def test_helloworld_logistic_regression_from_ndl(cntk_dir):
    net = _helloworld()
    train = cntk_dir / "data/Train_cntk_text.txt"
    trainer = Trainer(net, TrainConfig(epochs=10, minibatch_size=25, learning_rate=0.04))
    history = trainer.fit(lambda: CTFReader(train, streams_for(net), 25))
    assert history[-1]["loss"] < history[0]["loss"]
    wrong = _test_errors(net, cntk_dir)
    assert wrong / 500 <= 0.02


def test_frozen_parameter_is_bit_identical(cntk_dir):
    net = _helloworld()
    net.update("B", learning_rate_multiplier=0.0)
    before_b = net.node("B").value.copy()
    before_w = net.node("w").value.copy()
    Trainer(net, TrainConfig(epochs=1, minibatch_size=25, learning_rate=0.04)).fit(
        lambda: CTFReader(cntk_dir / "data/Train_cntk_text.txt", streams_for(net), 25))
    assert net.node("B").value.tobytes() == before_b.tobytes()
    assert not np.array_equal(net.node("w").value, before_w)


def _shared_net(shared_storage: bool):
    """z = W·x1 + W'·x2 where W' is W (one node) or a second node over the same array."""
    r = nets.rng(5)
    w = r.normal(size=(3, 2)).astype(np.float32)
    net = Network("shared")
    x1 = net.add("x1", "InputValue", shape=(3,))
    x2 = net.add("x2", "InputValue", shape=(3,))
    y = net.add("y", "InputValue", shape=(2,))
    W = net.add_parameter("W", w)
    W2 = net.add_parameter("W2", W.value) if shared_storage else W
    z = net.add("z", "Plus", inputs=(net.add("a", "Times", inputs=(W, x1)),
                                     net.add("b", "Times", inputs=(W2, x2))))
    net.add_to_group("criterion", net.add("se", "SquareError", inputs=(y, z)))
    net.validate()
    return net, w


@pytest.mark.parametrize("shared_storage", [False, True])
def test_shared_parameter_gets_the_sum_of_both_gradients(shared_storage):
    net, w = _shared_net(shared_storage)
    r = nets.rng(6)
    x1, x2, y = (r.normal(size=(4, d)).astype(np.float32) for d in (3, 3, 2))
    batch = Minibatch({"x1": x1[:, None], "x2": x2[:, None], "y": y[:, None]},
                      np.ones(4, np.int64))
    lr = 0.01
    Trainer(net, TrainConfig(epochs=1, learning_rate=lr)).fit([batch])
    w64 = w.astype(np.float64)
    err = x1 @ w64 + x2 @ w64 - y  # d/dW Σ(y - z)² = 2·(x1ᵀ + x2ᵀ)·(z - y)
    grad = 2 * (x1.T @ err + x2.T @ err)
    np.testing.assert_allclose(net.node("W").value, w64 - lr * grad, rtol=1e-5, atol=1e-6)
    if shared_storage:
        assert net.node("W2").value is net.node("W").value


def test_learning_rate_multiplier_and_per_minibatch_rate():
    r = nets.rng(7)
    x = r.normal(size=(20, 2)).astype(np.float32)
    y = (x.sum(1, keepdims=True) > 0).astype(np.float32)
    data = _batches(x, y, 10)[:1]  # one step: W's update depends only on its own rate
    a = nets.logistic_regression()
    Trainer(a, TrainConfig(epochs=1, minibatch_size=10, learning_rate=0.01)).fit(data)
    b = nets.logistic_regression()
    b.update("W", learning_rate_multiplier=0.5)
    Trainer(b, TrainConfig(epochs=1, minibatch_size=10, learning_rate=0.02)).fit(data)
    np.testing.assert_allclose(a.node("W").value, b.node("W").value, rtol=1e-6)
    assert not np.allclose(a.node("b").value, b.node("b").value)
    c = nets.logistic_regression()
    Trainer(c, TrainConfig(epochs=1, minibatch_size=10, learning_rate=0.1,
                           lr_unit="minibatch")).fit(data)
    np.testing.assert_allclose(a.node("W").value, c.node("W").value, rtol=1e-6)


@pytest.mark.parametrize("optimizer,extra", [
    ("sgd", {"momentum": 0.9}), ("sgd", {"l2": 0.001, "clip_threshold": 0.1}),
    ("sgd", {"clip_threshold": 0.1, "clip_truncation": False}),
    ("adam", {}), ("adagrad", {}),
])
def test_optimizers_reduce_the_loss(optimizer, extra):
    r = nets.rng(8)
    x = r.normal(size=(200, 2)).astype(np.float32)
    y = (x @ np.array([1.5, -2.0]) > 0.3).astype(np.float32)[:, None]
    net = nets.logistic_regression()
    lr = {"sgd": 0.02, "adam": 0.05, "adagrad": 0.1}[optimizer]
    cfg = TrainConfig(epochs=5, minibatch_size=20, learning_rate=lr, optimizer=optimizer, **extra)
    history = Trainer(net, cfg).fit(_batches(x, y, 20))
    assert history[-1]["loss"] < history[0]["loss"] * 0.8


def test_checkpoint_and_resume_equal_an_uninterrupted_run(tmp_path):
    r = nets.rng(9)
    x = r.normal(size=(60, 2)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    data = _batches(x, y, 20)
    straight = nets.logistic_regression()
    Trainer(straight, TrainConfig(epochs=3, learning_rate=0.05, momentum=0.5)).fit(data)
    ckpt = tmp_path / "lr.ckpt"
    first = nets.logistic_regression()
    Trainer(first, TrainConfig(epochs=2, learning_rate=0.05, momentum=0.5,
                               checkpoint=str(ckpt))).fit(data)
    assert ckpt.is_file()
    resumed = nets.logistic_regression()
    t = Trainer(resumed, TrainConfig(epochs=3, learning_rate=0.05, momentum=0.5))
    t.load_checkpoint(ckpt)
    assert t.epoch == 2
    t.fit(data)
    np.testing.assert_allclose(resumed.node("W").value, straight.node("W").value, rtol=1e-6)


def test_precompute_mean_and_inv_std_dev():
    r = nets.rng(10)
    net = Network("mvn")
    x = net.add("features", "InputValue", shape=(3,))
    y = net.add("labels", "InputValue", shape=(1,))
    m = net.add("m", "Mean", inputs=(x,))
    s = net.add("s", "InvStdDev", inputs=(x,))
    n = net.add("n", "PerDimMeanVarNormalization", inputs=(x, m, s))
    W = net.add_parameter("W", np.zeros((3, 1), np.float32))
    p = net.add("p", "Sigmoid", inputs=(net.add("t", "Times", inputs=(W, n)),))
    net.add_to_group("criterion", net.add("lr", "Logistic", inputs=(y, p)))
    net.validate()
    data = r.normal(loc=[1, -2, 5], scale=[1, 3, 0.5], size=(50, 3)).astype(np.float32)
    labels = (data[:, :1] > 1).astype(np.float32)
    batches = [Minibatch({"features": data[i:i + 10, None], "labels": labels[i:i + 10, None]},
                         np.ones(10, np.int64)) for i in range(0, 50, 10)]
    Trainer(net, TrainConfig(epochs=1, learning_rate=0.01)).fit(batches)
    np.testing.assert_allclose(net.node("m").value, data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(net.node("s").value, 1 / data.std(0), rtol=1e-4)
    out = evaluate(net, {"features": data[:4]}, ["n"])["n"]
    np.testing.assert_allclose(out, (data[:4] - data.mean(0)) / data.std(0), rtol=1e-4, atol=1e-5)


def test_batch_normalization_updates_running_statistics_in_training():
    r = nets.rng(11)
    net = Network("bn")
    x = net.add("features", "InputValue", shape=(4,))
    y = net.add("labels", "InputValue", shape=(4,))
    params = [net.add_parameter(name, np.full((4,), v, np.float32), learning_rate_multiplier=lm)
              for name, v, lm in (("scale", 1, 1), ("bias", 0, 1), ("mean", 0, 0), ("var", 1, 0))]
    bn = net.add("bn", "BatchNormalization", inputs=(x, *params),
                 attrs={"normalization_time_constant": 0.0})
    net.add_to_group("criterion", net.add("se", "SquareError", inputs=(y, bn)))
    net.validate()
    data = r.normal(loc=3, scale=2, size=(64, 4)).astype(np.float32)
    batch = Minibatch({"features": data[:, None], "labels": data[:, None]}, np.ones(64, np.int64))
    Trainer(net, TrainConfig(epochs=1, learning_rate=0.001)).fit([batch])
    np.testing.assert_allclose(net.node("mean").value, data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(net.node("var").value, data.var(0), rtol=1e-4)


def test_training_converts_inverse_std_dev_statistics():
    """Models before version 13 store 1/σ; training converts to variance as CNTK does."""
    r = nets.rng(12)
    net = Network("bn10")
    x = net.add("features", "InputValue", shape=(4,))
    y = net.add("labels", "InputValue", shape=(4,))
    isd = np.full((4,), 0.5, np.float32)
    params = [net.add_parameter(name, v, learning_rate_multiplier=lm) for name, v, lm in (
        ("scale", np.ones(4, np.float32), 1), ("bias", np.zeros(4, np.float32), 1),
        ("mean", np.zeros(4, np.float32), 0), ("isd", isd, 0))]
    bn = net.add("bn", "BatchNormalization", inputs=(x, *params),
                 attrs={"normalization_time_constant": float("inf"), "running_inv_std_dev": True})
    net.add_to_group("criterion", net.add("se", "SquareError", inputs=(y, bn)))
    net.validate()
    data = r.normal(size=(8, 4)).astype(np.float32)
    before = evaluate(net, {"features": data}, ["bn"])["bn"]
    batch = Minibatch({"features": data[:, None], "labels": data[:, None]}, np.ones(8, np.int64))
    Trainer(net, TrainConfig(epochs=1, learning_rate=0.0)).fit([batch])
    assert bn.attrs["running_inv_std_dev"] is False
    np.testing.assert_allclose(net.node("isd").value, 1 / 0.25 + 1e-5, rtol=1e-6)
    after = evaluate(net, {"features": data}, ["bn"])["bn"]  # same function at inference
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-6)
