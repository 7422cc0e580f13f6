"""Locally connected convolution (sharing=false) and BatchNormalization's training modes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tests.runtime import nets

from netsurgeon.graph import Network
from netsurgeon.runtime import compile_network, evaluate
from netsurgeon.runtime.batch import Minibatch
from netsurgeon.runtime.train import TrainConfig, Trainer


# ---- locally connected convolution ------------------------------------------------------------
def _local_conv_reference(x, w, kernel, stride, pads, dilation, sharing):
    """Slow, obvious loops: x (N, C, H, W); w numpy (M, P_h, P_w, C, kh, kw) with P = 1 on
    shared axes. out[n, m, i, j] = Σ_c,a,b w[m, i|0, j|0, c, a, b] · xpad[n, c, i·sh + a·dh,
    j·sw + b·dw]."""
    n_, c_, h_, w_ = x.shape
    (ph0, ph1), (pw0, pw1) = pads
    xp = np.zeros((n_, c_, h_ + ph0 + ph1, w_ + pw0 + pw1), np.float64)
    xp[:, :, ph0:ph0 + h_, pw0:pw0 + w_] = x
    kh, kw = kernel
    sh, sw = stride
    dh, dw = dilation
    oh = (xp.shape[2] - ((kh - 1) * dh + 1)) // sh + 1
    ow = (xp.shape[3] - ((kw - 1) * dw + 1)) // sw + 1
    m_ = w.shape[0]
    out = np.zeros((n_, m_, oh, ow))
    for n in range(n_):
        for m in range(m_):
            for i in range(oh):
                for j in range(ow):
                    kern = w[m, i if not sharing[0] else 0, j if not sharing[1] else 0]
                    acc = 0.0
                    for c in range(c_):
                        for a in range(kh):
                            for b in range(kw):
                                acc += kern[c, a, b] * xp[n, c, i * sh + a * dh, j * sw + b * dw]
                    out[n, m, i, j] = acc
    return out


def _conv(sample, w, attrs, bias=None):
    net = Network("lc")
    x = net.add("x", "InputValue", shape=sample)
    W = net.add_parameter("W", w)
    c = net.add("c", "Convolution", inputs=(W, x), attrs=attrs)
    out = c
    if bias is not None:
        out = net.add("p", "Plus", inputs=(c, net.add_parameter("b", bias)))
    net.add_to_group("output", out)
    net.validate()
    return net, out.name


LOCAL_CASES = [
    # kernel (kh, kw), stride, auto, lower, upper, dilation, sharing (h, w)
    ((3, 3), (1, 1), True, (0, 0), (0, 0), (1, 1), (False, False)),
    ((3, 2), (2, 1), False, (1, 0), (0, 1), (1, 1), (False, False)),
    ((2, 3), (2, 2), True, (0, 0), (0, 0), (1, 1), (False, True)),
    ((3, 3), (1, 2), False, (0, 0), (0, 0), (2, 1), (True, False)),
]


@pytest.mark.parametrize("kernel,stride,auto,lower,upper,dilation,sharing", LOCAL_CASES)
def test_locally_connected_convolution_matches_loop_reference(kernel, stride, auto, lower,
                                                              upper, dilation, sharing):
    r = nets.rng(40)
    C, H, Wd, M = 2, 6, 7, 3
    pads = [nets.conv_pads((k - 1) * d + 1, s, n, auto, lo, hi)
            for k, s, n, lo, hi, d in zip(kernel, stride, (H, Wd), lower, upper, dilation)]
    outs = [(n + lo + hi - ((k - 1) * d + 1)) // s + 1
            for n, (lo, hi), k, s, d in zip((H, Wd), pads, kernel, stride, dilation)]
    positions = tuple(1 if sh else o for o, sh in zip(outs, sharing))
    w = r.normal(size=(M, *positions, C, *kernel)).astype(np.float32)
    # CNTK order: sharing/auto_padding per axis (channel axis: shared, no padding)
    attrs = {"kernel_shape": (C, *kernel), "map_count": (M,), "strides": (C, *stride),
             "sharing": (True, *sharing), "auto_padding": (False, auto, auto),
             "lower_pad": (0, *lower), "upper_pad": (0, *upper), "dilation": (1, *dilation)}
    # W given as NDL's 2-D LearnableParameter would be: reinterpreted in memory order
    net, name = _conv((C, H, Wd), w.reshape(-1, M), attrs)
    assert tuple(net.node("c").shape) == (M, *outs)
    x = r.normal(size=(2, C, H, Wd)).astype(np.float32)
    got = evaluate(net, {"x": x}, [name])[name]
    want = _local_conv_reference(x, w, kernel, stride, pads, dilation, sharing)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_locally_connected_with_equal_kernels_is_the_shared_convolution():
    r = nets.rng(41)
    C, M, k = 3, 4, (3, 3)
    shared_w = r.normal(size=(M, C, *k)).astype(np.float32)
    base = {"kernel_shape": (C, *k), "map_count": (M,), "strides": (C, 2, 1),
            "auto_padding": (False, True, True)}
    shared, _ = _conv((C, 7, 8), shared_w, base)
    oh, ow = shared.node("c").shape[1:]
    local_w = np.broadcast_to(shared_w[:, None, None], (M, oh, ow, C, *k)).copy()
    bias = r.normal(size=(M, 1, 1)).astype(np.float32)
    local, name = _conv((C, 7, 8), local_w, {**base, "sharing": (False, False, False)}, bias)
    x = r.normal(size=(3, C, 7, 8)).astype(np.float32)
    plain = evaluate(shared, {"x": x}, ["c"])["c"]
    np.testing.assert_allclose(evaluate(local, {"x": x}, [name])[name], plain + bias,
                               rtol=1e-5, atol=1e-5)
    # all axes shared explicitly: the ordinary convolution, bit for bit
    again, _ = _conv((C, 7, 8), shared_w, {**base, "sharing": (True, True, True)})
    np.testing.assert_array_equal(evaluate(again, {"x": x}, ["c"])["c"], plain)


@pytest.mark.parametrize("spatial", [(7,), (4, 5, 6)])
def test_locally_connected_1d_and_3d_with_equal_kernels(spatial):
    r = nets.rng(43)
    C, M, nd = 2, 3, len(spatial)
    k = (3,) * nd
    w = r.normal(size=(M, C, *k)).astype(np.float32)
    attrs = {"kernel_shape": (C, *k), "map_count": (M,), "strides": (C,) + (2,) * nd,
             "auto_padding": (False,) + (True,) * nd}
    shared, _ = _conv((C, *spatial), w, attrs)
    out = tuple(shared.node("c").shape)
    per_position = np.broadcast_to(w.reshape(M, *(1,) * nd, C, *k), (M, *out[1:], C, *k))
    local, _ = _conv((C, *spatial), per_position.copy(), {**attrs, "sharing": (False,)})
    x = r.normal(size=(2, C, *spatial)).astype(np.float32)
    np.testing.assert_allclose(evaluate(local, {"x": x}, ["c"])["c"],
                               evaluate(shared, {"x": x}, ["c"])["c"], rtol=1e-5, atol=1e-5)


def test_locally_connected_convolution_trains_each_position_kernel():
    r = nets.rng(42)
    C, M = 2, 2
    w = r.normal(size=(M, 4, 4, C, 3, 3)).astype(np.float32)
    net = Network("lct")
    x = net.add("x", "InputValue", shape=(C, 4, 4))
    y = net.add("y", "InputValue", shape=(M, 4, 4))
    W = net.add_parameter("W", w)
    c = net.add("c", "Convolution", inputs=(W, x), attrs={
        "kernel_shape": (C, 3, 3), "map_count": (M,), "sharing": (False,),
        "auto_padding": (False, True, True)})
    net.add_to_group("criterion", net.add("se", "SquareError", inputs=(y, c)))
    net.validate()
    X = r.normal(size=(8, 1, C, 4, 4)).astype(np.float32)
    Y = r.normal(size=(8, 1, M, 4, 4)).astype(np.float32)
    batch = Minibatch({"x": X, "y": Y}, np.ones(8, np.int64))
    before = w.copy()
    Trainer(net, TrainConfig(epochs=1, learning_rate=0.001)).fit([batch])
    moved = np.abs(net.node("W").value - before).reshape(M, 16, -1).max(2)
    assert (moved > 0).all()  # every position's kernel got its own gradient


def test_locally_connected_convolution_wrong_weight_size_is_named():
    from netsurgeon.errors import NetsurgeonError

    with pytest.raises(NetsurgeonError, match=r"locally connected.*\(5, 4, 4, 2, 3, 3\)"):
        _conv((2, 4, 4), np.zeros((5, 2, 3, 3), np.float32), {
            "kernel_shape": (2, 3, 3), "map_count": (5,), "sharing": (False,),
            "auto_padding": (False, True, True)})


# ---- BatchNormalization -------------------------------------------------------------------------
def _bn_net(dim=4, spatial=False, seed=50, **attrs):
    r = nets.rng(seed)
    net = Network("bn")
    x = net.add("x", "InputValue", shape=dim if isinstance(dim, tuple) else (dim,))
    stat = (dim[0] if spatial else dim) if isinstance(dim, tuple) else dim
    shape = (stat,) if not isinstance(stat, tuple) else stat
    vals = {"scale": r.uniform(0.5, 2, size=shape), "bias": r.normal(size=shape),
            "mean": r.normal(size=shape), "var": r.uniform(0.5, 2, size=shape)}
    ps = [net.add_parameter(n, v.astype(np.float32), learning_rate_multiplier=0 if n in
                            ("mean", "var") else 1) for n, v in vals.items()]
    bn = net.add("bn", "BatchNormalization", inputs=(x, *ps),
                 attrs={"spatial": spatial, "epsilon": 1e-5, **attrs})
    net.add_to_group("output", bn)
    net.validate()
    return net


def _train_forward(net, name, batch):
    """One training-mode forward pass (updates running statistics in place)."""
    out = compile_network(net, [name], training=True)(batch)[name]
    return out.detach().numpy()


def _stats(net):
    return net.node("mean").value.copy(), net.node("var").value.copy()


@pytest.mark.parametrize("spatial", [False, True])
@pytest.mark.parametrize("tc", [0.0, 10.0])
def test_batch_norm_training_ignores_padding(spatial, tc):
    sample = (2, 3) if spatial else (4,)
    r = nets.rng(51)
    lengths = np.array([5, 2, 3])
    seqs = [r.normal(loc=2, size=(n, *sample)).astype(np.float32) for n in lengths]
    padded = np.full((3, 5, *sample), 1e3, np.float32)  # padding that would dominate
    for i, s in enumerate(seqs):
        padded[i, :len(s)] = s
    frames = np.concatenate(seqs)  # the same frames, one per sequence: nothing padded
    attrs = {"normalization_time_constant": tc}
    a = _bn_net(sample, spatial, **attrs)
    b = _bn_net(sample, spatial, **attrs)
    got = _train_forward(a, "bn", Minibatch({"x": padded}, lengths))
    want = _train_forward(b, "bn", Minibatch({"x": frames[:, None]}, np.ones(len(frames), int)))
    real = np.concatenate([np.arange(n) + 5 * i for i, n in enumerate(lengths)])
    np.testing.assert_allclose(got[real], want, rtol=1e-5, atol=1e-5)
    for sa, sb in zip(_stats(a), _stats(b)):
        np.testing.assert_allclose(sa, sb, rtol=1e-5, atol=1e-6)
    # and the statistics are those of the real frames (CNTK's update with 10 real frames)
    axes = (0, 2) if spatial else (0,)
    flat = frames.reshape(len(frames), 2, 3) if spatial else frames
    factor = 1.0 if tc == 0 else 1 - math.exp(-len(frames) / tc)
    mean0 = _bn_net(sample, spatial).node("mean").value
    np.testing.assert_allclose(_stats(a)[0], (1 - factor) * mean0 + factor * flat.mean(axes),
                               rtol=1e-5, atol=1e-6)


def _inference(net, x):
    return evaluate(net, {"x": x}, ["bn"])["bn"]


def _manual(x, scale, bias, mean, var, eps=1e-5):
    return (x - mean) / np.sqrt(var + eps) * scale + bias


def test_batch_norm_blend_inf_trains_with_running_statistics_and_keeps_them():
    net = _bn_net(normalization_time_constant=math.inf, blend_time_constant=math.inf)
    labels = net.add("labels", "InputValue", shape=(4,))
    net.add_to_group("criterion", net.add("se", "SquareError", inputs=(labels, net.node("bn"))))
    net.validate()
    mean0, var0 = _stats(net)
    x = (mean0 + np.sqrt(var0) * nets.rng(52).normal(size=(16, 4))).astype(np.float32)
    scale0, bias0 = net.node("scale").value.copy(), net.node("bias").value.copy()
    want = _inference(net, x)
    np.testing.assert_allclose(want, _manual(x, scale0, bias0, mean0, var0), rtol=1e-5,
                               atol=1e-5)
    got = _train_forward(net, "bn", Minibatch({"x": x[:, None]}, np.ones(16, int)))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    # train scale and bias towards a target: the gradient is that of the running-statistics
    # normalization, and the running statistics are never touched
    target = _manual(x, 2 * scale0, bias0 + 1, mean0, var0)
    batch = Minibatch({"x": x[:, None], "labels": target[:, None]}, np.ones(16, int))
    Trainer(net, TrainConfig(epochs=40, learning_rate=0.01)).fit([batch])
    assert _stats(net)[0].tobytes() == mean0.tobytes()
    assert _stats(net)[1].tobytes() == var0.tobytes()
    np.testing.assert_allclose(net.node("scale").value, 2 * scale0, rtol=2e-2)
    np.testing.assert_allclose(net.node("bias").value, bias0 + 1, rtol=2e-2, atol=2e-2)


def test_batch_norm_blend_inf_with_updates_normalizes_with_updated_running_statistics():
    net = _bn_net(normalization_time_constant=0.0, blend_time_constant=math.inf)
    scale, bias = net.node("scale").value.copy(), net.node("bias").value.copy()
    x = nets.rng(53).normal(loc=3, scale=2, size=(16, 4)).astype(np.float32)
    got = _train_forward(net, "bn", Minibatch({"x": x[:, None]}, np.ones(16, int)))
    mean, var = _stats(net)
    np.testing.assert_allclose(mean, x.mean(0), rtol=1e-5)  # replaced (time constant 0)
    np.testing.assert_allclose(got, _manual(x, scale, bias, mean, var), rtol=1e-5, atol=1e-5)


def test_batch_norm_finite_blend_mixes_running_and_minibatch_statistics():
    net = _bn_net(normalization_time_constant=math.inf, blend_time_constant=8.0)
    scale, bias = net.node("scale").value.copy(), net.node("bias").value.copy()
    mean0, var0 = _stats(net)
    x = nets.rng(54).normal(loc=3, scale=2, size=(24, 4)).astype(np.float32)
    got = _train_forward(net, "bn", Minibatch({"x": x[:, None]}, np.ones(24, int)))
    blend = 8.0 / (8.0 + 24)
    mean = blend * mean0 + (1 - blend) * x.mean(0)
    var = blend * var0 + (1 - blend) * x.var(0)
    np.testing.assert_allclose(got, _manual(x, scale, bias, mean, var), rtol=1e-5, atol=1e-5)
    assert _stats(net)[0].tobytes() == mean0.tobytes()  # normalization time constant inf


def test_batch_norm_negative_time_constant_is_refused_in_training():
    from netsurgeon.errors import EvaluationError

    net = _bn_net(normalization_time_constant=-1.0)
    with pytest.raises(EvaluationError, match="negative"):
        _train_forward(net, "bn", Minibatch({"x": np.zeros((2, 1, 4), np.float32)},
                                            np.ones(2, int)))
    _inference(net, np.zeros((2, 4), np.float32))  # inference does not care


BS_BN = """
    features = Input (4)
    h = DenseLayer {5, activation = Tanh} (features)
    bn = BatchNormalizationLayer {} (h)
    z = DenseLayer {3} (bn)
