"""Name resolution (ndl-mel.md §C.5): MEL patterns to nodes, source names to target names.

* :func:`find` is CNTK's FindSymbols: ``[model.]pattern`` matched against the model's nodes
  (``L3.*``, ``*.W``, ``L3.*.P``, a whole model), else an in-line NDL symbol of that model;
* :func:`generate_names` is CNTK's GenerateNames: each source node with the name a target
  pattern maps it to (``Copy(L1.*, L2.*)``), or one source onto many existing targets;
* :func:`single` insists on one node (SetInput's input, SetInputs' target).

Every function raises :class:`~netsurgeon.errors.EditError` with close matches as the hint.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from netsurgeon.errors import EditError, close_matches
from netsurgeon.graph import Network, Node, Pattern, map_name, split_model_prefix
from netsurgeon.lang.mel._match import fast_match
from netsurgeon.lang.mel._session import Model, Session

__all__ = ["split", "find", "single", "generate_names", "pairs_in_one_model", "not_found"]

Pairs = list[tuple[Node, str]]


def split(session: Session, text: str) -> tuple[Model, str]:
    """The model a reference names (its model prefix, else the default) and the rest."""
    name, pattern = split_model_prefix(text, session.model_names)
    if name is not None:
        return session.entry(name), pattern
    return session.require_default(f"'{text}'"), text


def find(session: Session, text: str) -> tuple[Model, list[Node]]:
    """CNTK's FindSymbols: the nodes matching ``text``, in CNTK name order; else the node of
    the in-line NDL symbol of that name (a number becomes a [1,1] constant node)."""
    model, pattern = split(session, text)
    nodes = fast_match(model.network, pattern)
    if nodes:
        return model, nodes
    if model.script is not None and "*" not in pattern:
        symbol = model.script.lookup(pattern)
        if isinstance(symbol, Node):
            return model, [symbol]
        if isinstance(symbol, (int, float)) and not isinstance(symbol, bool):
            return model, [_constant_node(model.network, pattern, float(symbol))]
        if symbol is not None:
            raise EditError(f"Matching NDL name found for '{text}', but no corresponding "
                            "computation node found")
    raise not_found(model, pattern, text)


def _constant_node(net: Network, name: str, value: float) -> Node:
    return net.add_parameter(name, np.full((1, 1), value, np.float32),
                             learning_rate_multiplier=0.0)


def not_found(model: Model, pattern: str, text: str) -> EditError:
    """The error for a reference that matches nothing, with close names or patterns."""
    names = model.network.names()
    if "*" in pattern:
        p = Pattern(pattern)
        pool: set[str] = set()
        for n in names:
            parts = n.split(".")
            pool.add(parts[0] + ".*")
            pool.add("*." + parts[-1])
            if len(n) >= len(p.head):
                pool.add(n[: len(p.head)] + "*" + p.tail)
        pool.discard(pattern)
        hint = close_matches(pattern, sorted(pool))
    else:
        hint = close_matches(pattern, names)
    return EditError(f"no node matches '{text}' in model '{model.name}'",
                     hint=hint or f"the model has {len(names)} nodes; Dump it to see their names")


def single(session: Session, text: str, what: str) -> tuple[Model, Node]:
    """The one node ``text`` names; EditError if it matches several."""
    model, nodes = find(session, text)
    if len(nodes) != 1:
        shown = ", ".join(n.name for n in nodes[:6]) + (" ..." if len(nodes) > 6 else "")
        raise EditError(f"{what} must be a single node, but '{text}' matches {len(nodes)}: "
                        + shown)
    return model, nodes[0]


def generate_names(session: Session, src: str, dst: str) -> tuple[Model, Model, Pairs]:
    """CNTK's GenerateNames: pair each source node with its target name."""
    src_model, src_pat = split(session, src)
    _, nodes = find(session, src)
    dst_model, dst_pat = split(session, dst)
    src_wild, dst_wild = "*" in src_pat, "*" in dst_pat
    if not src_wild and dst_wild:
        targets = fast_match(dst_model.network, dst_pat)
        if not targets:
            raise EditError(
                "Setting a single input to multiple outputs requires the multiple outputs to "
                f"exist: '{dst}' matches no node", hint=not_found(dst_model, dst_pat, dst).hint)
        return src_model, dst_model, [(nodes[0], t.name) for t in targets]
    if src_wild:
        sp, tp = Pattern(src_pat), Pattern(dst_pat)
        if bool(sp.head) != bool(tp.head) or bool(sp.tail) != bool(tp.tail):
            raise EditError(
                f"the target '{dst}' must have the same shape as the source '{src}' "
                "(a '*' with text before it exactly when the source has, and after it "
                "exactly when the source has), e.g. Copy(L1.*, L2.*)")
        pairs = [(n, map_name(sp, tp, n.name)) for n in nodes]
    else:
        pairs = [(nodes[0], dst_pat)]
    seen: dict[str, Node] = {}
    for n, name in pairs:
        other = seen.setdefault(name.lower(), n)
        if other is not n:
            raise EditError(f"'{other.name}' and '{n.name}' would both become '{name}'")
    return src_model, dst_model, pairs


def pairs_in_one_model(session: Session, src: str, dst: str,
                       mismatch: Callable[[Model, Model], str]) -> tuple[Network, Pairs]:
    """:func:`generate_names` for a command whose source and target must be in one model
    (EditError ``mismatch(src_model, dst_model)`` otherwise); runs that model's passes."""
    src_model, dst_model, pairs = generate_names(session, src, dst)
    if src_model is not dst_model:
        raise EditError(mismatch(src_model, dst_model))
    session.run_passes(src_model)
    return src_model.network, pairs
