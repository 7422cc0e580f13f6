"""``netsurgeon bs``: build a network from BrainScript, or print a parse tree.

    netsurgeon bs NET.bs -o MODEL                 # NET.bs holds a network description's members
    netsurgeon bs --config run.cntk --section train -o MODEL
    netsurgeon bs --parse-tree FILE               # CNTK's parser-test dump format
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``netsurgeon bs``."""
    parser.add_argument("file", nargs="?", help="BrainScript network description (.bs)")
    parser.add_argument("-o", "--output", help="where to save the network (format from the suffix)")
    parser.add_argument("--config",
                        help="a CNTK .cntk config file holding BrainScriptNetworkBuilder")
    parser.add_argument("--section", help="the config section (e.g. train) with the builder block")
    parser.add_argument("--parse-tree", action="store_true",
                        help="print FILE's parse tree in CNTK's test format and stop")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a config variable used as $NAME$ (repeatable)")
    parser.add_argument("--seed", type=int, default=1, help="first random seed of parameters")
    parser.add_argument("--format", help="output format (default: from the suffix)")


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon bs``; returns the exit status."""
    from netsurgeon.errors import NetsurgeonError
    from netsurgeon.lang.brainscript import host
    from netsurgeon.lang.brainscript.parser import dump_tree, parse
    from netsurgeon.lang.config import read_text_file

    if args.parse_tree:
        if not args.file:
            print("netsurgeon bs: --parse-tree needs a FILE", file=sys.stderr)
            return 2
        text = read_text_file(args.file, "BrainScript file")
        sys.stdout.write(dump_tree(parse(text, args.file, [Path(args.file).parent])))
        return 0
    if args.config:
        if not args.section:
            print("netsurgeon bs: --config needs --section NAME", file=sys.stderr)
            return 2
        overrides = dict(s.split("=", 1) for s in args.set if "=" in s)
        net = host.build_from_config(args.config, args.section, seed=args.seed, overrides=overrides)
    elif args.file:
        net = host.build_from_file(args.file, seed=args.seed)
    else:
        print("netsurgeon bs: give a .bs FILE or --config FILE --section NAME", file=sys.stderr)
        return 2
    if args.output:
        from netsurgeon.formats import save

        save(net, args.output, args.format)
        print(f"saved {len(net)} nodes to {args.output}")
    else:
        for node in net.sorted_nodes():
            ins = ", ".join(i.name if i is not None else "NULL" for i in node.inputs)
            print(f"{node.name} = {node.op}({ins})  {node.shape}")
    _ = NetsurgeonError
    return 0
