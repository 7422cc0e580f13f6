"""Shape rules, tested through a small Network and validate() (numpy order throughout)."""

from __future__ import annotations

import numpy as np
import pytest
from ops_helpers import net_with, shape_of

from netsurgeon.errors import ShapeError, ValidationError


# ---- element-wise -------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["Sigmoid", "Tanh", "RectifiedLinear", "Abs", "Exp", "Log",
                                "Softmax", "LogSoftmax", "Hardmax", "Dropout", "StopGradient",
                                "Pass", "Negate", "Reciprocal", "Floor", "Sqrt", "Trace"])
def test_unary_keeps_shape(op):
    assert shape_of(net_with({"x": (3, 5)}), op, ["x"]) == (3, 5)


@pytest.mark.parametrize("op", ["Plus", "Minus", "ElementTimes", "LogPlus", "Less", "Equal",
                                "Greater", "GreaterEqual", "NotEqual", "LessEqual"])
def test_binary_broadcasts_on_cntk_first_axis(op):
    # CNTK [10 x 1 x *] + [10] -> [10 x 1]: numpy (1, 10) + (10,) -> (1, 10)
    assert shape_of(net_with({"a": (1, 10)}, {"b": (10,)}), op, ["a", "b"]) == (1, 10)


def test_broadcast_size_one_takes_other():
    assert shape_of(net_with({"a": (4, 1)}, {"b": (1, 7)}), "Plus", ["a", "b"]) == (4, 7)


def test_broadcast_mismatch_names_node_and_shapes():
    net = net_with({"a": (3,)}, {"b": (4,)})
    with pytest.raises(ShapeError) as info:
        shape_of(net, "Plus", ["a", "b"], name="sum")
    text = str(info.value)
    assert "sum" in text and "(3,)" in text and "(4,)" in text


def test_clip_and_if():
    net = net_with({"x": (5,)}, {"lo": (1,), "hi": (1,)})
    assert shape_of(net, "Clip", ["lo", "hi", "x"]) == (5,)
    net = net_with({"c": (5,), "t": (5,)}, {"e": (1,)})
    assert shape_of(net, "If", ["c", "t", "e"]) == (5,)


# ---- Times family -------------------------------------------------------------------------
def test_times_matrix():
    assert shape_of(net_with({"x": (784,)}, {"W": (784, 200)}), "Times", ["W", "x"]) == (200,)


def test_times_image_input_contracts_all_input_dims():
    # CNTK [128 x 7x7x32] . [7x7x32 x *] -> [128]
    net = net_with({"x": (32, 7, 7)}, {"W": (32, 7, 7, 128)})
    assert shape_of(net, "Times", ["W", "x"]) == (128,)


def test_times_infers_parameter_input_dim():
    net = net_with({"x": (50,)}, {"W": (0, 10)})
    assert shape_of(net, "Times", ["W", "x"]) == (10,)
    assert net.node("W").shape == (50, 10)
    assert net.node("W").value.shape == (50, 10)


def test_times_output_rank_2():
    net = net_with({"x": (6,)}, {"W": (6, 4, 3)})
    assert shape_of(net, "Times", ["W", "x"], {"output_rank": 2}) == (4, 3)


def test_times_mismatch_is_shape_error():
    net = net_with({"x": (5,)}, {"W": (4, 3)})
    with pytest.raises(ShapeError, match="out"):
        shape_of(net, "Times", ["W", "x"])


def test_transpose_times():
    # CNTK A [k x m] = numpy (m, k); A^T . B[k] -> [m]
    net = net_with({"x": (6,)}, {"A": (3, 6)})
    assert shape_of(net, "TransposeTimes", ["A", "x"]) == (3,)


def test_diag_times():
    net = net_with({"x": (5,)}, {"d": (5,)})
    assert shape_of(net, "DiagTimes", ["d", "x"]) == (5,)
    net = net_with({"x": (5,)}, {"d": (4,)})
    with pytest.raises(ShapeError):
        shape_of(net, "DiagTimes", ["d", "x"])


