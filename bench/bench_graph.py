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
Goal (issue 9): the whole 1,000,000-node chain in under 20 s; linear from 10k to 100k.
The threads setting does not matter here (pure Python), it is printed for the record.

Run: .venv/bin/python bench/bench_graph.py [--nodes 1000000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
from pathlib import Path

from netsurgeon.formats import load, save
from netsurgeon.graph import Network


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
