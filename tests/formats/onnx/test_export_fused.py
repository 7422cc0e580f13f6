"""The short forms the exporter writes for common layers (what onnxruntime runs fastest), and
that they compute what the runtime computes: a dense layer as one Gemm on (frames, size)
rows, spatial BatchNormalization as ONNX's own, a stack with constant channels as one Pad.
(The real models' exports are checked against CNTK's reference outputs in
test_export_models.py.)"""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnxruntime as ort

import netsurgeon.formats.onnx as nx
from netsurgeon import formats
from netsurgeon.graph import Network
from netsurgeon.runtime import evaluate


def _ops(model) -> Counter:
    return Counter(n.op_type for n in model.graph.node)


def _run(model, feeds):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def test_one_hidden_is_mul_gemm_sigmoid_gemm(cntk_dir):
    net = formats.load(cntk_dir / "models" / "01_OneHidden.dnn")
    model = nx.to_model(net, ["z.z"])
    ops = _ops(model)
    # the (1, 1) scale and both dense layers stay on (batch, size) rows; only the bias rows
    # and the (1, 10) output are reshaped
    assert ops == Counter({"Gemm": 2, "Reshape": 3, "Mul": 1, "Sigmoid": 1})
    assert not any(t.name.startswith("ints/m1_1_200") for t in model.graph.initializer)
    x = np.random.default_rng(0).random((3, 784), dtype=np.float32) * 255
    (got,) = _run(model, {"features": x})
    want = evaluate(net, {"features": x}, ["z.z"], backend="torch")["z.z"]
    np.testing.assert_allclose(got, np.asarray(want).reshape(got.shape), rtol=1e-5, atol=1e-4)


def test_resnet_batch_norm_and_shortcut(cntk_dir):
    net = formats.load(cntk_dir / "models" / "cifar10.ResNet.cmf")
    ops = _ops(nx.to_model(net, ["z"]))
    bn = sum(1 for n in net.nodes if n.op == "BatchNormalization")
    assert ops["BatchNormalization"] == bn == 21
    assert ops["Pad"] == 2  # the zero channels of both projection shortcuts
    assert "Expand" not in ops and "Concat" not in ops and "Sqrt" not in ops


def _dense(shared_times: bool) -> Network:
    net = Network("dense")
    x = net.add("x", "InputValue", shape=(4,))
    s = net.add_parameter("s", np.full((1, 1), 2.0, np.float32))
    w = net.add_parameter("W", np.arange(12, dtype=np.float32).reshape(4, 3) / 10)
    b = net.add_parameter("b", np.array([[1.0, -1.0, 0.5]], np.float32))
    xs = net.add("xs", "ElementTimes", inputs=(s, x))  # (1, 4): rows of rank 2
    t = net.add("t", "Times", inputs=(w, xs))
    z = net.add("z", "Plus", inputs=(t, b))
    net.add("y", "Tanh", inputs=(z,))
    if shared_times:
        net.add("u", "Sigmoid", inputs=(t,))
    net.validate()
    return net


def test_a_dense_layer_is_one_gemm_unless_its_product_is_read_elsewhere():
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    net = _dense(False)
    model = nx.to_model(net, ["y"])
    assert _ops(model)["Gemm"] == 1 and "MatMul" not in _ops(model)
    (got,) = _run(model, {"x": x})
    want = np.tanh((2 * x) @ (np.arange(12).reshape(4, 3) / 10) + [1.0, -1.0, 0.5])
    np.testing.assert_allclose(got.reshape(5, 3), want, rtol=1e-5, atol=1e-6)
    shared = _dense(True)  # the product is also an output's input: one MatMul, no Gemm
    model = nx.to_model(shared, ["y", "u"])
    assert _ops(model)["MatMul"] == 1 and "Gemm" not in _ops(model)
    got_y, got_u = _run(model, {"x": x})
    np.testing.assert_allclose(got_y.reshape(5, 3), want, rtol=1e-5, atol=1e-6)
    ref = evaluate(shared, {"x": x}, ["u"], backend="torch")["u"]
    np.testing.assert_allclose(got_u, np.asarray(ref).reshape(got_u.shape), rtol=1e-5)


def test_stacking_a_non_uniform_constant_stays_a_concat():
    net = Network("stack")
    x = net.add("x", "InputValue", shape=(2, 3))
    c = net.add_parameter("c", np.array([[1.0, 2.0, 3.0]], np.float32))
    net.add("y", "RowStack", inputs=(x, c), attrs={"axis": -2})
    z = net.add_parameter("zero", np.zeros((1, 3), np.float32))
    net.add("p", "RowStack", inputs=(z, x, z), attrs={"axis": -2})
    net.validate()
    model = nx.to_model(net, ["y", "p"])
    assert _ops(model)["Expand"] == 1 and _ops(model)["Pad"] == 1  # c is broadcast, zero is not
    data = np.random.default_rng(2).standard_normal((2, 2, 3)).astype(np.float32)
    y, p = _run(model, {"x": data})
    np.testing.assert_array_equal(y, np.concatenate([data, np.broadcast_to(
        [[[1.0, 2.0, 3.0]]], (2, 1, 3))], axis=1))
    zeros = np.zeros((2, 1, 3), np.float32)
    np.testing.assert_array_equal(p, np.concatenate([zeros, data, zeros], axis=1))