def test_khatri_rao_and_cos_distance():
    assert shape_of(net_with({"a": (3,), "b": (4,)}), "KhatriRaoProduct", ["a", "b"]) == (12,)
    assert shape_of(net_with({"a": (7,), "b": (7,)}), "CosDistance", ["a", "b"]) == (1,)
    with pytest.raises(ShapeError):
        shape_of(net_with({"a": (7,), "b": (6,)}), "CosDistance", ["a", "b"])


def test_cos_distance_with_negative_samples_uses_attr():
    net = net_with({"a": (7,), "b": (7,)}, {"s": (1,), "n": (1,)})
    assert shape_of(net, "CosDistanceWithNegativeSamples", ["a", "b", "s", "n"],
                    {"num_negative_samples": 4}) == (5,)


def test_lookup_table():
    # W CNTK [d=8 x V=100] = numpy (100, 8); x holds 3 stacked one-hot words (300,)
    net = net_with({"x": (300,)}, {"W": (100, 8)})
    assert shape_of(net, "LookupTable", ["W", "x"]) == (24,)


# ---- criteria -----------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["CrossEntropyWithSoftmax", "CrossEntropy", "SquareError",
                                "Logistic", "ClassificationError"])
def test_criteria_are_scalar_without_dynamic_axis(op):
    net = net_with({"l": (10,), "z": (10,)})
    assert shape_of(net, op, ["l", "z"]) == (1,)
    assert net.node("out").dynamic is False


def test_criterion_size_mismatch():
    with pytest.raises(ShapeError, match="same size"):
        shape_of(net_with({"l": (10,), "z": (9,)}), "CrossEntropyWithSoftmax", ["l", "z"])


def test_classification_error_top_n():
    net = net_with({"l": (10,), "z": (10,)}, {"k": (1,)})
    assert shape_of(net, "ClassificationError", ["l", "z", "k"]) == (1,)
    net = net_with({"l": (10,), "z": (10,)}, {"k": (2,)})
    with pytest.raises(ShapeError):
        shape_of(net, "ClassificationError", ["l", "z", "k"])


def test_other_criteria():
    net = net_with({"x": (4, 3)})
    assert shape_of(net, "MatrixL1Reg", ["x"]) == (1,)
    assert shape_of(net, "MatrixL2Reg", ["x"], name="o2") == (1,)
    assert shape_of(net, "SumElements", ["x"], name="o3") == (1,)
    assert net.node("o3").dynamic is False
    assert shape_of(net, "SumColumnElements", ["x"], name="o4") == (1,)
    assert net.node("o4").dynamic is True
    net = net_with({"l": (4,), "h": (20,)}, {"W": (20, 100), "c": (10,)})
    assert shape_of(net, "ClassBasedCrossEntropyWithSoftmax", ["l", "h", "W", "c"]) == (1,)


# ---- reshaping ----------------------------------------------------------------------------
def test_slice_row_slice_semantics():
    net = net_with({"x": (2, 600)})
    attrs = {"begin": (300,), "end": (600,), "axis": (-1,)}
    assert shape_of(net, "Slice", ["x"], attrs) == (2, 300)


def test_slice_negative_begin_zero_end():
    net = net_with({"x": (10,)})
    assert shape_of(net, "Slice", ["x"], {"begin": (-3,), "end": (0,), "axis": (-1,)}) == (3,)


def test_slice_second_cntk_axis_and_stride():
    net = net_with({"x": (8, 5)})
    assert shape_of(net, "Slice", ["x"], {"begin": (1,), "end": (8,), "axis": (-2,),
                                          "stride_multiplier": (2,)}) == (4, 5)


def test_slice_out_of_range():
    with pytest.raises(ShapeError, match="out of range"):
        shape_of(net_with({"x": (10,)}), "Slice", ["x"], {"begin": (5,), "end": (12,)})


def test_row_stack_concatenates_cntk_first_axis():
    net = net_with({"a": (3,), "b": (4,), "c": (5,)})
    assert shape_of(net, "RowStack", ["a", "b", "c"]) == (12,)


