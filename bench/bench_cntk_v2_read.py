"""CNTK v2 read speed: ``wire.decode`` against protobuf's own parse of the same file.

The reference is ``Dictionary.FromString(data)`` with the spec's schema (a map, packed
``repeated float``): the parse alone, no Python values. ``wire.decode`` parses with the
wire-identical schema of :mod:`netsurgeon.formats.cntk_v2.wire` and builds the whole value
tree, numpy arrays included. Goal: decode <= 3x the parse on slu.forward.nobn.model
(2.9 MB, mostly float32 weights). Each is timed ``--repeat`` times (best counts), in one
thread, with the results of the previous run still alive, as in real use.

It also times the other ways to get the float32 values, which is why wire.py reads packed
floats as bytes: the spec schema's parse plus ``np.array`` of each repeated field, and
``np.fromiter`` over it (one Python float per element).

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


def best(fn: Callable[[], object], repeat: int) -> float:
    """Fastest of ``repeat`` calls, in seconds (each result kept until the next call)."""
    times, kept = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
        kept = result  # noqa: F841 (free the previous result outside the timing)
    return min(times)


def _float_fields(msg: object) -> list[object]:
    """The ``float_values.value`` repeated fields of the tensors in ``inputs`` (spec schema)."""
    out = []
    for v in msg.data["inputs"].vector_value.value:  # type: ignore[attr-defined]
        var = v.dictionary_value.data
        if "value" in var:
            out.append(var["value"].nd_array_view_value.float_values.value)
    return out


def _spec_arrays(dictionary: type, data: bytes) -> list[np.ndarray]:
    return [np.array(f, dtype=np.float32) for f in _float_fields(dictionary.FromString(data))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=DEFAULT)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    data = args.file.read_bytes()
    dictionary = wire.proto_classes(canonical=True)["Dictionary"]
    raw = wire.proto_classes(canonical=False)["Dictionary"]
    wire.decode(data)  # warm-up: schema built, code paths loaded
    parse = best(lambda: dictionary.FromString(data), args.repeat)
    raw_parse = best(lambda: raw.FromString(data), args.repeat)
    decode = best(lambda: wire.decode(data, where=str(args.file)), args.repeat)
    print(f"file: {args.file.name} ({len(data) / 1e6:.2f} MB), best of {args.repeat}")
    print(f"Dictionary.FromString (spec schema):  {parse * 1e3:8.3f} ms")
    print(f"FromString (wire.py's schema):        {raw_parse * 1e3:8.3f} ms")
    print(f"wire.decode (parse + values):         {decode * 1e3:8.3f} ms")
    print(f"ratio decode / FromString: {decode / parse:.2f}x (goal <= 3x)")
    spec = best(lambda: _spec_arrays(dictionary, data), args.repeat)
    fields = _float_fields(dictionary.FromString(data))
    fromiter = best(lambda: [np.fromiter(f, np.float32, len(f)) for f in fields], 1)
    print("float32 values, other ways:")
    print(f"  spec FromString + np.array(repeated): {spec * 1e3:8.3f} ms")
    print(f"  np.fromiter(repeated) alone:          {fromiter * 1e3:8.3f} ms")


if __name__ == "__main__":
    main()
