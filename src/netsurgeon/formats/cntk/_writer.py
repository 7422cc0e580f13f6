"""Write a network as a CNTK v1 model file (cntk-model-format.md §2-6 and the §9 checklist).

A network read from a CNTK file is written back at its own version, in its own record and
group order, so an unedited round trip is byte-identical. Any other network is written at
:data:`DEFAULT_VERSION`, nodes in CNTK's case-insensitive name order, all five groups.

Checklist rules enforced here: every input connected, every op storable, never an empty list,
never a rank-0 or zero-first-dim input shape, parameter values present, BatchNormalization
with 5 stored inputs before v19 and 6 from v19 (CNTK stopped adding the run-count parameter
itself: the writer stores one when the node has none). The output is assembled, parsed
back as a check, and only then moved over the target (temp file + ``os.replace``).
"""

from __future__ import annotations

import base64
import os
from typing import Any

from netsurgeon.formats._atomic import atomic_write
from netsurgeon.formats.cntk._binary import BinaryWriter, CntkFormatError
from netsurgeon.formats.cntk._codec import PayloadCodec
from netsurgeon.formats.cntk._context import WriteContext
from netsurgeon.formats.cntk._layer import codec_for, file_name_for
from netsurgeon.formats.cntk._reader import GROUP_SECTIONS, MAX_VERSION
from netsurgeon.graph import GROUPS, Network, Node
from netsurgeon.graph._bulk import collector_paused
from netsurgeon.ops import Unsupported

__all__ = ["write", "encode", "DEFAULT_VERSION"]

#: the version written for networks that did not come from a CNTK file: CNTK 2.7's own
DEFAULT_VERSION = 31

_GROUP_MARKERS = {"feature": "FeatureNodes", "label": "LabelNodes", "criterion": "CriterionNodes",
                  "evaluation": "EvalNodes", "output": "OutputNodes"}
_SECTION_GROUP = dict(GROUP_SECTIONS)


def _facts(net: Network) -> dict[str, Any]:
    meta = net.metadata.get("cntk")
    return meta if isinstance(meta, dict) else {}


def _node_order(net: Network, facts: dict[str, Any], key: str = "node_order") -> list[Node]:
    stored = facts.get(key) or facts.get("node_order")
    if stored and len(stored) == len(net):
        nodes = [net.get(n) for n in stored]
        if all(n is not None and n.name == s for n, s in zip(nodes, stored)):
            return nodes  # type: ignore[return-value]
    return net.sorted_nodes()


def _codec(net: Network, node: Node) -> PayloadCodec:
    """The node's codec; CntkFormatError naming the node when v1 files cannot hold its op."""
    entry = codec_for(net.registry.op(node.op))
    if entry is None or isinstance(entry, Unsupported):
        why = entry.reason if entry is not None else "the cntk_v1 layer has no codec for it"
        raise CntkFormatError(f"{node.op} node '{node.name}' cannot be stored in a CNTK v1 file "
                              f"({why}); remove it or replace it by ops v1 files hold",
                              node=node.name)
    return entry


def _group_sections(net: Network, facts: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    """The stored sections if they still describe the groups, else the five modern ones."""
    current = {g: [n.name for n in net.group(g)] for g in GROUPS}
    stored = facts.get("group_sections")
    if stored:
        seen: dict[str, list[str]] = {g: [] for g in GROUPS}
        ok = True
        for base, names in stored:
            group = _SECTION_GROUP.get(base)
            if group is None or names is None:
                if (base == "NodesReqMultiSeqHandling" and names
                        and any(net.get(n) is None for n in names)):
                    ok = False
                continue
            for n in names:
                if n not in seen[group]:
                    seen[group].append(n)
        if ok and seen == current:
            return [(b, list(n) if n is not None else None) for b, n in stored]
    return [(_GROUP_MARKERS[g], current[g]) for g in GROUPS]


def encode(net: Network, version: int | None = None) -> BinaryWriter:
    """The bytes of ``net`` as a CNTK file, as a chunk list (see :class:`BinaryWriter`)."""
    facts = _facts(net)
    v = int(version if version is not None else facts.get("version", DEFAULT_VERSION))
    if not 1 <= v <= MAX_VERSION:
        raise CntkFormatError(f"model version {v} is not writable (1..{MAX_VERSION})")
    same_version = v == facts.get("version")
    ctx = WriteContext(v, net)
    order = _node_order(net, facts)
    relation = _node_order(net, facts, "relation_order") if same_version else order
    codecs = {}
    for node in order:
        spec = net.registry.op(node.op)
        codec = _codec(net, node)
        for i, inp in enumerate(node.inputs):
            if inp is None:
                raise CntkFormatError(
                    f"input {i} of {node.op} node '{node.name}' is not connected; CNTK would write "
                    "a corrupt file. Connect it (SetInput) or remove the node", node=node.name)
        codec.check(node, ctx)
        codec.prepare(node, ctx)
        codecs[node] = (spec, codec)
    for node in ctx.extra_nodes:  # nodes codecs asked to store besides the network's
        codecs[node] = (net.registry.op(node.op), _codec(net, node))
    order = [*order, *ctx.extra_nodes]
    relation = [*relation, *ctx.extra_nodes]

    w = BinaryWriter()
    w.marker("BCN")
    if v > 1 or facts.get("versioned", True):
        w.marker("BVersion")
        w.u64(v)
        w.marker("EVersion")
    w.u64(len(order))
    w.marker("BNodeList")
    for node in order:
        spec, codec = codecs[node]
        if v >= 7:
            w.wstr(codec.precision_tag(node, ctx))
        w.wstr(file_name_for(node))
        w.wstr(node.name)
        try:
            codec.write(w, ctx, node, spec)
        except CntkFormatError as exc:
            if exc.node is None:
                exc.node = node.name
            raise
    w.marker("ENodeList")
    w.marker("BRelation")
    for node in relation:
        inputs = ctx.input_overrides.get(node, node.inputs)
        w.wstr(node.name)
        w.u64(len(inputs))
        for inp in inputs:
            w.wstr(inp.name)
    w.marker("ERelation")
    w.marker("BRootNodes")
    for base, names in _group_sections(net, facts):
        if names is None:
            w.marker("E" + base)
            continue
        w.marker("B" + base)
        w.u64(len(names))
        for n in names:
            w.wstr(n)
        w.marker("E" + base)
    w.marker("ERootNodes")
    w.marker("ECN")
    if same_version and facts.get("trailing"):
        w.raw(base64.b64decode(facts["trailing"]))
    return w


def write(net: Network, path: str | os.PathLike[str], version: int | None = None,
          verify: bool = True) -> None:
    """Write ``net`` to ``path`` atomically; with ``verify`` the bytes are parsed back first."""
    with collector_paused():
        _write(net, path, version, verify)


def _write(net: Network, path: str | os.PathLike[str], version: int | None, verify: bool) -> None:
    w = encode(net, version)
    chunks = w.getvalue_chunks()
    try:
        with atomic_write(path) as f:
            f.writelines(chunks)
            f.flush()
            if verify and w.size:
                import mmap

                from netsurgeon.formats.cntk._reader import read_buffer

                # parse the bytes just written (parameter data is only mapped, not read); the
                # mapping is released with the check network's views
                written = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
                read_buffer(written, f"{path} (as written)", "check")
    except OSError as exc:
        raise CntkFormatError(f"cannot write the model: {exc.strerror or exc}",
                              path=str(path)) from exc
