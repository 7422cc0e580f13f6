"""Every NDL function of ndl-mel.md §B.9 binds, under every spelling, to the right op and
attributes (values given already converted, as the NDL layer passes them)."""

from __future__ import annotations

import pytest

from netsurgeon.errors import ArgumentError, RegistryError
from netsurgeon.ops import OPS

# (spellings, positional, options, op, expected attrs subset, expected input count)
CASES = [
    (("InputValue", "Input", "INPUT"), [784], {}, "InputValue", {"dynamic_axis": ""}, 0),
    (("SparseInputValue", "SparseInput"), [943], {}, "SparseInputValue", {}, 0),
    (("ImageInput", "Image"), [32, 32, 3], {"imageLayout": "cudnn"}, "InputValue", {}, 0),
    (("SparseImageInput", "SparseImage"), [32, 32, 3], {}, "SparseInputValue", {}, 0),
    (("LearnableParameter", "Parameter"), [200, 784], {}, "LearnableParameter", {}, 0),
    (("ImageParameter",), [128, 7, 7, 32], {"imageLayout": "cudnn"}, "LearnableParameter", {}, 0),
    (("Constant", "Const"), [0.5], {"rows": 3}, "LearnableParameter", {}, 0),
    *[((n,), ["x"], {}, n, {}, 1) for n in (
        "Abs", "Acos", "Asin", "Asinh", "Atanh", "Cosh", "Exp", "Floor", "Log", "Negate",
        "Pass", "LabelsToGraph",
        "Reciprocal", "Sigmoid", "Sin", "Sinh", "Sqrt", "Tanh", "StopGradient", "Softmax",
        "LogSoftmax", "Hardmax", "Dropout", "Diagonal", "SumElements", "SumColumnElements",
        "Mean", "InvStdDev")],
    (("Cosine", "Cos"), ["x"], {}, "Cosine", {}, 1),
    (("RectifiedLinear", "ReLU"), ["x"], {}, "RectifiedLinear", {}, 1),
    *[((n,), ["a", "b"], {}, n, {}, 2) for n in (
        "Plus", "Minus", "LogPlus", "Less", "Equal", "Greater", "GreaterEqual", "NotEqual",
        "LessEqual", "TransposeTimes", "DiagTimes", "CrossEntropy", "ForwardBackward",
        "EditDistanceError", "LookupTable",
        "ReconcileDynamicAxis")],
    (("ElementTimes", "ColumnElementTimes", "RowElementTimes", "Scale"), ["s", "X"], {},
     "ElementTimes", {}, 2),
    (("Clip",), ["lo", "hi", "x"], {}, "Clip", {}, 3),
    (("If",), ["c", "t", "e"], {}, "If", {}, 3),
    (("Times",), ["W", "x"], {"outputRank": 2}, "Times", {"output_rank": 2}, 2),
    (("KhatriRaoProduct", "ColumnwiseCrossProduct"), ["a", "b"], {}, "KhatriRaoProduct", {}, 2),
    (("CosDistance", "CosDist"), ["a", "b"], {}, "CosDistance", {}, 2),
    (("CosDistanceWithNegativeSamples", "CosWithNegSamples"), ["a", "b", "s", "n"], {},
     "CosDistanceWithNegativeSamples", {}, 4),
    (("RowSlice",), [300, 300, "x"], {}, "Slice",
     {"begin": (300,), "end": (600,), "axis": (-1,)}, 1),
    (("RowStack",), ["a", "b", "c"], {}, "RowStack", {"axis": -1}, 3),
    (("RowRepeat",), ["x", 3], {}, "RowRepeat", {"num_repeats": 3}, 1),
    (("Reshape",), ["x", 12], {"imageWidth": 2, "imageHeight": 3, "imageChannels": 2},
     "LegacyReshape", {"num_rows": 12, "target_shape": (3, 2, 2)}, 1),
    (("Transpose",), ["x"], {}, "TransposeDimensions", {"axes": (-1, -2)}, 1),
    (("Crop",), ["a", "b"], {}, "Crop", {}, 2),
    (("Crop",), ["a", "b", 2.0, 3.0], {}, "Crop", {"x_offset": 2.0, "y_offset": 3.0}, 2),
    (("Crop",), ["a", "b", "e1", "e2"], {}, "Crop", {}, 4),
    (("Cast",), ["x"], {"precision": "double"}, "Cast", {"precision": "double"}, 1),
    (("CrossEntropyWithSoftmax", "CEWithSM"), ["l", "z"], {}, "CrossEntropyWithSoftmax", {}, 2),
    (("SquareError", "SE"), ["a", "b"], {}, "SquareError", {}, 2),
    (("Logistic",), ["y", "p"], {}, "Logistic", {}, 2),
    (("Logistic",), ["y", "p", "w"], {}, "Logistic", {}, 3),
    (("ClassificationError", "ErrorPrediction"), ["l", "z"], {}, "ClassificationError", {}, 2),
    (("ClassificationError",), ["l", "z", "k"], {}, "ClassificationError", {}, 3),
    (("ClassBasedCrossEntropyWithSoftmax", "CBCEWithSM"), ["l", "h", "W", "c"], {},
     "ClassBasedCrossEntropyWithSoftmax", {}, 4),
    (("SequenceWithSoftmax", "SEWithSM"), ["l", "z", "ll"], {}, "SequenceWithSoftmax", {}, 3),
    (("LatticeSequenceWithSoftmax",), ["l", "z", "ll", "lat"], {"seqGammarAMF": 10.0},
     "LatticeSequenceWithSoftmax", {"am_factor": 10.0}, 4),
    (("DummyCriterion",), ["o", "d", "p"], {}, "DummyCriterion", {}, 3),
    (("MatrixL1Reg", "L1Reg"), ["x"], {}, "MatrixL1Reg", {}, 1),
    (("MatrixL2Reg", "L2Reg"), ["x"], {}, "MatrixL2Reg", {}, 1),
    (("PerDimMeanVarNormalization", "PerDimMVNorm"), ["x", "m", "s"], {},
     "PerDimMeanVarNormalization", {}, 3),
    (("PerDimMeanVarDeNormalization", "PerDimMVDeNorm"), ["x", "m", "s"], {},
     "PerDimMeanVarDeNormalization", {}, 3),
    (("PastValue", "Delay"), [150, "x"], {"timeStep": 2, "defaultHiddenActivity": 0.0},
     "PastValue", {"time_step": 2, "initial_state": 0.0}, 1),
    (("FutureValue",), [150, 1, "x"], {}, "FutureValue", {"time_step": 1, "initial_state": 0.1}, 1),
    (("Convolution", "Convolve"), ["W", "x", [5, 5, 3]],
     {"mapCount": 32, "stride": [1, 1, 3], "autoPadding": [True, True, False]}, "Convolution",
     {"kernel_shape": (3, 5, 5), "map_count": (32,), "strides": (3, 1, 1),
      "auto_padding": (False, True, True), "image_layout": "CHW", "convolution_2d": False}, 2),
    (("Convolution",), ["W", "x", 5, 5, 32, 2, 1], {"zeroPadding": True},
     "Convolution", {"kernel_shape": (1, 5, 5), "map_count": (32, 1, 1), "strides": (1, 1, 2),
                     "auto_padding": (True,), "convolution_2d": True, "image_layout": "HWC"}, 2),
    (("Pooling",), ["x", "max", [3, 3, 1]], {"stride": [2, 2, 1]}, "Pooling",
     {"pool_kind": "max", "kernel_shape": (1, 3, 3), "strides": (1, 2, 2)}, 1),
    (("MaxUnpooling",), ["x", "p", [2, 2, 1]], {}, "MaxUnpooling", {"kernel_shape": (1, 2, 2)}, 2),
    (("MaxPooling",), ["x", 2, 3, 2, 1], {}, "MaxPooling",
     {"window_width": 2, "window_height": 3, "horizontal_subsample": 2, "vertical_subsample": 1,
      "image_layout": "HWC"}, 1),
    (("AveragePooling",), ["x", 2, 2, 2, 2], {"imageLayout": "cudnn"}, "AveragePooling",
     {"image_layout": "CHW"}, 1),
    (("BatchNormalization",), ["x", "s", "b", "m", "v", "n"],
     {"spatial": True, "epsilon": 1e-3, "engine": "cudnn"}, "BatchNormalization",
     {"spatial": True, "epsilon": 1e-3, "use_cntk_engine": False, "image_layout": "CHW"}, 6),
]