def test_row_stack_images_along_channels():
    # cifar10.ResNet: CNTK [8 x 8 x 16] and [8 x 8 x 16] spliced on axis 3 -> [8 x 8 x 32]
    net = net_with({"a": (16, 8, 8), "b": (16, 8, 8)})
    assert shape_of(net, "RowStack", ["a", "b"], {"axis": -3}) == (32, 8, 8)


def test_row_stack_mismatch():
    with pytest.raises(ShapeError, match="differ"):
        shape_of(net_with({"a": (2, 3), "b": (4, 3)}), "RowStack", ["a", "b"])


def test_row_repeat():
    assert shape_of(net_with({"x": (2, 3)}), "RowRepeat", ["x"], {"num_repeats": 4}) == (2, 12)


def test_legacy_reshape():
    assert shape_of(net_with({"x": (12,)}), "LegacyReshape", ["x"], {"num_rows": 4}) == (4,)
    net = net_with({"x": (12,)})
    assert shape_of(net, "LegacyReshape", ["x"], {"num_rows": 12,
                                                   "target_shape": (3, 2, 2)}) == (3, 2, 2)


def test_reshape_whole_and_span():
    assert shape_of(net_with({"x": (2, 3, 4)}), "Reshape", ["x"], {"shape": (0, 4)}) == (6, 4)
    # replace CNTK axes 2..3 (numpy (2, 3) of (2, 3, 4)) by [6] -> numpy (6, 4)
    net = net_with({"x": (2, 3, 4)})
    assert shape_of(net, "Reshape", ["x"], {"shape": (6,), "begin_axis": -2,
                                            "end_axis": -4}) == (6, 4)


def test_reshape_bad_size():
    with pytest.raises(ShapeError, match="cannot reshape"):
        shape_of(net_with({"x": (2, 3)}), "Reshape", ["x"], {"shape": (4,)})


def test_transpose_dimensions():
    assert shape_of(net_with({"x": (3, 5)}), "TransposeDimensions", ["x"]) == (5, 3)
    # cifar10.ResNet: axes (1, 3) on CNTK [32 x 32 x 3] -> [3 x 32 x 32]
    net = net_with({"x": (3, 32, 16)})
    assert shape_of(net, "TransposeDimensions", ["x"], {"axes": (-1, -3)}) == (16, 32, 3)
    net = net_with({"x": (2, 3, 4)})
    assert shape_of(net, "TransposeDimensions", ["x"], {"permutation": (2, 0, 1)}) == (4, 2, 3)


def test_diagonal_and_crop():
    assert shape_of(net_with({}, {"m": (4, 4)}), "Diagonal", ["m"]) == (4, 1)
    with pytest.raises(ShapeError, match="square"):
        shape_of(net_with({}, {"m": (4, 3)}), "Diagonal", ["m"])
    net = net_with({"a": (3, 10, 12), "b": (5, 6, 7)})
    assert shape_of(net, "Crop", ["a", "b"]) == (3, 6, 7)


def test_reduce_elements():
    net = net_with({"x": (3, 4)})
    assert shape_of(net, "ReduceElements", ["x"], {"axes": (-1,)}) == (3, 1)
    assert shape_of(net, "ReduceElements", ["x"], {"axes": (-1,), "keep_dimensions": False},
                    name="o2") == (3,)
    assert shape_of(net, "ReduceElements", ["x"], {"axes": (0,)}, name="o3") == (1, 1)


def test_reconcile_dynamic_axis():
    assert shape_of(net_with({"x": (3,), "y": (7,)}), "ReconcileDynamicAxis", ["x", "y"]) == (3,)


# ---- normalization ------------------------------------------------------------------------
def test_mean_and_mvn():
    net = net_with({"x": (39,)})
    net.add("m", "Mean", ["x"])
    net.add("s", "InvStdDev", ["x"])
    assert shape_of(net, "PerDimMeanVarNormalization", ["x", "m", "s"]) == (39,)
    assert net.node("m").dynamic is False


