"""Evaluating a very long chain: code generation, compilation and the forward pass.

Issue 10: evaluating a 1,000,000-node Tanh chain took hours (the last-use bookkeeping of code
generation was quadratic, and CPython compiled one 2,000,000-line function). Measured here
(garbage collector on, as users run it):
  * ``netsurgeon.evaluate`` of InputValue + N Tanh nodes on a (2, 4) batch, first call (code
    generation + compiling the chunk functions + the forward pass), split into its stages;
  * baseline in the same process: the same N ``torch.tanh`` calls in a plain Python loop (the
    floor of any eager forward pass), beside the generated forward;
  * scaling: seconds per node at N/10 and at N (near 1 means linear).
Goal: the 1,000,000-node chain evaluated in under a minute, linear growth.

Run: .venv/bin/python bench/bench_chain_eval.py [--nodes 1000000] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from netsurgeon.graph import Network
from netsurgeon.runtime import compile_network, generate, set_threads
from netsurgeon.runtime.evaluate import batch_from_arrays


def chain(n: int) -> Network:
    net = Network("chain")
    prev = net.add("x", "InputValue", shape=(4,))
    for i in range(n):
        prev = net.add(f"n{i}", "Tanh", (prev,))
    net.add_to_group("output", prev)
    net.validate()
    return net


def measure(n: int) -> dict[str, float]:
    net = chain(n)
    out = f"n{n - 1}"
    x = np.full((2, 4), 0.5, np.float32)
    t0 = time.perf_counter()
    src = generate(net, [out])
    t1 = time.perf_counter()
    compiled = compile_network(net, [out])
    t2 = time.perf_counter()
    batch, _ = batch_from_arrays(net, {"x": x})
    got = compiled(batch)[out]
    t3 = time.perf_counter()
    want = torch.from_numpy(x)
    t4 = time.perf_counter()
    for _ in range(n):
        want = torch.tanh(want)
    t5 = time.perf_counter()
    assert torch.allclose(got.detach().reshape(want.shape), want, rtol=1e-4)
    return {"generate": t1 - t0, "compile": t2 - t1,
            "forward": t3 - t2, "eager loop": t5 - t4, "pieces": len(src.pieces),
            "total": t3 - t1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    set_threads(args.threads)
    print(f"threads: {args.threads}")
    small = measure(args.nodes // 10)
    big = measure(args.nodes)
    for n, m in ((args.nodes // 10, small), (args.nodes, big)):
        print(f"{n:>9,} nodes: evaluated in {m['total']:.1f} s = compile_network "
              f"{m['compile']:.1f} s (code generation alone {m['generate']:.1f} s; "
              f"{m['pieces']:,} functions) + forward {m['forward']:.2f} s; the eager torch loop "
              f"{m['eager loop']:.2f} s (forward / eager {m['forward'] / m['eager loop']:.2f}x)")
    per_small, per_big = small["total"] / (args.nodes // 10), big["total"] / args.nodes
    print(f"per-node time x{per_big / per_small:.2f} from {args.nodes // 10:,} to "
          f"{args.nodes:,} nodes (1 = linear)")


if __name__ == "__main__":
    main()
