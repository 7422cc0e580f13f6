"""A Graphviz picture of a network: ``to_dot(net)`` and ``write_plot(net, path)``.

The picture (DOT text, laid out top to bottom, inputs first) has one box per node that is
not a parameter, labelled with its name, op and output shape (numpy order); parameters
(``LearnableParameter``, ``Constant`` ...) are folded into the boxes of the nodes that read
them, one line each (``W (784, 256)``, ``frozen`` when the learning-rate multiplier is 0).
Edges carry the producing node's shape; the delayed input of a ``PastValue``/``FutureValue``
is dashed. Boxes are coloured by group (feature, label, criterion, evaluation, output) with a
legend; each recurrent loop (a strongly connected component through a delay) is a cluster
``cluster_loop_N``; dotted name prefixes (``L1.BFF.FF.T`` -> ``L1``, ``L1.BFF``) become nested
clusters when they hold two or more boxes and not the same boxes as the prefix around them.

``node_patterns`` (MEL wildcards, as ``dump --node``) with ``depth`` keep only the matched
nodes and those within ``depth`` edges of them; a kept node's hidden neighbours show as grey
names on dashed edges. Output is deterministic (topological order, inputs first), every
algorithm is iterative. Rendering (``render``) runs Graphviz ``dot`` or, when it is not on
PATH, the ``graphviz-pure`` executable (same command line) on a temporary file.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from netsurgeon.errors import GraphError, NetsurgeonError
from netsurgeon.graph._wildcard import close_names

if TYPE_CHECKING:
    from netsurgeon.graph._network import Network
    from netsurgeon.graph._node import Node

__all__ = ["Picture", "layout", "to_dot", "find_renderer", "render", "html_page",
           "write_plot", "PLOT_FORMATS", "GROUP_COLORS", "NODE_COLOR", "NoRendererError"]

#: fill colour per group, in the order a node with several groups takes its colour
GROUP_COLORS: dict[str, str] = {
    "criterion": "#f4b6b6",
    "evaluation": "#d9c2f0",
    "output": "#b9e4b0",
    "label": "#f9d79b",
    "feature": "#b6d7f4",
}
#: fill colour of the boxes in no group
NODE_COLOR = "#eceff3"
_LOOP_FILL = "#fff6dd"
_LOOP_LINE = "#d08c00"
_CLUSTER_LINE = "#9aa3ad"
_LEGEND_NAMES = {"feature": "input (feature)", "label": "label", "criterion": "criterion",
                 "evaluation": "evaluation", "output": "output"}
#: output extensions ``write_plot`` knows
PLOT_FORMATS = (".dot", ".gv", ".svg", ".png", ".pdf", ".html")


class NoRendererError(NetsurgeonError):
    """Neither Graphviz ``dot`` nor ``graphviz-pure`` is installed."""


@dataclass
class Picture:
    """The DOT text of a network's picture and what it shows."""

    dot: str
    nodes: list[str] = field(default_factory=list)  # the boxes, in order
    folded: int = 0  # parameter lines inside boxes
    edges: int = 0
    loops: int = 0
    clusters: int = 0  # name-prefix clusters


def _quote(text: str) -> str:
    """A DOT quoted string showing ``text`` literally: no escape sequence and no HTML entity
    (Graphviz reads ``&amp;`` in a label as ``&``) is interpreted; a newline breaks the line."""
    if not ("\\" in text or '"' in text or "\n" in text or "\r" in text or "&" in text):
        return '"' + text + '"'
    text = text.replace("&", "&amp;").replace("\\", "\\\\").replace('"', '\\"')
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return '"' + text + '"'


def _label(lines: list[str]) -> str:
    """A label of several centred lines, each taken literally."""
    return '"' + "\\n".join(_quote(line)[1:-1] for line in lines) + '"'


def _shape(shape: tuple[int, ...] | None) -> str:
    if shape is None:
        return "?"
    return "(" + ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


def _parts(name: str) -> list[str]:
    """The dotted components of a name, dots inside brackets kept (``a.b[1.5].c``)."""
    if "[" not in name:
        return name.split(".")
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(name):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        elif ch == "." and depth == 0:
            parts.append(name[start:i])
            start = i + 1
    parts.append(name[start:])
    return parts