def test_batch_norm_spatial_infers_statistics():
    # BrainScript (0:1) parameters: CNTK [0 x 1] = numpy (1, 0) become (1, C)
    net = net_with({"x": (16, 8, 8)}, {"s": (1, 0), "b": (1, 0), "m": (1, 0), "v": (1, 0),
                                        "n": (1,)})
    assert shape_of(net, "BatchNormalization", ["x", "s", "b", "m", "v", "n"],
                    {"spatial": True}) == (16, 8, 8)
    assert net.node("v").shape == (1, 16)


def test_batch_norm_non_spatial_and_mismatch():
    net = net_with({"x": (300,)}, {"s": (1, 300), "b": (1, 300), "m": (1, 300), "v": (1, 300)})
    assert shape_of(net, "BatchNormalization", ["x", "s", "b", "m", "v"]) == (300,)
    net = net_with({"x": (300,)}, {"s": (1, 30), "b": (1, 300), "m": (1, 300), "v": (1, 300)})
    with pytest.raises(ShapeError, match="300"):
        shape_of(net, "BatchNormalization", ["x", "s", "b", "m", "v"])


# ---- recurrence ---------------------------------------------------------------------------
def test_past_value_loop_uses_declared_shape():
    net = net_with({"x": (150,)}, {"W": (150, 150)})
    net.add("prev", "PastValue", [None], shape=(150,))
    net.add("t", "Times", ["W", "prev"])
    net.add("h", "Plus", ["t", "x"])
    net.set_input("prev", 0, "h")
    net.validate()
    assert net.node("prev").shape == (150,)
    assert net.node("h").shape == (150,)


def test_past_value_declared_mismatch():
    net = net_with({"x": (10,)})
    with pytest.raises(ShapeError, match="declared"):
        shape_of(net, "PastValue", ["x"], shape=(7,))


def test_future_value_takes_input_shape():
    assert shape_of(net_with({"x": (4, 3)}), "FutureValue", ["x"], shape=(0,)) == (4, 3)


# ---- convolution and pooling --------------------------------------------------------------
def test_convolution_nd_like_resnet():
    # real file: kernel [3,3,3], map [16], stride [1,1,3], autoPad [T,T,F]; input [32x32x3]
    net = net_with({"x": (3, 32, 32)}, {"W": (16, 3, 3, 3)})
    out = shape_of(net, "Convolution", ["W", "x"], {
        "kernel_shape": (3, 3, 3), "map_count": (16,), "strides": (3, 1, 1),
        "auto_padding": (False, True, True)})
    assert out == (16, 32, 32)


def test_convolution_kernel_rank_lower_than_input_reduces_channels():
    net = net_with({"x": (3, 32, 32)}, {"W": (0, 0, 5, 5)})
    out = shape_of(net, "Convolution", ["W", "x"], {
        "kernel_shape": (5, 5), "map_count": (8,), "auto_padding": (False,)})
    assert out == (8, 28, 28)
    assert net.node("W").shape == (8, 3, 5, 5)


def test_convolution_stride_two_with_padding():
    net = net_with({"x": (16, 32, 32)}, {"W": (32, 16, 3, 3)})
    out = shape_of(net, "Convolution", ["W", "x"], {
        "kernel_shape": (16, 3, 3), "map_count": (32,), "strides": (16, 2, 2),
        "auto_padding": (False, True, True)})
    assert out == (32, 16, 16)


def test_convolution_infers_map_count_from_w():
    net = net_with({"x": (1, 28, 28)}, {"W": (4, 1, 5, 5)})
    out = shape_of(net, "Convolution", ["W", "x"], {"kernel_shape": (1, 5, 5),
                                                    "auto_padding": (False,)})
    assert out == (4, 24, 24)


def test_convolution_w_size_mismatch():
    net = net_with({"x": (1, 28, 28)}, {"W": (3, 1, 5, 5)})
    with pytest.raises(ShapeError, match="W"):
        shape_of(net, "Convolution", ["W", "x"], {"kernel_shape": (1, 5, 5), "map_count": (4,)})


