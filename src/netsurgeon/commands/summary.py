"""``netsurgeon summary MODEL [--json]``: one row per node in topological order, then totals.

The network is validated first so every shape is known; a network that fails validation is
still listed (with the shapes known so far) after a one-line warning on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys

from netsurgeon.commands._common import add_format_option
from netsurgeon.errors import ValidationError

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``netsurgeon summary``."""
    parser.add_argument("model", help="model file (native, CNTK v1/v2, ONNX) or an .ndl file")
    add_format_option(parser)
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon summary``; returns the exit status."""
    from netsurgeon.commands._model import load_model
    from netsurgeon.graph.summary import format_summary, summarize

    net = load_model(args.model, args.format)
    try:
        net.validate()
    except ValidationError as exc:
        print(f"netsurgeon: warning: {args.model} is not valid, shapes may be missing: {exc}",
              file=sys.stderr)
    summary = summarize(net)
    summary["model"] = str(args.model)
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        sys.stdout.write(f"{args.model}\n" + format_summary(summary))
    return 0