def _prefixes(name: str) -> list[str]:
    """The proper dotted prefixes of a name, outermost first (``L1``, ``L1.BFF``, ...)."""
    parts = _parts(name)
    return [".".join(parts[:k]) for k in range(1, len(parts))]


def _close_names(net, pattern: str) -> str:
    """'did you mean' names (or patterns, for a wildcard) close to ``pattern``."""
    names = net.names()
    return close_names(names, pattern) or \
        f"the model has {len(names)} nodes; summary MODEL lists them"


def _select(net: Network, params: frozenset[str], patterns: list[str], depth: int,
            ) -> tuple[set[Node], set[Node]]:
    """The nodes within ``depth`` edges of the nodes matching ``patterns`` (parameters are
    not steps: a matched parameter starts from its users), and the matched ones."""
    matched: dict[Node, None] = {}
    for pattern in patterns:
        found = net.match(pattern)
        if not found:
            raise GraphError(f"no node matches '{pattern}'", hint=_close_names(net, pattern))
        matched.update(dict.fromkeys(found))
    dist: dict[Node, int] = {}
    queue: deque[Node] = deque()
    for n in matched:
        starts = [n] if n.op not in params or not net._users_of(n) else net._users_of(n)
        for s in starts:
            if s not in dist:
                dist[s] = 0
                queue.append(s)
    while queue:
        n = queue.popleft()
        if dist[n] >= depth:
            continue
        for m in (*n.inputs, *net._users_of(n)):
            if m is not None and m.op not in params and m not in dist:
                dist[m] = dist[n] + 1
                queue.append(m)
    return set(dist), set(matched)


def _subset_order(net: Network, chosen: set[Node], delayed) -> list[Node]:
    """``chosen`` inputs first (Kahn's algorithm on the edges among them, delayed inputs
    ignored), ties in network order; what a cycle without delay leaves comes last."""
    import heapq

    position = {n: k for k, n in enumerate(net._nodes.values()) if n in chosen}
    by_position = {k: n for n, k in position.items()}
    waiting: dict[Node, int] = {}
    users: dict[Node, list[Node]] = {}
    for n in position:
        cut = delayed(n.op)
        ins = {i for k, i in enumerate(n.inputs) if i in position and k not in cut}
        waiting[n] = len(ins)
        for i in ins:
            users.setdefault(i, []).append(n)
    heap = [k for n, k in position.items() if waiting[n] == 0]
    heapq.heapify(heap)
    order: list[Node] = []
    while heap:
        n = by_position[heapq.heappop(heap)]
        order.append(n)
        for u in users.get(n, ()):
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(heap, position[u])
    if len(order) < len(position):
        done = set(order)
        order += [n for n in position if n not in done]
    return order


