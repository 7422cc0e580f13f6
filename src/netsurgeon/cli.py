"""The ``netsurgeon`` command line: a thin dispatcher over ``netsurgeon.commands``.

Each subcommand lives in its own module with ``configure(parser)`` and ``run(args) -> int``,
imported only when chosen, so editing commands never import torch. A NetsurgeonError prints
as one line (file:line:col, node, what to fix) and exits 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from netsurgeon.errors import NetsurgeonError

__all__ = ["main", "COMMANDS"]

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "build": ("netsurgeon.commands.build", "build a network from an NDL file and save it"),
    "dump": ("netsurgeon.commands.dump", "print every node of a model (CNTK Dump format)"),
    "validate": ("netsurgeon.commands.validate", "validate a model: inputs, arity, shapes"),
    "edit": ("netsurgeon.commands.edit", "run a MEL script"),
    "convert": ("netsurgeon.commands.convert", "convert a model between formats"),
    "eval": ("netsurgeon.commands.eval", "evaluate a model on CTF data or .npy arrays"),
    "train": ("netsurgeon.commands.train", "train a model on CTF data"),
    "bs": ("netsurgeon.commands.bs", "build a network from BrainScript, or print its parse tree"),
}


def _parser(argv: list[str]) -> tuple[argparse.ArgumentParser, str | None]:
    parser = argparse.ArgumentParser(prog="netsurgeon", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            try:
                importlib.import_module(module).configure(p)
            except ModuleNotFoundError as exc:
                if exc.name != module:
                    raise
    return parser, chosen


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, _ = _parser(argv)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    module_name = COMMANDS[args.command][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        print(f"netsurgeon: error: '{args.command}' is not available in this version",
              file=sys.stderr)
        return 2
    try:
        return int(module.run(args) or 0)
    except NetsurgeonError as exc:
        if args.debug:
            raise
        print(f"netsurgeon: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("netsurgeon: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
