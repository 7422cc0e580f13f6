"""PastValue / FutureValue outside recurrent loops: one shift over whole sequences.

Inside a loop codegen emits the per-step read itself (see ``codegen._Builder.loop``).
"""

from __future__ import annotations

import numpy as np

from netsurgeon.errors import EvaluationError
from netsurgeon.runtime.lowerings import lowering


def _init(em, node) -> str:
    from netsurgeon.runtime.sequences import delay_info

    step, value, init_node = delay_info(node)
    if init_node is not None:
        a = em.builder.value[init_node]
        if a.dynamic:
            raise EvaluationError("a per-frame initial state is not supported", node=node.name)
        return a.expr
    return em.const(np.full(tuple(node.shape), value, np.float32), node.name + "_init")


@lowering("PastValue", "Delay")
def _past(em, node, args):
    from netsurgeon.runtime.sequences import delay_info

    x = args[0]
    step = delay_info(node)[0]
    return f"K.shift_past({x}, {em.batch}, {em.steps}, {step}, {_init(em, node)})"


@lowering("FutureValue")
def _future(em, node, args):
    from netsurgeon.runtime.sequences import delay_info

    x = args[0]
    step = delay_info(node)[0]
    return (f"K.shift_future({x}, {em.batch}, {em.steps}, {step}, {_init(em, node)}, "
            f"{em.lengths})")
