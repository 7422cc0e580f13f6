"""Kernels of individual ops on small graph-API networks, against numpy / torch references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tests.runtime import nets

from netsurgeon.graph import Network
from netsurgeon.ops import OPS
from netsurgeon.runtime import compile_network, evaluate, generate
from netsurgeon.runtime.batch import Minibatch


def test_every_op_has_a_torch_kernel_or_says_why_not():
    from netsurgeon.ops import completeness
    from netsurgeon.runtime.lowerings import TORCH, TorchLowering

    assert OPS.layer("torch") is TORCH
    assert [p for p in completeness(OPS) if "torch" in p] == []
    for op in OPS:
        entry = OPS.entry("torch", op.name)
        reason = OPS.unsupported_reason("torch", op.name)
        assert (entry is None) != (reason is None), op.name
        assert entry is None or isinstance(entry, TorchLowering)
        if not op.has_math:
            assert reason == "no defined math"


def _net(sample, build):
    net = Network("t")
    x = net.add("x", "InputValue", shape=sample)
    out = build(net, x)
    net.add_to_group("output", out)
    net.validate()
    return net, out.name


def _eval(net, name, x):
    return evaluate(net, {"x": x}, [name])[name]


CONV_CASES = [
    # kernel (C, kh, kw), stride, auto_padding, lower, upper
    ((3, 3, 3), (3, 1, 1), (False, True, True), (0, 0, 0), (0, 0, 0)),
    ((3, 3, 3), (3, 2, 2), (False, True, True), (0, 0, 0), (0, 0, 0)),
    ((3, 2, 2), (3, 2, 2), (False, True, True), (0, 0, 0), (0, 0, 0)),
    ((3, 3, 5), (3, 1, 2), (False, False, False), (0, 1, 2), (0, 1, 2)),
    ((3, 3, 3), (3, 1, 1), (False, False, False), (0, 0, 0), (0, 0, 0)),
]


@pytest.mark.parametrize("kernel,stride,auto,lower,upper", CONV_CASES)
def test_convolution_geometry(kernel, stride, auto, lower, upper):
    r = nets.rng(20)
    w = r.normal(size=(4,) + kernel).astype(np.float32)

    def build(net, x):
        W = net.add_parameter("W", w)
        return net.add("c", "Convolution", inputs=(W, x), attrs={
            "kernel_shape": kernel, "map_count": (4,), "strides": stride,
            "auto_padding": auto, "lower_pad": lower, "upper_pad": upper})

    net, name = _net((3, 7, 8), build)
    x = r.normal(size=(2, 3, 7, 8)).astype(np.float32)
    got = _eval(net, name, x)
    ph = nets.conv_pads(kernel[1], stride[1], 7, auto[1], lower[1], upper[1])
    pw = nets.conv_pads(kernel[2], stride[2], 8, auto[2], lower[2], upper[2])
    want = F.conv2d(F.pad(torch.from_numpy(x), (pw[0], pw[1], ph[0], ph[1])),
                    torch.from_numpy(w), stride=stride[1:]).numpy()
    assert got.shape == want.shape == (2,) + tuple(net.node("c").shape)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["max", "average"])
@pytest.mark.parametrize("auto", [False, True])
def test_pooling(kind, auto):
    def build(net, x):
        return net.add("p", "Pooling", inputs=(x,), attrs={
            "kernel_shape": (1, 3, 3), "strides": (1, 2, 2), "pool_kind": kind,
            "auto_padding": (False, auto, auto)})

    net, name = _net((2, 6, 7), build)
    x = nets.rng(21).normal(size=(3, 2, 6, 7)).astype(np.float32)
    got = _eval(net, name, x)
    t = torch.from_numpy(x)
    if kind == "max":
        want = F.max_pool2d(t, 3, 2, padding=1 if auto else 0)
    else:
        want = F.avg_pool2d(t, 3, 2, padding=1 if auto else 0, count_include_pad=False)
    if auto:  # 6 -> 3 and 7 -> 4 output cells (CNTK ceil(in/stride))
        assert got.shape == (3, 2, 3, 4)
    np.testing.assert_allclose(got, want.numpy()[:, :, :got.shape[2], :got.shape[3]], rtol=1e-5)


@pytest.mark.parametrize("inv_std", [False, True])
def test_batch_normalization_inference_both_layouts(inv_std):
    r = nets.rng(22)
    scale, bias, mean = (r.normal(size=(1, 3)).astype(np.float32) for _ in range(3))
    var = r.uniform(0.5, 2, size=(1, 3)).astype(np.float32)
    stored = 1 / np.sqrt(var + 1e-5) if inv_std else var

    def build(net, x):
        ps = [net.add_parameter(n, v, learning_rate_multiplier=0)
              for n, v in (("s", scale), ("b", bias), ("m", mean), ("v", stored))]
        return net.add("bn", "BatchNormalization", inputs=(x, *ps),
                       attrs={"spatial": True, "epsilon": 1e-5, "running_inv_std_dev": inv_std})

    net, name = _net((3, 4, 4), build)
    x = r.normal(size=(2, 3, 4, 4)).astype(np.float32)
    got = _eval(net, name, x)
    c = lambda a: a.reshape(1, 3, 1, 1)
    want = (x - c(mean)) / np.sqrt(c(var) + (2e-5 if inv_std else 1e-5)) * c(scale) + c(bias)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=5e-5)


def test_slice_rowstack_transpose_reshape_softmax():
    def build(net, x):
        a = net.add("a", "Slice", inputs=(x,), attrs={"begin": (1,), "end": (3,), "axis": (-1,)})
        c = net.add_parameter("c", np.ones((2, 1), np.float32))
        s = net.add("s", "RowStack", inputs=(a, c), attrs={"axis": -1})
        t = net.add("t", "TransposeDimensions", inputs=(s,), attrs={"axes": (-1, -2)})
        rs = net.add("r", "Reshape", inputs=(t,), attrs={"shape": (6,)})
        return net.add("sm", "LogSoftmax", inputs=(rs,))

    net, name = _net((2, 4), build)
    x = nets.rng(23).normal(size=(5, 2, 4)).astype(np.float32)
    got = _eval(net, name, x)
    s = np.concatenate([x[:, :, 1:3], np.ones((5, 2, 1), np.float32)], 2)
    r = s.transpose(0, 2, 1).reshape(5, 6)
    want = r - np.log(np.exp(r).sum(1, keepdims=True))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_dropout_off_at_inference_on_in_training():
    net, name = _net((100,), lambda net, x: net.add("d", "Dropout", inputs=(x,)))
    x = np.ones((4, 100), np.float32)
    assert np.array_equal(_eval(net, name, x), x)
    c = compile_network(net, [name], training=True, config={"dropout_rate": 0.5})
    out = c(Minibatch({"x": x[:, None]}, np.ones(4, np.int64)))[name].detach().numpy()
    assert set(np.unique(out)) <= {0.0, 2.0} and 0 < (out == 0).mean() < 1


def test_elementwise_broadcasting_and_unary_ops():
    def build(net, x):
        p = net.add_parameter("p", np.arange(6, dtype=np.float32).reshape(2, 3))
        m = net.add("m", "Minus", inputs=(x, p))  # (3,) frames - (2, 3) -> (2, 3)
        return net.add("e", "Exp", inputs=(net.add("n", "Negate", inputs=(m,)),))

    net, name = _net((3,), build)
    x = nets.rng(24).normal(size=(4, 3)).astype(np.float32)
    got = _eval(net, name, x)
    want = np.exp(-(x[:, None, :] - np.arange(6).reshape(2, 3)))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_sparse_input_fed_without_densifying_times():
    from netsurgeon.runtime.batch import SparseRows

    r = nets.rng(25)
    net = Network("emb")
    x = net.add("x", "InputValue", shape=(10,))
    E = net.add_parameter("E", r.normal(size=(10, 4)).astype(np.float32))
    net.add_to_group("output", net.add("emb", "Times", inputs=(E, x)))
    net.validate()
    idx = np.array([3, 7, 0], np.int64)
    rows = SparseRows(np.arange(4, dtype=np.int64), idx, np.ones(3, np.float32), 3, 10)
    src = generate(net, ["emb"], sparse_inputs=frozenset({"x"}))
    assert "torch.sparse.mm" in src.text and "to_dense" not in src.text
    got = evaluate(net, Minibatch({"x": rows}, np.array([3])), ["emb"])["emb"]
    np.testing.assert_allclose(got[0], E.value[idx], rtol=1e-6)


def _conv_net(w, in_shape, attrs, out_shape=None):
    net = Network("c")
    x = net.add("x", "InputValue", shape=in_shape)
    W = net.add_parameter("W", w)
    c = net.add("c", "Convolution", inputs=(W, x), attrs=attrs)
    net.add_to_group("output", c)
    net.validate()
    if out_shape is not None:
        assert tuple(c.shape) == out_shape
    return net


def test_transposed_convolution_is_the_adjoint_of_the_convolution():
    r = nets.rng(30)
    w = r.normal(size=(4, 3, 3, 3)).astype(np.float32)
    fwd = _conv_net(w, (3, 7, 8), {"kernel_shape": (3, 3, 3), "map_count": (4,),
                                   "strides": (3, 2, 2), "auto_padding": (False, True, True)},
                    (4, 4, 4))
    bwd = _conv_net(w, (4, 4, 4), {"kernel_shape": (4, 3, 3), "map_count": (3,),
                                   "strides": (4, 2, 2), "auto_padding": (False, True, True),
                                   "transpose": True, "output_shape": (3, 7, 8)}, (3, 7, 8))
    X = r.normal(size=(2, 3, 7, 8)).astype(np.float32)
    Y = r.normal(size=(2, 4, 4, 4)).astype(np.float32)
    cx = _eval(fwd, "c", X)
    ty = _eval(bwd, "c", Y)
    assert ty.shape == X.shape
    np.testing.assert_allclose((cx * Y).sum(), (X * ty).sum(), rtol=1e-4)


def test_dilated_convolution_and_kernel_without_channel_axis():
    r = nets.rng(31)
    w = r.normal(size=(2, 3, 3, 3)).astype(np.float32)
    net = _conv_net(w, (3, 9, 9), {"kernel_shape": (3, 3), "map_count": (2,),
                                   "auto_padding": (False, False), "dilation": (2, 2)})
    X = r.normal(size=(1, 3, 9, 9)).astype(np.float32)
    want = F.conv2d(torch.from_numpy(X), torch.from_numpy(w), dilation=2).numpy()
    np.testing.assert_allclose(_eval(net, "c", X), want, rtol=1e-5, atol=1e-5)


def test_legacy_2d_convolution_chw():
    r = nets.rng(32)
    w = r.normal(size=(27, 4)).astype(np.float32)  # CNTK [4 x 3·3·3]
    net = _conv_net(w, (3, 6, 6), {"convolution_2d": True, "kernel_shape": (1, 3, 3),
                                   "strides": (1, 1, 1), "map_count": (4, 1, 1),
                                   "auto_padding": (True,), "image_layout": "CHW"})
    X = r.normal(size=(2, 3, 6, 6)).astype(np.float32)
    want = F.conv2d(torch.from_numpy(X), torch.from_numpy(w.reshape(4, 3, 3, 3)),
                    padding=1).numpy()
    got = _eval(net, "c", X)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_transposed_convolution_with_computed_shape_is_the_adjoint():
    """CNTK's convention (kernel's channel extent = output channels, map count = x's channels)
    without an output_shape: the shape rule and the kernel agree with the forward convolution."""
    r = nets.rng(33)
    w = r.normal(size=(4, 3, 3, 3)).astype(np.float32)  # CNTK [3 x 3 x 3 x 4]
    fwd = _conv_net(w, (3, 7, 7), {"kernel_shape": (3, 3, 3), "map_count": (4,),
                                   "strides": (3, 2, 2), "auto_padding": (False,)}, (4, 3, 3))
    bwd = _conv_net(w, (4, 3, 3), {"kernel_shape": (3, 3, 3), "map_count": (4,),
                                   "strides": (1, 2, 2), "auto_padding": (False,),
                                   "transpose": True}, (3, 7, 7))
    X = r.normal(size=(2, 3, 7, 7)).astype(np.float32)
    Y = r.normal(size=(2, 4, 3, 3)).astype(np.float32)
    np.testing.assert_allclose((_eval(fwd, "c", X) * Y).sum(), (X * _eval(bwd, "c", Y)).sum(),
                               rtol=1e-4)


def test_bilinear_upsampling_is_the_textbook_bilinear_interpolation():
    """A transposed convolution with init='bilinear' (kernel 4, stride 2, pad 1, as CNTK's
    BilinearUpsamplingLayer would be used) doubles an image as bilinear interpolation does
    (torch's align_corners=False), away from the border pixels."""
    from netsurgeon.lang.brainscript import build_from_text

    net = build_from_text("""
        x = ImageInput (6, 5, 2)
        W = ParameterTensor {(4:4:2:2), init='bilinear', learningRateMultiplier=0}
        up = new ComputationNode [ operation = 'Convolution' ; inputs = (W : x)
            kernelShape = new TensorShape [ dims = (4:4:2) ]
            mapCount = new TensorShape [ dims = 2 ]
            strideShape = new TensorShape [ dims = (2:2:1) ] ; transpose = true
            dimPadding = new BoolVector [ items = false ]
            dimPadLower = new TensorShape [ dims = (1:1:0) ]
            dimPadUpper = new TensorShape [ dims = (1:1:0) ] ]
    """)
    assert net.node("up").shape == (2, 10, 12)
    X = nets.rng(34).normal(size=(3, 2, 5, 6)).astype(np.float32)
    got = evaluate(net, {"x": X}, ["up"])["up"]
    want = F.interpolate(torch.from_numpy(X), scale_factor=2, mode="bilinear",
                         align_corners=False).numpy()
    np.testing.assert_allclose(got[..., 1:-1, 1:-1], want[..., 1:-1, 1:-1], rtol=1e-5, atol=1e-5)
    w = net.node("W").value  # numpy (K, C, H, W): only channel k -> k
    assert np.all(w[0, 1] == 0) and np.all(w[1, 0] == 0) and w[0, 0, 1, 1] == 0.5625
