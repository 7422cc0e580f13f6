"""One SGD training step: netsurgeon's Trainer (default settings) against a hand-written eager
torch loop over a module with the same weights, in the same process.

For 01_OneHidden, cifar10.pretrained and cifar10.ResNet (BatchNormalization in training mode
on both sides), at 1 and 2 intra-op threads: ``Trainer.step`` (default TrainConfig but a
learning rate of 1e-6 per sample, so thousands of steps stay finite; default backend
``auto``) against zero_grad / forward / summed cross entropy / backward / ``SGD.step`` of the
hand-written module. Alternating rounds, best and median; ratio = netsurgeon throughput /
hand-written (> 1 = netsurgeon faster). Goal (issue 14): >= 0.95x. Before timing, the Trainer
steps until ``auto`` has made its choice (``NETSURGEON_AUTO=now`` unless set: compile is
tried after 5 steps instead of after a compile's worth of training time).

``--profile`` prints torch.profiler's top operators of 5 netsurgeon ResNet steps;
``--row-major`` clears ``Trainer.column_major`` (on by default: dense weights in
``nn.Linear``'s layout, as the hand-written modules hold them), for the comparison.

Run: .venv/bin/python bench/bench_train_step.py [--seconds S] [--batch 256] [--models a,b]
[--row-major]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

from _models import alternate, hand_module

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT.parent / "shared" / "cntk" / "models"
NAMES = ("01_OneHidden.dnn", "cifar10.pretrained.cmf", "cifar10.ResNet.cmf")
RATE = 1e-6


def _batch(net, size: int, rng):
    from netsurgeon.runtime.batch import Minibatch

    sample = tuple(net.node("features").shape)
    scale = 255.0 if net.get("h1._.W") is not None else 1.0
    x = rng.random((size, 1) + sample, dtype=np.float32) * scale
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, size)]
    return Minibatch({"features": x, "labels": y[:, None]}, np.ones(size, np.int64))


def setup(name: str, size: int):
    """The Trainer, its step, and the hand-written step, on one minibatch."""
    import netsurgeon
    from netsurgeon.runtime.train import TrainConfig, Trainer

    net = netsurgeon.load(MODELS / name)
    net.validate()
    rng = np.random.default_rng(0)
    batch = _batch(net, size, rng)
    hand = hand_module(net).train()
    trainer = Trainer(net, TrainConfig(learning_rate=RATE, minibatch_size=size),
                      criteria=["ce"], metrics=[])
    params = [p for p in hand.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=RATE)
    x = torch.from_numpy(batch.streams["features"]).reshape((size,) + tuple(
        net.node("features").shape))
    labels = torch.from_numpy(batch.streams["labels"]).reshape(size, -1)

    def hand_step():
        opt.zero_grad(set_to_none=True)
        loss = -(labels * torch.log_softmax(hand(x), 1)).sum()
        loss.backward()
        opt.step()

    # the same loss on both sides at the start (same weights, training-mode BN)
    ours_loss = trainer.step(batch)[0]
    with torch.no_grad():
        hand_loss = float(-(labels * torch.log_softmax(hand(x), 1)).sum())
    assert abs(ours_loss - hand_loss) <= 1e-3 * abs(hand_loss), (name, ours_loss, hand_loss)
    return trainer, batch, hand_step


def settle(trainer, batch, limit: int = 40) -> str:
    """Step until ``auto`` has chosen a backend for this batch size; the choice."""
    runner = trainer._runner
    key = next(iter(runner._buckets), None)
    for _ in range(limit):
        state = runner._buckets.get(key) if key is not None else None
        if state is not None and state.choice is not None:
            break
        trainer.step(batch)
        key = next(iter(runner._buckets), None)
    return runner.chosen(batch)


def profile(trainer, batch) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    with prof(activities=[ProfilerActivity.CPU]) as p:
        for _ in range(5):
            trainer.step(batch)
    print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--models", default=",".join(NAMES))
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--row-major", action="store_true")
    args = ap.parse_args(argv)
    if args.row_major:
        from netsurgeon.runtime.train import Trainer

        Trainer.column_major = False
    print(f"torch {torch.__version__}, batch {args.batch}; ratio = netsurgeon / hand-written "
          "eager throughput (best round, median round)")
    print(f"{'model':24} {'th':>2} {'auto chose':>10} {'ours s/s':>10} {'hand s/s':>10} "
          f"{'ratio':>13}")
    measure(args.models.split(","), args.batch, args.seconds, profile_resnet=args.profile)
    return 0


def measure(names: list[str], size: int, seconds: float, *, profile_resnet: bool = False
            ) -> list[dict]:
    """Per model and thread count: {model, threads, chosen, times: {ours, hand: (best,
    median) seconds per step}}, each row printed as it is measured."""
    from netsurgeon.runtime import set_threads

    os.environ.setdefault("NETSURGEON_AUTO", "now")
    rows = []
    for name in names:
        trainer, batch, hand_step = setup(name, size)
        for threads in (1, 2):
            set_threads(threads)
            chosen = settle(trainer, batch)
            times = alternate({"ours": lambda t=trainer, b=batch: t.step(b), "hand": hand_step},
                              seconds)
            (ob, om), (hb, hm) = times["ours"], times["hand"]
            print(f"{name:24} {threads:>2} {chosen:>10} {size / ob:>10,.0f} "
                  f"{size / hb:>10,.0f} {hb / ob:>6.2f}x {hm / om:>5.2f}x", flush=True)
            rows.append({"model": name, "threads": threads, "chosen": chosen, "times": times})
        if profile_resnet and "ResNet" in name:
            set_threads(1)
            profile(trainer, batch)
    return rows


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