def test_legacy_2d_convolution_hwc():
    # NDL Convolution(W, x, 5, 5, 32, 1, 1, zeroPadding=true) on HWC [C=1 x W=28 x H=28]
    net = net_with({"x": (28, 28, 1)}, {"W": (25, 32)})
    out = shape_of(net, "Convolution", ["W", "x"], {
        "kernel_shape": (1, 5, 5), "map_count": (32, 1, 1), "strides": (1, 1, 1),
        "auto_padding": (True,), "convolution_2d": True, "image_layout": "HWC"})
    assert out == (28, 28, 32)
    net = net_with({"x": (28, 28, 1)}, {"W": (25, 32)})
    out = shape_of(net, "Convolution", ["W", "x"], {
        "kernel_shape": (1, 5, 5), "map_count": (32, 1, 1), "strides": (1, 2, 2),
        "auto_padding": (False,), "convolution_2d": True, "image_layout": "HWC"})
    assert out == (12, 12, 32)


def test_transposed_convolution_output_shape():
    net = net_with({"x": (8, 16, 16)}, {"W": (8, 4, 3, 3)})
    out = shape_of(net, "Convolution", ["W", "x"], {
        "kernel_shape": (4, 3, 3), "map_count": (8,), "strides": (1, 2, 2), "transpose": True,
        "output_shape": (4, 32, 32)})
    assert out == (4, 32, 32)


def test_pooling():
    # real pooling: kernel [3,3,1], stride [2,2,1], CNTK [32 x 32 x 64] no padding
    net = net_with({"x": (64, 32, 32)})
    out = shape_of(net, "Pooling", ["x"], {"kernel_shape": (1, 3, 3), "strides": (1, 2, 2),
                                           "auto_padding": (False,), "pool_kind": "max"})
    assert out == (64, 15, 15)
    net = net_with({"x": (64, 8, 8)})
    assert shape_of(net, "Pooling", ["x"], {"kernel_shape": (8, 8), "strides": (8, 8),
                                            "auto_padding": (False,),
                                            "pool_kind": "average"}) == (64, 1, 1)


def test_pooling_kernel_too_large():
    with pytest.raises(ShapeError, match="does not fit"):
        shape_of(net_with({"x": (3, 4, 4)}), "Pooling", ["x"], {"kernel_shape": (1, 5, 5),
                                                               "auto_padding": (False,)})


def test_legacy_max_pooling_layouts():
    net = net_with({"x": (28, 28, 32)})  # HWC
    assert shape_of(net, "MaxPooling", ["x"], {"window_width": 2, "window_height": 2,
                                               "horizontal_subsample": 2,
                                               "vertical_subsample": 2}) == (14, 14, 32)
    net = net_with({"x": (32, 28, 28)})
    assert shape_of(net, "AveragePooling", ["x"], {"window_width": 3, "window_height": 3,
                                                   "horizontal_subsample": 1,
                                                   "vertical_subsample": 1,
                                                   "image_layout": "CHW"}) == (32, 26, 26)


def test_max_unpooling_and_roi_pooling():
    net = net_with({"x": (8, 4, 4), "p": (8, 8, 8)})
    assert shape_of(net, "MaxUnpooling", ["x", "p"]) == (8, 8, 8)
    net = net_with({"x": (8, 20, 30), "r": (5, 4)})
    assert shape_of(net, "ROIPooling", ["x", "r"], {"roi_output_shape": (7, 7)}) == (5, 8, 7, 7)


# ---- structure errors ---------------------------------------------------------------------
def test_wrong_arity_is_validation_error():
    net = net_with({"x": (3,)})
    net.add("bad", "Plus", ["x"])
    with pytest.raises(ValidationError, match="bad"):
        net.validate()


def test_unconnected_input_names_the_input():
    net = net_with({"x": (3,)})
    net.add("bad", "Times", [None, "x"])
    with pytest.raises(ValidationError, match="A"):
        net.validate()


def test_parameter_value_wins_over_declared_shape():
    net = net_with({"x": (3,)})
    net.add_parameter("W", np.ones((3, 2), dtype=np.float32))
    assert shape_of(net, "Times", ["W", "x"]) == (2,)


