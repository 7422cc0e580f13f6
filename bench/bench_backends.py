"""Evaluation with netsurgeon's default backend against the fastest ways to run a hand-written
torch module with the same weights, in the same process.

For 01_OneHidden, cifar10.pretrained and cifar10.ResNet at batch 1, 32 and 256, at 1 and 2
intra-op threads, this times (alternating rounds, best and median per round):

* ``ours``: ``Evaluator(net, [output]).run`` with the default backend (``auto``);
* ``ort-hand``: onnxruntime on ``torch.onnx.export`` of the hand-written module;
* ``compile-hand``: ``torch.compile(dynamic=True)`` of the hand-written module;

and prints ours / each (throughput ratio; > 1 = netsurgeon faster) plus what auto chose.
Goals (issue 14, 1 thread): >= 1.0x both. ``auto`` measures at a bucket's first batch here
(``NETSURGEON_AUTO=now``, unless set otherwise), so the timing rounds see its final choice;
the lazy default picks the same backends, only later in a run.

Run: .venv/bin/python bench/bench_backends.py [--seconds S] [--models a,b] [--batches 1,32]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from _models import alternate, hand_module

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT.parent / "shared" / "cntk" / "models"
OUTPUT = {"01_OneHidden.dnn": "z.z", "cifar10.pretrained.cmf": "z", "cifar10.ResNet.cmf": "z"}


def hand_onnx(hand: torch.nn.Module, x: torch.Tensor) -> bytes:
    """The hand-written module exported by torch (batch axis dynamic)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(hand, (x,), buf, input_names=["x"], output_names=["z"],
                          dynamic_axes={"x": {0: "batch"}, "z": {0: "batch"}}, dynamo=False)
    return buf.getvalue()


def session(model: bytes, threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])


def bench_model(name: str, batches: list[int], seconds: float) -> list[dict]:
    import netsurgeon
    from netsurgeon.runtime import Evaluator, set_threads
    from netsurgeon.runtime.evaluate import batch_from_arrays

    net = netsurgeon.load(MODELS / name)
    net.validate()
    output = OUTPUT[name]
    sample = tuple(net.node("features").shape)
    hand = hand_module(net).eval()
    for p in hand.parameters():
        p.requires_grad_(False)
    rng = np.random.default_rng(0)
    scale = 255.0 if "OneHidden" in name else 1.0
    onnx_model = hand_onnx(hand, torch.zeros((2,) + sample))
    compiled_hand = torch.compile(hand, dynamic=True)
    ev = Evaluator(net, [output])
    rows = []
    for threads in (1, 2):
        set_threads(threads)
        ort = session(onnx_model, threads)
        for size in batches:
            x = rng.random((size,) + sample, dtype=np.float32) * scale
            batch, _ = batch_from_arrays(net, {"features": x})
            xt = torch.from_numpy(x)
            with torch.inference_mode():
                ours_z = ev.run(batch)[output].reshape(size, -1)
                hand_z = hand(xt)
                comp_z = compiled_hand(xt)
            ort_z = torch.from_numpy(ort.run(None, {"x": x})[0])
            top = float(hand_z.abs().max())
            for what, z in (("ours", ours_z), ("compile-hand", comp_z), ("ort-hand", ort_z)):
                err = float((z - hand_z).abs().max()) / top
                assert err < 1e-3, f"{name} b{size}: {what} disagrees with the hand module: {err}"

            def ours(batch=batch):
                ev.run(batch)

            def ort_hand(ort=ort, x=x):
                ort.run(None, {"x": x})

            def compile_hand(xt=xt):
                with torch.inference_mode():
                    compiled_hand(xt)

            times = alternate({"ours": ours, "ort-hand": ort_hand,
                               "compile-hand": compile_hand}, seconds)
            rows.append({"model": name, "batch": size, "threads": threads,
                         "chosen": ev.chosen(batch), "times": times})
            print(_row(rows[-1]), flush=True)
    return rows


def _row(r: dict) -> str:
    t = r["times"]
    ours_best, ours_med = t["ours"]
    cells = [f"{r['model']:24} {r['batch']:>5} {r['threads']:>2} {r['chosen']:>11}",
             f"{r['batch'] / ours_best:>11,.0f}"]
    for base in ("ort-hand", "compile-hand"):
        best, med = t[base]
        cells.append(f"{best / ours_best:>6.2f}x {med / ours_med:>6.2f}x")
    return " ".join(cells)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0, help="per measurement, all sides")
    ap.add_argument("--models", default=",".join(OUTPUT))
    ap.add_argument("--batches", default="1,32,256")
    args = ap.parse_args(argv)
    os.environ.setdefault("NETSURGEON_AUTO", "now")
    print(f"torch {torch.__version__}; ratios = netsurgeon throughput / baseline's "
          "(best round, median round); > 1 = netsurgeon faster")
    print(f"{'model':24} {'batch':>5} {'th':>2} {'auto chose':>11} {'ours s/s':>11} "
          f"{'vs ort-hand':>15} {'vs compile-hand':>15}")
    for name in args.models.split(","):
        bench_model(name, [int(b) for b in args.batches.split(",")], args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
