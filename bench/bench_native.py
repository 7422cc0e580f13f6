"""Native format save/load against safetensors on the same arrays, in the same run.

Model: a 200-layer MLP of width 1024 (W 1024x1024 + b 1024 per layer, ~840 MB float32).
Goals (issue 2): load <= 1.2x and save <= 1.0x safetensors. Two load numbers are printed:
"open" (graph built, weights mapped, nothing read) and "open+read" (every weight touched once),
so the comparison with safetensors' eager load_file is fair either way.

Run: .venv/bin/python bench/bench_native.py [--layers 200] [--width 1024] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

import _util
from _util import best
from netsurgeon.formats import native
from netsurgeon.graph import Network


def mlp(layers: int, width: int) -> Network:
    rng = np.random.default_rng(0)
    shape = (width, width)
    return _util.mlp("mlp", layers, width,
                     weight=lambda i: rng.standard_normal(shape, dtype=np.float32),
                     bias=lambda i: np.zeros(width, np.float32))


def touch(arrays) -> float:
    return float(sum(float(a.reshape(-1)[:: 4096].sum()) + float(np.add.reduce(a, axis=None)) for a in arrays))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=200)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    net = mlp(args.layers, args.width)
    tensors = {n.name: n.value for n in net.nodes if n.value is not None}
    size = sum(a.nbytes for a in tensors.values())
    print(f"model: {args.layers} layers x {args.width}, {len(net)} nodes, {size / 1e6:.0f} MB float32")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        ours, theirs = Path(tmp) / "m.nsm", Path(tmp) / "m.safetensors"
        save_st = best(lambda: save_file(tensors, str(theirs)), args.repeat)
        save_ns = best(lambda: native.save(net, ours), args.repeat)
        load_st = best(lambda: touch(load_file(str(theirs)).values()), args.repeat)
        open_ns = best(lambda: native.load(ours), args.repeat)

        def open_and_read():
            back = native.load(ours)
            touch(n.value for n in back.nodes if n.value is not None)

        read_ns = best(open_and_read, args.repeat)
    print(f"save      safetensors {save_st:7.3f} s   netsurgeon {save_ns:7.3f} s   ratio {save_ns / save_st:5.2f}  (goal <= 1.0)")
    print(f"load      safetensors {load_st:7.3f} s   netsurgeon {read_ns:7.3f} s   ratio {read_ns / load_st:5.2f}  (goal <= 1.2; both read every weight)")
    print(f"open only                             netsurgeon {open_ns:7.3f} s   ratio {open_ns / load_st:5.2f}  (weights mapped, not read)")


if __name__ == "__main__":
    main()
