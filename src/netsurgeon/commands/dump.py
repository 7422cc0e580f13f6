"""``netsurgeon dump MODEL [--data] [-o FILE]``: CNTK's Dump text of every node."""

from __future__ import annotations

import argparse

from netsurgeon.commands._common import add_format_option, write_text
from netsurgeon.graph import close_names


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``netsurgeon dump``."""
    parser.add_argument("model", help="model file (.nsm, .dnn, .cmf ...)")
    parser.add_argument("--data", action="store_true", help="include parameter values")
    parser.add_argument("-o", "--output", help="write to this file instead of stdout")
    parser.add_argument("--node", action="append",
                        help="dump only nodes matching this pattern (repeatable)")
    add_format_option(parser)


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon dump``; returns the exit status."""
    from netsurgeon.errors import GraphError
    from netsurgeon.formats import load
    from netsurgeon.formats.dump import dump_text

    net = load(args.model, args.format)
    nodes = None
    if args.node:
        chosen: dict = {}  # each node once, however many patterns match it
        for pattern in args.node:
            found = net.match(pattern)
            if not found:
                raise GraphError(f"no node matches '{pattern}' in {args.model}",
                                 hint=_close_names(net, pattern))
            chosen.update(dict.fromkeys(found))
        nodes = list(chosen)
    write_text(dump_text(net, include_data=args.data, nodes=nodes), args.output)
    return 0


def _close_names(net, pattern: str) -> str:
    """'did you mean' names (or patterns, for a wildcard) close to ``pattern``."""
    names = net.names()
    return close_names(names, pattern) or \
        f"the model has {len(names)} nodes; dump without --node lists them"
