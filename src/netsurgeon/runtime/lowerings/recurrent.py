"""PastValue / FutureValue outside recurrent loops: one shift over whole sequences; the
sequence ops TimeReverse and Shift (never inside a loop: they are not delays).

Inside a loop the code generator emits the per-step read itself (see ``sequences``).
"""

from __future__ import annotations

import numpy as np

from netsurgeon.errors import EvaluationError
from netsurgeon.graph import Node
from netsurgeon.runtime.lowerings import lowering

__all__ = ["delay_info"]


def delay_info(node: Node) -> tuple[int, float, Node | None]:
    """(time step, initial value, initial-state node or None) of a PastValue/FutureValue."""
    step = node.attrs["time_step"]
    if step < 1:
        raise EvaluationError(f"time_step {step} of a delay must be at least 1", node=node.name)
    init_node = node.inputs[1] if len(node.inputs) > 1 else None
    return step, node.attrs["initial_state"], init_node


def _init(em, node) -> str:
    _, value, init_node = delay_info(node)
    if init_node is not None:
        a = em.builder.value[init_node]
        if a.dynamic:
            raise EvaluationError("a per-frame initial state is not supported", node=node.name)
        return a.expr
    return em.const(np.full(tuple(node.shape), value, np.float32), node.name + "_init")


@lowering("PastValue")
def _past(em, node, args):
    step = delay_info(node)[0]
    return f"K.shift_past({args[0]}, {em.batch}, {em.steps}, {step}, {_init(em, node)})"


@lowering("FutureValue")
def _future(em, node, args):
    step = delay_info(node)[0]
    return (f"K.shift_future({args[0]}, {em.batch}, {em.steps}, {step}, {_init(em, node)}, "
            f"{em.lengths})")


@lowering("TimeReverse")
def _time_reverse(em, node, args):
    x = args[0]
    if not x.dynamic:
        return x.expr
    return f"K.time_reverse({x}, {em.batch}, {em.steps}, {em.lengths})"


@lowering("Shift")
def _shift(em, node, args):
    x, boundary = args
    if node.attrs["dim"] != -1:
        raise EvaluationError(f"Shift along axis {node.attrs['dim']} is not supported; only "
                              "dim=-1 (the dynamic axis)", node=node.name)
    if not x.dynamic:
        raise EvaluationError("Shift needs an input with a dynamic axis", node=node.name)
    duplicate = node.attrs["boundary_mode"] == 0
    return (f"K.shift_frames({x}, {em.batch}, {em.steps}, {int(node.attrs['from_offset'])}, "
            f"{boundary}, {boundary.dynamic}, {duplicate}, {em.lengths})")
