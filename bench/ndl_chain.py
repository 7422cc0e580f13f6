"""Benchmark: build an N-node chain from NDL text (default 1,000,000) and validate it.

Prints the time per node for the NDL path and, as the baseline measured in the same run,
for creating the same chain directly with the graph API (Network.add).

    .venv/bin/python bench/ndl_chain.py [N]
"""

from __future__ import annotations

import resource
import sys
import time


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    from netsurgeon.graph import Network
    from netsurgeon.lang.ndl import NameCounter, build_network

    text = "x0 = Input(4, tag=feature)\n" + "\n".join(
        f"x{i} = Sigmoid(x{i - 1})" for i in range(1, n))
    t0 = time.perf_counter()
    net = build_network(text, counter=NameCounter(), validate=False)
    t1 = time.perf_counter()
    net.validate()
    t2 = time.perf_counter()
    assert len(net) == n
    del net
    base = Network("chain")
    prev = base.add("x0", "InputValue", shape=(4,))
    t3 = time.perf_counter()
    for i in range(1, n):
        prev = base.add(f"x{i}", "Sigmoid", [prev])
    t4 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ndl, graph = t1 - t0, t4 - t3
    print(f"{n:,} nodes: NDL build {ndl:.1f}s ({ndl / n * 1e6:.1f} us/node), "
          f"validate {t2 - t1:.1f}s; graph API {graph:.1f}s ({graph / n * 1e6:.1f} us/node); "
          f"NDL/graph = {ndl / graph:.1f}x; peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
