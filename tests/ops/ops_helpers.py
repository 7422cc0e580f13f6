"""Small builders for op tests: a network with inputs/parameters, validated, shapes read back."""

from __future__ import annotations

from typing import Any

import numpy as np

from netsurgeon.graph import Network, prepare


def net_with(inputs: dict[str, tuple[int, ...]] | None = None,
             params: dict[str, tuple[int, ...]] | None = None) -> Network:
    """A network with InputValue nodes and LearnableParameter nodes of the given numpy shapes.

    A parameter shape containing 0 is created without a value (to be inferred) and with a
    fixed-value init so validation can complete it.
    """
    net = Network("t")
    for name, shape in (inputs or {}).items():
        net.add(name, "InputValue", shape=shape)
    for name, shape in (params or {}).items():
        if 0 in shape:
            net.add(name, "LearnableParameter", shape=shape,
                    attrs={"init": {"kind": "fixedValue", "value": 0.0}})
        else:
            net.add_parameter(name, np.zeros(shape, dtype=np.float32))
    return net


def shape_of(net: Network, op: str, inputs: list[str], attrs: dict[str, Any] | None = None,
             name: str = "out", shape: tuple[int, ...] | None = None) -> tuple[int, ...]:
    """Add one node, validate the network and return the node's inferred shape."""
    net.add(name, op, inputs, attrs=attrs or {}, shape=shape)
    prepare(net)  # shapes, then the values of parameters whose shape was completed
    return net.node(name).shape
