"""Benchmark: CloneFunction of a 50-layer section of a 200-layer, width-1024 MLP.

For each mode (shared, learnable, constant) it measures
  * prepare: CloneFunction(...) (finding the section, the clone set),
  * call:    f(x) (copying nodes into the network, wiring, shape re-inference),
and checks how weights were copied: none in shared mode, each cloned weight exactly once
(a fresh array per parameter, no sharing with the original) in the other modes. The
baseline, measured in the same run, is a bare numpy copy of the section's weights.

    .venv/bin/python bench/bench_clone.py [--layers 200] [--width 1024] [--section 50] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from netsurgeon.graph import Network
from netsurgeon.lang.brainscript import clone_function


def build(layers: int, width: int) -> tuple[Network, list]:
    net = Network("mlp")
    rng = np.random.default_rng(0)
    h = net.add("features", "InputValue", shape=(width,))
    outs = []
    for i in range(layers):
        W = net.add_parameter(f"L{i}.W", rng.random((width, width), dtype=np.float32))
        b = net.add_parameter(f"L{i}.b", np.zeros((width,), np.float32))
        t = net.add(f"L{i}.t", "Times", (W, h))
        p = net.add(f"L{i}.p", "Plus", (t, b))
        h = net.add(f"L{i}", "RectifiedLinear", (p,))
        outs.append(h)
    net.validate()
    return net, outs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=200)
    ap.add_argument("--width", type=int, default=1024)
    ap.add_argument("--section", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    t0 = time.perf_counter()
    net, outs = build(args.layers, args.width)
    print(f"model: {args.layers} layers x {args.width}, {len(net)} nodes, built in "
          f"{time.perf_counter() - t0:.1f} s")
    first = args.layers // 2
    last = first + args.section - 1
    section_in, section_out = outs[first - 1], outs[last]
    weights = [net.node(f"L{i}.{p}").value for i in range(first, last + 1) for p in ("W", "b")]
    nbytes = sum(w.nbytes for w in weights)
    base = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        copies = [w.copy() for w in weights]
        base.append(time.perf_counter() - t)
        del copies
    baseline = statistics.median(base)
    print(f"section: L{first}..L{last} ({args.section} layers, "
          f"{nbytes / 2**20:.0f} MiB of weights); "
          f"baseline numpy copy of those weights: {baseline * 1e3:.1f} ms")
    print(f"{'mode':<10} {'prepare ms (best/median)':>25} {'call ms (best/median)':>22} "
          f"{'call CPU ms':>12} {'call/baseline':>14} {'weights copied':>15}")
    for mode in ("shared", "learnable", "constant"):
        prep, call, cpu = [], [], []
        for r in range(args.repeat):
            t = time.perf_counter()
            f = clone_function([section_in], section_out, parameters=mode)
            prep.append(time.perf_counter() - t)
            x = net.add(f"x_{mode}_{r}", "InputValue", shape=(args.width,))
            t, tc = time.perf_counter(), time.process_time()
            f(x, name=f"{mode}{r}")
            call.append(time.perf_counter() - t)
            cpu.append(time.process_time() - tc)
            # check the copies
            copied = 0
            for i in range(first, last + 1):
                tnode = net.node(f"{mode}{r}.L{i}.t")
                w = tnode.inputs[0]
                orig = net.node(f"L{i}.W")
                if mode == "shared":
                    assert w is orig
                else:
                    assert w is not orig and not np.shares_memory(w.value, orig.value)
                    assert np.array_equal(w.value[:1], orig.value[:1])
                    copied += w.value.nbytes + tnode.network.node(f"{mode}{r}.L{i}.b").value.nbytes
                    assert (w.learning_rate_multiplier == 0) == (mode == "constant")
            # free the copies again so memory stays flat
            net.remove_many([n for n in net.nodes if n.name.startswith(f"{mode}{r}.")] + [x],
                            detach_users="all")
        c = statistics.median(call)
        p_text = f"{min(prep) * 1e3:.2f} / {statistics.median(prep) * 1e3:.2f}"
        c_text = f"{min(call) * 1e3:.2f} / {c * 1e3:.2f}"
        print(f"{mode:<10} {p_text:>25} {c_text:>22} {statistics.median(cpu) * 1e3:>12.2f} "
              f"{c / baseline:>14.2f} {copied / 2**20:>11.0f} MiB")
    import os

    print(f"goal: shared-mode call <= 5 ms; other modes copy each cloned weight exactly once "
          f"(load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
