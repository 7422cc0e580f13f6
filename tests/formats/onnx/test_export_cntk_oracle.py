"""The short export forms (Gemm dense layers, ONNX BatchNormalization) load in the real CNTK
2.7 and compute what netsurgeon computes (skipped where the oracle is not built)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
from tests.oracle import cntk_eval, needs_oracle

from netsurgeon import formats
from netsurgeon.runtime import evaluate

pytestmark = needs_oracle


@pytest.mark.parametrize("model,output,op,scale", [
    ("01_OneHidden.dnn", "z.z", "Gemm", 255.0),
    # the whole ResNet needs Pad with its pads as an input, newer than CNTK 2.7's importer:
    # its first stage holds 10 Conv + BatchNormalization
    ("cifar10.ResNet.cmf", "z.rn1.r.r", "BatchNormalization", 1.0),
])
def test_cntk_computes_the_export(cntk_dir, tmp_path, model, output, op, scale):
    net = formats.load(cntk_dir / "models" / model)
    path = tmp_path / "m.onnx"
    formats.save(net, path, outputs=[output])
    assert op in Counter(n.op_type for n in onnx.load(str(path)).graph.node)
    x = np.random.default_rng(0).random((3,) + tuple(net.node("features").shape),
                                        dtype=np.float32) * scale
    np.save(tmp_path / "x.npy", x)
    p = cntk_eval(str(path), "--format", "onnx", "--outdir", str(tmp_path),
                  f"features={tmp_path / 'x.npy'}", "--output", output)
    assert p.returncode == 0, p.stderr[-2000:]
    got = np.load(tmp_path / f"{output}.npy").reshape(3, -1)
    want = np.asarray(evaluate(net, {"features": x}, [output], backend="torch")[output])
    want = want.reshape(3, -1)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
