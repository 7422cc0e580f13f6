"""What changed between two networks: ``diff_networks(a, b)``, plain data ready for JSON.

Nodes are matched first by name (names are identity in CNTK and MEL). Nodes left over on
both sides are then matched by structure, which finds renames: visiting B's unmatched nodes
inputs first, one matches an unmatched A node with the same op, attributes and shape whose
inputs are the counterparts of its own inputs; a leaf must also hold the same value (the
same bytes, shape and dtype). What stays unmatched is *added* (only in B) or *removed* (only
in A).

For every matched pair the diff lists inputs that point elsewhere (*rewired*: input *i* of
B is not the counterpart of input *i* of A), changes of op, shape, dtype, attributes, tags and
learning-rate multiplier (of parameters and batch normalization, the nodes it applies to),
group membership, and parameters (any node holding a value) whose values differ. With
``values=True`` every matched value gets its max |difference|.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from netsurgeon.graph._traversal import topological_order
from netsurgeon.ops import Category

if TYPE_CHECKING:
    from netsurgeon.graph._network import Network
    from netsurgeon.graph._node import Node

__all__ = ["diff_networks", "format_diff", "is_equal"]

_MISSING = object()


def _shape(node: Node) -> list[int] | None:
    return None if node.shape is None else list(node.shape)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return repr(value)


def _digest(value: np.ndarray | None) -> tuple[Any, ...] | None:
    if value is None:
        return None
    data = np.ascontiguousarray(value)
    return (str(data.dtype), data.shape, hashlib.sha1(data.tobytes()).hexdigest())


def _attrs_key(node: Node) -> str:
    return repr(sorted((k, repr(v)) for k, v in node.attrs.items()))


def _order(net: Network) -> list[Node]:
    try:
        return topological_order(net)
    except Exception:  # a cycle without delay: insertion order still matches most nodes
        return net.nodes


def _match(a: Network, b: Network) -> dict[Node, Node]:
    """{node of A: its counterpart in B}."""
    a2b: dict[Node, Node] = {}
    for na in a.nodes:
        nb = b.get(na.name)
        if nb is not None:
            a2b[na] = nb
    matched_b = set(a2b.values())
    left_a = [n for n in a.nodes if n not in a2b]
    left_b = [n for n in _order(b) if n not in matched_b]
    if not left_a or not left_b:
        return a2b
    b2a = {nb: na for na, nb in a2b.items()}

    def key(node: Node, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
        leaf = _digest(node.value) if not node.inputs else None
        return (node.op, _attrs_key(node), node.shape, node.dtype, inputs, leaf)

    candidates: dict[tuple[Any, ...], list[Node]] = {}
    for na in left_a:
        candidates.setdefault(key(na, tuple(na.inputs)), []).append(na)
    for nb in left_b:
        ins = tuple(None if i is None else b2a.get(i, _MISSING) for i in nb.inputs)
        if _MISSING in ins:
            continue
        found = candidates.get(key(nb, ins))
        if found:
            na = found.pop(0)
            a2b[na] = nb
            b2a[nb] = na
    return a2b


def _value_diff(va: np.ndarray, vb: np.ndarray) -> float:
    if va.size == 0:
        return 0.0
    if np.array_equal(va, vb, equal_nan=va.dtype.kind == "f" and vb.dtype.kind == "f"):
        return 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(va.astype(np.float64) - vb.astype(np.float64))
    return float("nan") if np.isnan(d).all() else float(np.nanmax(d))


def diff_networks(a: Network, b: Network, *, values: bool = False) -> dict[str, Any]:
    """The differences from ``a`` to ``b`` (see the module docstring)."""
    a2b = _match(a, b)
    freezable = b.registry.op_set(Category.FREEZABLE) | a.registry.op_set(Category.FREEZABLE)
    matched_b = set(a2b.values())
    groups_b = {n: b.groups_of(n) for n in b.nodes}
    added = [{"name": n.name, "op": n.op, "shape": _shape(n),
              "inputs": [None if i is None else i.name for i in n.inputs],
              "groups": groups_b[n]} for n in _order(b) if n not in matched_b]
    removed = [{"name": n.name, "op": n.op, "shape": _shape(n)}
               for n in a.nodes if n not in a2b]
    renamed = [{"from": na.name, "to": nb.name} for na, nb in a2b.items()
               if na.name != nb.name]
    rewired: list[dict[str, Any]] = []
    changed: list[dict[str, Any]] = []
    value_rows: list[dict[str, Any]] = []
    for na, nb in a2b.items():
        for i in range(max(len(na.inputs), len(nb.inputs))):
            ia = na.inputs[i] if i < len(na.inputs) else _MISSING
            ib = nb.inputs[i] if i < len(nb.inputs) else _MISSING
            want = ia if ia is None or ia is _MISSING else a2b.get(ia, _MISSING)
            if want is not ib:
                rewired.append({"node": nb.name, "input": i,
                                "from": getattr(ia, "name", None),
                                "to": getattr(ib, "name", None)})

        def change(field: str, old: Any, new: Any, node: Node = nb) -> None:
            changed.append({"node": node.name, "field": field, "from": _jsonable(old),
                            "to": _jsonable(new)})

        for field in ("op", "dtype"):
            if getattr(na, field) != getattr(nb, field):
                change(field, getattr(na, field), getattr(nb, field))
        if na.shape != nb.shape:
            change("shape", _shape(na), _shape(nb))
        if (na.op in freezable or nb.op in freezable) and \
                float(na.learning_rate_multiplier) != float(nb.learning_rate_multiplier):
            change("learning_rate_multiplier", float(na.learning_rate_multiplier),
                   float(nb.learning_rate_multiplier))
        if na.tags != nb.tags:
            change("tags", sorted(na.tags), sorted(nb.tags))
        for k in sorted(set(na.attrs) | set(nb.attrs)):
            old, new = na.attrs.get(k, _MISSING), nb.attrs.get(k, _MISSING)
            if repr(old) != repr(new):
                change(f"attrs.{k}", None if old is _MISSING else old,
                       None if new is _MISSING else new)
        va, vb = na.value, nb.value
        if va is not None and vb is not None and va.shape == vb.shape:
            d = _value_diff(va, vb)
            if d != 0 or values:
                value_rows.append({"node": nb.name, "max_abs_diff": _jsonable(d),
                                   "changed": d != 0, "size": int(va.size)})
        elif (va is None) != (vb is None):
            change("value", "none" if va is None else "set", "none" if vb is None else "set")
    groups: list[dict[str, Any]] = []
    for group in a.groups():
        before = {a2b[n].name for n in a.group(group) if n in a2b}
        after = {n.name for n in b.group(group) if n in matched_b}
        if before != after:
            groups.append({"group": group, "added": sorted(after - before),
                           "removed": sorted(before - after)})
    result = {
        "a": a.name, "b": b.name,
        "added": added, "removed": removed, "renamed": renamed, "rewired": rewired,
        "changed": changed, "groups": groups, "values": value_rows,
    }
    result["equal"] = is_equal(result)
    result["counts"] = {k: len(result[k]) for k in
                        ("added", "removed", "renamed", "rewired", "changed", "groups")}
    result["counts"]["values_changed"] = sum(1 for r in value_rows if r["changed"])
    return result


def is_equal(diff: dict[str, Any]) -> bool:
    """No difference at all (max |difference| 0 everywhere included)."""
    return not any(diff[k] for k in ("added", "removed", "renamed", "rewired", "changed",
                                     "groups")) and not any(r["changed"] for r in diff["values"])


def _dims(shape: list[int] | None) -> str:
    return "?" if shape is None else "(" + ", ".join(map(str, shape)) + \
        ("," if len(shape) == 1 else "") + ")"


def format_diff(diff: dict[str, Any], label_a: str = "A", label_b: str = "B") -> str:
    """The diff as text, one line per difference, then a count line."""
    lines = [f"--- {label_a}", f"+++ {label_b}"]
    for r in diff["removed"]:
        lines.append(f"- removed {r['name']} ({r['op']} {_dims(r['shape'])})")
    for r in diff["added"]:
        ins = ", ".join("-" if i is None else i for i in r["inputs"])
        groups = f" [{', '.join(r['groups'])}]" if r["groups"] else ""
        lines.append(f"+ added {r['name']} ({r['op']} {_dims(r['shape'])})"
                     + (f" <- {ins}" if ins else "") + groups)
    for r in diff["renamed"]:
        lines.append(f"~ renamed {r['from']} -> {r['to']}")
    for r in diff["rewired"]:
        lines.append(f"> rewired {r['node']} input {r['input']}: {r['from'] or '-'} -> "
                     f"{r['to'] or '-'}")
    for r in diff["changed"]:
        lines.append(f"* {r['node']} {r['field']}: {r['from']} -> {r['to']}")
    for r in diff["groups"]:
        parts = [f"+{n}" for n in r["added"]] + [f"-{n}" for n in r["removed"]]
        lines.append(f"* group {r['group']}: {' '.join(parts)}")
    for r in diff["values"]:
        mark = "*" if r["changed"] else "="
        lines.append(f"{mark} values {r['node']}: max |difference| {r['max_abs_diff']:.6g}"
                     if isinstance(r["max_abs_diff"], float) else
                     f"{mark} values {r['node']}: max |difference| {r['max_abs_diff']}")
    c = diff["counts"]
    if diff["equal"]:
        lines.append("no differences")
    else:
        lines.append(", ".join(f"{c[k]} {k.replace('_', ' ')}" for k in c if c[k]))
    return "\n".join(lines) + "\n"
