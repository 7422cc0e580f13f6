"""``netsurgeon convert IN OUT [--format cntk|cntk-v2|native|onnx|torch] [--from FMT]
[--cntk-version N] [--outputs NODE ...] [--keep-criteria] [--opset N] [--constant-weights]``.

Reads a model in any supported format (detected from its first bytes unless ``--from`` says)
and writes it in the format ``--format`` names (default: from OUT's extension: ``.dnn``,
``.cmf`` -> cntk (v1), ``.model`` -> cntk-v2 (what CNTK 2.x ``Function.save`` writes), ``.onnx``
-> onnx, ``.py`` -> torch, anything else -> native).
The output is written atomically; IN is never touched, even when OUT is the same path. An ONNX
export holds what ``--outputs`` need (default: the output group, or every root that is not a
criterion or evaluation node), plus the criteria with ``--keep-criteria``; see docs/onnx.md.
``torch`` writes a standalone PyTorch module (``OUT.py`` importing only torch, weights in
``OUT.safetensors``; docs/torch.md) computing ``--outputs`` (default: the output, criterion
and evaluation nodes).
"""

from __future__ import annotations

import argparse

from netsurgeon.errors import ArgumentError

_ONNX_ONLY = ("--outputs", "--keep-criteria", "--opset")
FORMATS = ("native", "cntk", "cntk-v2", "onnx", "torch")


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``netsurgeon convert``."""
    parser.add_argument("input", metavar="IN",
                        help="model to read (.nsm, .dnn, .cmf, .model, .onnx ...)")
    parser.add_argument("output", metavar="OUT", help="file to write")
    parser.add_argument("--format", choices=FORMATS, default=None,
                        help="format of OUT (default: from its extension; .py is torch)")
    parser.add_argument("--from", dest="input_format",
                        choices=("native", "cntk", "cntk-v2", "onnx"), default=None,
                        help="format of IN (default: detected from its first bytes)")
    parser.add_argument("--cntk-version", type=int, default=None, metavar="N",
                        help="CNTK model version to write (default: the input's own version "
                             "for a CNTK input, else the writer's default)")
    parser.add_argument("--validate", action="store_true",
                        help="validate the network (shapes, arity) before writing")
    parser.add_argument("--constant-weights", action="store_true",
                        help="ONNX input: make the initializers constants (learning-rate "
                             "multiplier 0) instead of learnable parameters")
    onnx = parser.add_argument_group("ONNX export")
    onnx.add_argument("--outputs", nargs="+", metavar="NODE", default=None,
                      help="export what these nodes need, as the graph outputs (default: the "
                           "output group, or every root that is not a criterion)")
    onnx.add_argument("--keep-criteria", action="store_true",
                      help="add the criterion and evaluation nodes as extra outputs")
    onnx.add_argument("--opset", type=int, default=None, metavar="N",
                      help="ONNX opset to target (default: the newest onnxruntime runs)")


def _output_format(args: argparse.Namespace) -> str:
    from netsurgeon.formats import format_for_path

    if args.format:
        return args.format
    return "torch" if args.output.lower().endswith(".py") else format_for_path(args.output)


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon convert``; returns the exit status."""
    from netsurgeon.formats import save

    fmt = _output_format(args)
    given = [flag for flag, value in zip(_ONNX_ONLY, (args.outputs, args.keep_criteria,
                                                      args.opset is not None)) if value]
    if fmt == "torch":
        given = [flag for flag in given if flag != "--outputs"]
    if given and fmt != "onnx":
        raise ArgumentError(f"{', '.join(given)}: options of ONNX export, but OUT is written as "
                            f"{fmt} (give --format onnx or a .onnx name)")
    net = _read(args)
    if args.validate:
        net.validate()
    from netsurgeon.commands._progress import bars_for
    from netsurgeon.formats import writing

    message = f"wrote {args.output} ({fmt}, {len(net)} nodes)"
    with writing(bars_for(args), net, args.output):  # a bar counting the bytes written
        if fmt == "cntk" and args.cntk_version is not None:
            from netsurgeon.formats import cntk

            cntk.write(net, args.output, version=args.cntk_version)
        elif fmt == "onnx":
            from netsurgeon.formats import onnx

            external = onnx.save(net, args.output, args.outputs, keep_criteria=args.keep_criteria,
                                 opset=args.opset)
            extra = f", tensors in {args.output}.data" if external else ""
            message = f"wrote {args.output} (onnx, opset {args.opset or onnx.DEFAULT_OPSET}{extra})"
        elif fmt == "torch":
            from netsurgeon.runtime.standalone import write_module

            source, weights = write_module(net, args.output, args.outputs)
            message = (f"wrote {source} and {weights} (a PyTorch module: import it and call "
                       "load())")
        else:
            save(net, args.output, fmt)
    print(message)
    return 0


def _read(args: argparse.Namespace):
    from netsurgeon.formats import detect_format, load

    if not args.constant_weights:
        return load(args.input, args.input_format)
    if (args.input_format or detect_format(args.input)) != "onnx":
        raise ArgumentError("--constant-weights applies to an ONNX input only")
    from netsurgeon.formats.onnx.importer import read

    return read(args.input, constant=True)
