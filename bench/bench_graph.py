"""Graph IR speed and scaling: the 1,000,000-node chain, and 10k -> 100k with the collector on.

Measured (best of --repeat, garbage collector on as users run it):
  * chain N: InputValue + N Sigmoid nodes built with ``Network.add``, validated
    (CheckStructure + InferShapes), saved as .nsm, loaded, validated again;
  * baseline in the same process: building the same number of plain slotted Python objects
    with a tuple of inputs each, registered in two dicts (the irreducible Python cost of a
    named graph), so the ratio says how close the IR is to that floor;
  * scaling: seconds per node at 10k and at 100k nodes for building and for loading (a ratio
    near 1 means linear; a quadratic step would give 10), beside the plain-object floor's, which
    shows what the interpreter itself does (memory and the collector) at those sizes.
  * growth exponents (issue 14): log10(t(100k) / t(10k)) for Network.add build, NDL build,
    native save/load and CNTK v1 save/load, collector ON, CPU time of this process (the
    machines are shared: wall time mostly measures the neighbours), 10k and 100k runs
    alternating, min and median over the rounds; the plain-object floor's exponent, with the
    collector on and off, shows what the interpreter and memory do at those sizes (an
    exponent at the floor's is as linear as Python gets), and Network.add with the collector
    off shows what the collector adds. Each table comes from a fresh
    process pinned to 1 and to 2 CPUs.
Goals: the whole 1,000,000-node chain in under 20 s (issue 9); growth exponents <= 1.05
(issue 14). The threads setting does not matter here (pure Python).

Run: .venv/bin/python bench/bench_graph.py [--nodes 1000000] [--repeat 1] [--rounds 5]
                                          [--growth-only] [--threads 1,2]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from netsurgeon.formats import cntk, load, native, save
from netsurgeon.graph import Network
from netsurgeon.lang.ndl import NameCounter, build_network


def chain(n: int) -> Network:
    net = Network("chain")
    prev = net.add("x", "InputValue", shape=(4,))
    for i in range(n):
        prev = net.add(f"n{i}", "Sigmoid", (prev,))
    return net


class _Plain:
    __slots__ = ("name", "op", "inputs")

    def __init__(self, name: str, op: str, inputs: tuple) -> None:
        self.name, self.op, self.inputs = name, op, inputs


def plain_chain(n: int) -> dict:
    """The floor: named objects with input tuples in two dicts (names and users)."""
    names: dict[str, _Plain] = {}
    users: dict[_Plain, dict] = {}
    prev = names["x"] = _Plain("x", "InputValue", ())
    users[prev] = {}
    for i in range(n):
        node = _Plain(f"n{i}", "Sigmoid", (prev,))
        names[node.name] = node
        users[node] = {}
        users[prev][node] = 1
        prev = node
    return names


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def run_chain(n: int, folder: Path) -> dict[str, float]:
    times: dict[str, float] = {}
    times["build"], net = timed(chain, n)
    times["validate"], _ = timed(net.validate)
    path = folder / "chain.nsm"
    times["save"], _ = timed(save, net, path)
    del net
    times["load"], back = timed(load, path)
    times["validate again"], _ = timed(back.validate)
    assert len(back) == n + 1 and back.node(f"n{n - 1}").shape == (4,)
    return times


def per_node(fn, n: int, repeat: int) -> float:
    return min(timed(fn, n)[0] for _ in range(repeat)) / n


def ndl_chain_text(n: int) -> str:
    return "x = Input(4, tag=feature)\n" + "\n".join(
        f"n{i} = Sigmoid({'n' + str(i - 1) if i else 'x'})" for i in range(n))


def growth_steps(n: int, folder: Path) -> dict[str, object]:
    """The measured steps for an ``n``-node chain (files written once, before timing)."""
    text = ndl_chain_text(n)
    net = chain(n)
    net.add_to_group("feature", net.node("x"))
    nsm, dnn = folder / f"g{n}.nsm", folder / f"g{n}.dnn"
    native.save(net, nsm)
    cntk.write(net, dnn)
    return {
        "plain-object floor": lambda: plain_chain(n),
        "Network.add build": lambda: chain(n),
        "NDL build": lambda: build_network(text, counter=NameCounter(), validate=False),
        "native save": lambda: native.save(net, nsm),
        "native load": lambda: native.load(nsm),
        "CNTK v1 save": lambda: cntk.write(net, dnn, verify=False),
        "CNTK v1 load": lambda: cntk.read(dnn),
    }


def growth(rounds: int, small: int = 10_000, large: int = 100_000) -> dict[str, list[float]]:
    """Per step: [min exponent, median exponent] with the collector on, and the floor with
    it off; sizes alternate within each round."""
    times: dict[str, tuple[list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        steps = {n: growth_steps(n, Path(tmp)) for n in (small, large)}
        for _ in range(rounds):
            for label in steps[small]:
                pair = label in ("plain-object floor", "Network.add build")
                for offs in ((False, True) if pair else (False,)):
                    key = label + (" (collector off)" if offs else "")
                    small_t, large_t = times.setdefault(key, ([], []))
                    for n, acc in ((small, small_t), (large, large_t)):
                        gc.collect()
                        if offs:
                            gc.disable()
                        t0 = time.process_time()
                        out = steps[n][label]()
                        acc.append(time.process_time() - t0)
                        gc.enable()
                        del out
    return {k: [math.log10(min(b) / min(a)),
                math.log10(statistics.median(b) / statistics.median(a)), min(a), min(b)]
            for k, (a, b) in times.items()}


def growth_in_child(rounds: int, threads: int) -> dict[str, list[float]]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    out = subprocess.run([sys.executable, __file__, "--growth-child", str(rounds), "--threads",
                          str(threads)], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


def print_growth(rounds: int, thread_counts: list[int]) -> None:
    print(f"growth exponents 10k -> 100k nodes, collector on, CPU time, {rounds} alternating "
          "rounds (goal <= 1.05; 1 = linear):")
    tables = {t: growth_in_child(rounds, t) for t in thread_counts}
    head = "".join(f"  {t} CPU: min  median  10k ms 100k ms" for t in thread_counts)
    print(f"  {'step':<36}{head}")
    for key in tables[thread_counts[0]]:
        row = "".join(f"        {tables[t][key][0]:5.3f} {tables[t][key][1]:6.3f} "
                      f"{tables[t][key][2] * 1e3:7.1f} {tables[t][key][3] * 1e3:7.1f}"
                      for t in thread_counts)
        print(f"  {key:<36}{row}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", default="1,2", help="CPU counts of the growth runs")
    parser.add_argument("--growth-only", action="store_true")
    parser.add_argument("--growth-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.growth_child is not None:
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:int(args.threads)])
        print(json.dumps(growth(args.growth_child)))
        return
    if args.growth_only:
        print_growth(args.rounds, [int(t) for t in args.threads.split(",")])
        return
    print(f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')} (pure Python)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        best: dict[str, float] = {}
        for _ in range(args.repeat):
            for k, v in run_chain(args.nodes, folder).items():
                best[k] = min(v, best.get(k, v))
        floor = min(timed(plain_chain, args.nodes)[0] for _ in range(args.repeat))
        total = sum(best.values())
        print(f"chain of {args.nodes:,} nodes:")
        for k, v in best.items():
            print(f"  {k:15s} {v:6.2f} s  ({v / args.nodes * 1e6:.2f} us/node)")
        verdict = "met" if total < 20 else "NOT met"
        print(f"  {'total':15s} {total:6.2f} s  (goal < 20 s: {verdict})")
        print(f"  build / plain-object floor: {best['build'] / floor:.2f}x (floor {floor:.2f} s)")

        def load_n(n: int) -> None:
            path = folder / f"c{n}.nsm"
            if not path.exists():
                save(chain(n), path)
            load(path)

        for label, fn in (("build", chain), ("load", load_n), ("plain-object floor", plain_chain)):
            small = per_node(fn, 10_000, 3)
            large = per_node(fn, 100_000, 3)
            print(f"scaling of {label}: {small * 1e6:.2f} us/node at 10k, {large * 1e6:.2f} "
                  f"at 100k: ratio {large / small:.2f} (1 = linear)")
        for label, fn in (("build", chain), ("load", load_n)):
            on = per_node(fn, 100_000, 3)
            gc.disable()
            try:
                off = per_node(fn, 100_000, 3)
            finally:
                gc.enable()
            print(f"collector on / off at 100k nodes, {label}: {on / off:.2f}x "
                  "(before issue 9: build 2.5x, load 2.25x)")
    print_growth(args.rounds, [int(t) for t in args.threads.split(",")])


if __name__ == "__main__":
    main()
