"""Repeated ``netsurgeon.evaluate()`` on one network against ``Evaluator.run``, in the same run.

Goal (issue 14): a repeated ``evaluate()`` call costs <= 1.2x the compiled evaluator's ``run``
(it used to regenerate and recompile the network on every call: 28-41x on 01_OneHidden).
Both sides run the same batch of the real 01_OneHidden.dnn; rounds alternate, best and median
of each are printed, at 1 and 2 intra-op threads.

Run: .venv/bin/python bench/bench_evaluate_repeat.py [--rounds 7] [--calls 200] [--batch 32]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import netsurgeon
from netsurgeon.runtime import Evaluator
from netsurgeon.runtime.evaluate import batch_from_arrays

MODEL = Path(__file__).resolve().parents[2] / "shared" / "cntk" / "models" / "01_OneHidden.dnn"


def per_call(fn, calls: int) -> float:
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def measure(rounds: int, calls: int, size: int) -> dict[int, dict[str, list[float]]]:
    """Per thread count: seconds per call of ``Evaluator.run`` ("base") and of ``evaluate()``
    ("ours"), one entry per round (alternating)."""
    net = netsurgeon.load(MODEL)
    features = net.node("features")
    x = np.random.default_rng(0).normal(size=(size,) + features.shape).astype(np.float32)
    outputs = [n.name for n in net.group("output")] or None
    batch, _ = batch_from_arrays(net, {"features": x})
    evaluator = Evaluator(net, outputs)
    out = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        base, ours = [], []
        for _ in range(rounds):
            base.append(per_call(lambda: evaluator.run(batch), calls))
            ours.append(per_call(lambda: netsurgeon.evaluate(net, {"features": x}, outputs),
                                 calls))
        out[threads] = {"base": base, "ours": ours}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    print(f"{MODEL.name}, batch {args.batch}, {args.calls} calls per round, {args.rounds} rounds")
    print(f"{'threads':>7} {'Evaluator.run us':>17} {'evaluate() us':>14} {'ratio best':>11} "
          f"{'ratio median':>13}")
    for threads, t in measure(args.rounds, args.calls, args.batch).items():
        base, ours = t["base"], t["ours"]
        print(f"{threads:>7} {min(base) * 1e6:>17.1f} {min(ours) * 1e6:>14.1f} "
              f"{min(ours) / min(base):>11.2f} "
              f"{statistics.median(ours) / statistics.median(base):>13.2f}")


if __name__ == "__main__":
    main()
