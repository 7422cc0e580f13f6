"""``netsurgeon validate MODEL``: check inputs, arity, cycles and shapes; print a summary."""

from __future__ import annotations

import argparse

from netsurgeon.commands._common import add_format_option, parameter_summary


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``netsurgeon validate``."""
    parser.add_argument("model", help="model file")
    add_format_option(parser)


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon validate``; returns the exit status."""
    from netsurgeon.formats import load
    from netsurgeon.graph import recurrent_loops

    net = load(args.model, args.format)
    net.validate()
    params, weights = parameter_summary(net)
    print(f"{args.model}: valid, {len(net)} nodes, {params} parameters ({weights:,} values), "
          f"{len(recurrent_loops(net))} recurrent loops")
    for group, members in net.groups().items():
        if members:
            print(f"  {group}: " + ", ".join(f"{n.name} {n.shape}" for n in members))
    return 0
