"""``netsurgeon plot MODEL -o OUT [--node PATTERN ...] [--depth N] [--fallback-dot] [--json]``:
a Graphviz picture of the model (``.dot``, ``.svg``, ``.png``, ``.pdf``, ``.html``).

The network is validated first so every shape is known (an invalid one is drawn with the
shapes known so far, after a one-line warning). Rendering uses Graphviz ``dot`` when it is on
PATH, else ``graphviz-pure``; with neither, a rendered format is an error unless
``--fallback-dot`` is given, which writes the DOT text beside it (``OUT`` with ``.dot``).
"""

from __future__ import annotations

import argparse
import json
import sys

from netsurgeon.commands._common import add_format_option
from netsurgeon.errors import NetsurgeonError, ValidationError

__all__ = ["configure", "run"]


def _depth(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of edges (0, 1, 2 ...)")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1
    if not value > 0:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds above 0")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``netsurgeon plot``."""
    parser.add_argument("model", help="model file (native, CNTK v1/v2, ONNX) or an .ndl file")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="the picture: .dot/.gv (DOT text), .svg, .png, .pdf, or .html (a "
                        "page embedding the SVG)")
    parser.add_argument("--node", action="append", metavar="PATTERN",
                        help="draw only the nodes matching this pattern (MEL wildcards, "
                        "repeatable) and those within --depth edges of them")
    parser.add_argument("--depth", type=_depth, default=None, metavar="N",
                        help="with --node: how many edges away neighbours are drawn (default 1)")
    parser.add_argument("--fallback-dot", action="store_true",
                        help="when no Graphviz renderer is installed, write the DOT text "
                        "(OUT with the suffix .dot) instead of failing")
    parser.add_argument("--timeout", type=_seconds, default=120.0, metavar="S",
                        help="longest the renderer may take, in seconds (default 120)")
    add_format_option(parser)
    parser.add_argument("--json", action="store_true", help="report what was drawn as JSON")


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon plot``; returns the exit status."""
    from pathlib import Path

    from netsurgeon.commands._model import load_model
    from netsurgeon.graph.plot import NoRendererError, find_renderer, write_plot

    if args.depth is not None and not args.node:
        raise NetsurgeonError("--depth needs --node PATTERN (the nodes to start from)")
    net = load_model(args.model, args.format)
    try:
        net.validate()
    except ValidationError as exc:
        if not args.quiet:
            print(f"netsurgeon: warning: {args.model} is not valid, shapes may be missing: "
                  f"{exc}", file=sys.stderr)
    out = args.output
    fallback = False
    try:
        picture = write_plot(net, out, node_patterns=args.node, depth=args.depth,
                             timeout=args.timeout)
    except NoRendererError as exc:
        if not args.fallback_dot:
            raise
        out = str(Path(out).with_suffix(".dot"))
        picture = write_plot(net, out, node_patterns=args.node, depth=args.depth)
        fallback = True
        if not args.quiet:
            print(f"netsurgeon: warning: {exc.message}; wrote {out} instead", file=sys.stderr)
    renderer = None
    if not out.lower().endswith((".dot", ".gv")):
        command = find_renderer()
        renderer = Path(command[0]).name if command else None
    report = {"model": str(args.model), "output": out, "fallback_dot": fallback,
              "renderer": renderer, "nodes": len(picture.nodes),
              "folded_parameters": picture.folded, "edges": picture.edges,
              "loops": picture.loops, "clusters": picture.clusters}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        loops = f", {picture.loops} recurrent loop{'s' * (picture.loops != 1)}" \
            if picture.loops else ""
        via = f" (drawn by {renderer})" if renderer else ""
        print(f"wrote {out}{via}: {len(picture.nodes)} nodes, {picture.edges} edges, "
              f"{picture.folded} parameters folded{loops}")
    return 0
