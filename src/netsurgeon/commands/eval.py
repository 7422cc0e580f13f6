"""``netsurgeon eval MODEL DATA.ctf``: evaluate a model on CTF data or on .npy arrays.

Prints every criterion and evaluation node's sum and per-sample value; ``--output`` adds
other (intermediate) nodes to the report (the sum of their values over the real frames and
that sum per sample) and ``--save-outputs DIR`` writes them as ``DIR/NODE.npy``
(frames of all sequences concatenated, plus ``DIR/NODE.lens.npy`` for sequence data).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from netsurgeon.commands._common import add_format_option, input_names, parse_assignments
from netsurgeon.commands.train import add_device_options, count
from netsurgeon.errors import FormatError, NetsurgeonError


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``netsurgeon eval``."""
    parser.add_argument("model", help="model file (.nsm, .dnn/.cmf) or NDL network file")
    parser.add_argument("data", nargs="?", help="CNTK Text Format data file")
    parser.add_argument("--map", action="append", metavar="NODE=STREAM",
                        help="feed input NODE from CTF stream STREAM (default: same name)")
    parser.add_argument("--input", action="append", metavar="NODE=ARRAY.npy",
                        help="feed input NODE from a .npy array shaped (batch, *sample)")
    parser.add_argument("--output", action="append", metavar="NODE",
                        help="node to compute and report/save (repeatable)")
    parser.add_argument("--minibatch", type=count(1), default=256, help="samples per minibatch")
    parser.add_argument("--max-sequences", type=count(1), default=None,
                        help="stop after this many sequences of the data file")
    parser.add_argument("--save-outputs", metavar="DIR", help="save output nodes as DIR/NODE.npy")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--threads", type=count(1), default=None,
                        help="intra-op CPU threads of every backend (torch, onnxruntime)")
    parser.add_argument("--backend", choices=("auto", "torch", "compile", "onnxruntime"),
                        default="auto", help="what runs the network: the generated torch code, "
                        "torch.compile of it, onnxruntime on its ONNX export, or the fastest "
                        "measured per batch size (auto, default)")
    add_device_options(parser)
    add_format_option(parser)


