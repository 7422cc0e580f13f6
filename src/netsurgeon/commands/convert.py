"""``netsurgeon convert IN OUT [--format cntk|native] [--from FMT] [--cntk-version N]``.

Reads a model in any supported format (detected from its first bytes unless ``--from`` says)
and writes it in the format ``--format`` names (default: from OUT's extension: ``.dnn``,
``.cmf``, ``.model`` -> cntk, anything else -> native). The output is written atomically and
parsed back before it replaces OUT; IN is never touched, even when OUT is the same path.
"""

from __future__ import annotations

import argparse

from netsurgeon.commands._common import add_format_option


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``netsurgeon convert``."""
    parser.add_argument("input", metavar="IN", help="model to read (.nsm, .dnn, .cmf ...)")
    parser.add_argument("output", metavar="OUT", help="file to write")
    add_format_option(parser)
    parser.add_argument("--from", dest="input_format", choices=("native", "cntk"), default=None,
                        help="format of IN (default: detected from its first bytes)")
    parser.add_argument("--cntk-version", type=int, default=None, metavar="N",
                        help="CNTK model version to write (default: the input's own version "
                             "for a CNTK input, else the writer's default)")
    parser.add_argument("--validate", action="store_true",
                        help="validate the network (shapes, arity) before writing")


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon convert``; returns the exit status."""
    from netsurgeon.formats import format_for_path, load, save

    net = load(args.input, args.input_format)
    if args.validate:
        net.validate()
    fmt = args.format or format_for_path(args.output)
    if fmt == "cntk" and args.cntk_version is not None:
        from netsurgeon.formats import cntk

        cntk.write(net, args.output, version=args.cntk_version)
    else:
        save(net, args.output, fmt)
    print(f"wrote {args.output} ({fmt}, {len(net)} nodes)")
    return 0
