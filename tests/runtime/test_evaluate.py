"""Evaluation of networks built with the graph API against numpy references."""

from __future__ import annotations

import numpy as np
import pytest
from tests.runtime import nets

import netsurgeon
from netsurgeon.errors import EvaluationError
from netsurgeon.runtime import compile_network, evaluate, generate


def _softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_import_netsurgeon_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, netsurgeon, netsurgeon.graph, netsurgeon.ops; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_mlp_outputs_and_criteria_sums():
    net = nets.mlp()
    r = nets.rng(1)
    x = r.normal(size=(7, 6)).astype(np.float32)
    labels = np.eye(3, dtype=np.float32)[r.integers(0, 3, 7)]
    out = netsurgeon.evaluate(net, {"features": x, "labels": labels})
    v = {n.name: n.value.astype(np.float64) for n in net.nodes if n.value is not None}
    h = 1 / (1 + np.exp(-(x @ v["L1.W"] + v["L1.b"])))
    z = h @ v["L2.W"] + v["L2.b"]
    np.testing.assert_allclose(out["z"], z, rtol=1e-5, atol=1e-5)
    ce = -(labels * np.log(_softmax(z))).sum()
    assert out["ce"].shape == (1,)
    np.testing.assert_allclose(out["ce"][0], ce, rtol=1e-5)
    assert out["errs"][0] == (z.argmax(1) != labels.argmax(1)).sum()


def test_intermediate_node_and_names_that_are_not_identifiers():
    net = nets.mlp()
    net.rename("L1.s", "z.PlusArgs[0]")
    x = np.ones((2, 6), np.float32)
    out = evaluate(net, {"features": x}, ["z.PlusArgs[0]"])
    assert out["z.PlusArgs[0]"].shape == (2, 5)
    src = generate(net, ["z.PlusArgs[0]"])
    assert "def forward(" in src.text and "for " not in src.text
    assert "z.PlusArgs[0]" in src.line_to_node.values()


def test_top_n_classification_error():
    net = nets.mlp()
    k = net.add_parameter("five", np.array([2.0], np.float32), learning_rate_multiplier=0)
    net.add("top2", "ClassificationError", inputs=("labels", "z", k))
    net.validate()
    r = nets.rng(2)
    x = r.normal(size=(50, 6)).astype(np.float32)
    labels = np.eye(3, dtype=np.float32)[r.integers(0, 3, 50)]
    out = evaluate(net, {"features": x, "labels": labels}, ["z", "top2"])
    z = out["z"]
    top = np.argsort(-z, 1)[:, :2]
    want = sum(labels[i].argmax() not in top[i] for i in range(50))
    assert out["top2"][0] == want


def test_compiled_module_refuses_an_edited_network():
    net = nets.mlp()
    c = compile_network(net, ["z"])
    net.rename("L2.b", "bias2")
    from netsurgeon.runtime.evaluate import batch_from_arrays

    batch, _ = batch_from_arrays(net, {"features": np.zeros((1, 6))})
    with pytest.raises(EvaluationError, match="edited after it was compiled"):
        c(batch)


def test_runtime_error_names_the_node():
    net = nets.mlp()
    net.update("L1.b", value=np.zeros((4,), np.float32))  # wrong size: fails at run time
    with pytest.raises(EvaluationError, match="L1.z"):
        evaluate(net, {"features": np.zeros((2, 6), np.float32)}, ["z"])


def test_parameters_share_numpy_memory_at_inference():
    net = nets.mlp()
    src = generate(net, ["z"])
    w = src.params["L1.W"]
    assert np.shares_memory(w.numpy(), net.node("L1.W").value)


@pytest.mark.parametrize("op,backward", [("PastValue", False), ("FutureValue", True)])
@pytest.mark.parametrize("step", [1, 2])
def test_recurrent_loop_matches_numpy_with_padding(op, backward, step):
    net = nets.rnn(op=op, init=0.3, step=step)
    src = generate(net, ["h"])
    assert "for t in range(" in src.text
    r = nets.rng(3)
    lengths = [5, 2, 4]
    xs = r.normal(size=(3, 5, 3)).astype(np.float32)
    for i, n in enumerate(lengths):
        xs[i, n:] = 1e6  # padding must not leak
    out = evaluate(net, {"x": xs}, ["h"], lengths=lengths)["h"]
    assert out.shape == (3, 5, 4)
    for i, n in enumerate(lengths):
        want = nets.rnn_reference(net, xs[i].astype(np.float64), n, backward, 0.3, step)
        np.testing.assert_allclose(out[i, :n], want, rtol=1e-5, atol=1e-5)
        assert np.all(out[i, n:] == 0)


