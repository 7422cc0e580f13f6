"""Parameter initialisation from BrainScript (brainscript.md §4.3, bs-library.md §4).

A parameter carries its ``init`` rule (the dict of netsurgeon.ops.init) in its ``init``
attribute; values come from netsurgeon.ops.init.initialize, now when the shape is complete,
when the network is prepared otherwise.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from netsurgeon.errors import EvaluationError
from netsurgeon.ops.init import fans, initialize

KINDS = """
    x = Input (4)
    a = ParameterTensor {(3:4), init='fixedValue', value=2}
    b = ParameterTensor {(3), initValue=1.5}
    c = ParameterTensor {(3:4), init='glorotUniform'}
    d = Parameter (3, 4, init='gaussian', randomSeed=7)
    e = ParameterTensor {(3:4), init='xavier'}
    f = ParameterTensor {(300:400), init='TruncNormal', initValueScale=0.5}
    g = ParameterTensor {(3:4), init='zero'}
    h = ParameterTensor {(3:4)}
    z = a * x + b + c * x + d * x + e * x + g * x + h * x + ReduceSum (f)
"""


def test_init_rule_is_stored_and_seeds_follow_the_counter(build):
    net = build(KINDS)
    init = {n: net.node(n).attrs["init"] for n in "abcdefgh"}
    assert (init["a"]["kind"], init["a"]["value"]) == ("fixedValue", 2.0)
    assert (init["b"]["kind"], init["b"]["value"]) == ("fixedValue", 1.5)
    assert (init["g"]["kind"], init["g"]["value"]) == ("fixedValue", 0.0)  # 'zero'
    assert init["h"]["kind"] == "uniform"  # init='' without initValue
    # random kinds take the next counter value in creation order; a given seed is kept
    assert [init[n]["seed"] for n in "cdefh"] == [1, 7, 2, 3, 4]
    assert all(init[n]["seed"] == -1 for n in "abg")
    for n in "abcdefgh":
        node = net.node(n)
        np.testing.assert_array_equal(node.value, initialize(node.shape, dict(init[n])))


def test_values_follow_the_spec_formulas(build):
    net = build(KINDS)
    assert np.all(net.node("a").value == 2) and np.all(net.node("b").value == 1.5)
    assert np.all(net.node("g").value == 0)
    fan_in, fan_out = fans((4, 3))
    assert (fan_in, fan_out) == (4, 3)
    e = net.node("e").value
    assert np.abs(e).max() <= math.sqrt(3 / fan_in) and e.std() > 0  # xavier: uniform
    c = net.node("c").value
    assert np.abs(c).max() <= math.sqrt(6 / (fan_in + fan_out))
    f = net.node("f").value  # TruncNormal: redrawn outside 2 sigma, not clipped to it
    assert np.abs(f).max() <= 2 * 0.5 and np.sum(np.abs(f) == 1.0) == 0
    assert 0.4 < f.std() < 0.5
    assert np.abs(net.node("h").value).max() <= 0.05


def test_inferred_dimensions_are_initialised_when_the_network_is_prepared(build):
    net = build("x = Input (4)\nz = LinearLayer {3} (x)\n")
    w = net.node("z.W")
    assert w.shape == (4, 3) and w.attrs["init"]["kind"] == "glorotUniform"
    np.testing.assert_array_equal(w.value, initialize((4, 3), dict(w.attrs["init"])))


def test_clone_of_an_uninitialised_parameter_starts_from_the_same_values(build):
    net = build("""
        x = Input (4)
        z = LinearLayer {3} (x)
        f = BS.Network.CloneFunction (x, z)
        x2 = Input (4)
        z2 = f (x2)
    """)
    w, w2 = net.node("z.W"), net.node("z2.z.W")
    np.testing.assert_array_equal(w.value, w2.value)
    assert not np.shares_memory(w.value, w2.value) and w2.learning_rate_multiplier == 1


def test_bad_init_is_a_located_error(build):
    with pytest.raises(EvaluationError) as info:
        build("x = Input (4)\nw = ParameterTensor {(3:4), init='magic'}\nz = w * x\n")
    assert "node 'w'" in str(info.value) and "unknown init 'magic'" in str(info.value)


def _bilinear_reference(k: int, channels: int) -> np.ndarray:
    """bs-library.md §4: numpy (K, C, H, W); channel k -> k only, f = ⌊(k+1)/2⌋, ctr = (k−1)/2."""
    f, ctr = (k + 1) // 2, (k - 1) / 2
    one = 1 - np.abs(np.arange(k) - ctr) / f
    out = np.zeros((channels, channels, k, k))
    for c in range(channels):
        out[c, c] = np.outer(one, one)
    return out


@pytest.mark.parametrize("k, channels", [(4, 3), (3, 2), (5, 1)])
def test_bilinear_takes_the_kernel_size_from_the_shape(build, k, channels):
    """No kernelWidth/kernelHeight: the kernel is the parameter's own [W x H x C x K], also
    when its dimensions are inferred first."""
    net = build(f"W = ParameterTensor {{({k}:{k}:{channels}:{channels}), init='bilinear'}}\n")
    np.testing.assert_allclose(net.node("W").value, _bilinear_reference(k, channels))
    value = initialize((channels, channels, k, k), {"kind": "bilinear"})
    np.testing.assert_allclose(value, _bilinear_reference(k, channels))


@pytest.mark.parametrize("shape, message", [
    ((2, 2, 3, 4), "square kernel, not 4x3"),
    ((3, 2, 4, 4), "as many output as input channels, not C=2, K=3"),
    ((4, 4), r"CNTK shape \[W x H x C x K\]"),
])
def test_bilinear_shape_errors_say_what_is_needed(shape, message):
    from netsurgeon.errors import NetsurgeonError

    with pytest.raises(NetsurgeonError, match=message):
        initialize(shape, {"kind": "bilinear"})
    with pytest.raises(NetsurgeonError, match="differ from the parameter's kernel 4x4"):
        initialize((2, 2, 4, 4), {"kind": "bilinear", "kernel": (3, 3)})