def test_broadcast_completes_parameter_dims():
    net = net_with({"x": (16, 8, 8)}, {"s": (0, 1, 1)})
    assert shape_of(net, "ElementTimes", ["s", "x"]) == (16, 8, 8)
    assert net.node("s").shape == (16, 1, 1)


def test_convolution_nd_with_2d_stored_weights_like_v10_resnet():
    # cifar10.ResNet.cmf (v10): W stored as CNTK [16 x 27], ND attributes from the file
    net = net_with({"x": (3, 32, 32)}, {"W": (27, 16)})
    out = shape_of(net, "Convolution", ["W", "x"], {
        "kernel_shape": (3, 3, 3), "map_count": (16,), "strides": (3, 1, 1),
        "auto_padding": (False, True, True), "convolution_2d": False})
    assert out == (16, 32, 32)


def test_resnet_channel_padding_trick():
    # cifar10.ResNet: TransposeDimensions(1,3), RowStack, TransposeDimensions(1,3) pads channels
    net = net_with({"a": (16, 16, 16), "b": (16, 1, 1)})
    net.add("ta", "TransposeDimensions", ["a"], attrs={"axes": (-1, -3)})
    net.add("tb", "TransposeDimensions", ["b"], attrs={"axes": (-1, -3)})
    net.add("st", "RowStack", ["ta", "tb"], attrs={"axis": -1})
    # CNTK broadcasts the size-1 axes of the zero block: 16 + 16 channels
    assert shape_of(net, "TransposeDimensions", ["st"], {"axes": (-1, -3)}) == (32, 16, 16)


def test_lstm_style_slices_of_a_stacked_projection():
    # slu: Slice(begin 300, length 300, axis 1) of a [1200] projection
    net = net_with({"x": (1200,)})
    assert shape_of(net, "Slice", ["x"], {"begin": (300,), "end": (600,), "axis": (-1,)}) == (300,)


def test_times_infer_input_rank_to_map_zero_contracts_every_input_dim():
    # BrainScript LinearLayer: W = ParameterTensor{outDim:Inferred}, inferInputRankToMap=0
    net = net_with({"x": (64, 3, 3)}, {"W": (0, 10)})
    assert shape_of(net, "Times", ["W", "x"], {"infer_input_rank_to_map": 0}) == (10,)
    assert net.node("W").shape == (64, 3, 3, 10)
    assert net.node("W").value.shape == (64, 3, 3, 10)


def test_times_infer_input_rank_to_map_one_keeps_a_map_axis():
    net = net_with({"x": (5, 20)}, {"W": (0, 7)})
    assert shape_of(net, "Times", ["W", "x"], {"infer_input_rank_to_map": 1}) == (5, 7)
    assert net.node("W").shape == (20, 7)


def test_times_unspecified_map_rank_fills_zero_dims_positionally():
    # inferInputRankToMap=-1: only the 0 dims are filled, from B's leading CNTK dims
    net = net_with({"x": (3, 32)}, {"W": (0, 10)})
    assert shape_of(net, "Times", ["W", "x"]) == (3, 10)


# ---- transposed convolution (bs-library.md §2.5/§2.8, ndl-mel.md §B.9.7) -------------------
def _forward_axis(size, k, stride, dil, auto, lo, hi):
    """ndl-mel.md §B.9.7: out = ⌊(in + pad − k_eff)/stride⌋ + 1, pad = (k−1)·dil auto-padded,
    lower + upper otherwise."""
    pad = (k - 1) * dil if auto else lo + hi
    return (size + pad - ((k - 1) * dil + 1)) // stride + 1


def _transposed_axis(size, k, stride, dil, auto, lo, hi):
    """The spec's transposed rule: the inverse of the forward one."""
    return (size - 1) * stride + (1 if auto else (k - 1) * dil + 1 - lo - hi)


def test_transposed_convolution_output_channels_are_the_kernels_last_axis():
    # ConvolutionTransposeLayer{2, (3:3), 20}: kernel (3:3:2), mapDims 20 (x's channels),
    # W [3 x 3 x 2 x 20]; CNTK gives 2 output channels (this gave 20 before)
    net = net_with({"x": (20, 5, 5)}, {"W": (20, 2, 3, 3)})
    out = shape_of(net, "Convolution", ["W", "x"], {
        "kernel_shape": (2, 3, 3), "map_count": (20,), "auto_padding": (False,),
        "transpose": True})
    assert out == (2, 7, 7)


