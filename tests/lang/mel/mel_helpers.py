"""Helpers for the MEL tests: RBFF networks built with the graph API (the seed's naming)."""

from __future__ import annotations

import numpy as np

from netsurgeon.graph import Network


def add_bff(net: Network, name: str, x, in_dim: int, out_dim: int, rng) -> object:
    """The nodes CNTK's BFF macro makes: name.W, name.B, name.FF.T, name.FF.P."""
    w = net.add_parameter(f"{name}.W", rng.standard_normal((in_dim, out_dim)).astype(np.float32))
    b = net.add_parameter(f"{name}.B", rng.standard_normal((out_dim,)).astype(np.float32))
    t = net.add(f"{name}.FF.T", "Times", (w, x))
    return net.add(f"{name}.FF.P", "Plus", (t, b))


def rbff_network(layers: int = 3, width: int = 8, in_dim: int = 6, out_dim: int = 4,
                 seed: int = 0, name: str = "model1") -> Network:
    """features -> L1..Ln (RBFF: L.BFF.*, L.RL) -> CE (BFF + CE.F sigmoid), like the seed."""
    rng = np.random.default_rng(seed)
    net = Network(name)
    x = net.add("features", "InputValue", shape=(in_dim,))
    net.add("labels", "InputValue", shape=(out_dim,))
    net.add_to_group("feature", x)
    net.add_to_group("label", "labels")
    prev, prev_dim = x, in_dim
    for i in range(1, layers + 1):
        p = add_bff(net, f"L{i}.BFF", prev, prev_dim, width, rng)
        prev = net.add(f"L{i}.RL", "RectifiedLinear", (p,))
        prev_dim = width
    p = add_bff(net, "CE.BFF", prev, prev_dim, out_dim, rng)
    f = net.add("CE.F", "Sigmoid", (p,))
    net.add_to_group("output", f)
    net.add_to_group("criterion", f)
    net.validate()
    return net


def go(text: str, tmp_path, **kw):
    """Run MEL ``text`` with ``$D`` standing for the test's directory."""
    from netsurgeon.lang.mel import run

    return run(text.replace("$D", str(tmp_path)), **kw)
