"""``netsurgeon diff A B [--json] [--values]``: what changed from model A to model B.

Nodes added, removed and renamed (matched by structure), inputs rewired, op / shape / dtype /
attribute / tag / learning-rate-multiplier changes, group membership, and parameters whose
values differ (``--values``: the max |difference| of every parameter). Both models are
validated first so shapes compare (a model that fails validation is compared as it is, after
a warning on stderr).

Exit status as diff(1): 0 when the models are equal, 1 when they differ, 2 on an error (a
missing or unreadable file; the error is one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys

from netsurgeon.commands._common import add_format_option
from netsurgeon.errors import NetsurgeonError, ValidationError

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``netsurgeon diff``."""
    parser.epilog = ("exit status: 0 the models are equal, 1 they differ, 2 an error "
                     "(as diff(1)); see docs/tools.md")
    parser.add_argument("a", metavar="A", help="the first model (before)")
    parser.add_argument("b", metavar="B", help="the second model (after)")
    add_format_option(parser)
    parser.add_argument("--json", action="store_true", help="print the differences as JSON")
    parser.add_argument("--values", action="store_true",
                        help="list every parameter with its max |difference| (0 included)")


def _load(path: str, fmt: str | None):
    from netsurgeon.commands._model import load_model

    net = load_model(path, fmt)
    try:
        net.validate()
    except ValidationError as exc:
        print(f"netsurgeon: warning: {path} is not valid, shapes may be missing: {exc}",
              file=sys.stderr)
    return net


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon diff``; returns 0 (equal), 1 (different) or 2 (error)."""
    from netsurgeon.graph.diff import diff_networks, format_diff

    try:
        a, b = _load(args.a, args.format), _load(args.b, args.format)
    except (NetsurgeonError, OSError) as exc:
        from netsurgeon.commands._common import report_error

        return report_error(args, exc)
    diff = diff_networks(a, b, values=args.values)
    diff["a"], diff["b"] = str(args.a), str(args.b)
    if args.json:
        print(json.dumps(diff, indent=1))
    else:
        sys.stdout.write(format_diff(diff, str(args.a), str(args.b)))
    return 0 if diff["equal"] else 1