_PADDINGS = [  # auto, lower, upper, stride, dilation
    (False, 0, 0, 1, 1), (False, 0, 0, 2, 1), (False, 1, 1, 2, 1), (False, 2, 1, 3, 1),
    (True, 0, 0, 1, 1), (True, 0, 0, 2, 1), (True, 0, 0, 3, 2), (False, 1, 0, 2, 2),
]


@pytest.mark.parametrize("k, auto, lo, hi, stride, dil", [
    (k, *p) for k in (1, 2, 3, 4, 5) for p in _PADDINGS if p[1] < k and p[2] < k])
def test_transposed_convolution_shape_is_the_inverse_of_the_forward_rule(k, auto, lo, hi, stride,
                                                                          dil):
    size = 6
    net = net_with({"x": (4, size, size + 1)}, {"W": (4, 3, k, k)})
    out = shape_of(net, "Convolution", ["W", "x"], {
        "kernel_shape": (3, k, k), "map_count": (4,), "strides": (1, stride, stride),
        "auto_padding": (False, auto, auto), "lower_pad": (0, lo, lo), "upper_pad": (0, hi, hi),
        "dilation": (1, dil, dil), "transpose": True})
    want = tuple(_transposed_axis(s, k, stride, dil, auto, lo, hi) for s in (size, size + 1))
    assert out == (3, *want)
    # and the forward convolution of that output gives x's spatial size back
    for o, s in zip(want, (size, size + 1)):
        assert _forward_axis(o, k, stride, dil, auto, lo, hi) == s


def test_transposed_convolution_infers_maps_and_a_missing_channel_axis():
    # map count 0 = x's channels (cntk-v2-format.md §4.3); kernel without the channel axis:
    # its extent comes from W ([3 x 3 x 2 x 20] holds 2 output channels)
    net = net_with({"x": (20, 5, 5)}, {"W": (20, 2, 3, 3)})
    assert shape_of(net, "Convolution", ["W", "x"], {
        "kernel_shape": (3, 3), "map_count": (0,), "auto_padding": (False,),
        "strides": (2,), "transpose": True}) == (2, 11, 11)


def test_transposed_convolution_completes_an_inferred_weight():
    net = net_with({"x": (8, 4, 4)}, {"W": (0, 0, 4, 4)})
    out = shape_of(net, "Convolution", ["W", "x"], {
        "kernel_shape": (8, 4, 4), "map_count": (8,), "strides": (1, 2, 2),
        "auto_padding": (False,), "lower_pad": (0, 1, 1), "upper_pad": (0, 1, 1),
        "transpose": True})
    assert out == (8, 8, 8) and net.node("W").shape == (8, 8, 4, 4)


def test_transposed_convolution_errors_are_one_line_and_say_what_to_fix():
    net = net_with({"x": (20, 5, 5)}, {"W": (20, 2, 3, 3)})
    with pytest.raises(ShapeError, match=r"auto-padding the channel axis.*\(true:true:false\)"):
        shape_of(net, "Convolution", ["W", "x"], {
            "kernel_shape": (2, 3, 3), "map_count": (20,), "auto_padding": (True,),
            "transpose": True})
    net = net_with({"x": (20, 5, 5)}, {"W": (20, 3, 3, 3)})
    with pytest.raises(ShapeError, match="must hold kernel x map count = 360 values"):
        shape_of(net, "Convolution", ["W", "x"], {
            "kernel_shape": (2, 3, 3), "map_count": (20,), "auto_padding": (False,),
            "transpose": True})
    net = net_with({"x": (6, 5, 5)}, {"W": (4, 2, 3, 3)})
    with pytest.raises(ShapeError, match="not a multiple of the map count 4"):
        shape_of(net, "Convolution", ["W", "x"], {
            "kernel_shape": (2, 3, 3), "map_count": (4,), "auto_padding": (False,),
            "transpose": True})