def layout(net: Network, *, node_patterns: list[str] | None = None,
           depth: int | None = None) -> Picture:
    """The picture of ``net`` (see the module docstring); ``depth`` defaults to 1 with
    ``node_patterns``. Raises GraphError when a pattern matches nothing."""
    from netsurgeon.graph._traversal import recurrent_loops, roots, topological_order
    from netsurgeon.ops import Category

    registry = net.registry
    params = registry.op_set(Category.PARAMETER)
    users = net._users_of
    delayed_cache: dict[str, frozenset[int]] = {}

    def delayed(op: str) -> frozenset[int]:
        cut = delayed_cache.get(op)
        if cut is None:
            spec = registry.find_op(op)
            cut = delayed_cache[op] = spec.delayed_inputs if spec is not None else frozenset()
        return cut

    matched: set[Node] = set()
    if node_patterns:
        chosen, matched = _select(net, params, list(node_patterns),
                                  1 if depth is None else depth)
        visible = _subset_order(net, chosen, delayed)
    else:
        order = topological_order(net, [*roots(net), *net.nodes])
        # a parameter is folded into its users; one nobody reads keeps a box of its own
        visible = [n for n in order if n.op not in params or not users(n)]
    index = {n: k for k, n in enumerate(visible)}
    group_of: dict[Node, str] = {}
    for g in GROUP_COLORS:  # priority order
        for n in net.group(g):
            group_of.setdefault(n, g)
    loop_of: dict[Node, int] = {}
    loops: list[list[Node]] = []
    delay_ops = registry.op_set(Category.DELAY)
    has_delay = any(n.op in delay_ops for n in visible)
    for comp in recurrent_loops(net) if has_delay else ():
        members = sorted((n for n in comp if n in index), key=index.__getitem__)
        if members:
            loops.append(members)
    loops.sort(key=lambda m: index[m[0]])
    for number, members in enumerate(loops, 1):
        for n in members:
            loop_of[n] = number

    # ---- the cluster tree: name prefixes, with each loop as one item at its common prefix
    def common(names: list[list[str]]) -> list[str]:
        first = names[0]
        k = len(first) - 1
        for p in names[1:]:
            k = min(k, len(p) - 1)
            while k > 0 and p[:k] != first[:k]:
                k -= 1
        return first[:k]

    anchor: dict[int, list[str]] = {}
    for number, members in enumerate(loops, 1):
        anchor[number] = common([_parts(n.name) for n in members])

    def chain(items: list[tuple[Node, list[str]]], base: int) -> dict[Node, list[str]]:
        """Selected prefix clusters (beyond the first ``base`` components) of each node."""
        count: dict[str, int] = {}
        for _, pre in items:
            for p in pre[base:]:
                count[p] = count.get(p, 0) + 1
        total = len(items)
        out: dict[Node, list[str]] = {}
        for n, pre in items:
            sel, parent = [], total
            for p in pre[base:]:
                c = count[p]
                if 2 <= c < parent:
                    sel.append(p)
                parent = c
            out[n] = sel
        return out

    outer_items: list[tuple[Node, list[str]]] = []
    for n in visible:
        loop = loop_of.get(n)
        if loop is None:
            outer_items.append((n, _prefixes(n.name)))
        else:
            a = anchor[loop]
            outer_items.append((n, [".".join(a[:k]) for k in range(1, len(a) + 1)]))
    outer = chain(outer_items, 0)
    paths: dict[Node, list[tuple[str, str]]] = {}  # node -> [(cluster key, label), ...]
    for n, sel in outer.items():
        paths[n] = [("p:" + p, p) for p in sel]
    for number, members in enumerate(loops, 1):
        base = len(anchor[number])
        inner = chain([(n, _prefixes(n.name)) for n in members], base)
        for n in members:
            paths[n] = [*paths[n], (f"loop:{number}", f"recurrent loop {number}"),
                        *(("l" + str(number) + ":" + p, p) for p in inner[n])]

    # ---- boxes
    lines_of: dict[Node, str] = {}
    folded = 0
    for n in visible:
        lines = [n.name, f"{n.op}  {_shape(n.shape)}"]
        for i in n.inputs:
            if i is not None and i.op in params:
                short = i.name
                pre = _parts(n.name)
                ip = _parts(i.name)
                k = 0
                while k < len(pre) - 1 and k < len(ip) - 1 and pre[k] == ip[k]:
                    k += 1
                short = ".".join(ip[k:])
                frozen = float(i.learning_rate_multiplier) == 0
                lines.append(f"{short} {_shape(i.shape)}" + (" frozen" if frozen else ""))
                folded += 1
        group = group_of.get(n)
        attrs = [f"label={_label(lines)}", f"tooltip={_quote(n.name)}",
                 f'fillcolor="{GROUP_COLORS[group] if group else NODE_COLOR}"']
        if n in matched:
            attrs.append("penwidth=3")
        if n.op in params:
            attrs.append('style="filled,dashed"')
        lines_of[n] = f"n{index[n]} [{', '.join(attrs)}];"

    # ---- emit: walk the cluster tree with an explicit stack
    out = [f"digraph {_quote(net.name)} {{",
           f"  graph [rankdir=TB, fontname=\"Helvetica\", fontsize=11, labelloc=t, "
           f"label={_quote(net.name)}, newrank=true];",
           "  node [shape=box, style=filled, fontname=\"Helvetica\", fontsize=10, "
           "margin=\"0.15,0.06\"];",
           "  edge [fontname=\"Helvetica\", fontsize=9, color=\"#555555\"];"]
    # containers keyed by their path of cluster keys; children in order of first appearance
    children: dict[tuple[str, ...], list[tuple[str, ...] | Node]] = {(): []}
    labels: dict[tuple[str, ...], str] = {}
    for n in visible:
        keys: tuple[str, ...] = ()
        for key, label in paths[n]:
            inner = (*keys, key)
            if inner not in children:
                children[inner] = []
                labels[inner] = label
                children[keys].append(inner)
            keys = inner
        children[keys].append(n)
    prefix_clusters = 0
    stack: list[tuple[int, Iterator[tuple[str, ...] | Node]]] = [(0, iter(children[()]))]
    while stack:
        level, it = stack[-1]
        ind = "  " * (level + 1)
        for item in it:
            if not isinstance(item, tuple):
                out.append(ind + lines_of[item])
                continue
            key = item[-1]
            if key.startswith("loop:"):
                cid = f"cluster_loop_{key[5:]}"
                style = (f'style="filled,rounded,bold", color="{_LOOP_LINE}", '
                         f'fillcolor="{_LOOP_FILL}"')
            else:
                cid = f"cluster_{prefix_clusters}"
                prefix_clusters += 1
                style = f'style="rounded,dashed", color="{_CLUSTER_LINE}"'
            out.append(f"{ind}subgraph {cid} {{")
            out.append(f"{ind}  graph [label={_quote(labels[item])}, labeljust=l, {style}];")
            stack.append((level + 1, iter(children[item])))
            break
        else:
            stack.pop()
            if stack:
                out.append("  " * level + "}")

    # ---- edges, hidden neighbours
    edges = 0
    hidden: dict[Node, str] = {}

    def hidden_id(m: Node) -> str:
        hid = hidden.get(m)
        if hid is None:
            hid = hidden[m] = f"h{len(hidden)}"
            out.append(f"  {hid} [label={_quote(m.name)}, tooltip={_quote(m.name)}, "
                       "shape=plain, style=\"\", fontcolor=\"#888888\"];")
        return hid

    for n in visible:
        cut = delayed(n.op)
        for k, i in enumerate(n.inputs):
            if i is None or i.op in params:
                continue
            extra = ', style=dashed, constraint=false' if k in cut else ""
            if i in index:
                out.append(f"  n{index[i]} -> n{index[n]} [label={_quote(_shape(i.shape))}"
                           f"{extra}];")
                edges += 1
            else:
                out.append(f"  {hidden_id(i)} -> n{index[n]} [style=dashed, "
                           f"color=\"#aaaaaa\"];")
        if node_patterns:
            for u in users(n):
                if u not in index:
                    out.append(f"  n{index[n]} -> {hidden_id(u)} [style=dashed, "
                               f"color=\"#aaaaaa\"];")

    # ---- legend: the groups present
    shown = {group_of[n] for n in visible if n in group_of}
    present = [g for g in _LEGEND_NAMES if g in shown]
    if present:
        out.append("  subgraph cluster_legend {")
        out.append('    graph [label="groups", labeljust=l, style="rounded", '
                   'color="#cccccc"];')
        for k, g in enumerate(present):
            out.append(f"    legend{k} [label={_quote(_LEGEND_NAMES[g])}, "
                       f"fillcolor=\"{GROUP_COLORS[g]}\", shape=box, fontsize=9];")
        if len(present) > 1:
            out.append("    " + " -> ".join(f"legend{k}" for k in range(len(present)))
                       + " [style=invis];")
        out.append("  }")
    out.append("}")
    return Picture(dot="\n".join(out) + "\n", nodes=[n.name for n in visible],
                   folded=folded, edges=edges, loops=len(loops), clusters=prefix_clusters)


