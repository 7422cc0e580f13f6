"""BrainScript's ``new ComputationNode`` primitive (language ``node``): CNTK config names and
conventions in, registry attributes out; plus the conversion helpers."""

from __future__ import annotations

import pytest

from netsurgeon.errors import ArgumentError
from netsurgeon.ops import OPS
from netsurgeon.ops._convert import (
    IMAGE_LAYOUT_CODES,
    POOL_KIND_CODES,
    as_bool,
    cntk_shape,
    layout_name,
    np_axis,
    np_bools,
    np_shape,
    parse_bool,
    pool_kind_name,
)
from netsurgeon.ops.reshaping import np_permutation, reshape_span, slice_range


def node(op, inputs=(), **config):
    return OPS.function(op, "node").bind(list(inputs), config)


def test_times_config():
    r = node("Times", ["W", "x"], outputRank=2, inferInputRankToMap=0)
    assert r.op == "Times" and r.inputs == ["W", "x"]
    assert r.attrs == {"output_rank": 2, "infer_input_rank_to_map": 0}


def test_options_not_given_keep_defaults():
    assert node("Times", ["W", "x"]).attrs == {}


def test_convolution_config_is_converted_to_numpy_order():
    r = node("Convolution", ["W", "x"], kernelShape=[3, 3, 3], mapCount=[16],
             strideShape=[1, 1, 3], dimSharing=[True], dimPadding=[True, True, False],
             dimPadLower=[0], dimPadUpper=[0], dimDilation=[1], transpose=False,
             imageLayout="cudnn", maxTempMemSizeInSamples=0)
    assert r.attrs["kernel_shape"] == (3, 3, 3)
    assert r.attrs["strides"] == (3, 1, 1)
    assert r.attrs["auto_padding"] == (False, True, True)
    assert r.attrs["image_layout"] == "CHW"
    assert r.attrs["map_count"] == (16,)


def test_pooling_config():
    r = node("Pooling", ["x"], pool="average", kernelShape=[8, 8, 1], strideShape=[1])
    assert r.attrs["pool_kind"] == "average" and r.attrs["kernel_shape"] == (1, 8, 8)


def test_slice_config_axis_is_negated():
    r = node("Slice", ["x"], beginIndex=0, endIndex=300, axis=1)
    assert r.attrs == {"begin": (0,), "end": (300,), "axis": (-1,), "stride_multiplier": (1,)}
    assert node("RowSlice", ["x"], beginIndex=1, endIndex=2).op == "Slice"


def test_reshape_and_rowstack_and_transpose():
    r = node("Reshape", ["x"], shape=[3, 4], beginAxis=1, endAxis=2)
    assert r.attrs == {"shape": (4, 3), "begin_axis": -1, "end_axis": -2}
    assert node("RowStack", ["a", "b"], axis=3).attrs == {"axis": -3}
    assert node("TransposeDimensions", ["x"], axis1=1, axis2=3).attrs["axes"] == (-1, -3)
    assert node("LegacyReshape", ["x"], numRows=12, imageWidth=2, imageHeight=3,
                imageChannels=2, imageLayout="CHW").attrs == {
        "num_rows": 12, "target_shape": (2, 3, 2)}


def test_delay_config():
    r = node("PastValue", ["x"], shape=[150], timeStep=1, defaultHiddenActivation=0.0)
    assert r.shape == (150,)
    assert r.attrs == {"time_step": 1, "initial_state": 0.0}
    assert node("Delay", ["x"], shape=[3]).op == "PastValue"


def test_batch_norm_config():
    r = node("BatchNormalization", list("xsbmvn"), spatial=True, normalizationTimeConstant=5000,
             blendTimeConstant=0, epsilon=1e-5, useCntkEngine=False, imageLayout="CHW")
    assert r.attrs["spatial"] is True and r.attrs["use_cntk_engine"] is False
    assert r.attrs["normalization_time_constant"] == 5000.0
    assert len(r.inputs) == 6


def test_input_config():
    assert node("InputValue", shape=[28, 28, 1]).shape == (1, 28, 28)
    r = node("InputValue", shape=[0], isImage=True, imageWidth=32, imageHeight=30,
             imageChannels=3, imageLayout="CHW")
    assert r.shape == (3, 30, 32) and r.attrs == {}
    assert node("SparseInputValue", shape=[943], dynamicAxis="ax").attrs == {"dynamic_axis": "ax"}


@pytest.mark.parametrize("config, kind, value", [
    ({}, "uniform", 0.0),
    ({"initValue": 0.5}, "fixedValue", 0.5),
    ({"init": "zero"}, "fixedValue", 0.0),
    ({"init": "glorotUniform"}, "glorotUniform", 0.0),
    ({"init": "fixedValue", "value": 2}, "fixedValue", 2.0),
    ({"initFromFilePath": "w.txt"}, "fromFile", 0.0),
])
def test_parameter_init_rules(config, kind, value):
    r = node("LearnableParameter", shape=[10, 0], learningRateMultiplier=0, **config)
    assert r.shape == (0, 10) and r.learning_rate_multiplier == 0.0
    assert r.init["kind"] == kind and r.init["value"] == value
    assert r.attrs == {}


def test_parameter_unknown_init():
    with pytest.raises(ArgumentError, match="init"):
        node("LearnableParameter", shape=[3], init="magic")


@pytest.mark.parametrize("kind", ["uniform1", "normal", "xavier", "glorotUniform",
                                  "glorotNormal", "heUniform", "heNormal", "TruncNormal",
                                  "gaussian", "uniform"])
def test_init_kinds_produce_values(kind):
    from netsurgeon.ops.init import initialize

    value = initialize((5, 3, 3, 8), {"kind": kind, "scale": 1.0, "seed": 3, "filter_rank": 2,
                                      "output_rank": -1})
    assert value.shape == (5, 3, 3, 8) and value.std() > 0


def test_converters():
    assert np_shape([3, 3, 16]) == (16, 3, 3) and np_shape(5) == (5,)
    assert cntk_shape((16, 3, 3)) == (3, 3, 16)
    assert np_axis(1) == -1 and np_axis(-2) == 2
    assert np_bools([True, "false"]) == (False, True)
    assert as_bool("T") and not as_bool("F") and not as_bool("")
    assert parse_bool("tRUE") is None and parse_bool(" True ") is True  # A.6: case matters
    with pytest.raises(ArgumentError, match="boolean argument expected"):
        as_bool("no")
    assert layout_name("cudnn") == "CHW" and layout_name("legacy") == "HWC"
    assert layout_name(IMAGE_LAYOUT_CODES["HWC"]) == "HWC"
    assert pool_kind_name("MAX") == "max"
    assert pool_kind_name(POOL_KIND_CODES["average"]) == "average"
    with pytest.raises(ArgumentError):
        layout_name("hwc")


def test_permutation_roundtrip_and_meaning():
    import numpy as np

    perm = (2, 0, 1, 3)
    assert np_permutation(np_permutation(perm)) == perm
    # CNTK swap of axes 1 and 3 on rank 3 is the numpy swap of axes 0 and 2
    assert np_permutation((2, 1, 0)) == (2, 1, 0)
    x = np.zeros((2, 3, 4))
    assert x.transpose(np_permutation((1, 0, 2))).shape == (2, 4, 3)


def test_span_and_slice_helpers():
    assert reshape_span(3, 0, 0) == (0, 3)
    assert reshape_span(3, -2, -4) == (0, 2)
    assert reshape_span(3, -1, -2) == (2, 3)
    assert slice_range(10, -3, 0) == (7, 10)
    assert slice_range(10, 2, -1) == (2, 9)
