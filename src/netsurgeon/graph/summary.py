"""A per-node listing of a network, like Keras ``summary()`` or ``polygraphy inspect model``.

``summarize(net)`` returns plain data (JSON-ready): one row per node in topological order
(inputs before users, delayed inputs of recurrent loops ignored for the order) with its op,
inputs, output shape in numpy order and in CNTK's order (the reverse), parameter count,
trainable/frozen (a learning-rate multiplier above 0 trains), groups and recurrent loop, then
totals. ``format_summary`` renders it as a table. Shapes are those the network holds: call
``net.validate()`` first to have every shape inferred.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from netsurgeon.graph._traversal import recurrent_loops, roots, topological_order
from netsurgeon.ops import Category

if TYPE_CHECKING:
    from netsurgeon.graph._network import Network
    from netsurgeon.graph._node import Node

__all__ = ["summarize", "format_summary", "parameter_count", "cntk_shape"]


def cntk_shape(shape: tuple[int, ...] | None) -> list[int] | None:
    """CNTK's dimension order (``[256 x 784]`` for numpy ``(784, 256)``)."""
    return None if shape is None else list(reversed(shape))


def parameter_count(node: Node) -> int:
    """Values a parameter node holds (from its value, else its shape; 0 if unknown)."""
    if node.value is not None:
        return int(node.value.size)
    if node.shape is None:
        return 0
    count = 1
    for d in node.shape:
        count *= int(d)
    return count


def summarize(net: Network) -> dict[str, Any]:
    """Rows and totals of ``net`` as plain data (see the module docstring)."""
    params = net.registry.op_set(Category.PARAMETER)
    loop_of: dict[Node, int] = {}
    for number, comp in enumerate(recurrent_loops(net), 1):
        for n in comp:
            loop_of[n] = number
    groups: dict[Node, list[str]] = {}
    for group, members in net.groups().items():
        for n in members:
            groups.setdefault(n, []).append(group)
    rows = []
    total = trainable = frozen = 0
    by_op: Counter[str] = Counter()
    # depth first from the roots: each input is listed just before its first user
    for node in topological_order(net, [*roots(net), *net.nodes]):
        by_op[node.op] += 1
        row: dict[str, Any] = {
            "name": node.name,
            "op": node.op,
            "inputs": [None if i is None else i.name for i in node.inputs],
            "shape": None if node.shape is None else list(node.shape),
            "cntk_shape": cntk_shape(node.shape),
            "parameters": 0,
            "trainable": None,
            "learning_rate_multiplier": None,
            "groups": groups.get(node, []),
            "loop": loop_of.get(node),
        }
        if node.op in params:
            count = parameter_count(node)
            lrm = float(node.learning_rate_multiplier)
            row.update(parameters=count, trainable=lrm > 0, learning_rate_multiplier=lrm)
            total += count
            if lrm > 0:
                trainable += count
            else:
                frozen += count
        rows.append(row)
    loops = sorted(set(loop_of.values()))
    return {
        "name": net.name,
        "nodes": rows,
        "totals": {
            "nodes": len(rows),
            "parameter_nodes": sum(1 for r in rows if r["trainable"] is not None),
            "parameters": total,
            "trainable": trainable,
            "frozen": frozen,
            "recurrent_loops": len(loops),
            "by_op": dict(sorted(by_op.items())),
        },
    }


def _dims(dims: list[int] | None, cntk: bool) -> str:
    if dims is None:
        return "?"
    if cntk:
        return "[" + " x ".join(str(d) for d in dims) + "]"
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def format_summary(summary: dict[str, Any], *, width: int = 60) -> str:
    """The summary as a text table; the inputs column is cut to ``width`` characters."""
    header = ("node", "op", "shape", "CNTK dims", "params", "train", "groups", "loop", "inputs")
    table = [header]
    for r in summary["nodes"]:
        train = "" if r["trainable"] is None else ("yes" if r["trainable"] else "frozen")
        inputs = ", ".join("-" if i is None else i for i in r["inputs"])
        if len(inputs) > width:
            inputs = inputs[: width - 3] + "..."
        table.append((
            r["name"], r["op"], _dims(r["shape"], False), _dims(r["cntk_shape"], True),
            f"{r['parameters']:,}" if r["trainable"] is not None else "", train,
            ",".join(r["groups"]), "" if r["loop"] is None else str(r["loop"]), inputs,
        ))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    right = {4}
    lines = []
    for k, row in enumerate(table):
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in
                 enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("-" * len(lines[0]))
    t = summary["totals"]
    lines.append("-" * len(lines[0]))
    lines.append(f"nodes: {t['nodes']}, parameter nodes: {t['parameter_nodes']}, "
                 f"recurrent loops: {t['recurrent_loops']}")
    lines.append(f"parameters: {t['parameters']:,} (trainable {t['trainable']:,}, "
                 f"frozen {t['frozen']:,})")
    lines.append("by op: " + ", ".join(f"{op} {n}" for op, n in t["by_op"].items()))
    return "\n".join(lines) + "\n"
