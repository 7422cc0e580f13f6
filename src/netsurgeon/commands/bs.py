"""``netsurgeon bs``: build a network from BrainScript, or print a parse tree.

    netsurgeon bs NET.bs -o MODEL                 # NET.bs holds a network description's members
    netsurgeon bs --config run.cntk --section train -o MODEL
    netsurgeon bs --parse-tree FILE               # CNTK's parser-test dump format

An error is one line, ``file:line:col: message``; with ``--show-source`` the source line and a
caret under the column follow it (indented, on stderr).
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
    parser.add_argument("--show-source", action="store_true",
                        help="after an error, print its source line with a caret under the column")
    parser.add_argument("--max-steps", type=_steps, default=None, metavar="N",
                        help="stop evaluation after N steps (default 20,000,000; 0: no limit)")


def _steps(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon bs``; returns the exit status."""
    from netsurgeon.errors import NetsurgeonError
    from netsurgeon.lang.brainscript.diagnostics import source_excerpt

    try:
        return _run(args)
    except NetsurgeonError as exc:
        excerpt = source_excerpt(exc.location) if args.show_source else None
        if excerpt is None or getattr(args, "debug", False):
            raise
        print(f"netsurgeon: error: {exc}\n{excerpt}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    from netsurgeon.lang.brainscript import host
    from netsurgeon.lang.brainscript.evaluator import MAX_STEPS
    from netsurgeon.lang.brainscript.parser import dump_tree, parse
    from netsurgeon.lang.config import read_text_file

    steps = MAX_STEPS if args.max_steps is None else (args.max_steps or None)
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
        net = host.build_from_config(args.config, args.section, seed=args.seed,
                                     overrides=overrides, max_steps=steps)
    elif args.file:
        net = host.build_from_file(args.file, seed=args.seed, max_steps=steps)
    else:
        print("netsurgeon bs: give a .bs FILE or --config FILE --section NAME", file=sys.stderr)
        return 2
    if args.output:
        from netsurgeon.commands._common import make_parent_dirs
        from netsurgeon.formats import save

        make_parent_dirs(args.output)
        save(net, args.output, args.format)
        print(f"saved {len(net)} nodes to {args.output}")
    else:
        for node in net.sorted_nodes():
            ins = ", ".join(i.name if i is not None else "NULL" for i in node.inputs)
            print(f"{node.name} = {node.op}({ins})  {node.shape}")
    return 0
