"""Dense layers as torch's own: one-row values held as rows (no reshapes into and out of the
size-1 axes of a CNTK [n x 1] column), with the values and results of the (frames, *sample)
layout; on request (``column_major``) trainable weight matrices held in ``nn.Linear``'s
layout, with the same values."""

from __future__ import annotations

import numpy as np
import torch

from netsurgeon.graph import Network
from netsurgeon.ops import OPS, Category
from netsurgeon.runtime import evaluate, to_torch
from netsurgeon.runtime.batch import Minibatch
from netsurgeon.runtime.lowerings.linear import matmul_weights
from netsurgeon.runtime.train import TrainConfig, Trainer


def _column_net(extra: str | None = None) -> Network:
    """01_OneHidden's shapes in small: a scalar (1, 1) scale makes the features (1, 6), so
    every layer's value is one row (1, n). ``extra``: ``plus`` adds h + h (a user that does
    not take rows) as an output, ``delay`` feeds h through a PastValue."""
    r = np.random.default_rng(0)
    net = Network("col")
    x = net.add("features", "InputValue", shape=(6,))
    y = net.add("labels", "InputValue", shape=(3,))
    s = net.add_parameter("s", np.full((1, 1), 0.5, np.float32), learning_rate_multiplier=0.0)
    xs = net.add("xs", "ElementTimes", inputs=(s, x))
    w1 = net.add_parameter("L1.W", r.normal(size=(6, 5)).astype(np.float32))
    b1 = net.add_parameter("L1.b", r.normal(size=(1, 5)).astype(np.float32))
    t1 = net.add("L1.t", "Times", inputs=(w1, xs))
    h = net.add("h", "Sigmoid", inputs=(net.add("L1.z", "Plus", inputs=(t1, b1)),))
    if extra == "plus":
        net.add_to_group("output", net.add("hh", "Plus", inputs=(h, h)))
    elif extra == "delay":
        h = net.add("d", "PastValue", inputs=(h,), attrs={"time_step": 1, "initial_state": 0.1},
                    shape=(1, 5))
    w2 = net.add_parameter("L2.W", r.normal(size=(5, 3)).astype(np.float32))
    b2 = net.add_parameter("L2.b", r.normal(size=(1, 3)).astype(np.float32))
    z = net.add("z", "Plus", inputs=(net.add("L2.t", "Times", inputs=(w2, h)), b2))
    net.add_to_group("criterion", net.add("ce", "CrossEntropyWithSoftmax", inputs=(y, z)))
    net.add_to_group("output", z)
    net.validate()
    return net