@pytest.mark.parametrize("op", ["PastValue", "FutureValue"])
def test_delay_outside_a_loop_shifts_whole_sequences(op):
    from netsurgeon.graph import Network

    net = Network("shift")
    x = net.add("x", "InputValue", shape=(2,))
    d = net.add("d", op, inputs=(x,), attrs={"time_step": 1, "initial_state": -1.0}, shape=(2,))
    net.add_to_group("output", d)
    net.validate()
    assert "for t" not in generate(net, ["d"]).text
    xs = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2) + 1
    out = evaluate(net, {"x": xs}, lengths=[3, 2])["d"]
    if op == "PastValue":
        np.testing.assert_array_equal(out[0], [[-1, -1], xs[0, 0], xs[0, 1]])
        np.testing.assert_array_equal(out[1, :2], [[-1, -1], xs[1, 0]])
    else:
        np.testing.assert_array_equal(out[0], [xs[0, 1], xs[0, 2], [-1, -1]])
        np.testing.assert_array_equal(out[1, :2], [xs[1, 1], [-1, -1]])
    assert np.all(out[1, 2:] == 0)


def test_criterion_ignores_padding():
    net = nets.mlp()
    r = nets.rng(4)
    x = r.normal(size=(2, 4, 6)).astype(np.float32)
    labels = np.eye(3, dtype=np.float32)[r.integers(0, 3, (2, 4))]
    full = evaluate(net, {"features": x[:1, :4], "labels": labels[:1, :4]}, ["ce"],
                    lengths=[4])["ce"]
    part = evaluate(net, {"features": x[1:, :2], "labels": labels[1:, :2]}, ["ce"],
                    lengths=[2])["ce"]
    x[1, 2:] = 1e4
    both = evaluate(net, {"features": x, "labels": labels}, ["ce"], lengths=[4, 2])["ce"]
    np.testing.assert_allclose(both, full + part, rtol=1e-5)


def test_generated_source_snapshot():
    """The generated code is part of the interface: review diffs of this snapshot. What is
    compiled is the FuseLinear'd copy (one addmm); ``generate`` alone only lowers."""
    net = nets.logistic_regression()
    text = compile_network(net, ["p", "lr"]).text
    assert text == (
        "def forward(x_labels, x_features, mask, lengths, B, T):\n"
        "    v_z = torch.addmm(P_b, x_features, P_W)\n"
        "    v_p = torch.sigmoid(v_z)\n"
        "    del v_z\n"
        "    v_lr = K.masked_sum(K.logistic(x_labels, v_p), mask)\n"
        "    return (v_p, v_lr,)\n"
    )
    assert generate(net, ["p"]).text == (
        "def forward(x_features, mask, lengths, B, T):\n"
        "    v_t = torch.matmul(x_features, P_W)\n"
        "    v_z = v_t + P_b\n"
        "    del v_t\n"
        "    v_p = torch.sigmoid(v_z)\n"
        "    del v_z\n"
        "    return (v_p,)\n"
    )
    assert [n.op for n in net.nodes].count("TimesPlus") == 0  # the user's network is unchanged


def test_long_chain_is_generated_without_recursion():
    from netsurgeon.graph import Network

    net = Network("chain")
    prev = net.add("x", "InputValue", shape=(2,))
    for i in range(3000):
        prev = net.add(f"n{i}", "Tanh" if i % 2 else "Negate", inputs=(prev,))
    net.validate()
    x = np.array([[0.3, -0.2]], np.float32)
    got = evaluate(net, {"x": x}, [prev.name])[prev.name]
    want = x.astype(np.float64)
    for i in range(3000):
        want = np.tanh(want) if i % 2 else -want
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_repeated_evaluate_compiles_once_and_recompiles_after_an_edit(monkeypatch):
    import importlib

    ev_module = importlib.import_module("netsurgeon.runtime.evaluate")

    net = nets.mlp()
    x = nets.rng(3).normal(size=(5, 6)).astype(np.float32)
    compiles = []
    real = ev_module.compile_network
    monkeypatch.setattr(ev_module, "compile_network",
                        lambda *a, **k: compiles.append(1) or real(*a, **k))
    first = evaluate(net, {"features": x}, ["z"])["z"]
    again = evaluate(net, {"features": x}, ["z"])["z"]
    assert len(compiles) == 1
    np.testing.assert_array_equal(first, again)
    W = net.node("L2.W")
    net.update(W, value=np.zeros_like(W.value))  # an edit: the cached code must not run
    after = evaluate(net, {"features": x}, ["z"])["z"]
    assert len(compiles) == 2
    np.testing.assert_allclose(after, np.broadcast_to(net.node("L2.b").value, after.shape),
                               rtol=1e-6)
    evaluate(net, {"features": x}, ["L1.s"])  # other outputs: their own compiled code
    assert len(compiles) == 3
