"""``netsurgeon extract MODEL --inputs A,B --outputs Z -o SUB``: CloneFunction from the
command line.

The sub-network that computes the outputs from the given inputs is copied, parameter values
included, into a model of its own (the source file is not changed). An inner node given as
an input (``--inputs z.p3``) becomes an ``InputValue`` of its name and shape; every reader
input the outputs need must be listed. The result is validated before it is written.
"""

from __future__ import annotations

import argparse
import json

from netsurgeon.commands._common import add_format_option, make_parent_dirs
from netsurgeon.errors import ArgumentError

__all__ = ["configure", "run", "names"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``netsurgeon extract``."""
    parser.add_argument("model", help="model file (native, CNTK v1/v2, ONNX) or an .ndl file")
    parser.add_argument("--inputs", action="append", required=True, metavar="A,B",
                        help="the nodes the sub-network starts from (comma-separated, "
                        "repeatable)")
    parser.add_argument("--outputs", action="append", required=True, metavar="Z",
                        help="the nodes it computes (comma-separated, repeatable)")
    parser.add_argument("-o", "--out", required=True, metavar="SUB", help="the model to write")
    add_format_option(parser)
    parser.add_argument("--out-format", choices=("native", "cntk", "cntk-v2", "onnx"),
                        default=None, help="format of SUB (default: from its extension)")
    parser.add_argument("--json", action="store_true", help="report as JSON")


def names(items: list[str] | None, flag: str) -> list[str]:
    """``['a,b', 'c']`` -> ``['a', 'b', 'c']``; ArgumentError for an empty name."""
    out = [n.strip() for item in items or () for n in item.split(",")]
    if not out or any(not n for n in out):
        raise ArgumentError(f"{flag} expects node names separated by commas, got "
                            f"'{','.join(items or ())}'")
    return out


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon extract``; returns the exit status."""
    from netsurgeon.commands._model import load_model
    from netsurgeon.formats import format_for_path, save
    from netsurgeon.graph.extract import extract

    inputs, outputs = names(args.inputs, "--inputs"), names(args.outputs, "--outputs")
    net = load_model(args.model, args.format)
    net.validate()
    sub = extract(net, inputs, outputs)
    sub.validate()
    fmt = args.out_format or format_for_path(args.out)
    make_parent_dirs(args.out)
    if fmt == "onnx":
        save(sub, args.out, fmt, outputs=outputs)
    else:
        save(sub, args.out, fmt)
    params = sum(int(n.value.size) for n in sub if n.value is not None)
    if args.json:
        print(json.dumps({"model": str(args.model), "out": str(args.out), "format": fmt,
                          "inputs": inputs, "outputs": outputs, "nodes": [n.name for n in sub],
                          "parameters": params}, indent=1))
    else:
        print(f"wrote {args.out} ({fmt}, {len(sub)} of {len(net)} nodes, {params:,} parameter "
              f"values): {', '.join(inputs)} -> {', '.join(outputs)}")
    return 0
