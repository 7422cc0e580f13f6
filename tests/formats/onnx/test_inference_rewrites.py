"""The inference-only rewrites of an exported model (formats/onnx/inference.py)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper
from tests.conftest import CNTK

import netsurgeon
from netsurgeon.formats.onnx.export import to_model
from netsurgeon.formats.onnx.inference import fold_conv_biases, fold_input_scales, for_inference


def _run(model, feeds):
    return onnxruntime.InferenceSession(model.SerializeToString(),
                                        providers=["CPUExecutionProvider"]).run(None, feeds)


def test_one_hidden_reads_its_features_unscaled():
    """CNTK's featScaled = s .* features moves into h1's weight: the Mul is gone and the
    outputs agree with the file's model to rounding."""
    net = netsurgeon.load(CNTK / "models" / "01_OneHidden.dnn")
    plain = to_model(net, ["z.z"])
    lean = for_inference(to_model(net, ["z.z"]))
    onnx.checker.check_model(lean)
    assert "Mul" in [n.op_type for n in plain.graph.node]
    assert "Mul" not in [n.op_type for n in lean.graph.node]
    assert "featScaled.ElementTimesArgs[0]" not in {t.name for t in lean.graph.initializer}
    x = np.random.default_rng(0).random((7, 784), dtype=np.float32) * 255
    want, = _run(plain, {"features": x})
    got, = _run(lean, {"features": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * np.abs(want).max())


def _dense(scale: np.ndarray, weight: np.ndarray, trans_b: int, extra_reader: bool = False):
    nodes = [helper.make_node("Mul", ["x", "c"], ["xs"]),
             helper.make_node("Gemm", ["xs", "W"], ["y"], transB=trans_b)]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if extra_reader:
        nodes.append(helper.make_node("Relu", ["xs"], ["r"]))
        outputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, None))
    k = weight.shape[1] if trans_b else weight.shape[0]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [None, k])], outputs,
        [numpy_helper.from_array(scale, "c"), numpy_helper.from_array(weight, "W")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("scale_shape", [(), (1, 1), (4,), (1, 4)])
def test_scalar_and_row_scales_fold_into_the_weight(trans_b, scale_shape):
    rng = np.random.default_rng(1)
    scale = (rng.random(scale_shape, dtype=np.float32) + 0.5).astype(np.float32)
    weight = rng.standard_normal((3, 4) if trans_b else (4, 3)).astype(np.float32)
    model = _dense(scale, weight, trans_b)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    want, = _run(model, {"x": x})
    assert fold_input_scales(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Gemm"]
    assert model.graph.node[0].input[0] == "x"
    got, = _run(model, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_a_scaled_input_read_twice_is_left_alone():
    model = _dense(np.float32(2.0).reshape(()), np.ones((4, 3), np.float32), 0,
                   extra_reader=True)
    assert fold_input_scales(model) == 0
    assert [n.op_type for n in model.graph.node] == ["Mul", "Gemm", "Relu"]


def test_a_scale_that_is_not_a_row_is_left_alone():
    """A (5, 4) constant broadcasts the input to five rows: not a scale of the contracted
    axis, so it stays a Mul."""
    scale = np.arange(1, 21, dtype=np.float32).reshape(5, 4)
    model = _dense(scale, np.ones((4, 3), np.float32), 0)
    x = np.ones((1, 4), np.float32)
    want, = _run(model, {"x": x})
    assert fold_input_scales(model) == 0
    assert [n.op_type for n in model.graph.node] == ["Mul", "Gemm"]
    np.testing.assert_array_equal(_run(model, {"x": x})[0], want)


def test_values_read_inside_a_subgraph_are_kept():
    """A Scan or If body reads outer values by name: a scaled input it reads is not folded
    away, and an initializer only it reads stays (a sequence model's Scan needs both)."""
    branch_out = helper.make_tensor_value_info("b", TensorProto.FLOAT, None)
    then = helper.make_graph([helper.make_node("Add", ["xs", "only_inside"], ["b"])], "then",
                             [], [branch_out])
    other = helper.make_graph([helper.make_node("Identity", ["xs"], ["b"])], "else", [],
                              [branch_out])
    nodes = [helper.make_node("Mul", ["x", "c"], ["xs"]),
             helper.make_node("Gemm", ["xs", "W"], ["y"]),
             helper.make_node("If", ["flag"], ["z"], then_branch=then, else_branch=other)]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4]),
                     helper.make_tensor_value_info("flag", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.float32(2.0).reshape(()), "c"),
         numpy_helper.from_array(np.ones((4, 3), np.float32), "W"),
         numpy_helper.from_array(np.ones(4, np.float32), "only_inside")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    feeds = {"x": np.arange(8, dtype=np.float32).reshape(2, 4), "flag": np.array(True)}
    want = _run(model, feeds)
    assert fold_input_scales(model) == 0
    assert {t.name for t in model.graph.initializer} == {"c", "W", "only_inside"}
    for got, ref in zip(_run(model, feeds), want):
        np.testing.assert_array_equal(got, ref)


def test_cifar10_pretrained_convolutions_take_their_biases():
    """CNTK's Plus(Convolution(W, x), b) with b of shape (C, 1, 1) becomes Conv(x, W, b):
    no Add is left between a Conv and its Relu, and the outputs agree to rounding."""
    net = netsurgeon.load(CNTK / "models" / "cifar10.pretrained.cmf")
    plain = to_model(net, ["z"])
    lean = for_inference(to_model(net, ["z"]))
    onnx.checker.check_model(lean)
    convs = [n for n in lean.graph.node if n.op_type == "Conv"]
    assert len(convs) == 3 and all(len(n.input) == 3 for n in convs)
    assert "Add" in [n.op_type for n in plain.graph.node]
    assert "Add" not in [n.op_type for n in lean.graph.node]
    x = np.random.default_rng(0).random((3, 3, 32, 32), dtype=np.float32)
    want, = _run(plain, {"features": x})
    got, = _run(lean, {"features": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def _conv_plus(bias: np.ndarray, extra_reader: bool = False):
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Add", ["c", "b"], ["y"])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if extra_reader:
        nodes.append(helper.make_node("Relu", ["c"], ["r"]))
        outputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, None))
    weight = np.random.default_rng(2).standard_normal((4, 2, 3, 3)).astype(np.float32)
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [None, 2, None, None])], outputs,
        [numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "b")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