"""


def test_constant_clone_of_batch_norm_network_is_the_same_in_training_and_inference():
    from netsurgeon.lang.brainscript import build_from_text, clone_function

    net = build_from_text(BS_BN)
    bn = net.node("bn")
    r = nets.rng(55)
    for inp, lo in zip(bn.inputs[1:5], (0.5, -1, -1, 0.5)):
        inp.value[...] = r.uniform(lo, 2, size=inp.value.shape).astype(inp.value.dtype)
    f = clone_function([net.node("features")], net.node("z"), parameters="constant")
    y = f(net.add("x2", "InputValue", shape=(4,)), name="frozen")
    net.validate()
    frozen_bn = net.node("frozen.bn")
    stats0 = [i.value.copy() for i in frozen_bn.inputs[3:5]]
    x = r.normal(loc=1, size=(12, 4)).astype(np.float32)
    batch = Minibatch({"x2": x[:, None]}, np.ones(12, int))
    train = compile_network(net, [y.name], training=True)(batch)[y.name].detach().numpy()
    infer = evaluate(net, {"x2": x}, [y.name])[y.name]
    np.testing.assert_allclose(train, infer, rtol=1e-6, atol=1e-6)
    for before, inp in zip(stats0, frozen_bn.inputs[3:5]):
        assert inp.value.tobytes() == before.tobytes()
    # the original (non-frozen) BatchNormalization differs between the two modes
    batch0 = Minibatch({"features": x[:, None]}, np.ones(12, int))
    t0 = compile_network(net, ["z"], training=True)(batch0)["z"].detach().numpy()
    assert not np.allclose(t0, evaluate(net, {"features": x}, ["z"])["z"], atol=1e-3)


def test_locally_connected_weight_shape_is_inferred_by_the_registry():
    from netsurgeon.errors import NetsurgeonError

    attrs = {"kernel_shape": (2, 3, 3), "map_count": (5,), "sharing": (True, False, False),
             "auto_padding": (False, True, True), "strides": (2, 2, 1)}
    net = Network("lc")
    x = net.add("x", "InputValue", shape=(2, 5, 4))
    W = net.add("W", "LearnableParameter", shape=(0, 0, 0, 0, 0, 0),
                attrs={"init": {"kind": "uniform", "scale": 1.0}})
    c = net.add("c", "Convolution", inputs=(W, x), attrs=attrs)
    net.validate()
    assert W.shape == (5, 3, 4, 2, 3, 3) and c.shape == (5, 3, 4)
    # map count 0: inferred from W's size (kernel x unshared output positions)
    net, _ = _conv((2, 5, 4), np.zeros((5 * 12 * 18,), np.float32), {**attrs, "map_count": (0,)})
    assert net.node("c").shape == (5, 3, 4)
    with pytest.raises(NetsurgeonError, match="locally connected"):
        _conv((2, 5, 4), np.zeros((5, 2, 3, 3), np.float32), attrs)


@pytest.mark.parametrize("shape, stat_shape, reduce_dims", [
    ((6, 4, 5, 3), (1, 4, 1, 1), (0, 2, 3)),   # spatial: one statistic per channel
    ((6, 4, 5), (1, 4, 5), (0,)),              # dense over a rank-2 sample
    ((9, 7), (1, 7), (0,)),                    # dense vector
])
@pytest.mark.parametrize("time_constant", [0.0, 50.0, math.inf])
def test_fused_batch_norm_equals_the_reference_path(shape, stat_shape, reduce_dims,
                                                    time_constant):
    """Without padding torch's fused kernel runs (mask None); an all-ones mask takes the
    separate-ops path. Outputs, gradients and running statistics must agree."""
    import torch

    from netsurgeon.runtime import _kernels as K

    r = np.random.default_rng(4)
    x0 = torch.tensor(r.normal(1.5, 2.0, size=shape), dtype=torch.float32)
    channels = math.prod(stat_shape)
    results = []
    for mask in (None, torch.ones(shape[0])):
        x = x0.clone().requires_grad_(True)
        scale = torch.tensor(r.normal(size=channels), dtype=torch.float32, requires_grad=True) \
            if not results else results[0][4].detach().clone().requires_grad_(True)
        bias = torch.linspace(-1, 1, channels, requires_grad=True)
        run_mean, run_var = torch.full((channels,), 0.3), torch.full((channels,), 2.0)
        y = K.batch_norm_train(x, scale, bias, run_mean, run_var, stat_shape, reduce_dims, 1e-5,
                               time_constant, 0.0, mask)
        (y * torch.arange(y.numel()).reshape(y.shape).sin()).sum().backward()
        results.append((y.detach(), x.grad, run_mean, run_var, scale, scale.grad, bias.grad))
    fused, reference = results
    for a, b in zip(fused, reference):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=2e-5, atol=2e-5)
