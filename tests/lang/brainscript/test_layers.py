"""The convolutional part of the core library and BatchNormalization under CloneFunction."""

from __future__ import annotations

import math

import netsurgeon
from netsurgeon.lang.brainscript import clone_function
from netsurgeon.ops.sets import INPUTS

CONV = """
    features = Input ((32:32:3))
    labels = Input (10)
    c1 = ConvolutionalLayer {16, (5:5), pad = true, activation = ReLU} (features)
    b1 = BatchNormalizationLayer {spatialRank = 2} (c1)
    p1 = MaxPoolingLayer {(3:3), stride = (2:2)} (b1)
    p2 = AveragePoolingLayer {(2:2), stride = 2} (p1)
    z = DenseLayer {10} (p2)
    s = Splice ((z : z), axis = 1)
    sl = Slice (0, 5, s)
    r = NewReshape (sl, (5:1))
    ce = CrossEntropyWithSoftmax (labels, z)
    first = BS.Sequences.First (z)
    last = BS.Sequences.Last (z)
"""


def test_conv_pool_bn_dense_shapes(build):
    net = build(CONV)
    assert net.get("c1.W").shape == (16, 3, 5, 5)           # CNTK [5 x 5 x 3 x 16]
    assert net.get("c1.c").op == "Convolution" and net.get("c1.c").shape == (16, 32, 32)
    assert net.get("c1").op == "RectifiedLinear"
    assert net.get("b1").op == "BatchNormalization" and net.get("b1").attrs["spatial"] is True
    assert len(net.get("b1").inputs) == 6 and net.get("b1.runCount").learning_rate_multiplier == 0
    assert net.get("p1").attrs["pool_kind"] == "max" and net.get("p1").shape == (16, 15, 15)
    assert net.get("p2").attrs["pool_kind"] == "average" and net.get("p2").shape == (16, 7, 7)
    assert net.get("z.arrayOfFunctions[0].W").shape == (16, 7, 7, 10)  # inferInputRankToMap=0
    assert net.get("z").shape == (10,)
    assert net.get("s").op == "RowStack" and net.get("s").shape == (20,)
    assert net.get("sl").shape == (5,) and net.get("r").shape == (1, 5)
    assert net.get("first").op == "GatherPacked" and net.get("last").op == "GatherPacked"


def test_constant_clone_puts_batch_normalization_in_inference_mode(build):
    net = build(CONV)
    f = clone_function([net.node("features")], net.node("z"), parameters="constant")
    x = net.add("x2", "InputValue", shape=(3, 32, 32))
    f(x, name="frozen")
    bn = net.node("frozen.b1")
    assert math.isinf(bn.attrs["normalization_time_constant"])
    assert math.isinf(bn.attrs["blend_time_constant"])
    assert net.node("b1").attrs["normalization_time_constant"] == 5000
    for name in ("frozen.c1.W", "frozen.b1.scale", "frozen.z.arrayOfFunctions[0].W"):
        assert net.node(name).learning_rate_multiplier == 0
    net.validate()


def test_clone_of_loaded_resnet_in_every_mode(cntk_dir):
    net = netsurgeon.load(cntk_dir / "models" / "cifar10.ResNet.cmf")
    inputs = [n for n in net.nodes if n.op in INPUTS and n.shape and len(n.shape) == 3]
    out = net.group("output")[0]
    x = net.add("x2", "InputValue", shape=inputs[0].shape)
    for mode in ("learnable", "constant", "shared"):
        f = clone_function(inputs, out, parameters=mode)
        y = f(x, name=mode)
        assert y.name == f"{mode}.{out.name}"
        bns = [n for n in net.nodes
               if n.name.startswith(mode + ".") and n.op == "BatchNormalization"]
        assert bns
        if mode == "constant":
            assert all(math.isinf(b.attrs["normalization_time_constant"]) for b in bns)
    net.validate()