def _data(n: int = 7):
    r = np.random.default_rng(1)
    x = r.normal(size=(n, 6)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[r.integers(0, 3, n)]
    return x, y


def _reference(net: Network, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """z and the summed cross entropy in float64 numpy."""
    v = {n: np.asarray(net.node(n).value, np.float64) for n in
         ("s", "L1.W", "L1.b", "L2.W", "L2.b")}
    h = 1 / (1 + np.exp(-((v["s"] * x[:, None, :]) @ v["L1.W"] + v["L1.b"])))
    z = h @ v["L2.W"] + v["L2.b"]
    zs = z.reshape(len(x), -1)
    logp = zs - zs.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    return z, float(-(y * logp).sum())


def test_one_row_layers_are_rows_in_the_training_code():
    net = _column_net()
    x, y = _data()
    trainer = Trainer(net, TrainConfig(learning_rate=0.0), criteria=["ce"], metrics=[])
    loss, _ = trainer.step(Minibatch({"features": x[:, None], "labels": y[:, None]},
                                     np.ones(len(x), np.int64)))
    text = next(iter(trainer._compiled.values())).source.text
    assert ".reshape(-1, 1, 5)" not in text and ".reshape(-1, 1, 3)" not in text
    assert ".reshape(5)" not in text and ".reshape(3)" not in text  # (1, n) biases as they are
    z, want = _reference(net, x, y)
    assert abs(loss - want) <= 1e-5 * abs(want)
    got = evaluate(net, {"features": x}, ["z"])["z"]  # an output keeps its (1, 3) sample
    assert got.shape == (len(x), 1, 3)
    np.testing.assert_allclose(got, z, rtol=1e-5, atol=1e-6)


def test_a_one_row_value_is_reshaped_for_users_that_do_not_take_rows():
    x, y = _data()
    net = _column_net("plus")
    z, _ = _reference(net, x, y)
    out = evaluate(net, {"features": x}, ["z", "hh", "h"])
    np.testing.assert_allclose(out["z"], z, rtol=1e-5, atol=1e-6)
    assert out["hh"].shape == out["h"].shape == (len(x), 1, 5)
    np.testing.assert_allclose(out["hh"], 2 * out["h"], rtol=1e-6)
    net = _column_net("delay")  # a PastValue of a dense layer, over sequences of 7 steps
    seq = evaluate(net, {"features": x[None]}, ["z"], lengths=np.array([len(x)]))["z"]
    h = evaluate(_column_net(), {"features": x}, ["h"])["h"].reshape(len(x), 5)
    prev = np.vstack([np.full((1, 5), 0.1, np.float32), h[:-1]])
    v = {n: net.node(n).value for n in ("L2.W", "L2.b")}
    np.testing.assert_allclose(seq.reshape(len(x), 3), prev @ v["L2.W"] + v["L2.b"],
                               rtol=1e-5, atol=1e-6)


def test_to_torch_is_row_major_unless_asked_and_the_trainer_column_major_unless_told(
        monkeypatch):
    net = _column_net()
    module = to_torch(net)
    assert all(t.is_contiguous() for t in module.parameters())
    trained = Trainer(net).module
    assert getattr(trained, trained.node_attributes["L1.W"]).stride() == (1, 6)
    monkeypatch.setattr(Trainer, "column_major", False)
    assert all(t.is_contiguous() for t in Trainer(net).module.parameters())


def test_trainable_dense_weights_are_column_major_with_the_same_values(monkeypatch):
    net = _column_net()
    module = to_torch(net, column_major=True)
    for name in ("L1.W", "L2.W"):
        t = getattr(module, module.node_attributes[name])
        assert t.stride() == (1, t.shape[0])  # nn.Linear's (out, in) memory, transposed
        np.testing.assert_array_equal(t.detach().numpy(), net.node(name).value)
    assert getattr(module, module.node_attributes["s"]).is_contiguous()  # frozen: as stored
    x, y = _data()
    trainer = Trainer(net, TrainConfig(learning_rate=0.1), criteria=["ce"], metrics=[])
    w = trainer.tensors["L1.W"]
    assert w.stride() == (1, 6)
    trainer.step(Minibatch({"features": x[:, None], "labels": y[:, None]},
                           np.ones(len(x), np.int64)))
    assert w.grad is not None and w.grad.stride() == w.stride()  # no copy into the layout
    trainer.write_back()
    value = net.node("L1.W").value
    assert value.flags.c_contiguous  # the network's arrays stay row-major
    np.testing.assert_array_equal(value, w.detach().numpy())


def test_a_weight_of_a_sparse_input_stays_row_major():
    net = Network("sparse")
    x = net.add("x", "SparseInputValue", shape=(8,))
    dense = net.add("d", "InputValue", shape=(8,))
    w = net.add_parameter("W", np.ones((8, 4), np.float32))
    v = net.add_parameter("V", np.ones((8, 4), np.float32))
    nodes = [net.add("a", "Times", inputs=(w, x)), net.add("b", "Times", inputs=(v, dense))]
    net.validate()
    assert matmul_weights(nodes, OPS.op_set(Category.SPARSE)) == [v]
    module = to_torch(net, ["a", "b"], column_major=True)
    assert module.p_W.is_contiguous() and module.p_V.stride() == (1, 8)
    assert torch.equal(module.p_V, torch.ones(8, 4))
