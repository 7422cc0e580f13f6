"""The edit layer: copying sections with name maps and input policies, freezing."""

from __future__ import annotations

import numpy as np
import pytest

from netsurgeon.errors import GraphError
from netsurgeon.graph import Network, clone, copy_nodes, freeze


def layer_net() -> Network:
    net = Network("m")
    x = net.add("x", "InputValue", shape=(4,))
    w = net.add_parameter("L1.W", np.arange(12, dtype=np.float32).reshape(4, 3))
    t = net.add("L1.T", "Times", inputs=(w, x))
    b = net.add_parameter("L1.B", np.zeros((3,), np.float32))
    p = net.add("L1.P", "Plus", inputs=(t, b))
    net.add("L1.S", "Sigmoid", inputs=(p,))
    return net


def test_clone_copies_the_value_once_or_shares_it():
    w = layer_net().node("L1.W")
    own, shared = clone(w, "W2"), clone(w, share_value=True)
    assert own.name == "W2" and not np.shares_memory(own.value, w.value)
    assert shared.name == "L1.W" and shared.value is w.value and shared.network is None


@pytest.mark.parametrize("outside, expected", [("keep", "x"), ("disconnect", None)])
def test_copy_nodes_into_a_network_with_an_input_policy(outside, expected):
    net = layer_net()
    section = [net.node(n) for n in ("L1.W", "L1.T", "L1.B", "L1.P")]
    copies = copy_nodes(section, into=net, names=lambda n: n.name.replace("L1", "L2"),
                        outside=outside)
    t2, p2 = copies[net.node("L1.T")], copies[net.node("L1.P")]
    assert t2.name == "L2.T" and t2.inputs[0] is copies[net.node("L1.W")]
    got = t2.inputs[1]
    assert (got.name if got is not None else None) == expected
    assert p2.inputs == (t2, copies[net.node("L1.B")])
    net.lint()


def test_copy_nodes_substitutes_arguments_and_stays_detached_without_a_target():
    net = layer_net()
    other = net.add("y", "InputValue", shape=(4,))
    section = [net.node(n) for n in ("L1.T", "L1.P", "L1.S")]
    copies = copy_nodes(section, names=lambda n: "c." + n.name,
                        substitute={net.node("x"): other}, share_values=True)
    s = copies[net.node("L1.S")]
    assert s.network is None and s.inputs[0].name == "c.L1.P"
    t = copies[net.node("L1.T")]
    assert t.inputs == (net.node("L1.W"), other)  # W kept, x substituted
    net.adopt_all(copies.values())
    net.lint()


def test_copy_nodes_into_a_network_is_all_or_nothing():
    net = layer_net()
    before = net.names()
    with pytest.raises(GraphError, match="already exists"):
        copy_nodes([net.node("L1.W"), net.node("L1.T")], into=net,
                   names={net.node("L1.W"): "W9", net.node("L1.T"): "l1.s"})
    assert net.names() == before
    net.lint()


def test_freeze_parameters_and_batch_normalization():
    net = layer_net()
    bn_inputs = [net.add_parameter(f"bn{i}", np.ones((3,), np.float32)) for i in range(4)]
    bn = net.add("bn", "BatchNormalization", inputs=(net.node("L1.S"), *bn_inputs),
                 attrs={"normalization_time_constant": 5000.0})
    frozen = freeze([net.node("L1.W"), bn])
    assert [n.learning_rate_multiplier for n in frozen] == [0.0, 0.0]
    assert bn.attrs["normalization_time_constant"] == float("inf")
    assert bn.attrs["blend_time_constant"] == float("inf")
    freeze([bn], multiplier=1.0)
    assert bn.learning_rate_multiplier == 1.0
    with pytest.raises(GraphError, match=r"L1.T \(Times\) is not freezable"):
        freeze([net.node("L1.B"), net.node("L1.T")])
    assert net.node("L1.B").learning_rate_multiplier == 1.0  # nothing changed
    net.lint()