def _ids():
    return [c[0][0] + ("/" + str(len(c[1]))) for c in CASES]


@pytest.mark.parametrize("spellings, positional, options, op, attrs, n_inputs", CASES, ids=_ids())
def test_function_binds_under_every_spelling(spellings, positional, options, op, attrs, n_inputs):
    for spelling in spellings:
        for variant in (spelling, spelling.lower(), spelling.upper()):
            fn = OPS.function(variant, "ndl")
            recipe = fn.bind(list(positional), dict(options))
            assert recipe.op == op
            assert OPS.has_op(recipe.op)
            full = {**OPS.op(op).default_attrs(), **recipe.attrs}  # as Network.add merges
            for key, value in attrs.items():
                assert full[key] == value, (spelling, key)
            assert len(recipe.inputs) == n_inputs
            for key in recipe.attrs:
                assert key in OPS.op(op).attrs, f"{spelling} sets unknown attribute {key}"


def test_leaf_shapes_are_numpy_order():
    assert OPS.function("Input", "ndl").bind([51, 1], {}).shape == (1, 51)
    assert OPS.function("Parameter", "ndl").bind([200, 784], {}).shape == (784, 200)
    assert OPS.function("ImageInput", "ndl").bind([32, 28, 3], {}).shape == (28, 32, 3)
    assert OPS.function("ImageInput", "ndl").bind([32, 28, 3], {"imageLayout": "CHW"}).shape \
        == (3, 28, 32)
    assert OPS.function("ImageParameter", "ndl").bind(
        [128, 7, 7, 32], {"imageLayout": "cudnn"}).shape == (32, 7, 7, 128)
    const = OPS.function("Const", "ndl").bind([0.5], {"rows": 3})
    assert const.shape == (1, 3) and const.learning_rate_multiplier == 0.0
    assert const.init["kind"] == "fixedValue" and const.init["value"] == 0.5


