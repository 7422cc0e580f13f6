"""Traversal algorithms are iterative and handle recurrent loops."""

from __future__ import annotations

import pytest

from netsurgeon.errors import ValidationError
from netsurgeon.graph import (
    Network,
    reachable_down,
    reachable_up,
    recurrent_loops,
    roots,
    strongly_connected_components,
    topological_order,
)


def chain(n: int) -> Network:
    net = Network("chain")
    prev = net.add("x", "InputValue", shape=(4,))
    for i in range(n):
        prev = net.add(f"n{i}", "Sigmoid", inputs=(prev,))
    return net


def test_topological_order_on_deep_chain_without_recursion():
    net = chain(50_000)
    order = topological_order(net)
    assert order[0].name == "x" and order[-1].name == "n49999"
    assert len(reachable_up(net, [order[-1]])) == 50_001
    assert len(reachable_down(net, [order[0]])) == 50_001
    assert len(strongly_connected_components(net)) == 50_001
    assert roots(net) == [order[-1]]


def test_cycle_without_delay_is_reported():
    net = chain(3)
    net.set_input("n0", 0, "n2")
    with pytest.raises(ValidationError, match="cycle without a delay node"):
        topological_order(net)


def test_recurrent_loop_through_past_value():
    net = Network()
    x = net.add("x", "InputValue", shape=(3,))
    # h = Sigmoid(x + PastValue(h))
    d = net.add("d", "PastValue", inputs=(None,), attrs={}, shape=(3,))
    p = net.add("p", "Plus", inputs=(x, d))
    h = net.add("h", "Sigmoid", inputs=(p,))
    net.set_input(d, 0, h)
    loops = recurrent_loops(net)
    assert len(loops) == 1 and {n.name for n in loops[0]} == {"d", "p", "h"}
    order = [n.name for n in topological_order(net)]
    assert order.index("d") < order.index("p") < order.index("h")
    net.validate()
    assert h.shape == (3,)


def test_million_node_chain_builds_validates_saves_loads(tmp_path):
    """In `make test` on purpose (issue 9): the loop stays under 2 minutes with it."""
    from netsurgeon.formats import load, save

    net = chain(1_000_000)
    net.validate()
    assert net.node("n999999").shape == (4,)
    path = tmp_path / "chain.nsm"
    save(net, path)
    back = load(path)
    assert len(back) == 1_000_001
    assert back.node("n999999").inputs[0].name == "n999998"
    back.validate()
