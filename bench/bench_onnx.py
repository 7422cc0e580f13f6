"""ONNX export and import of a big model against the onnx package doing the same, same run.

A 200-layer sigmoid MLP of width 1024 (W 1024x1024 + b 1024 per layer, ~840 MB float32).

* **Export**: ``netsurgeon.formats.onnx.save`` (graph building + streaming the weights from
  their arrays; what ``netsurgeon convert x.dnn y.onnx`` does after reading the model) against
  ``onnx.save`` of the same model as a complete ``onnx.ModelProto`` (``to_model``, built once,
  untimed). Goal (issue 11): ratio <= 1.2.
* **Import**: ``netsurgeon.formats.onnx.importer.read(path)`` of the file just written against
  the baseline ``onnx.load(path)`` + the graph build: ``onnx.numpy_helper.to_array`` of every
  initializer (read-only views of the protobuf's bytes, no further copy) and the same
  netsurgeon Network made directly with ``Network.add``/``add_parameter`` (same names, ops,
  inputs and groups; MatMul -> Times(W, x), Add -> Plus, Sigmoid) and ``validate()`` (which
  infers the shapes). The bench checks that both networks are the same node for node. Goal:
  ratio <= 1.2.

Both directions are pure Python + numpy + protobuf (no torch kernels): the torch thread count
does not enter; ``--threads`` sets it anyway (default 1 and 2, both printed). Times are the
best of ``--repeat`` runs, each after a garbage collection.

Run: .venv/bin/python bench/bench_onnx.py [--layers 200] [--width 1024] [--repeat 3]
     [--threads 1 2] [--skip-export] [--skip-import]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

import _util
from _util import best
from netsurgeon.formats import onnx as nx
from netsurgeon.formats.onnx import importer
from netsurgeon.graph import Network

_OPS = {"MatMul": "Times", "Add": "Plus", "Sigmoid": "Sigmoid"}


def build_from_onnx(path: Path) -> Network:
    """The baseline: ``onnx.load`` + the same Network built directly from the loaded arrays."""
    model = onnx.load(str(path))
    graph = model.graph
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    net = Network(path.stem)
    for info in graph.input:
        if info.name not in arrays:
            dims = [d.dim_value for d in info.type.tensor_type.shape.dim[1:]]
            net.add_to_group("feature", net.add(info.name, "InputValue", shape=tuple(dims),
                                                dynamic=True))
    for n in graph.node:
        ins = []
        for name in n.input:
            if name in arrays and name not in net:
                net.add_parameter(name, arrays[name])
            ins.append(name)
        if n.op_type == "MatMul":  # x @ W is netsurgeon's Times(W, x)
            ins.reverse()
        net.add(n.output[0], _OPS[n.op_type], ins)
    for out in graph.output:
        net.add_to_group("output", net.node(out.name))
    net.validate()
    return net


def _same(a: Network, b: Network) -> bool:
    def sig(net: Network):
        return [(n.name, n.op, tuple(n.shape or ()), bool(n.dynamic),
                 tuple(i.name for i in n.inputs), n.learning_rate_multiplier) for n in net.nodes]
    return (sorted(sig(a)) == sorted(sig(b))
            and [n.name for n in a.group("output")] == [n.name for n in b.group("output")]
            and all(np.array_equal(n.value, b.node(n.name).value)
                    for n in a.nodes if n.op == "LearnableParameter"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=200)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--skip-import", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    w = args.width
    net = _util.mlp("mlp", args.layers, w,
                    lambda i: rng.standard_normal((w, w), dtype=np.float32),
                    lambda i: rng.standard_normal(w, dtype=np.float32))
    net.validate()
    with tempfile.TemporaryDirectory() as tmp:
        ours = Path(tmp) / "ours.onnx"
        theirs = Path(tmp) / "theirs.onnx"
        nx.save(net, ours)
        print(f"{args.layers} layers x {w}: {ours.stat().st_size / 1e6:.0f} MB")
        for threads in args.threads:
            torch.set_num_threads(threads)
            if not args.skip_export:
                model = nx.to_model(net)
                t_ours = best(lambda: nx.save(net, ours), args.repeat, collect=True)
                t_onnx = best(lambda m=model: onnx.save(m, str(theirs)), args.repeat,
                              collect=True)
                same = ours.stat().st_size == theirs.stat().st_size
                del model
                theirs.unlink()
                print(f"[{threads} thread(s)] export: netsurgeon save {t_ours:.3f} s   "
                      f"onnx.save {t_onnx:.3f} s   ratio {t_ours / t_onnx:.2f} (goal <= 1.2)   "
                      f"same size: {same}")
            if not args.skip_import:
                same = _same(importer.read(ours), build_from_onnx(ours))
                t_read = best(lambda: importer.read(ours), args.repeat, collect=True)
                t_load = best(lambda: onnx.load(str(ours)), args.repeat, collect=True)
                t_base = best(lambda: build_from_onnx(ours), args.repeat, collect=True)
                print(f"[{threads} thread(s)] import: importer.read {t_read:.3f} s   "
                      f"onnx.load + graph build {t_base:.3f} s (onnx.load alone {t_load:.3f} s)"
                      f"   ratio {t_read / t_base:.2f} (goal <= 1.2)   same network: {same}")


if __name__ == "__main__":
    main()
