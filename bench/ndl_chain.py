"""Benchmark: build an N-node chain from NDL text and compare with Network.add, same run.

1. Ratio: NDL build of an M-node chain (default 20,000) against creating the same nodes with
   the graph API (``Network.add``), collector off on both sides, alternating rounds, min and
   median of the per-round ratios; from fresh processes pinned to 1 and to 2 CPUs.
   Goal (issue 14): NDL build <= 3x Network.add.
2. The whole chain: an N-node chain (default 1,000,000) built from NDL text and validated,
   with Network.add of the same chain as the baseline in the same process. Goal (issue 14):
   NDL build <= 15 s.

    .venv/bin/python bench/ndl_chain.py [N] [--ratio-nodes 20000] [--rounds 7] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time

GOAL_RATIO = 3.0
GOAL_MILLION_S = 15.0


def chain_text(n: int) -> str:
    return "x0 = Input(4, tag=feature)\n" + "\n".join(
        f"x{i} = Sigmoid(x{i - 1})" for i in range(1, n))


def graph_chain(names: list[str]):
    from netsurgeon.graph import Network

    net = Network("chain")
    prev = net.add("x0", "InputValue", shape=(4,), tags=("feature",))
    add = net.add
    for name in names:
        prev = add(name, "Sigmoid", (prev,))
    return net


def ratio_rounds(n: int, rounds: int) -> dict[str, list[float]]:
    """Seconds per round of the NDL build and of Network.add, alternating, collector off."""
    from netsurgeon.lang.ndl import NameCounter, build_network

    text = chain_text(n)
    names = [f"x{i}" for i in range(1, n)]
    out: dict[str, list[float]] = {"ndl": [], "graph": []}
    gc.disable()
    for _ in range(rounds):
        t0 = time.perf_counter()
        net = build_network(text, counter=NameCounter(), validate=False)
        t1 = time.perf_counter()
        del net
        base = graph_chain(names)
        t2 = time.perf_counter()
        del base
        out["ndl"].append(t1 - t0)
        out["graph"].append(t2 - t1)
    gc.enable()
    return out


def ratio_in_child(n: int, rounds: int, threads: int) -> dict[str, list[float]]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    out = subprocess.run([sys.executable, __file__, "--child", str(threads), "--ratio-nodes",
                          str(n), "--rounds", str(rounds)], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def million(n: int) -> dict[str, float]:
    """Seconds to build the ``n``-node chain from NDL and with Network.add (printed too)."""
    from netsurgeon.lang.ndl import NameCounter, build_network

    text = chain_text(n)
    t0 = time.perf_counter()
    net = build_network(text, counter=NameCounter(), validate=False)
    t1 = time.perf_counter()
    net.validate()
    t2 = time.perf_counter()
    assert len(net) == n
    del net
    names = [f"x{i}" for i in range(1, n)]
    t3 = time.perf_counter()
    base = graph_chain(names)
    t4 = time.perf_counter()
    del base
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ndl, graph = t1 - t0, t4 - t3
    print(f"2. {n:,} nodes: NDL build {ndl:.1f}s ({ndl / n * 1e6:.1f} us/node), validate "
          f"{t2 - t1:.1f}s; graph API {graph:.1f}s ({graph / n * 1e6:.1f} us/node); "
          f"NDL/graph = {ndl / graph:.1f}x; peak RSS {rss:.0f} MiB")
    goal = GOAL_MILLION_S * n / 1e6
    print(f"   goal: NDL build <= {goal:g} s -> {'OK' if ndl <= goal else 'MISSED'}")
    return {"ndl": ndl, "validate": t2 - t1, "graph": graph}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("nodes", nargs="?", type=int, default=1_000_000)
    ap.add_argument("--ratio-nodes", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child is not None:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.child])
        print(json.dumps(ratio_rounds(args.ratio_nodes, args.rounds)))
        return
    print(f"1. NDL build / Network.add, {args.ratio_nodes:,}-node chain, collector off, "
          f"{args.rounds} alternating rounds (goal <= {GOAL_RATIO:g}x):")
    worst = 0.0
    for threads in (int(t) for t in args.threads.split(",")):
        t = ratio_in_child(args.ratio_nodes, args.rounds, threads)
        per_round = [a / b for a, b in zip(t["ndl"], t["graph"])]
        low = min(t["ndl"]) / min(t["graph"])
        worst = max(worst, low)
        print(f"   {threads} CPU: NDL {min(t['ndl']) / args.ratio_nodes * 1e6:6.2f} us/node, "
              f"graph {min(t['graph']) / args.ratio_nodes * 1e6:5.2f} us/node; ratio of mins "
              f"{low:.2f}x, median of rounds {statistics.median(per_round):.2f}x")
    print(f"   goal: <= {GOAL_RATIO:g}x -> {'OK' if worst <= GOAL_RATIO else 'MISSED'}")
    if args.nodes:
        million(args.nodes)


if __name__ == "__main__":
    main()
