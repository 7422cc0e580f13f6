"""Native format: big weights against safetensors, and a million-node graph end to end.

1. Weights: a 200-layer MLP of width 1024 (W 1024x1024 + b 1024 per layer, ~840 MB float32)
   saved and loaded by netsurgeon and by safetensors on the same arrays, in the same run.
   Goals (issue 2): load <= 1.2x and save <= 1.0x safetensors. "open" builds the graph and
   maps the weights without reading them; "open+read" touches every weight once, so the
   comparison with safetensors' eager load_file is fair either way.
2. Graph size: InputValue + N Sigmoid nodes in a chain (default N = 1,000,000), built with the
   graph API, validated, saved and loaded, with the garbage collector on. Goals (issue 9):
   total < 20 s, save <= 2.5 s, load <= 4 s. Each run is a fresh process pinned to 1 and to 2
   CPUs (the machine is shared, so the two show how much the numbers depend on the load).
3. Linearity: load of a 10k and a 100k chain (goal: about 10x, not 100x).

Run: .venv/bin/python bench/bench_native.py [--layers 200] [--width 1024] [--repeat 3]
                                            [--chain 1000000] [--threads 1,2] [--skip-mlp]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

import _util
from _util import best
from netsurgeon.formats import native
from netsurgeon.graph import Network

#: the issue's budget for the million-node chain, in seconds (scaled linearly for other sizes)
GOALS = {"save": 2.5, "load": 4.0, "total": 20.0}
STEPS = ("build", "validate", "save", "load")


def mlp(layers: int, width: int) -> Network:
    rng = np.random.default_rng(0)
    shape = (width, width)
    return _util.mlp("mlp", layers, width,
                     weight=lambda i: rng.standard_normal(shape, dtype=np.float32),
                     bias=lambda i: np.zeros(width, np.float32))


def touch(arrays) -> float:
    return float(sum(float(a.reshape(-1)[:: 4096].sum()) + float(np.add.reduce(a, axis=None))
                     for a in arrays))


def weights(args: argparse.Namespace) -> None:
    net = mlp(args.layers, args.width)
    tensors = {n.name: n.value for n in net.nodes if n.value is not None}
    size = sum(a.nbytes for a in tensors.values())
    print(f"1. weights: {args.layers} layers x {args.width}, {len(net)} nodes, "
          f"{size / 1e6:.0f} MB float32")
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
    rows = (("save", save_st, save_ns, "goal <= 1.0"),
            ("load", load_st, read_ns, "goal <= 1.2; both read every weight"),
            ("open only", load_st, open_ns, "weights mapped, not read"))
    for what, st, ns, note in rows:
        print(f"   {what:<10} safetensors {st:7.3f} s   netsurgeon {ns:7.3f} s   "
              f"ratio {ns / st:5.2f}  ({note})")


def chain(n: int) -> Network:
    net = Network("chain")
    prev = net.add("x", "InputValue", shape=(4,))
    add = net.add
    for i in range(n):
        prev = add(f"n{i}", "Sigmoid", inputs=(prev,))
    return net


def chain_times(n: int) -> dict[str, float]:
    """Seconds of each step for an ``n``-node chain in this process (collector on)."""
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        path = Path(tmp) / "chain.nsm"
        t0 = time.perf_counter()
        net = chain(n)
        t1 = time.perf_counter()
        net.validate()
        t2 = time.perf_counter()
        native.save(net, path)
        t3 = time.perf_counter()
        back = native.load(path)
        t4 = time.perf_counter()
        assert len(back) == n + 1
    times.update(build=t1 - t0, validate=t2 - t1, save=t3 - t2, load=t4 - t3)
    times["total"] = t4 - t0
    return times


def chain_in_child(n: int, threads: int) -> dict[str, float]:
    """:func:`chain_times` in a fresh process limited to ``threads`` CPUs."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    out = subprocess.run([sys.executable, __file__, "--chain-child", str(n), "--threads",
                          str(threads)], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def graphs(args: argparse.Namespace) -> None:
    counts = [int(t) for t in args.threads.split(",")]
    goals = {k: v * args.chain / 1e6 for k, v in GOALS.items()}
    print(f"2. graph size: InputValue + {args.chain:,} Sigmoid, collector on "
          f"(goals: save <= {goals['save']:.3g} s, load <= {goals['load']:.3g} s, "
          f"total < {goals['total']:.3g} s)")
    print(f"   {'CPUs':>4} " + " ".join(f"{s:>9}" for s in (*STEPS, "total"))
          + "   save/goal load/goal total/goal")
    results = {}
    for threads in counts:
        t = results[threads] = chain_in_child(args.chain, threads)
        print(f"   {threads:>4} " + " ".join(f"{t[s]:8.2f}s" for s in (*STEPS, "total"))
              + "".join(f"   {t[k] / goals[k]:9.2f}" for k in ("save", "load", "total")))
    if len(counts) > 1:
        a, b = results[counts[0]], results[counts[-1]]
        print(f"   {counts[-1]}/{counts[0]} " + " ".join(f"{b[s] / a[s]:9.2f}"
                                                     for s in (*STEPS, "total")))
    small, large = 10_000, 100_000
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        loads = {}
        for n in (small, large):
            path = Path(tmp) / f"c{n}.nsm"
            net = chain(n)
            net.validate()
            native.save(net, path)
            loads[n] = best(lambda p=path: native.load(p), 3)
    print(f"3. linearity: load {small:,} nodes {loads[small]:.3f} s, {large:,} nodes "
          f"{loads[large]:.3f} s, ratio {loads[large] / loads[small]:.1f} (linear: ~10)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=200)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--chain", type=int, default=1_000_000)
    ap.add_argument("--threads", default="1,2", help="CPU counts to pin the chain runs to")
    ap.add_argument("--skip-mlp", action="store_true")
    ap.add_argument("--chain-child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.chain_child is not None:
        threads = int(args.threads)
        if hasattr(os, "sched_setaffinity"):
            cpus = sorted(os.sched_getaffinity(0))
            os.sched_setaffinity(0, cpus[:threads])
        print(json.dumps(chain_times(args.chain_child)))
        return
    if not args.skip_mlp:
        weights(args)
    graphs(args)


if __name__ == "__main__":
    main()