def test_past_value_declares_rows():
    recipe = OPS.function("Delay", "ndl").bind([300, "x"], {})
    assert recipe.shape == (300,)
    assert recipe.attrs["time_step"] == 1
    legacy = OPS.function("PastValue", "ndl").bind([300, "x"], {"delayTime": 3})
    assert legacy.attrs["time_step"] == 3


def test_batch_norm_with_five_inputs_requests_run_count():
    recipe = OPS.function("BatchNormalization", "ndl").bind(["x", "s", "b", "m", "v"], {})
    assert len(recipe.inputs) == 5
    auto = recipe.extra["auto_inputs"][5]
    assert auto["suffix"] == ".run_sample_count" and auto["shape"] == (1,)
    assert auto["learning_rate_multiplier"] == 0.0


def test_batch_norm_bad_engine():
    with pytest.raises(ArgumentError, match="engine"):
        OPS.function("BatchNormalization", "ndl").bind(list("xsbmv"), {"engine": "tpu"})


@pytest.mark.parametrize("name", ["Atan", "Tan", "ROIPooling"])
def test_reserved_broken_names(name):
    assert OPS.is_reserved(name, "ndl")
    assert OPS.is_reserved(name.lower(), "ndl")
    with pytest.raises(ArgumentError, match=f"Attempted to instantiate undefined operation {name}"):
        OPS.function(name, "ndl").bind(["x"], {})


def test_convolution_wrong_count_lists_both_forms():
    fn = OPS.function("Convolution", "ndl")
    with pytest.raises(ArgumentError) as info:
        fn.bind(["W", "x", 1, 2], {})
    assert "kernelShape" in str(info.value) and "horizontalSubsample" in str(info.value)


def test_row_slice_needs_three_arguments():
    with pytest.raises(ArgumentError):
        OPS.function("RowSlice", "ndl").bind([1, "x"], {})


def test_pooling_kind_checked():
    fn = OPS.function("Pooling", "ndl")
    assert fn.bind(["x", "AVERAGE", 2], {}).attrs["pool_kind"] == "average"
    with pytest.raises(ArgumentError, match="pooling kind"):
        fn.bind(["x", "median", 2], {})


def test_image_layout_checked():
    with pytest.raises(ArgumentError, match="imageLayout"):
        OPS.function("MaxPooling", "ndl").bind(["x", 2, 2, 2, 2], {"imageLayout": "chw"})


def test_unknown_options_are_ignored():
    recipe = OPS.function("Sigmoid", "ndl").bind(["x"], {"eval": False, "delayInput": 3})
    assert recipe.op == "Sigmoid"


def test_cast_requires_valid_precision():
    with pytest.raises(ArgumentError, match="precision"):
        OPS.function("Cast", "ndl").bind(["x"], {})


def test_unknown_function_suggests():
    with pytest.raises(RegistryError, match="Sigmoid"):
        OPS.function("Sigmod", "ndl")


def test_times_is_also_brainscript():
    assert OPS.find_function("Times", "bs") is not None
    assert OPS.find_function("RowSlice", "bs") is None
