"""ONNX ``Scan`` over the time axis as a recurrent loop of PastValue delays.

netsurgeon's exporter writes a recurrent loop (docs/onnx.md) as one forward ``Scan``: its
state variables are the delays (the previous step's value, starting from a constant initial
state broadcast over the batch), its scan inputs the loop's inputs from outside as
``(batch, time, *sample)``, its scan outputs the loop values used outside. The importer turns
it back into the loop it came from: each state becomes a ``PastValue`` (``time_step`` 1,
``initial_state`` the constant), the body's nodes are converted once, per step (frames), with
the scan inputs standing for the outer sequences, and each PastValue's input is set to the
body's next-state value, which closes the cycle. Scan outputs are the body's values with the
``(batch, time)`` axes again. Refused (one line naming the node): backward scans (a
FutureValue loop, whose body also reads the lengths), scan axes other than time, a per-sample
or non-uniform initial state, final states that are used, ``Scan`` outside a sequence model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from netsurgeon.formats.onnx.importer_graph import Builder, Value

__all__ = ["scan"]


def _initial(b: Builder, v: Value | None, what: str) -> float:
    if v is None or not v.is_const or v.array is None:
        raise b.error(f"the initial value of state '{what}' must be a constant (broadcast "
                      "over the batch)")
    flat = np.asarray(v.array, np.float64).reshape(-1)
    if flat.size == 0 or not np.all(flat == flat[0]):
        raise b.error(f"the initial value of state '{what}' is not one number; netsurgeon's "
                      "PastValue starts from one value")
    return float(flat[0])


def scan(b: Builder, n: Any, ins: list[Value | None], at: dict[str, Any]) -> list[Value]:
    from netsurgeon.formats.onnx.importer import _convert_node, _order
    from netsurgeon.formats.onnx.importer_tensors import tensor_array

    if not b.sequences:
        raise b.error("Scan is supported in sequence models ((batch, time, ...) inputs plus "
                      "int64 'lengths') only")
    body = at["body"]
    k = int(at["num_scan_inputs"])
    n_states = len(ins) - k
    for key in ("scan_input_directions", "scan_output_directions"):
        if any(int(d) for d in at.get(key, ())):
            raise b.error("a backward Scan (a FutureValue loop) is not supported")
    if any(int(a) != 1 for a in list(at.get("scan_input_axes", [])) +
           list(at.get("scan_output_axes", []))):
        raise b.error("only scans over the time axis (axis 1) are supported")
    if len(body.input) != len(ins) or len(body.output) < n_states:
        raise b.error("the body's inputs and outputs do not match the Scan's")
    for i in range(n_states):
        if b.uses(n, i):
            raise b.error(f"the final state '{n.output[i]}' is used; not supported")
    outer = dict(b.values)
    node, label = b.onnx_node, n.name or n.output[0]
    delays = []
    for info, v in zip(body.input[:n_states], ins[:n_states]):
        init = _initial(b, v, info.name)
        shape = tuple(int(d) for d in v.array.shape)  # type: ignore[union-attr]
        shape = shape[1:] if len(shape) > 1 and shape[0] == 1 else shape
        name = info.name[:-len("/state")] if info.name.endswith("/state") else info.name
        pv = b.net.add(b.unique(name), "PastValue", [], attrs={"time_step": 1,
                                                                "initial_state": init},
                       shape=shape, dynamic=True)
        delays.append(pv)
        b.set(info.name, Value(info.name, node=pv, lead=1))
    for info, v in zip(body.input[n_states:], ins[n_states:]):
        if v is None or v.is_const or b.lead(v) != 2:
            raise b.error(f"scan input for '{info.name}' must be a sequence (batch, time, ...) "
                          "computed from the inputs")
        b.set(info.name, Value(info.name, node=v.node, lead=1))
    for t in body.initializer:
        b.const(t.name, tensor_array(t, b.where, None, "initializer"))
    try:
        for m in _order(body, b, b.where):
            _convert_node(b, m)
    finally:
        b.onnx_node = node
    results = [b.value(o.name) for o in body.output]
    b.values = outer
    for pv, out in zip(delays, results[:n_states]):
        if out.is_const or out.node is None or tuple(out.shape) != tuple(pv.shape):
            raise b.error(f"the next state of '{pv.name}' must be a value of shape "
                          f"{list(pv.shape)} computed in the body ({label})")
        b.net.set_input(pv, 0, out.node)
    values = [Value(o, array=np.zeros(0, np.float32)) for o in n.output[:n_states]]
    for o, v in zip(n.output[n_states:], results[n_states:]):
        if v.is_const:
            raise b.error(f"scan output '{o}' is a constant")
        values.append(Value(o, node=v.node, lead=2))
    return values
