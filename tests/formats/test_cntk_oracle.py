"""netsurgeon-written CNTK v1 files loaded by the real CNTK 2.7 (the cntk_eval oracle).

Skipped where the oracle is not built (/tmp/cntk-oracle, see
shared/tools/cntk-oracle/README.md). Covers the two writes CNTK 2.7 refused: a
BatchNormalization from a pre-v19 file written at v19+ (it needs the 6th, run-count input)
and Mean/InvStdDev computed by training (hasComputed must be true).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tests.oracle import cntk_eval, cntk_outputs, needs_oracle

from netsurgeon.cli import main
from netsurgeon.formats import cntk
from netsurgeon.graph import Network

pytestmark = needs_oracle


def test_resnet_batchnorm_at_v19_and_v31_loads_as_the_original(cntk_dir: Path, tmp_path: Path):
    """cifar10.ResNet (v10, 5-input BatchNormalization) written at v19 and v31 loads in CNTK
    2.7, gives the original's outputs, and its run count is the original's (CNTK's loader
    gives a pre-v19 node a run_sample_count of 0)."""
    src = cntk_dir / "models" / "cifar10.ResNet.cmf"
    net = cntk.read(src)
    bn = next(n.name for n in net if n.op == "BatchNormalization")
    feeds = {"features": cntk_dir / "reference" / "inputs" / "cifar_3x3x32x32.npy"}
    outs = ["z", bn + ".run_sample_count"]
    want = cntk_outputs(src, feeds, outs, tmp_path / "original")
    assert want[outs[1]].tolist() == [0.0]
    for version in (19, 31):
        path = tmp_path / f"resnet.v{version}.cmf"
        cntk.write(net, path, version=version)
        got = cntk_outputs(path, feeds, outs, tmp_path / f"v{version}")
        z, ref = got["z"], want["z"]
        assert np.abs(z - ref).max() <= 1e-5 * np.abs(ref).max(), version
        assert got[outs[1]].tolist() == [0.0], version


def _mvn_model(path: Path) -> Path:
    """features (3) -> PerDimMeanVarNormalization (Mean, InvStdDev not computed) -> Times ->
    Sigmoid -> Logistic(labels), as a CNTK file."""
    net = Network("mvn")
    x = net.add("features", "InputValue", shape=(3,))
    y = net.add("labels", "InputValue", shape=(1,))
    n = net.add("n", "PerDimMeanVarNormalization", inputs=(
        x, net.add("m", "Mean", inputs=(x,)), net.add("s", "InvStdDev", inputs=(x,))))
    w = net.add_parameter("W", np.full((3, 1), 0.1, np.float32))
    p = net.add("p", "Sigmoid", inputs=(net.add("t", "Times", inputs=(w, n)),))
    net.add_to_group("feature", x)
    net.add_to_group("feature", y)
    net.add_to_group("criterion", net.add("lr", "Logistic", inputs=(y, p)))
    net.add_to_group("output", p)
    net.validate()
    cntk.write(net, path)
    return path


def _ctf(path: Path) -> tuple[Path, np.ndarray]:
    x = np.random.default_rng(5).normal([1, -2, 5], [1, 3, 0.5], (40, 3)).astype(np.float32)
    path.write_text("".join("|features " + " ".join(f"{v:.6g}" for v in row)
                            + f" |labels {int(row[0] > 1)}\n" for row in x))
    return path, x


def test_untrained_mean_var_norm_is_refused(tmp_path: Path):
    """Statistics not computed yet (as MEL adds them) are written as CNTK writes them,
    hasComputed false, which CNTK 2.7 refuses to load: the reason the flag must follow."""
    p = cntk_eval(str(_mvn_model(tmp_path / "mvn.dnn")), "--info")
    assert p.returncode != 0 and "not precomputed" in p.stderr + p.stdout


def test_trained_mean_var_norm_loads_with_netsurgeons_outputs(tmp_path: Path):
    """After ``netsurgeon train`` (and after a ``--resume`` with nothing left to train) the
    file loads in CNTK 2.7 and its outputs equal netsurgeon's."""
    model = _mvn_model(tmp_path / "mvn.dnn")
    ctf, x = _ctf(tmp_path / "train.ctf")
    np.save(tmp_path / "x.npy", x[:6])
    common = [str(model), str(ctf), "--epochs", "1", "--lr", "0.01", "--no-progress",
              "--out-format", "cntk", "--checkpoint", str(tmp_path / "t.ckpt")]
    assert main(["train", *common, "-o", str(tmp_path / "a.dnn")]) == 0
    assert main(["train", *common, "-o", str(tmp_path / "b.dnn"), "--resume"]) == 0
    for name in ("a.dnn", "b.dnn"):
        path = tmp_path / name
        # (CNTK's v2 conversion renames the normalization node itself: compare the output)
        got = cntk_outputs(path, {"features": tmp_path / "x.npy"}, ["p"],
                           tmp_path / ("cntk_" + name))["p"]
        ours = tmp_path / ("ns_" + name)
        assert main(["eval", str(path), "--input", f"features={tmp_path / 'x.npy'}",
                     "--output", "p", "--save-outputs", str(ours)]) == 0
        np.testing.assert_allclose(np.load(ours / "p.npy").reshape(got.shape), got,
                                   rtol=1e-5, atol=1e-6, err_msg=name)
