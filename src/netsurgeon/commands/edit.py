"""``netsurgeon edit SCRIPT.mel``: run a MEL script (ndl-mel.md §C).

Files the script saves or dumps are written only when every statement succeeded (so a failing
script leaves existing files untouched); ``--dry-run`` runs and validates everything and
writes nothing.
"""

from __future__ import annotations

import argparse
import sys

from netsurgeon.errors import EditError

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``netsurgeon edit``."""
    parser.add_argument("script", help="the MEL script to run")
    parser.add_argument("--set", dest="variables", action="append", default=[],
                        metavar="NAME=VALUE",
                        help="a value for $NAME$ in the script (repeatable)")
    parser.add_argument("--macros", action="append", default=[], metavar="FILE",
                        help="an NDL macro file for in-line NDL and snippets (repeatable)")
    parser.add_argument("--dry-run", action="store_true",
                        help="run and validate everything but write no file")
    parser.add_argument("--quiet", "-q", action="store_true", help="print nothing on success")


def _variables(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise EditError(f"--set expects NAME=VALUE, got '{pair}'")
        out[name.strip()] = value
    return out


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon edit``; returns the exit status."""
    from netsurgeon.lang.mel import run as run_mel

    result = run_mel(
        args.script,
        _variables(args.variables),
        macros=args.macros or None,
        dry_run=args.dry_run,
        warn=lambda text: print(text, file=sys.stderr),
    )
    if not args.quiet:
        for name, net in result.items():
            mark = " (default)" if name == result.default else ""
            print(f"model {name}{mark}: {len(net)} nodes")
        if args.dry_run:
            print("dry run: nothing written")
        for path in result.written:
            print(f"wrote {path}")
    return 0
