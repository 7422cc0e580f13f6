"""``netsurgeon compare MODEL [MODEL2] (--input NODE=x.npy ... [--lengths L.npy] | --data
DATA.ctf [--map NODE=STREAM ...]) [--backends torch,onnxruntime] [--output NODE ...] [--rtol R]
[--atol A] [--json]``.

Runs the same inputs through two models (on the first backend), or through one model on
several backends (the first is the reference), and reports per output the largest absolute
and relative difference and whether ``|a − b| <= atol + rtol·|b|`` holds everywhere — like
``polygraphy run``. Exit status 0 when every output matches, 1 when one does not, 2 on an
error (as ``diff``). Sequence outputs are compared on the real frames only. Backends:
``torch`` (netsurgeon's runtime) and ``onnxruntime`` (netsurgeon's own ONNX export run by
onnxruntime; inference only, so criteria are not compared there). Inputs are (batch,
*sample) arrays, or (batch, time, *sample) with ``--lengths`` for sequence models.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from netsurgeon.errors import ArgumentError

BACKENDS = ("torch", "onnxruntime")


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``netsurgeon compare``."""
    parser.add_argument("model", help="model file")
    parser.add_argument("model2", nargs="?", help="second model (else compare backends)")
    parser.add_argument("--input", action="append", metavar="NODE=ARRAY.npy",
                        help="feed input NODE: (batch, *sample), or (batch, time, *sample) "
                             "with --lengths")
    parser.add_argument("--data", metavar="DATA.ctf",
                        help="or feed the inputs from CNTK Text Format data (one minibatch of "
                             "--max-sequences sequences)")
    parser.add_argument("--map", action="append", metavar="NODE=STREAM",
                        help="with --data: feed input NODE from stream STREAM")
    parser.add_argument("--max-sequences", type=int, default=100,
                        help="with --data: sequences read (default 100)")
    parser.add_argument("--lengths", metavar="L.npy", help="int lengths (batch,) of sequences")
    parser.add_argument("--backends", default="torch,onnxruntime",
                        help="comma-separated: torch, onnxruntime (default both; with two "
                             "models the first is used)")
    parser.add_argument("--output", action="append", metavar="NODE",
                        help="output to compare (default: the output group)")
    parser.add_argument("--rtol", type=float, default=1e-5)
    parser.add_argument("--atol", type=float, default=1e-6)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon compare``; returns 0 (all match), 1 (some output differs) or 2 (an
    error, as ``diff``)."""
    from netsurgeon.commands._common import report_error
    from netsurgeon.errors import NetsurgeonError

    try:
        return _compare(args)
    except (NetsurgeonError, OSError) as exc:
        return report_error(args, exc)


def _compare(args: argparse.Namespace) -> int:
    from netsurgeon.commands._common import parse_assignments
    from netsurgeon.formats import load
    from netsurgeon.runtime.readers import load_npy

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise ArgumentError(f"unknown backend {unknown[0] if unknown else '(none)'!r}; use "
                            f"{', '.join(BACKENDS)}")
    if args.model2 is None and len(backends) < 2:
        raise ArgumentError("give a second model or at least two --backends to compare")
    first = load(args.model)
    if bool(args.input) == bool(args.data):
        raise ArgumentError("give --input NODE=ARRAY.npy or --data DATA.ctf (one of them)")
    if args.data:
        feeds, lengths = _ctf_feeds(first, args.data, parse_assignments(args.map, "--map"),
                                    args.max_sequences)
    else:
        feeds = {node: load_npy(path, f"--input {node} array")
                 for node, path in parse_assignments(args.input, "--input").items()}
        lengths = load_npy(args.lengths, "--lengths array") if args.lengths else None
    outputs = args.output or [n.name for n in first.group("output")]
    if not outputs:
        raise ArgumentError(f"{args.model} has no output group; name outputs with --output")
    if args.model2 is not None:
        runs = [(args.model, first, backends[0]), (args.model2, load(args.model2), backends[0])]
    else:
        runs = [(f"{args.model} [{b}]", first, b) for b in backends]
    from netsurgeon.commands._progress import bars_for
    from netsurgeon.progress import bar

    values = []
    with bar(bars_for(args), "compare", len(runs), "runs") as shown:
        for _, net, backend in runs:
            values.append(_evaluate(net, backend, feeds, lengths, outputs))
            shown.update(1)
    report = _report(runs, values, outputs, args.rtol, args.atol, lengths)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print(report)
    return 0 if report["match"] else 1


def _ctf_feeds(net, path: str, mapping: dict[str, str], max_sequences: int):
    """Dense arrays of the first ``max_sequences`` sequences of a CTF file: (batch, *sample),
    or (batch, time, *sample) with their lengths when a sequence is longer than 1."""
    import numpy as np

    from netsurgeon.runtime.batch import SparseRows
    from netsurgeon.runtime.readers import CTFReader, streams_for

    specs = streams_for(net, mapping)
    batch = next(iter(CTFReader(path, specs, 10**9, max(1, max_sequences))))
    sequences = batch.steps > 1
    feeds = {}
    for spec in specs:
        value = batch.streams[spec.input]
        dense = value.to_dense() if isinstance(value, SparseRows) else np.asarray(value)
        shape = (batch.batch, batch.steps, *spec.shape) if sequences else \
            (batch.batch, *spec.shape)
        feeds[spec.input] = np.asarray(dense, np.float32).reshape(shape)
    return feeds, (np.asarray(batch.lengths) if sequences else None)


def _evaluate(net, backend: str, feeds: dict, lengths, outputs: list[str]) -> dict[str, Any]:
    """{output: numpy array} of ``net`` on ``backend``."""
    import numpy as np

    from netsurgeon.errors import NetsurgeonError

    missing = [o for o in outputs if o not in net]
    if missing:
        raise NetsurgeonError(f"'{missing[0]}' is not a node of network '{net.name}'",
                              node=missing[0])
    if backend == "torch":
        from netsurgeon.runtime import evaluate

        got = evaluate(net, feeds, outputs, lengths=lengths)
        return {o: np.asarray(got[o]) for o in outputs}
    import onnxruntime

    from netsurgeon.formats.onnx import to_model

    model = to_model(net, outputs)
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    given = {k: np.asarray(v, np.float32) for k, v in feeds.items() if k in names}
    if "lengths" in names:
        if lengths is None:
            raise NetsurgeonError(f"network '{net.name}' is a sequence model: give --lengths")
        given["lengths"] = np.asarray(lengths, np.int64)
    results = session.run(outputs, given)
    return dict(zip(outputs, results))


def _report(runs, values, outputs: list[str], rtol: float, atol: float,
            lengths) -> dict[str, Any]:
    """Per output and run, the differences from the reference run (the real frames only:
    values at padded steps are unspecified in an ONNX export)."""
    import numpy as np

    reference = values[0]
    mask = None
    if lengths is not None:
        lens = np.asarray(lengths).reshape(-1)
        mask = np.arange(int(lens.max()))[None, :] < lens[:, None]
    rows = []
    for (label, _, _), got in zip(runs[1:], values[1:]):
        for o in outputs:
            a = np.asarray(got[o], np.float64)
            b = np.asarray(reference[o], np.float64)
            if a.size == b.size:
                a = a.reshape(b.shape)
            if mask is not None and a.shape[:2] == b.shape[:2] == mask.shape:
                a, b = a[mask], b[mask]
            same_shape = a.shape == b.shape
            diff = np.abs(a - b) if same_shape else np.array([np.inf])
            rel = diff / np.maximum(np.abs(b), 1e-30) if same_shape else diff
            ok = bool(same_shape and np.all(diff <= atol + rtol * np.abs(b)))
            rows.append({"against": label, "output": o, "shape": list(a.shape),
                         "reference_shape": list(b.shape), "max_abs": float(diff.max()),
                         "max_rel": float(rel.max()), "match": ok})
    return {"reference": runs[0][0], "rtol": rtol, "atol": atol, "outputs": rows,
            "match": all(r["match"] for r in rows)}


def _print(report: dict[str, Any]) -> None:
    print(f"reference: {report['reference']} (rtol {report['rtol']:g}, atol "
          f"{report['atol']:g})")
    for r in report["outputs"]:
        verdict = "PASS" if r["match"] else "FAIL"
        shape = "" if r["shape"] == r["reference_shape"] else \
            f" (shape {r['shape']} vs {r['reference_shape']})"
        print(f"  {verdict} {r['output']} vs {r['against']}: max abs {r['max_abs']:.3g}, "
              f"max rel {r['max_rel']:.3g}{shape}")
    print("all outputs match" if report["match"] else "some outputs differ")
