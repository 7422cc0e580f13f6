"""ONNX export of a big model against ``onnx.save`` of the same ModelProto.

A 200-layer sigmoid MLP of width 1024 (W 1024x1024 + b 1024 per layer, ~840 MB float32)
exported with ``netsurgeon.formats.onnx.save`` (graph building + streaming the weights from
their arrays) and, in the same run, the same model as a complete ``onnx.ModelProto``
(``to_model``, built once, untimed) written by ``onnx.save``. Goal (issue 11): ratio <= 1.2.

Run: .venv/bin/python bench/bench_onnx.py [--layers 200] [--width 1024] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnx

import _util
from _util import best
from netsurgeon.formats import onnx as nx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=200)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    w = args.width
    net = _util.mlp("mlp", args.layers, w,
                    lambda i: rng.standard_normal((w, w), dtype=np.float32),
                    lambda i: rng.standard_normal(w, dtype=np.float32))
    net.validate()
    model = nx.to_model(net)
    size = model.ByteSize()
    with tempfile.TemporaryDirectory() as tmp:
        ours = Path(tmp) / "ours.onnx"
        theirs = Path(tmp) / "theirs.onnx"
        t_ours = best(lambda: nx.save(net, ours), args.repeat, collect=True)
        t_onnx = best(lambda: onnx.save(model, str(theirs)), args.repeat, collect=True)
        same = ours.stat().st_size == theirs.stat().st_size
    print(f"{args.layers} layers x {w}: {size / 1e6:.0f} MB")
    print(f"netsurgeon export+write {t_ours:.3f} s   onnx.save {t_onnx:.3f} s   "
          f"ratio {t_ours / t_onnx:.2f} (goal <= 1.2)   same size: {same}")


if __name__ == "__main__":
    main()
