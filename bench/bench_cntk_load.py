"""CNTK v1 load time against reading the same file's bytes (np.fromfile), in the same run.

Files: the six real models in ../shared/cntk/models and a synthetic ~800 MB model (a 48-layer
MLP of width 2048, float32) written by netsurgeon. Goal (issue): load <= 2x raw read.

Three times per file (best of --repeat):
  raw       np.fromfile(path, np.uint8): every byte read into memory
  open      netsurgeon.formats.cntk.read(path): graph parsed, parameters mapped (lazy views)
  open+read read() plus one full pass over every parameter value (forces every page in),
            the fair comparison with an eager reader
The ratios printed are open/raw and (open+read)/raw.

Run: .venv/bin/python bench/bench_cntk_load.py [--layers 48] [--width 2048] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import _util
from _util import best
from netsurgeon.formats import cntk
from netsurgeon.graph import Network

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT.parent / "shared" / "cntk" / "models"


def mlp(layers: int, width: int) -> Network:
    base = np.linspace(-1, 1, width * width, dtype=np.float32).reshape(width, width)
    return _util.mlp("big", layers, width, weight=lambda i: base * (1.0 / i),
                     bias=lambda i: np.full(width, 0.01 * i, np.float32),
                     prefix=lambda i: f"L{i:03d}")


def open_and_read(path: Path) -> float:
    net = cntk.read(path)
    total = 0.0
    for node in net:
        if node.value is not None:
            total += float(np.add.reduce(node.value, axis=None))
    return total


def measure(path: Path, repeat: int) -> tuple[float, float, float]:
    raw = best(lambda: np.fromfile(path, np.uint8), repeat, collect=True)
    opened = best(lambda: cntk.read(path), repeat, collect=True)
    full = best(lambda: open_and_read(path), repeat, collect=True)
    return raw, opened, full


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=48)
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    rows = []
    for path in sorted(MODELS.glob("*")):
        rows.append((path.name, path.stat().st_size, *measure(path, max(args.repeat, 5))))

    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        big = Path(tmp) / "synthetic.dnn"
        t0 = time.perf_counter()
        cntk.write(mlp(args.layers, args.width), big)
        write_s = time.perf_counter() - t0
        gc.collect()
        np.fromfile(big, np.uint8)  # warm the page cache like the real files
        rows.append((big.name, big.stat().st_size, *measure(big, args.repeat)))

    print(f"{'file':<26} {'MB':>8} {'raw ms':>9} {'open ms':>9} {'open+read ms':>13} "
          f"{'open/raw':>9} {'(open+read)/raw':>16}")
    for name, size, raw, opened, full in rows:
        print(f"{name:<26} {size / 1e6:8.2f} {raw * 1e3:9.2f} {opened * 1e3:9.2f} "
              f"{full * 1e3:13.2f} {opened / raw:9.2f} {full / raw:16.2f}")
    print(f"synthetic model written in {write_s:.2f} s (including the verify pass)")
    worst = max(r[4] / r[2] for r in rows if r[1] > 100e6)
    print(f"goal: load <= 2x raw read; synthetic (open+read)/raw = {worst:.2f} "
          f"-> {'OK' if worst <= 2 else 'MISSED'}")


if __name__ == "__main__":
    main()
