"""Copy, CopySubTree and CopyInputs on top of the edit layer (:mod:`netsurgeon.graph`).

A copy goes from (source node, target name) pairs (:func:`~netsurgeon.lang.mel._names.
generate_names`). Targets that do not exist yet are made by :func:`netsurgeon.graph.copy_nodes`
(values copied once, links among the copied nodes kept, other inputs unconnected); targets
that exist are overwritten in place and keep the inputs that lie outside the copied set (the
documentation's rule; CNTK set them to NULL).
"""

from __future__ import annotations

from netsurgeon.errors import EditError
from netsurgeon.graph import Network, Node, clone, copy_nodes

__all__ = ["existing_targets", "copy_pairs", "overwrite", "copy_inputs"]

Pairs = list[tuple[Node, str]]


def existing_targets(net: Network, pairs: Pairs, mode: str, model: str) -> dict[int, Node]:
    """The targets that exist already, by pair index; checks every pair first.

    Raises EditError: a target of another op, a node copied onto itself, or (``copy=value``)
    a target that does not exist.
    """
    existing: dict[int, Node] = {}
    for k, (s, name) in enumerate(pairs):
        t = net.get(name)
        if t is None:
            if mode == "value":
                raise EditError(
                    f"copy=value needs existing targets, but '{name}' does not exist in model "
                    f"'{model}'", hint="use copy=all to create new nodes")
            continue
        if t is s:
            raise EditError(f"cannot copy '{s.name}' onto itself")
        if t.op != s.op:
            raise EditError(f"Cannot copy from one node type to another node type: "
                            f"'{s.name}' is {s.op}, '{t.name}' is {t.op}")
        existing[k] = t
    return existing


def copy_pairs(net: Network, pairs: Pairs, mode: str, existing: dict[int, Node]) -> list[Node]:
    """Copy each source to its target name in ``net``; returns the targets in pair order.

    ``mode`` ``all``: new targets are copies wired among themselves (and to the existing
    targets of their sources' inputs); existing targets are overwritten and rewired the same
    way, keeping their other inputs. ``value``: existing targets get values, attributes and
    multipliers only.
    """
    first: dict[Node, Node] = {}  # a source -> the first target it was copied to
    for k, t in existing.items():
        first.setdefault(pairs[k][0], t)
    new = {s: name for k, (s, name) in enumerate(pairs) if k not in existing}
    made = copy_nodes(new, into=net, names=new, substitute=dict(first), outside="disconnect")
    targets = [existing[k] if k in existing else made[s] for k, (s, _) in enumerate(pairs)]
    for k, (s, _) in enumerate(pairs):
        first.setdefault(s, targets[k])
    for k, t in existing.items():
        s = pairs[k][0]
        overwrite(net, t, s, mode)
        if mode == "all":
            old = t.inputs
            net.set_inputs(t, [first[i] if i is not None and i in first else
                               old[j] if j < len(old) else None for j, i in enumerate(s.inputs)])
    return targets


def overwrite(net: Network, t: Node, s: Node, mode: str) -> None:
    """Copy a source's contents onto an existing target of the same op (value copied once)."""
    net.set_attrs(t, **s.attrs)
    shape = {"shape": s.shape} if mode == "all" or s.value is not None else {}
    net.update(t, value=None if s.value is None else s.value.copy(),
               learning_rate_multiplier=s.learning_rate_multiplier, tags=s.tags, dtype=s.dtype,
               **shape)


def copy_inputs(net: Network, pairs: Pairs) -> list[Node]:
    """CopyInputs: each target gets its source's inputs; a missing target is created as a
    duplicate of the source without a value. Everything is checked first."""
    for s, name in pairs:
        t = net.get(name)
        if t is not None and t.op != s.op:
            raise EditError(f"CopyInputs: '{s.name}' is {s.op} but '{t.name}' is {t.op}")
    out = []
    for s, name in pairs:
        t = net.get(name)
        if t is None:
            twin = clone(s, name, share_value=True).update(value=None)
            t = net.adopt(twin.set_inputs(s.inputs))
        else:
            net.set_inputs(t, s.inputs)
        out.append(t)
    return out
