"""Single ONNX ops (and small compositions) imported and evaluated against onnxruntime:
conv and pooling geometry, Gemm scaling, shape folding, the composed activations."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper
from tests.formats.onnx.models import graph_model

from netsurgeon.formats.onnx.importer import read_model
from netsurgeon.runtime import evaluate

R = np.random.RandomState(0)


def _w(*shape):
    return R.randn(*shape).astype(np.float32)


def _node(op, inputs, outputs=("y",), **attrs):
    return helper.make_node(op, list(inputs), list(outputs), name=f"{op}_node", **attrs)


def _run(model, x: np.ndarray):
    net = read_model(model, "m")
    got = evaluate(net, {"x": x}, ["y"])["y"]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    want = ort.InferenceSession(model.SerializeToString(), options).run(None, {"x": x})[0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * max(np.abs(want).max(), 1))
    return net


IMAGE = ("x", ("N", 4, 9, 11))
CASES = {
    "conv_same_upper_stride2_bias": (
        [_node("Conv", ["x", "W", "B"], auto_pad="SAME_UPPER", strides=[2, 2])],
        [("W", _w(6, 4, 3, 2)), ("B", _w(6))]),
    "conv_asymmetric_pads_dilation": (
        [_node("Conv", ["x", "W"], pads=[0, 1, 2, 1], dilations=[2, 1])], [("W", _w(3, 4, 3, 3))]),
    "grouped_conv": ([_node("Conv", ["x", "W", "B"], group=2, pads=[1, 1, 1, 1])],
                     [("W", _w(6, 2, 3, 3)), ("B", _w(6))]),
    "depthwise_conv_stride": ([_node("Conv", ["x", "W"], group=4, strides=[2, 1],
                                     pads=[2, 0, 1, 2])], [("W", _w(4, 1, 5, 3))]),
    "maxpool_ceil": ([_node("MaxPool", ["x"], kernel_shape=[3, 3], strides=[2, 2],
                            ceil_mode=1)], []),
    "maxpool_pads": ([_node("MaxPool", ["x"], kernel_shape=[3, 2], pads=[1, 0, 1, 1])], []),
    "avgpool_exclude_pad": ([_node("AveragePool", ["x"], kernel_shape=[3, 3], strides=[2, 2],
                                   pads=[1, 1, 1, 1])], []),
    "avgpool_include_pad": ([_node("AveragePool", ["x"], kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                                   count_include_pad=1)], []),
    "avgpool_ceil_same_lower": ([_node("AveragePool", ["x"], kernel_shape=[2, 2], strides=[2, 2],
                                       auto_pad="SAME_LOWER")], []),
    "global_max_pool": ([_node("GlobalMaxPool", ["x"])], []),
    "batchnorm": ([_node("BatchNormalization", ["x", "s", "b", "m", "v"], epsilon=1e-3)],
                  [("s", _w(4)), ("b", _w(4)), ("m", _w(4)), ("v", np.abs(_w(4)) + 0.5)]),
    "hard_sigmoid": ([_node("HardSigmoid", ["x"], alpha=0.3, beta=0.4)], []),
    "leaky_relu": ([_node("LeakyRelu", ["x"], alpha=0.1)], []),
    "clip_inputs": ([_node("Clip", ["x", "lo", "hi"])],
                    [("lo", np.float32(-0.5)), ("hi", np.float32(0.7))]),
    "div_by_constant_and_sub": ([_node("Div", ["x", "c"], ["d"]), _node("Sub", ["c", "d"])],
                                [("c", np.abs(_w(1, 4, 1, 1)) + 1)]),
    "mul_two_data": ([_node("Sigmoid", ["x"], ["s"]), _node("Mul", ["s", "x"])], []),
    "transpose_sample": ([_node("Transpose", ["x"], perm=[0, 2, 3, 1])], []),
    "concat_channels": ([_node("Relu", ["x"], ["r"]), _node("Concat", ["x", "r"], axis=1)], []),
    "reduce_mean_keep": ([_node("ReduceMean", ["x"], axes=[2, 3], keepdims=1)], []),
    "reduce_sum_axes_input": ([_node("ReduceSum", ["x", "ax"], keepdims=0)],
                              [("ax", np.asarray([1], np.int64))]),
    "argmax_keepdims_cast": ([_node("ArgMax", ["x"], ["a"], axis=1),
                              _node("Cast", ["a"], to=1)], []),
    "argmin_argmax_equal_not": (  # what netsurgeon's exporter writes for ClassificationError
        [_node("ArgMin", ["x"], ["i"], axis=-1, keepdims=0),
         _node("ArgMax", ["x"], ["j"], axis=3, keepdims=0),
         _node("Equal", ["i", "j"], ["e"]), _node("Not", ["e"], ["n"]),
         _node("Cast", ["n"], to=1)], []),
    "squeeze_unsqueeze": ([_node("Unsqueeze", ["x", "a"], ["u"]), _node("Squeeze", ["u", "a"])],
                          [("a", np.asarray([2], np.int64))]),
    "shape_gather_concat_reshape": (
        [_node("Shape", ["x"], ["s"]), _node("Gather", ["s", "i0"], ["n"], axis=0),
         _node("Unsqueeze", ["n", "a0"], ["n1"]), _node("Concat", ["n1", "m1"], ["t"], axis=0),
         _node("Reshape", ["x", "t"])],
        [("i0", np.asarray(0, np.int64)), ("a0", np.asarray([0], np.int64)),
         ("m1", np.asarray([-1], np.int64))]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_equals_onnxruntime(case):
    nodes, inits = CASES[case]
    model = graph_model(nodes, [IMAGE], [("y", None)], inits)
    _run(model, R.randn(2, 4, 9, 11).astype(np.float32))


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_alpha_beta(trans_b):
    w = _w(5, 7) if trans_b else _w(7, 5)
    nodes = [_node("Gemm", ["x", "W", "C"], alpha=0.5, beta=2.0, transB=trans_b),
             _node("Softmax", ["g"], axis=1)]
    nodes[0].output[0] = "g"
    model = graph_model(nodes, [("x", ("N", 7))], [("y", ("N", 5))], [("W", w), ("C", _w(5))],
                        opset=11)
    net = _run(model, R.randn(3, 7).astype(np.float32))
    assert {"g.times", "g.scaled", "g.bias", "g"} <= set(net.names())


def test_flatten_then_matmul_softmax13():
    nodes = [_node("Flatten", ["x"], ["f"], axis=1), _node("MatMul", ["f", "W"], ["m"]),
             _node("LogSoftmax", ["m"], axis=-1)]
    model = graph_model(nodes, [IMAGE], [("y", ("N", 3))], [("W", _w(4 * 9 * 11, 3))])
    _run(model, R.randn(2, 4, 9, 11).astype(np.float32))


def test_initializer_reshaped_in_graph_stays_learnable():
    nodes = [_node("Reshape", ["W", "s"], ["W2"]), _node("MatMul", ["x", "W2"])]
    model = graph_model(nodes, [("x", ("N", 6))], [("y", ("N", 2))],
                        [("W", _w(3, 4)), ("s", np.asarray([6, 2], np.int64))])
    net = _run(model, R.randn(2, 6).astype(np.float32))
    assert net.node("W2").learning_rate_multiplier == 1.0 and net.get("W") is None


def test_argmax_argmin_take_the_first_index_on_ties():
    nodes = [_node("ArgMax", ["x"], ["a"], axis=1, keepdims=0), _node("Cast", ["a"], ["ca"], to=1),
             _node("ArgMin", ["x"], ["b"], axis=1, keepdims=0), _node("Cast", ["b"], ["cb"], to=1),
             _node("Sub", ["ca", "cb"])]
    nodes[3].name = "Cast_node2"
    model = graph_model(nodes, [("x", ("N", 6))], [("y", None)])
    x = np.float32([[0, 2, 2, 1, 0, 2], [1, 1, 1, 1, 1, 1], [3, 0, 3, 0, 0, 3]])
    net = _run(model, x)
    assert evaluate(net, {"x": x}, ["ca"])["ca"].tolist() == [1, 0, 0]
    assert net.node("a").op == "ReduceElements" and net.node("a").attrs["operation"] == "Argmax"
