"""CNTK v2 read speed: ``wire.decode`` against protobuf's own parse of the same file.

The reference is ``Dictionary.FromString(data)`` with the spec's schema (a map, packed
``repeated float``): the parse alone, no Python values. ``wire.decode`` builds the whole
value tree, numpy arrays included. Goal: decode <= 3x the parse on slu.forward.nobn.model
(2.9 MB, mostly float32 weights). After a warm-up, the two are timed in alternation,
``--repeat`` rounds in one thread, each result kept until the next round (as in real use);
the best time of each counts.

It also times the other ways to get the float32 values (the spec schema's parse plus
``np.array`` of each repeated field, and ``np.fromiter``, one Python float per element),
and decode with the big payloads parsed by protobuf instead of cut out of the parse.

Second part, the whole read: ``netsurgeon.formats.load(path)`` (detection, file read, decode,
the network built and validated) against reading the file's bytes and parsing them with the
generated parser alone (``Dictionary.FromString(path.read_bytes())``). Goal: load <= 3x that
baseline. Each thread count runs in a fresh process pinned to that many CPUs
(``sched_setaffinity``, and ``OMP_NUM_THREADS`` and friends set; the read is pure Python and
protobuf, torch is not involved), ``--whole-repeat`` alternating rounds, median of each.

Run: .venv/bin/python bench/bench_cntk_v2_read.py [--file PATH] [--repeat 5]
     [--threads 1,2] [--whole-repeat 21] [--skip-wire]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from netsurgeon.formats.cntk_v2 import wire

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT.parent / "shared" / "cntk" / "v2" / "slu.forward.nobn.model"


def race(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Best time of each function in seconds, over ``repeat`` alternating rounds."""
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    kept: dict[str, object] = {}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            result = fn()
            best[name] = min(best[name], time.perf_counter() - t0)
            kept[name] = result  # the previous result is freed outside the timing
    return best


def _float_fields(msg: object) -> list[object]:
    """The ``float_values.value`` repeated fields of the tensors in ``inputs`` (spec schema)."""
    out = []
    for v in msg.data["inputs"].vector_value.value:  # type: ignore[attr-defined]
        var = v.dictionary_value.data
        if "value" in var:
            out.append(var["value"].nd_array_view_value.float_values.value)
    return out


def _uncut(data: bytes) -> wire.Model:
    """decode with every payload left to protobuf (the path taken when nothing is cut)."""
    saved, wire._CUT_MIN = wire._CUT_MIN, 1 << 62
    try:
        return wire.decode(data)
    finally:
        wire._CUT_MIN = saved


def medians(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median time of each function in seconds, over ``repeat`` alternating rounds after a
    warm-up (the previous result is freed outside the timing, as in :func:`race`)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    kept: dict[str, object] = {}
    for _ in range(repeat):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            result = fn()
            times[name].append(time.perf_counter() - t0)
            kept[name] = result
    return {name: statistics.median(ts) for name, ts in times.items()}


def whole_times(path: Path, repeat: int) -> dict[str, float]:
    """The whole read against the baseline (bytes read + generated parser), medians."""
    from netsurgeon.formats import load

    dictionary = wire.proto_classes(canonical=True)["Dictionary"]
    return medians({
        "baseline": lambda: dictionary.FromString(path.read_bytes()),
        "load": lambda: load(path),
    }, repeat)


def whole_in_child(path: Path, threads: int, repeat: int) -> dict[str, float]:
    """:func:`whole_times` in a fresh process pinned to ``threads`` CPUs."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    out = subprocess.run([sys.executable, __file__, "--file", str(path), "--whole-child",
                          str(threads), "--whole-repeat", str(repeat)],
                         env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def whole(args: argparse.Namespace) -> None:
    counts = [int(t) for t in args.threads.split(",")]
    print(f"whole read: netsurgeon.formats.load vs read_bytes + Dictionary.FromString, "
          f"median of {args.whole_repeat} (goal <= 3x)")
    print(f"  {'CPUs':>4} {'baseline':>11} {'load':>11} {'ratio':>7}")
    for threads in counts:
        t = whole_in_child(args.file, threads, args.whole_repeat)
        print(f"  {threads:>4} {t['baseline'] * 1e3:8.3f} ms {t['load'] * 1e3:8.3f} ms "
              f"{t['load'] / t['baseline']:6.2f}x")


def wire_only(args: argparse.Namespace) -> None:
    data = args.file.read_bytes()
    dictionary = wire.proto_classes(canonical=True)["Dictionary"]
    times = race({
        "parse": lambda: dictionary.FromString(data),
        "decode": lambda: wire.decode(data, where=str(args.file)),
    }, args.repeat)
    parse, decode = times["parse"], times["decode"]
    print(f"file: {args.file.name} ({len(data) / 1e6:.2f} MB), best of {args.repeat}")
    print(f"Dictionary.FromString (spec schema):    {parse * 1e3:8.3f} ms")
    print(f"wire.decode (values, numpy arrays):     {decode * 1e3:8.3f} ms")
    print(f"ratio decode / FromString: {decode / parse:.2f}x (goal <= 3x)")
    fields = _float_fields(dictionary.FromString(data))
    other = race({
        "spec": lambda: [np.array(f, np.float32) for f in
                         _float_fields(dictionary.FromString(data))],
        "uncut": lambda: _uncut(data),
    }, args.repeat)
    fromiter = race({"fromiter": lambda: [np.fromiter(f, np.float32, len(f))
                                          for f in fields]}, 1)["fromiter"]
    print("other ways:")
    print(f"  spec FromString + np.array(repeated): {other['spec'] * 1e3:8.3f} ms")
    print(f"  np.fromiter(repeated) alone:          {fromiter * 1e3:8.3f} ms")
    print(f"  wire.decode, payloads not cut:        {other['uncut'] * 1e3:8.3f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=DEFAULT)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", default="1,2", help="CPU counts for the whole read")
    ap.add_argument("--whole-repeat", type=int, default=21)
    ap.add_argument("--skip-wire", action="store_true", help="only the whole read")
    ap.add_argument("--whole-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.whole_child is not None:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.whole_child])
        print(json.dumps(whole_times(args.file, args.whole_repeat)))
        return
    if not args.skip_wire:
        wire_only(args)
        print()
    whole(args)


if __name__ == "__main__":
    main()
