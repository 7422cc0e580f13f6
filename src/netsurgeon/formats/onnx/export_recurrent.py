"""PastValue / FutureValue: whole-sequence shifts outside loops, ONNX ``Scan`` for loops.

Sequence mode only (the exporter switches to it when a delay is needed): values are frames
``(batch·time, *sample)``, ``ctx.batch`` / ``ctx.steps`` hold B and T, ``ctx.lengths`` the
per-sequence lengths.

A recurrent loop (strongly connected component through delays of ``time_step`` 1) becomes
one ``Scan`` over the time axis: each delay is a state variable (its input's value at the
previous step, starting from the initial state), inputs from outside that carry the time
axis are scan inputs ``(batch, time, *sample)`` sliced per step, parameters are read from
the outer graph, and loop values used outside are scan outputs stacked back to frames. A
FutureValue loop scans backwards and reads the initial state past the end of each sequence
(a per-step ``t + 1 < length`` scan input), as the runtime's ``future_step``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from netsurgeon.errors import FormatError
from netsurgeon.formats.onnx._layer import export_entry
from netsurgeon.formats.onnx.export_context import Value, refuse
from netsurgeon.graph import Node
from netsurgeon.ops import Category

if TYPE_CHECKING:
    from netsurgeon.formats.onnx.export_graph import Exporter

__all__ = ["export_loop"]


def _init(ctx, node, given: Value | None) -> str:
    """The delay's initial state: its input 1 (without the sequence axis), else a constant of
    its sample shape."""
    if node.attrs["time_step"] < 1:
        raise refuse(node, f"time_step {node.attrs['time_step']} must be at least 1")
    if given is not None:
        if given.dynamic:
            raise refuse(node, "a per-sequence initial state is not supported; give the delay a "
                               "constant initial value")
        return given.name
    return ctx.const(np.full(tuple(node.shape), node.attrs["initial_state"]), "initial_state")


def _sequences(ctx, x: Value) -> str:
    """Frames ``(B·T, *s)`` as ``(B, T, *s)``."""
    shape = ctx.add("Concat", [ctx.batch_size(), ctx.time_steps(), ctx.ints(x.shape)],
                    "seq_shape", axis=0)
    return ctx.add("Reshape", [x.name, shape], "sequences")


def _steps_valid(ctx, k: int) -> str:
    """(B, T) bool: t + k < length of the sequence (FutureValue reads inside it)."""
    with ctx.in_main():
        t = ctx.add("Squeeze", [ctx.time_steps(), ctx.ints([0])], "T")
        zero = ctx.const(np.asarray(0, np.int64), "zero", np.int64)
        one = ctx.const(np.asarray(1, np.int64), "one", np.int64)
        row = ctx.add("Unsqueeze", [ctx.add("Range", [zero, t, one], "steps"), ctx.ints([0])],
                      "steps_row")
        ahead = ctx.add("Add", [row, ctx.const(np.asarray(k, np.int64), "k", np.int64)], "ahead")
        col = ctx.add("Unsqueeze", [ctx.lengths, ctx.ints([1])], "lengths_col")
        return ctx.add("Less", [ahead, col], "valid")


def _shift(ctx, node, args, future: bool) -> str:
    x = args[0]
    if not ctx.sequences or not x.dynamic:
        raise refuse(node, "a delay needs an input with the sequence axis")
    k = node.attrs["time_step"]
    init = _init(ctx, node, args[1] if len(args) > 1 else None)
    seq = _sequences(ctx, x)
    dims = ctx.ints(x.shape)
    block = ctx.add("Expand", [init, ctx.add("Concat", [ctx.batch_size(), ctx.ints([k]), dims],
                                             "block_shape", axis=0)], "block")
    t = ctx.time_steps()
    if future:
        rest = ctx.add("Slice", [seq, ctx.ints([k]), ctx.ints([2 ** 62]), ctx.ints([1])], "rest")
        parts = [rest, block]
    else:
        rest = ctx.add("Slice", [seq, ctx.ints([0]), ctx.ints([-k]), ctx.ints([1])], "rest")
        parts = [block, rest]
    joined = ctx.add("Concat", parts, "joined", axis=1)
    shifted = ctx.add("Slice", [joined, ctx.ints([0]), t, ctx.ints([1])], "shifted")
    if future:
        valid = ctx.add("Reshape", [_steps_valid(ctx, k), ctx.ints(
            (0, 0) + (1,) * len(x.shape))], "valid_cols")
        shifted = ctx.add("Where", [valid, shifted, init], "inside")
    return ctx.add("Reshape", [shifted, ctx.ints((-1, *x.shape))], node.op)


@export_entry("PastValue")
def _past(ctx, node, args):
    return _shift(ctx, node, args, future=False)


@export_entry("FutureValue")
def _future(ctx, node, args):
    return _shift(ctx, node, args, future=True)


def _loop_refused(unit: list[Node], why: str) -> FormatError:
    names = ", ".join(n.name for n in unit[:8]) + (", ..." if len(unit) > 8 else "")
    return FormatError(f"cannot export the recurrent loop of nodes {names} to ONNX: {why}")


def export_loop(ex: Exporter, unit: list[Node], unit_of: dict[Node, int]) -> None:
    """Export one recurrent loop as a ``Scan`` (see the module docstring)."""
    ctx = ex.ctx
    helper = ex.onnx.helper
    members = set(unit)
    delays = [n for n in unit if n.op in ex.registry.op_set(Category.DELAY)]
    kinds = {n.op for n in delays}
    if not delays or len(kinds) > 1:
        raise _loop_refused(unit, "a loop needs delays of one kind (PastValue or FutureValue)")
    if any(d.attrs["time_step"] != 1 for d in delays):
        raise _loop_refused(unit, "delays inside a loop must have time_step 1")
    backward = kinds == {"FutureValue"}
    ctx.node = unit[0]
    b = ctx.batch_size()
    # outer values: scan inputs (with the time axis) and the states' initial values
    scan_in: dict[Node, tuple[str, str]] = {}  # outside node -> (outer seq, body step name)
    for n in unit:
        for inp in n.inputs:
            if inp is None or inp in members or inp in scan_in:
                continue
            v = ex.values[inp]
            if v.dynamic:
                ctx.node = inp
                scan_in[inp] = (_sequences(ctx, v), ctx.names.mint(inp.name + "/step"))
    if not scan_in:
        raise _loop_refused(unit, "no input from outside the loop carries the sequence axis")
    states = []  # (delay, outer initial, body state in, body state out)
    def given(d: Node) -> Value | None:
        return ex.values[d.inputs[1]] if len(d.inputs) > 1 and d.inputs[1] is not None else None

    for d in delays:
        ctx.node = d
        dims = ctx.ints(d.shape)
        shape = ctx.add("Concat", [b, dims], "state_shape", axis=0)
        init = ctx.add("Expand", [_init(ctx, d, given(d)), shape], "state_init")
        states.append((d, init, ctx.names.mint(d.name + "/state"),
                       ctx.names.mint(d.name + "/state_out")))
    valid_name = None
    if backward:
        ctx.node = delays[0]
        valid_outer = _steps_valid(ctx, 1)
        valid_name = ctx.names.mint(delays[0].name + "/valid_step")
    used_outside = [n for n in unit if n in ex.out_set or any(
        u not in members and u in unit_of for u in n.users)]
    # the body: one time step, values (batch, *sample)
    local: dict[Node, Value] = {}
    with ctx.subgraph(frames=b) as body:
        for d, _, state_in, _ in states:
            ctx.node = d
            value = state_in
            if backward:
                valid = ctx.add("Reshape", [valid_name, ctx.ints((-1,) + (1,) * len(d.shape))],
                                "valid")
                value = ctx.add("Where", [valid, state_in, _init(ctx, d, given(d))],
                                "FutureValue")
            local[d] = Value(value, d, True, tuple(d.shape))
        for n in unit:
            if n in local:
                continue
            args = []
            for inp in n.inputs:
                if inp in local:
                    args.append(local[inp])
                elif inp in scan_in:
                    v = ex.values[inp]
                    args.append(Value(scan_in[inp][1], inp, True, v.shape))
                else:
                    args.append(ex.values[inp])
            local[n] = ex.run(n, args, ctx.names.mint(n.name + "/step"))
        outs = []
        for d, _, _, state_out in states:
            ctx.node = d
            body.append(helper.make_node("Identity", [local[d.inputs[0]].name], [state_out],
                                         name=ctx.node_names.mint(d.name + "/next_state")))
            outs.append(state_out)
        scan_outs = []
        for n in used_outside:
            ctx.node = n
            name = ctx.names.mint(n.name + "/step_out")
            body.append(helper.make_node("Identity", [local[n].name], [name],
                                         name=ctx.node_names.mint(n.name + "/step_out")))
            scan_outs.append(name)
    elem = ctx.elem
    bool_type = ex.onnx.TensorProto.BOOL
    body_inputs = [helper.make_tensor_value_info(s[2], elem, None) for s in states]
    body_inputs += [helper.make_tensor_value_info(step, elem, None)
                    for _, step in scan_in.values()]
    if backward:
        body_inputs.append(helper.make_tensor_value_info(valid_name, bool_type, None))
    body_outputs = [helper.make_tensor_value_info(o, elem, None) for o in outs + scan_outs]
    graph = helper.make_graph(body, f"{unit[0].name}/loop", body_inputs, body_outputs)
    outer_in = [s[1] for s in states] + [seq for seq, _ in scan_in.values()]
    if backward:
        outer_in.append(valid_outer)
    n_scan = len(scan_in) + (1 if backward else 0)
    ctx.node = unit[0]
    finals = [ctx.names.mint(d.name + "/final_state") for d, *_ in states]
    stacked = [ctx.names.mint(n.name + "/sequences") for n in used_outside]
    attrs = {"body": graph, "num_scan_inputs": n_scan, "scan_input_axes": [1] * n_scan,
             "scan_output_axes": [1] * len(stacked)}
    if backward:
        attrs["scan_input_directions"] = [1] * n_scan
        attrs["scan_output_directions"] = [1] * len(stacked)
    ctx.main.nodes.append(helper.make_node("Scan", outer_in, finals + stacked,
                                           name=ctx.node_names.mint(unit[0].name + "/loop"),
                                           **attrs))
    for n, seq in zip(used_outside, stacked):
        target = ex._target(n)
        ctx.main.nodes.append(helper.make_node(
            "Reshape", [seq, ctx.ints((-1, *[int(d) for d in n.shape]))], [target],
            name=ctx.node_names.mint(n.name)))
        ex.values[n] = Value(target, n, True, tuple(n.shape))
    for n in unit:
        ex.values.setdefault(n, Value("", n, True, tuple(n.shape or ())))
