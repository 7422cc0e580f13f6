"""Recurrent loops: the nodes of a strongly connected component through PastValue /
FutureValue are emitted as one ``for t in range(T)`` block (backwards for FutureValue).

Inside the block every loop node works on one time step, ``(batch, *sample)``; inputs from
outside the loop that carry the time axis are viewed as ``(batch, time, *sample)`` and sliced
per step. A delay reads the stored step value of its input ``time_step`` steps away, or its
initial state before the start (PastValue) or past the end of each sequence (FutureValue,
which also honours each sequence's own length). Loop values used after the loop are stacked
back into frames. Delays outside loops are lowered as whole-sequence shifts
(``lowerings/recurrent.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from netsurgeon.errors import EvaluationError
from netsurgeon.graph import Node
from netsurgeon.ops import Category
from netsurgeon.runtime.codegen import Arg
from netsurgeon.runtime.lowerings.recurrent import delay_info

if TYPE_CHECKING:
    from netsurgeon.runtime.codegen import _Builder

__all__ = ["emit_loop"]


def emit_loop(b: _Builder, unit: list[Node], unit_of: dict[Node, int]) -> None:
    """Emit the ``for t`` block of one recurrent loop into the builder ``b``."""
    net = b.net
    members = set(unit)
    delay_ops = net.registry.op_set(Category.DELAY)
    delays = [n for n in unit if n.op in delay_ops]
    kinds = {n.op for n in delays}
    if not delays:
        raise EvaluationError("a cycle without PastValue/FutureValue cannot be evaluated",
                              node=unit[0].name)
    if len(kinds) > 1:
        raise EvaluationError("a recurrent loop mixes PastValue and FutureValue; CNTK "
                              "cannot evaluate that either", node=unit[0].name)
    backward = kinds == {"FutureValue"}
    names = ", ".join(n.name for n in unit[:6]) + (", ..." if len(unit) > 6 else "")
    b.emit(f"# recurrent loop over time ({'backward' if backward else 'forward'}): {names}")
    # external inputs: dynamic ones are sliced per step
    step_arg: dict[Node, Arg] = {}
    for n in unit:
        for inp in n.inputs:
            if inp is None or inp in members or inp in step_arg:
                continue
            a = b.value[inp]
            if a.dynamic and a.axis != "lengths":
                raise EvaluationError("a recurrent loop over a dynamic axis made by Where is "
                                      "not supported", node=n.name)
            if a.sparse:
                dn = b.ns.mint(inp.name + "_dense")
                b.emit(f"{dn} = {a.expr}.to_dense()", n)
                a = Arg(dn, a.node, a.dynamic, a.shape, False)
            if a.dynamic:
                seq = b.ns.mint(inp.name, "s_")
                dims = ", ".join(str(d) for d in a.shape)
                b.emit(f"{seq} = {a.expr}.reshape(B, T{', ' if dims else ''}{dims})", n)
                step_arg[inp] = Arg(seq + "[:, t]", inp, True, a.shape)
            else:
                step_arg[inp] = a
    # lists of per-step values: members used outside or read by a delay
    delayed_sources = {n.inputs[0] for n in delays}
    used_outside = {n for n in unit if n in b.outputs or any(
        u not in members and unit_of.get(u) is not None for u in n.users)}
    listed = [n for n in unit if n in delayed_sources or n in used_outside]
    lists = {n: b.ns.mint(n.name, "L_") for n in listed}
    for n in listed:
        b.emit(f"{lists[n]} = [None] * T", n)
    inits: dict[Node, tuple[str, int]] = {}
    for d in delays:
        step, value, init_node = delay_info(d)
        shape = tuple(d.shape or ())
        dims = ", ".join(str(x) for x in shape)
        if init_node is not None:
            ia = b.value[init_node]
            if ia.dynamic:
                raise EvaluationError("a per-sequence initial state is not supported; give "
                                      "the delay a constant initial value", node=d.name)
            iname = b.ns.mint(d.name + "_init", "i_")
            b.emit(f"{iname} = {ia.expr}.expand(B{', ' if dims else ''}{dims})", d)
        else:
            g = b.emitter(True).const(np.full(shape, value, np.float32), d.name + "_init")
            iname = b.ns.mint(d.name + "_init", "i_")
            b.emit(f"{iname} = {g}.expand(B{', ' if dims else ''}{dims})", d)
        inits[d] = (iname, step)
    rng = "range(T - 1, -1, -1)" if backward else "range(T)"
    b.emit(f"for t in {rng}:")
    local: dict[Node, Arg] = {}
    for n in unit:
        if n in delays:
            iname, step = inits[n]
            src = lists[n.inputs[0]]
            var = b.ns.mint(n.name)
            if backward:
                b.emit(f"{var} = K.future_step({src}, t, {step}, T, lengths, {iname})", n, 2)
            else:
                b.emit(f"{var} = {src}[t - {step}] if t >= {step} else {iname}", n, 2)
            local[n] = Arg(var, n, True, tuple(n.shape or ()))
            continue
        args = [local[inp] if inp in local else step_arg[inp] for inp in n.inputs]
        local[n] = b.lower(n, 2, True, args)
        if n in lists:
            b.emit(f"{lists[n]}[t] = {local[n].expr}", n, 2)
    for n in listed:
        if n not in used_outside:
            continue
        dims = ", ".join(str(x) for x in (n.shape or ()))
        name = b.ns.mint(n.name)
        b.locals.add(name)
        sep = ", " if dims else ""
        b.emit(f"{name} = torch.stack({lists[n]}, 1).reshape(-1{sep}{dims})", n)
        b.value[n] = Arg(name, n, True, tuple(n.shape or ()))
    for n in unit:
        b.value.setdefault(n, Arg("None", n, True, tuple(n.shape or ())))
    b.emit("del " + ", ".join(lists.values()) if lists else "pass")

