"""InitializeParameters: give every parameter with an ``init`` rule and no fitting value one.

A LearnableParameter carries its initialisation (NDL's and BrainScript's ``init=``, the seed
included) in its ``init`` attribute. Once shape inference has completed its dimensions, this
pass fills the value: random schemes, constants, ``fromFile``/``fromLiteral`` text matrices,
bilinear kernels (:func:`netsurgeon.ops.init.initialize`). A value that already fits the
shape is kept, so running the pass twice changes nothing.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING

import numpy as np

from netsurgeon.errors import NetsurgeonError
from netsurgeon.graph.passes._base import Pass, PassResult
from netsurgeon.ops import Category

if TYPE_CHECKING:
    from netsurgeon.graph._network import Network
    from netsurgeon.graph._node import Node

__all__ = ["InitializeParameters", "initialize_node", "needs_value"]


def needs_value(node: Node) -> bool:
    """Whether ``node`` has an init rule, a complete shape and no value of that shape."""
    init = node.attrs.get("init")
    shape = node.shape
    if init is None or shape is None or 0 in shape:
        return False
    return node.value is None or tuple(node.value.shape) != shape


def initialize_node(node: Node) -> bool:
    """Initialise one parameter if :func:`needs_value`; returns whether it did.

    Raises:
        NetsurgeonError: the init rule cannot produce the value (a missing file, a matrix of
            the wrong size...), naming the node and where it was defined.
    """
    if not needs_value(node):
        return False
    from netsurgeon.ops.init import initialize

    shape = node.shape
    assert shape is not None
    _check_fits_in_memory(node, shape)
    try:
        value = initialize(shape, dict(node.attrs["init"]), dtype=node.dtype)
    except NetsurgeonError as exc:
        exc.node = exc.node or node.name
        exc.args = (exc._render(),)
        if node.location:
            exc.with_location(node.location)
        raise
    except (MemoryError, ValueError, OverflowError) as exc:
        raise NetsurgeonError(f"cannot initialise '{node.name}' of shape {shape}: {exc}",
                              node=node.name, location=node.location,
                              hint="check the dimensions") from exc
    node.update(value=value)
    return True


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _size(count: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count} bytes"


def _check_fits_in_memory(node: Node, shape: tuple[int, ...]) -> None:
    """A parameter larger than the machine's memory is a clear error before numpy is asked
    (a 40-byte ``Parameter(100000, 100000)`` would otherwise start a 37 GiB allocation)."""
    need = math.prod(shape) * np.dtype(node.dtype or "float32").itemsize
    have = _physical_memory()
    if have is not None and need > have:
        raise NetsurgeonError(
            f"parameter '{node.name}' of shape {shape} needs {_size(need)}, more than this "
            f"machine's {_size(have)} of memory", node=node.name,
            location=node.location, hint="check the dimensions")


class InitializeParameters(Pass):
    """Fill the values of parameters whose shape is now known (see the module docstring)."""

    def call(self, net: Network) -> PassResult:
        params = net.registry.op_set(Category.PARAMETER)
        changed = False
        for node in net.nodes:
            if node.op in params:
                changed |= initialize_node(node)
        return PassResult(net, changed)