@pytest.mark.parametrize("shape", [(), (4, 1, 1), (1, 4, 1, 1), (1,)])
def test_per_channel_and_scalar_biases_fold_into_the_conv(shape):
    bias = np.arange(1, 1 + int(np.prod(shape)), dtype=np.float32).reshape(shape)
    model = _conv_plus(bias)
    x = np.random.default_rng(3).standard_normal((2, 2, 5, 5)).astype(np.float32)
    want, = _run(model, {"x": x})
    assert fold_conv_biases(model) == 1
    assert [n.op_type for n in model.graph.node] == ["Conv"]
    assert list(model.graph.node[0].output) == ["y"]
    got, = _run(model, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("bias, extra", [
    (np.ones((4, 5, 4), np.float32), False),  # one value per position, not per channel
    (np.arange(4, dtype=np.float32).reshape(1, 1, 1, 4), False),  # per column
    (np.ones((4, 1, 1), np.float32), True),  # the Conv's output is read elsewhere too
])
def test_other_additions_to_a_conv_are_left_alone(bias, extra):
    model = _conv_plus(bias, extra_reader=extra)
    x = np.ones((1, 2, 5, 4), np.float32)
    want = _run(model, {"x": x})
    assert fold_conv_biases(model) == 0
    assert "Add" in [n.op_type for n in model.graph.node]
    for got, ref in zip(_run(model, {"x": x}), want):
        np.testing.assert_array_equal(got, ref)
