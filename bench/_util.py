"""Helpers the benchmarks share: best-of timing and the synthetic MLP they load and save."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

import numpy as np

from netsurgeon.graph import Network


def best(fn: Callable[[], object], repeat: int, *, collect: bool = False) -> float:
    """Fastest of ``repeat`` calls of ``fn``, in seconds; ``collect`` runs the GC before each."""
    times = []
    for _ in range(repeat):
        if collect:
            gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def mlp(name: str, layers: int, width: int, weight: Callable[[int], np.ndarray],
        bias: Callable[[int], np.ndarray], prefix: Callable[[int], str] = lambda i: f"L{i}"
        ) -> Network:
    """A sigmoid MLP ``features -> layers x (Times, Plus, Sigmoid)``; layer ``i`` (from 1) is
    named ``prefix(i)`` and gets the arrays ``weight(i)`` (width x width) and ``bias(i)``."""
    net = Network(name)
    prev = net.add("features", "InputValue", shape=(width,))
    net.add_to_group("feature", prev)
    for i in range(1, layers + 1):
        p = prefix(i)
        w = net.add_parameter(f"{p}.W", weight(i))
        b = net.add_parameter(f"{p}.B", bias(i))
        t = net.add(f"{p}.T", "Times", inputs=(w, prev))
        s = net.add(f"{p}.P", "Plus", inputs=(t, b))
        prev = net.add(f"{p}.S", "Sigmoid", inputs=(s,))
    net.add_to_group("output", prev)
    return net
