"""SetProperty and SetPropertyForSubTree (ndl-mel.md §C.8): what each property does to nodes.

Groups (``feature``, ``criterion``, ...) are the network's; gradients are learning-rate
multipliers; ``freezeParameters`` is :func:`netsurgeon.graph.freeze` (batch normalization
also goes into inference mode); ``recurrent`` has no effect, as in CNTK.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from netsurgeon.errors import EditError, GraphError
from netsurgeon.graph import Network, Node, freeze
from netsurgeon.lang.mel._values import SUBTREE_PROPERTIES, property_effect, to_bool, to_float

__all__ = ["set_property", "subtree_multiplier"]


def set_property(net: Network, nodes: Iterable[Node], prop: str, value: Any) -> None:
    """Apply SetProperty ``prop`` (any name or alias, abbreviated) with ``value`` to ``nodes``;
    the value and the nodes are checked before anything changes."""
    nodes = list(nodes)
    effect = property_effect(prop)
    if effect == "recurrent":
        return
    if effect in ("learningRateMultiplier", "needGradient"):
        mult = _multiplier(effect, prop, value)
        for n in nodes:
            net.update(n, learning_rate_multiplier=mult)
        return
    on = to_bool(value, prop)
    if effect == "freezeParameters":
        try:
            freeze(nodes, multiplier=0.0 if on else 1.0)
        except GraphError as exc:
            raise EditError(exc.message, node=exc.node, hint="freezeParameters applies to "
                            "parameters and batch normalization") from None
        return
    for n in nodes:
        if on:
            net.add_to_group(effect, n)
        else:
            net.remove_from_group(effect, n)


def subtree_multiplier(prop: str, value: Any) -> float:
    """The learning-rate multiplier SetPropertyForSubTree ``prop`` = ``value`` sets."""
    effect = property_effect(prop)
    if effect not in SUBTREE_PROPERTIES:
        raise EditError(f"Invalid property, '{prop}', is not supported by SetPropertyForSubTree",
                        hint="use needGradient (computeGradient) or learningRateMultiplier")
    return _multiplier(effect, prop, value)


def _multiplier(effect: str, prop: str, value: Any) -> float:
    if effect == "learningRateMultiplier":
        return to_float(value, prop)
    return 1.0 if to_bool(value, prop) else 0.0
