"""Simple2d/OneHidden's training pieces (``netsurgeon run``'s SGD engine), in the same process:

* ``step``: one ``Trainer.step`` of CNTK's SimpleNetworkBuilder net (2:50*2:2, minibatch 25,
  CNTK's momentum SGD) at 1 intra-op thread against 2 threads. ``netsurgeon run`` trains such
  small networks on one thread (``cntk_sgd.small_model_threads``); this shows why:
  ratio = 2-thread time / 1-thread time (> 1 = one thread faster).
* ``epoch``: the minibatches of one randomised epoch over SimpleDataTrain (10000 lines) from
  ``ctf_epoch_minibatches`` (samples stacked once, minibatches by indexing) against the
  reader's per-sequence assembly of the same minibatches: ratio = assembly / stacked.

Alternating rounds, best and median. CNTK 2.x printed 0.40 s per epoch (400 minibatches) for
this net on a 2010 Xeon (baseline.cpu.txt).

Run: .venv/bin/python bench/bench_cntk_sgd_threads.py [--seconds S]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from _models import alternate

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "cntk" / "configs" / "Simple2d" / "Data"
KEYS = {"layerSizes": "2:50*2:2", "trainingCriterion": "CrossEntropyWithSoftmax",
        "evalCriterion": "ClassificationError", "layerTypes": "Sigmoid",
        "applyMeanVarNorm": "true", "needPrior": "true"}
SGD = {"minibatchSize": "25", "learningRatesPerMB": "0.5", "momentumPerMB": "0.9",
       "maxEpochs": "1", "modelPath": "unused"}


def _setup():
    from netsurgeon.lang.simple_network import build_simple_network
    from netsurgeon.runtime.cntk_sgd import CNTKUpdate, SGDSettings
    from netsurgeon.runtime.readers.ctf import CTFReader, StreamSpec
    from netsurgeon.runtime.train import TrainConfig, Trainer, precompute

    net = build_simple_network(lambda k: KEYS.get(k))
    reader = CTFReader(DATA / "SimpleDataTrain_cntk_text.txt",
                       [StreamSpec("features", "features", (2,)),
                        StreamSpec("labels", "labels", (2,))])
    settings = SGDSettings.from_lookup(lambda k: SGD.get(k))
    rule = CNTKUpdate(settings)
    rule.lr, rule.momentum = 0.02, 0.9 ** (1 / 25)  # epoch 1's per-sample values
    trainer = Trainer(net, TrainConfig(epochs=1, minibatch_size=25),
                      criteria=[net.node("CrossEntropyWithSoftmax")],
                      metrics=[net.node("EvalClassificationError")], update_rule=rule)
    return net, reader, trainer, precompute


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=6.0)
    args = ap.parse_args()
    from netsurgeon.runtime.readers.randomize import ctf_epoch_minibatches, sweep_order

    net, reader, trainer, precompute = _setup()
    batches = list(ctf_epoch_minibatches(reader, 0, 25))
    precompute(net, lambda: batches, trainer.tensors)
    state = {"i": 0}

    def step(threads: int):
        def run():
            torch.set_num_threads(threads)
            trainer.step(batches[state["i"] % len(batches)])
            state["i"] += 1
        return run

    times = alternate({"1 thread": step(1), "2 threads": step(2)}, args.seconds)
    print("Trainer.step, Simple2d OneHidden, minibatch 25 (ms per step, best / median):")
    for name, (best, med) in times.items():
        print(f"  {name:10s} {best * 1e3:7.3f} / {med * 1e3:7.3f}")
    print(f"  ratio 2 threads / 1 thread: {times['2 threads'][0] / times['1 thread'][0]:.2f}x "
          f"(best), {times['2 threads'][1] / times['1 thread'][1]:.2f}x (median)")

    torch.set_num_threads(1)
    seqs = reader._all_sequences
    order = sweep_order([list(range(len(seqs)))], 0, 0)

    def stacked():
        for _ in ctf_epoch_minibatches(reader, 0, 25):
            pass

    def assembled():
        for k in range(0, len(order), 25):
            reader._assemble([seqs[i] for i in order[k:k + 25]])

    times = alternate({"stacked": stacked, "assembled": assembled}, args.seconds, rounds=5)
    print("one epoch of minibatches, SimpleDataTrain (ms per epoch, best / median):")
    for name, (best, med) in times.items():
        print(f"  {name:10s} {best * 1e3:7.1f} / {med * 1e3:7.1f}")
    print(f"  ratio assembled / stacked: {times['assembled'][0] / times['stacked'][0]:.1f}x")


if __name__ == "__main__":
    main()
