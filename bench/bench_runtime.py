"""Runtime throughput: netsurgeon's generated code against hand-written PyTorch, same run.

Evaluation (batch 256) of 01_OneHidden (output z.z) and cifar10.pretrained (output z), and one
SGD training step on the criterion, each against a hand-written torch module computing the
same function with the same weights. Torch uses 2 threads (``--threads N``). Prints absolute
numbers and the ratio netsurgeon / hand-written (throughput; > 1 = faster). The real CNTK 2.7
evaluates 38,000-58,000 samples/s (01_OneHidden) and 470-575 samples/s (cifar10.pretrained) on
this kind of machine.

Run: .venv/bin/python bench/bench_runtime.py [--quick] [--threads N] [--cntk DIR]  (DIR:
../shared/cntk, or any folder holding models/01_OneHidden.dnn and models/cifar10.pretrained.cmf)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

from _models import CifarConvNet, OneHidden

ROOT = Path(__file__).resolve().parents[1]
CNTK = ROOT.parent / "shared" / "cntk"
BATCH = 256


def _compare(ours, hand, min_time: float, rounds: int = 7) -> tuple[float, float]:
    """Seconds per call of ``ours`` and ``hand``, measured in alternating rounds (so load
    changes hit both alike); each is the median over rounds of the round's mean."""
    for _ in range(3):
        ours()
        hand()
    per_round = min_time / rounds / 2
    results: dict[str, list[float]] = {"ours": [], "hand": []}
    for _ in range(rounds):
        for name, fn in (("ours", ours), ("hand", hand)):
            n, start = 0, time.perf_counter()
            while True:
                fn()
                n += 1
                elapsed = time.perf_counter() - start
                if elapsed >= per_round and n >= 3:
                    break
            results[name].append(elapsed / n)
    return float(np.median(results["ours"])), float(np.median(results["hand"]))


def _data(net, rng):
    from netsurgeon.runtime.batch import Minibatch

    x = net.node("features")
    y = net.node("labels")
    feats = rng.random((BATCH, 1) + tuple(x.shape), dtype=np.float32) * 255
    labels = np.eye(y.shape[-1], dtype=np.float32)[rng.integers(0, y.shape[-1], BATCH)]
    return Minibatch({"features": feats, "labels": labels[:, None]}, np.ones(BATCH, np.int64))


def bench_model(model_file: str, output: str, hand_cls, min_time: float) -> list[dict]:
    from netsurgeon.formats import load
    from netsurgeon.runtime import Evaluator
    from netsurgeon.runtime.train import TrainConfig, Trainer

    rng = np.random.default_rng(0)
    net = load(CNTK / "models" / model_file)
    net.validate()
    batch = _data(net, rng)
    ev = Evaluator(net, [output])
    hand = hand_cls(net)
    hand.eval()
    sample = tuple(net.node("features").shape)
    x = torch.from_numpy(batch.streams["features"]).reshape((BATCH,) + sample)
    with torch.no_grad():
        ours_z = ev.run(batch)[output].reshape(BATCH, -1)
        hand_z = hand(x)
    err = float((ours_z - hand_z).abs().max() / hand_z.abs().max())
    assert err < 1e-4, f"hand-written module disagrees with the model: {err}"

    def hand_eval():
        with torch.no_grad():
            hand(x)

    rows = []
    t_ours, t_hand = _compare(lambda: ev.run(batch), hand_eval, min_time)
    rows.append({"model": model_file, "what": "eval", "ours": BATCH / t_ours,
                 "hand": BATCH / t_hand})

    # one SGD step on the cross-entropy criterion (summed, as CNTK's)
    trainer = Trainer(net, TrainConfig(learning_rate=1e-6, minibatch_size=BATCH),
                      criteria=["ce"], metrics=[])
    hand.train()
    params = [p for p in hand.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-6)
    labels = torch.from_numpy(batch.streams["labels"]).reshape(BATCH, -1)

    def hand_step():
        opt.zero_grad(set_to_none=True)
        z = hand(x)
        loss = -(labels * torch.log_softmax(z, 1)).sum()
        loss.backward()
        opt.step()

    t_ours, t_hand = _compare(lambda: trainer.step(batch), hand_step, min_time)
    rows.append({"model": model_file, "what": "train step", "ours": BATCH / t_ours,
                 "hand": BATCH / t_hand})
    return rows


def main(argv: list[str]) -> int:
    global CNTK
    torch.set_num_threads(int(argv[argv.index("--threads") + 1]) if "--threads" in argv else 2)
    quick = "--quick" in argv
    if "--cntk" in argv:
        CNTK = Path(argv[argv.index("--cntk") + 1])
    rows = bench_model("01_OneHidden.dnn", "z.z", OneHidden, 2.0 if quick else 8.0)
    rows += bench_model("cifar10.pretrained.cmf", "z", CifarConvNet, 4.0 if quick else 16.0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {BATCH}")
    print(f"{'model':24} {'what':11} {'netsurgeon':>14} {'hand-written':>14} {'ratio':>7}")
    for r in rows:
        ratio = r["ours"] / r["hand"]
        print(f"{r['model']:24} {r['what']:11} {r['ours']:>10,.0f} s/s {r['hand']:>10,.0f} s/s "
              f"{ratio:>6.2f}x")
    print("(s/s = samples per second; ratio = netsurgeon / hand-written throughput; goals: eval "
          ">= 0.9x, training step time <= 1.1x hand-written, i.e. ratio >= 0.91)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
