"""CNTK v1 load time against reading the same file's bytes (np.fromfile), in the same run.

Files: the six real models in ../shared/cntk/models and (unless --skip-synthetic) a synthetic
~800 MB model (a 48-layer MLP of width 2048, float32) written by netsurgeon.

Per file, alternating rounds of (best of --repeat, min and median over --rounds):
  raw       np.fromfile(path, np.uint8): every byte read into memory
  open      netsurgeon.formats.cntk.read(path): graph parsed, parameters mapped (lazy views)
  open+read read() plus one full pass over every parameter value (forces every page in),
            the fair comparison with an eager reader (synthetic file only)
The ratios printed are open/raw (and (open+read)/raw), each from a fresh process pinned to 1
and to 2 CPUs; us/node is the open time over the file's node count. Goals (issue 14):
open/raw <= 5 for every real file; the synthetic file (weights memory-mapped) stays <= 1.

Run: .venv/bin/python bench/bench_cntk_load.py [--rounds 7] [--repeat 5] [--threads 1,2]
                                               [--skip-synthetic] [--layers 48] [--width 2048]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
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
GOAL_REAL = 5.0
GOAL_BIG = 1.0


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


def measure(path: Path, rounds: int, repeat: int, full: bool) -> dict[str, list[float]]:
    """Seconds per round (best of ``repeat``) of each way of reading ``path``, alternating."""
    ways = {"raw": lambda: np.fromfile(path, np.uint8), "open": lambda: cntk.read(path)}
    if full:
        ways["open+read"] = lambda: open_and_read(path)
    times: dict[str, list[float]] = {k: [] for k in ways}
    for _ in range(rounds):
        for k, fn in ways.items():
            times[k].append(best(fn, repeat, collect=False))
        gc.collect()
    return times


def child(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    out = {}
    for path in sorted(MODELS.glob("*")):
        out[path.name] = measure(path, args.rounds, args.repeat, False)
        out[path.name]["nodes"] = [float(len(cntk.read(path)))]
    if args.synthetic:
        out["synthetic.dnn"] = measure(Path(args.synthetic), max(2, args.rounds // 3),
                                       max(1, args.repeat // 3), True)
    return out


def run_child(args: argparse.Namespace, threads: int, synthetic: Path | None) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = [sys.executable, __file__, "--child", str(threads), "--rounds", str(args.rounds),
           "--repeat", str(args.repeat)]
    if synthetic is not None:
        cmd += ["--synthetic", str(synthetic)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def report(results: dict[int, dict], sizes: dict[str, int]) -> None:
    counts = sorted(results)
    print(f"{'file':<26} {'MB':>7} {'nodes':>5} " + "".join(
        f"| {t} CPU: raw ms open ms  open/raw min  median  us/node " for t in counts))
    worst_real, worst_big = 0.0, 0.0
    for name in results[counts[0]]:
        nodes = int(results[counts[0]][name].get("nodes", [0])[0])
        row = f"{name:<26} {sizes[name] / 1e6:7.2f} {nodes or '':>5} "
        for t in counts:
            tm = results[t][name]
            ratios = [o / r for o, r in zip(tm["open"], tm["raw"])]
            lo = min(tm["open"]) / min(tm["raw"])
            per_node = f"{min(tm['open']) * 1e6 / nodes:8.2f}" if nodes else " " * 8
            row += (f"| {min(tm['raw']) * 1e3:10.3f} {min(tm['open']) * 1e3:7.3f} "
                    f"{lo:12.2f} {statistics.median(ratios):7.2f} {per_node} ")
            if "open+read" in tm:
                worst_big = max(worst_big, lo)
                full = min(tm["open+read"]) / min(tm["raw"])
                row += f"(open+read)/raw {full:.2f} "
            else:
                worst_real = max(worst_real, lo)
        print(row)
    print(f"goal: open/raw <= {GOAL_REAL:g} for the real files: worst {worst_real:.2f} -> "
          f"{'OK' if worst_real <= GOAL_REAL else 'MISSED'}")
    if worst_big:
        print(f"goal: open/raw <= {GOAL_BIG:g} for the synthetic file: {worst_big:.2f} -> "
              f"{'OK' if worst_big <= GOAL_BIG else 'MISSED'}")


def main() -> None:
    args = options()
    if args.child is not None:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.child])
        print(json.dumps(child(args)))
        return
    report(*run_all(args))


def run_all(args: argparse.Namespace) -> tuple[dict[int, dict], dict[str, int]]:
    """(per pinned CPU count: per file: seconds per round of each way, file sizes)."""
    sizes = {p.name: p.stat().st_size for p in MODELS.glob("*")}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        big = None
        if not args.skip_synthetic:
            big = Path(tmp) / "synthetic.dnn"
            t0 = time.perf_counter()
            cntk.write(mlp(args.layers, args.width), big)
            print(f"synthetic model written in {time.perf_counter() - t0:.2f} s "
                  "(including the verify pass)")
            sizes[big.name] = big.stat().st_size
            np.fromfile(big, np.uint8)  # warm the page cache like the real files
        results = {int(t): run_child(args, int(t), big) for t in args.threads.split(",")}
    return results, sizes


def options(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=48)
    ap.add_argument("--width", type=int, default=2048)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", default="1,2", help="CPU counts to pin the runs to")
    ap.add_argument("--skip-synthetic", action="store_true")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--synthetic", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


if __name__ == "__main__":
    main()