def _file_name(node: str) -> str:
    return node.replace("/", "_").replace("\\", "_")


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon eval``; returns the exit status."""
    import numpy as np

    from netsurgeon.commands._model import load_model
    from netsurgeon.commands._progress import bars_for, ctf_samples
    from netsurgeon.progress import bar
    from netsurgeon.runtime import Evaluator, set_threads
    from netsurgeon.runtime.evaluate import batch_from_arrays
    from netsurgeon.runtime.readers import CTFReader, load_npy, streams_for

    if args.threads:
        set_threads(args.threads)
    net = load_model(args.model, args.format)
    net.validate()
    scored = [n for g in ("criterion", "evaluation") for n in net.group(g)]
    wanted = [net.node(o) for o in (args.output or [])]
    outputs = list(dict.fromkeys(scored + wanted)) or None
    ev = Evaluator(net, outputs, backend=args.backend,
                   device=args.device, precision=args.precision)
    arrays = parse_assignments(args.input, "--input")
    if bool(arrays) == bool(args.data):
        raise NetsurgeonError("give either a CTF data file or --input NODE=ARRAY.npy, not both"
                              if arrays else "give a CTF data file or --input NODE=ARRAY.npy")
    needed = set(_needed(net, ev.outputs))
    needed_inputs = input_names(net, [n for n in net.nodes if n in needed])  # network order
    if arrays:
        loaded = {}
        for node, path in arrays.items():
            name = net.node(node).name
            arr = load_npy(path, f"--input {node} array")
            if arr.ndim == 0 or arr.size == 0:
                raise FormatError(f"{path}: --input {node}: the array {arr.shape} holds no "
                                  "samples; give an array shaped (batch, *sample)")
            loaded[name] = arr
        # criteria/evaluation nodes whose inputs were not given are skipped
        computable = [n for n in ev.outputs
                      if all(i in loaded for i in input_names(net, _needed(net, [n])))]
        missing = sorted({i for n in wanted for i in input_names(net, _needed(net, [n]))
                          if i not in loaded})
        if missing:
            raise NetsurgeonError("no --input for " + ", ".join(missing))
        scored = [n for n in scored if n in computable]
        ev = Evaluator(net, list(dict.fromkeys(scored + wanted)), backend=args.backend,
                       device=args.device, precision=args.precision)
        batch, _ = batch_from_arrays(net, loaded)
        batches = [batch]
        sequence_data = False
    else:
        mapping = parse_assignments(args.map, "--map")
        specs = streams_for(net, mapping, needed_inputs)
        batches = CTFReader(args.data, specs, args.minibatch, args.max_sequences)
        sequence_data = None
    out_dir = _output_dir(args.save_outputs, wanted) if args.save_outputs else None
    reported = list(dict.fromkeys(scored + wanted))
    sums = {n.name: 0.0 for n in reported}
    dynamic = {n.name for n in reported if n.dynamic}
    frames: dict[str, list] = {n.name: [] for n in wanted if n.dynamic} if out_dir else {}
    static_out: dict[str, np.ndarray] = {}
    lens: list[np.ndarray] = []
    samples = sequences = 0
    progress = bars_for(args) if not arrays else None
    total = ctf_samples(args.data, args.max_sequences) if progress else None
    with bar(progress, "eval", total, "samples") as shown:
        for mb in batches:
            out = ev.run(mb)
            samples += mb.samples
            sequences += mb.batch
            if sequence_data is None or (mb.steps > 1):
                sequence_data = bool(sequence_data) or mb.steps > 1
            lens.append(mb.lengths)
            mask = mb.frame_mask() if dynamic else None
            for name in sums:
                v = out[name].detach().numpy()
                if name in dynamic:  # the real frames only, not the padding
                    real = v if mask is None else v[mask > 0]
                    sums[name] += float(real.sum(dtype=np.float64))
                else:
                    sums[name] += float(v.sum())
                    static_out[name] = v
            if frames:
                for name in frames:
                    v = out[name].detach().numpy()
                    frames[name].append(v if mask is None else v[mask > 0])
            shown.update(mb.samples)
    report = {"model": args.model, "samples": samples, "sequences": sequences, "nodes": {}}
    for n in reported:
        report["nodes"][n.name] = {"op": n.op, "sum": sums[n.name],
                                   "per_sample": sums[n.name] / max(samples, 1)}
    saved = {}
    if args.save_outputs:
        for n in wanted:
            path = out_dir / f"{_file_name(n.name)}.npy"
            if n.dynamic:
                arr = np.concatenate(frames[n.name]) if frames[n.name] else np.zeros((0,))
                if not sequence_data and arrays:
                    arr = arr.reshape((samples,) + tuple(n.shape or ()))
                _save_npy(path, arr)
                if sequence_data:
                    _save_npy(out_dir / f"{_file_name(n.name)}.lens.npy", np.concatenate(lens))
            else:
                _save_npy(path, static_out[n.name])
            saved[n.name] = str(path)
        report["saved"] = saved
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{args.model}: {samples} samples in {sequences} sequences")
        for name, r in report["nodes"].items():
            print(f"  {name} ({r['op']}): sum = {r['sum']:.6g}, per sample = {r['per_sample']:.6g}")
        for n in wanted:
            if not n.dynamic and n not in scored and static_out[n.name].size <= 16:
                print(f"  {n.name}: {static_out[n.name].tolist()}")
        for name, path in saved.items():
            print(f"  saved {name} -> {path}")
    return 0


def _output_dir(directory: str, nodes) -> Path:
    """Create ``--save-outputs DIR`` and check each file can be written there, before the
    evaluation (a FormatError naming the path otherwise)."""
    from netsurgeon.formats._atomic import output_path, write_error

    out_dir = Path(directory)
    if out_dir.exists() and not out_dir.is_dir():
        raise FormatError(f"--save-outputs {directory}: it is not a directory",
                          hint="give a directory; it is created if missing")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, exc.filename or directory) from None
    for n in nodes:
        output_path(out_dir / f"{_file_name(n.name)}.npy")
    return out_dir


def _save_npy(path: Path, array) -> None:
    """``np.save`` through the atomic writer (a one-line FormatError on any OS failure)."""
    import numpy as np

    from netsurgeon.formats._atomic import atomic_write

    with atomic_write(path) as handle:
        np.save(_WriteOnly(handle), array, allow_pickle=False)


class _WriteOnly:
    """Only ``write``: numpy then writes in chunks instead of ``tofile`` (which seeks)."""

    def __init__(self, handle) -> None:
        self.write = handle.write


def _needed(net, outputs):
    from netsurgeon.runtime.codegen import needed_nodes

    return needed_nodes(net, list(outputs))