def to_dot(network: Network, *, node_patterns: list[str] | None = None,
           depth: int | None = None) -> str:
    """The Graphviz DOT text of ``network``'s picture (see the module docstring)."""
    return layout(network, node_patterns=node_patterns, depth=depth).dot


def find_renderer() -> list[str] | None:
    """The command that renders DOT: ``$NETSURGEON_GRAPHVIZ`` (``none`` for no renderer),
    else ``dot`` on PATH, else ``graphviz-pure`` on PATH or beside the running Python."""
    import os
    import shutil
    import sys
    from pathlib import Path

    chosen = os.environ.get("NETSURGEON_GRAPHVIZ")
    if chosen:
        return None if chosen.lower() == "none" else [chosen]
    for name in ("dot", "graphviz-pure"):
        found = shutil.which(name)
        if found:
            return [found]
    beside = Path(sys.executable).parent / "graphviz-pure"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    return None


def render(dot: str, fmt: str, *, timeout: float = 120.0) -> bytes:
    """``dot`` rendered as ``fmt`` (``svg``, ``png``, ``pdf``) by the renderer found.

    Raises:
        NoRendererError: no renderer is installed.
        NetsurgeonError: the renderer failed or ran longer than ``timeout`` seconds.
    """
    import os
    import subprocess
    import tempfile

    command = find_renderer()
    if command is None:
        raise NoRendererError(
            f"no Graphviz renderer found for .{fmt}: write a .dot file instead, or install "
            "Graphviz (apt-get install graphviz) or graphviz-pure (pip install graphviz-pure)")
    fd, tmp = tempfile.mkstemp(suffix=".dot", prefix="netsurgeon-plot-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(dot.encode("utf-8"))
        try:
            done = subprocess.run([*command, f"-T{fmt}", tmp], capture_output=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise NetsurgeonError(
                f"{os.path.basename(command[0])} took more than {timeout:g} s to draw the "
                "graph", hint="draw a part with --node PATTERN --depth N, or write .dot"
            ) from None
        except OSError as exc:
            raise NetsurgeonError(f"cannot run {command[0]}: {exc.strerror or exc}") from None
    finally:
        os.unlink(tmp)
    if done.returncode != 0 or not done.stdout:
        text = done.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = text[0] if text else f"exit status {done.returncode}"
        raise NetsurgeonError(f"{os.path.basename(command[0])} could not draw the graph "
                              f"as {fmt}: {reason}")
    return done.stdout


def html_page(svg: str, title: str) -> str:
    """A self-contained HTML page showing ``svg`` (the XML prolog and doctype dropped)."""
    import html

    start = svg.find("<svg")
    body = svg[start:] if start >= 0 else svg
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>body{{margin:0;font-family:"
            "Helvetica,Arial,sans-serif}}header{{padding:6px 12px;background:#f3f4f6;"
            "border-bottom:1px solid #ddd}}main{{overflow:auto;padding:12px}}</style>\n"
            f"</head>\n<body>\n<header>{html.escape(title)}</header>\n<main>\n{body}\n"
            "</main>\n</body>\n</html>\n")


def write_plot(network: Network, path: str, *, node_patterns: list[str] | None = None,
               depth: int | None = None, timeout: float = 120.0) -> Picture:
    """Write the picture to ``path`` (atomically): ``.dot``/``.gv`` DOT text, ``.svg``,
    ``.png``, ``.pdf`` rendered, ``.html`` a page embedding the SVG. Returns the Picture.

    Raises NoRendererError for a rendered format without a renderer (nothing is written),
    NetsurgeonError for an unknown extension or a renderer failure."""
    import os

    from netsurgeon.formats._atomic import atomic_write

    ext = os.path.splitext(path)[1].lower()
    if ext not in PLOT_FORMATS:
        raise NetsurgeonError(f"cannot tell the picture format of {path}",
                              hint="give a name ending in " + ", ".join(PLOT_FORMATS))
    picture = layout(network, node_patterns=node_patterns, depth=depth)
    if ext in (".dot", ".gv"):
        data = picture.dot.encode("utf-8")
    elif ext == ".html":
        svg = render(picture.dot, "svg", timeout=timeout).decode("utf-8", "replace")
        data = html_page(svg, network.name).encode("utf-8")
    else:
        data = render(picture.dot, ext[1:], timeout=timeout)
    with atomic_write(path) as f:
        f.write(data)
    return picture
