"""Single ONNX ops (and small compositions) imported and evaluated against onnxruntime:
conv and pooling geometry, Gemm scaling, shape folding, the composed activations."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import helper
from tests.formats.onnx.models import graph_model

from netsurgeon.errors import FormatError
from netsurgeon.formats.onnx.importer import read_model
from netsurgeon.runtime import evaluate

R = np.random.RandomState(0)


def _w(*shape):
    return R.randn(*shape).astype(np.float32)


def _node(op, inputs, outputs=("y",), **attrs):
    return helper.make_node(op, list(inputs), list(outputs), name=f"{op}_{outputs[0]}", **attrs)


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
    "conv_transpose_stride_pads": (
        [_node("ConvTranspose", ["x", "W", "B"], strides=[2, 1], pads=[1, 0, 0, 1])],
        [("W", _w(4, 3, 3, 2)), ("B", _w(3))]),
    "conv_transpose_output_padding_dilation": (
        [_node("ConvTranspose", ["x", "W"], strides=[2, 2], pads=[1, 1, 1, 1],
               output_padding=[1, 1], dilations=[1, 2])], [("W", _w(4, 2, 3, 3))]),
    "conv_transpose_output_shape": (
        [_node("ConvTranspose", ["x", "W"], strides=[3, 2], output_shape=[20, 21])],
        [("W", _w(4, 3, 3, 2))]),
    "conv_transpose_same_lower": (
        [_node("ConvTranspose", ["x", "W"], strides=[2, 2], auto_pad="SAME_LOWER")],
        [("W", _w(4, 3, 3, 2))]),
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
    "elu_selu_celu": ([_node("Elu", ["x"], ["e"], alpha=0.7), _node("Selu", ["e"], ["s"]),
                       _node("Celu", ["s"], alpha=1.3)], []),
    "softplus_softsign": ([_node("Softplus", ["x"], ["p"]), _node("Softsign", ["x"], ["q"]),
                           _node("Sum", ["p", "q"])], []),
    "sign_ceil": ([_node("Sign", ["x"], ["s"]), _node("Ceil", ["x"], ["c"]),
                   _node("Add", ["s", "c"])], []),
    "prelu_thresholded": ([_node("PRelu", ["x", "slope"], ["p"]),
                           _node("ThresholdedRelu", ["p"], alpha=0.3)],
                          [("slope", _w(4, 1, 1))]),
    "max_min_mean_of_values": ([_node("Relu", ["x"], ["r"]), _node("Neg", ["x"], ["n"]),
                                _node("Max", ["x", "r", "n"], ["a"]),
                                _node("Min", ["a", "c"], ["b"]), _node("Mean", ["a", "b", "x"])],
                               [("c", _w(11))]),
    "where_greater": ([_node("Greater", ["x", "c"], ["g"]), _node("Neg", ["x"], ["n"]),
                       _node("Where", ["g", "x", "n"])], [("c", _w(9, 11))]),
    "reduce_l1_l2_sumsquare_logsum": (
        [_node("ReduceL1", ["x"], ["a"], axes=[1], keepdims=1),
         _node("ReduceL2", ["x"], ["b"], axes=[1], keepdims=1),
         _node("ReduceSumSquare", ["x"], ["c"], axes=[1], keepdims=1),
         _node("Exp", ["x"], ["e"]), _node("ReduceLogSum", ["e"], ["d"], axes=[1], keepdims=1),
         _node("Sum", ["a", "b", "c", "d"])], []),
    "hardmax_whole_sample": ([_node("Flatten", ["x"], ["f"]), _node("Hardmax", ["f"], axis=1)],
                             []),
    "split_concat_back": ([_node("Split", ["x", "sizes"], ["a", "b", "c"], axis=3),
                           _node("Concat", ["c", "a", "b"], axis=3)],
                          [("sizes", np.asarray([2, 4, 5], np.int64))]),
    "split_equal_parts": ([_node("Split", ["x"], ["a", "b"], axis=-3),
                           _node("Sub", ["a", "b"])], []),
    "pad_constant_and_crop": ([_node("Pad", ["x", "pads", "v"], mode="constant")],
                              [("pads", np.asarray([0, 1, 2, -1, 0, 0, -3, 2], np.int64)),
                               ("v", np.float32(0.5))]),
    "pad_reflect": ([_node("Pad", ["x", "pads"], mode="reflect")],
                    [("pads", np.asarray([0, 0, 2, 3, 0, 0, 3, 1], np.int64))]),
    "pad_edge_wrap": ([_node("Pad", ["x", "p1"], ["e"], mode="edge"),
                       _node("Pad", ["e", "p2"], mode="wrap")],
                      [("p1", np.asarray([0, 2, 0, 1, 0, 1, 3, 0], np.int64)),
                       ("p2", np.asarray([0, 0, 1, 2, 0, 0, 2, 3], np.int64))]),
    "tile": ([_node("Tile", ["x", "r"])], [("r", np.asarray([1, 2, 1, 3], np.int64))]),
    "expand": ([_node("ReduceMean", ["x"], ["m"], axes=[2], keepdims=1),
                _node("Expand", ["m", "s"])], [("s", np.asarray([1, 4, 5, 11], np.int64))]),
    "gather_indices": ([_node("Gather", ["x", "i"], ["g"], axis=3),
                        _node("Gather", ["g", "j"], axis=1)],
                       [("i", np.asarray([[3, 4, 5], [0, -1, 2]], np.int64)),
                        ("j", np.asarray(2, np.int64))]),
    "depth_to_space_and_back": ([_node("Resize", ["x", "", "sc"], ["r"]),
                                 _node("SpaceToDepth", ["r"], ["d"], blocksize=2),
                                 _node("DepthToSpace", ["d"], ["e"], blocksize=2, mode="CRD"),
                                 _node("DepthToSpace", ["d"], ["f"], blocksize=2),
                                 _node("Add", ["e", "f"])],
                                [("sc", np.asarray([1, 1, 2, 2], np.float32))]),
    "resize_sizes_asymmetric": ([_node("Resize", ["x", "", "", "sz"], mode="nearest",
                                       coordinate_transformation_mode="asymmetric",
                                       nearest_mode="floor")],
                                [("sz", np.asarray([2, 4, 27, 22], np.int64))]),
    "layer_norm": ([_node("LayerNormalization", ["x", "g", "bb"], axis=-2, epsilon=1e-3)],
                   [("g", _w(9, 11)), ("bb", _w(9, 11))]),
    "layer_norm_no_bias": ([_node("LayerNormalization", ["x", "g"])], [("g", _w(11))]),
    "instance_norm": ([_node("InstanceNormalization", ["x", "g", "bb"], epsilon=1e-4)],
                      [("g", _w(4)), ("bb", _w(4))]),
    "mean_variance_norm": ([_node("MeanVarianceNormalization", ["x"], axes=[2, 3])], []),
    "softmax_one_axis_opset13": ([_node("Softmax", ["x"], axis=2)], []),
    "logsoftmax_hardmax_one_axis": ([_node("LogSoftmax", ["x"], ["l"], axis=-1),
                                     _node("Hardmax", ["x"], ["h"], axis=1),
                                     _node("Add", ["l", "h"])], []),
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


def test_mish_and_tanh_gelu_opset20():
    nodes = [_node("Mish", ["x"], ["m"]), _node("Gelu", ["m"], approximate="tanh")]
    _run(graph_model(nodes, [IMAGE], [("y", None)], [], opset=20),
         (3 * R.randn(2, 4, 9, 11)).astype(np.float32))


def test_softmax_opset11_normalises_from_axis_to_the_end():
    nodes = [_node("Softmax", ["x"], ["s"], axis=2), _node("LogSoftmax", ["x"], ["l"], axis=3),
             _node("Add", ["s", "l"])]
    _run(graph_model(nodes, [IMAGE], [("y", None)], [], opset=11),
         R.randn(2, 4, 9, 11).astype(np.float32))


def test_layer_norm_mean_and_inv_std_outputs_and_rms_norm():
    nodes = [_node("LayerNormalization", ["x", "g"], ["y", "mean", "inv"], axis=2),
             _node("RMSNormalization", ["x", "g"], ["r"], axis=2)]
    model = graph_model(nodes, [IMAGE], [("y", None), ("mean", None), ("inv", None),
                                         ("r", None)], [("g", _w(9, 11))], opset=23)
    x = R.randn(2, 4, 9, 11).astype(np.float32)
    net = read_model(model, "m")
    got = evaluate(net, {"x": x}, ["y", "mean", "inv", "r"])
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    for name, w in zip(["y", "mean", "inv", "r"], want):
        np.testing.assert_allclose(got[name], w, rtol=1e-4, atol=1e-5)


def test_embedding_lookup_is_a_learnable_one_hot_product():
    """Gather of an initializer by int64 indices (torch's nn.Embedding): equal to
    onnxruntime, negative indices included, the table a learnable parameter."""
    table = _w(7, 3, 2)
    nodes = [_node("Gather", ["E", "ids"], axis=0)]
    model = graph_model(nodes, [("ids", ("N", 4), 7)], [("y", None)], [("E", table)])
    ids = np.asarray([[0, 6, 2, -1], [3, 3, -7, 5]], np.int64)
    net = read_model(model, "m")
    got = evaluate(net, {"ids": ids.astype(np.float32)}, ["y"])["y"]
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"ids": ids})[0]
    np.testing.assert_array_equal(got, want)
    assert net.node("E").learning_rate_multiplier == 1.0


def test_an_op_of_constants_only_that_is_not_folded_is_one_line():
    nodes = [_node("LessOrEqual", ["a", "c"], ["m"]), _node("Where", ["m", "x", "c"])]
    model = graph_model(nodes, [("x", ("N", 3))], [("y", None)],
                        [("a", _w(3)), ("c", _w(3))])
    with pytest.raises(FormatError,
                       match=r"node 'LessOrEqual_m' \(LessOrEqual\): all its inputs are constants"
                       ) as err:
        read_model(model, "m")
    assert "\n" not in str(err.value)


def test_elu_gradient_stays_finite_for_large_inputs():
    """The untaken Exp branch is clipped: no inf·0 in the gradient of a large input."""
    import torch

    from netsurgeon.runtime import to_torch

    net = read_model(graph_model([_node("Elu", ["x"])], [("x", ("N", 3))], [("y", None)], []),
                     "m")
    x = torch.tensor([[200.0, -3.0, 0.5]], requires_grad=True)
    to_torch(net, ["y"])(x=x)["y"].sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad[0, 0] == 1


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
