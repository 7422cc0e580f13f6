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

Run: .venv/bin/python bench/bench_cntk_v2_read.py [--file PATH] [--repeat 5]
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=DEFAULT)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()
