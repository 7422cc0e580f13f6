"""``netsurgeon convert`` to a standalone PyTorch module and from ONNX with constant weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from netsurgeon import formats
from netsurgeon.cli import main
from netsurgeon.runtime import evaluate


@pytest.fixture
def mc(cntk_dir: Path) -> Path:
    return cntk_dir / "models" / "MC.dnn"


def test_a_py_output_is_a_standalone_torch_module(mc, tmp_path, capsys):
    out = tmp_path / "mc_module.py"
    assert main(["convert", str(mc), str(out), "--outputs", "z"]) == 0
    assert "mc_module.safetensors" in capsys.readouterr().out
    assert out.read_text().count("import netsurgeon") == 0
    x = np.array([[1.0, 2.0], [-0.5, 0.25]], np.float32)
    np.save(tmp_path / "x.npy", x)
    site = os.path.dirname(os.path.dirname(np.__file__))  # torch and numpy, not netsurgeon
    script = ("import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
              "import numpy, torch, mc_module\n"
              "z = mc_module.load()(features=torch.from_numpy(numpy.load(sys.argv[3])))['z']\n"
              "numpy.save(sys.argv[4], z.detach().numpy())\n")
    subprocess.run([sys.executable, "-I", "-S", "-c", script, str(tmp_path), site,
                    str(tmp_path / "x.npy"), str(tmp_path / "z.npy")], check=True, timeout=120)
    want = evaluate(formats.load(mc), {"features": x}, ["z"])["z"]
    np.testing.assert_array_equal(np.load(tmp_path / "z.npy"), want)


def test_onnx_only_options_are_refused_for_other_formats(mc, tmp_path, capsys):
    assert main(["convert", str(mc), str(tmp_path / "m.py"), "--keep-criteria"]) == 1
    assert "--keep-criteria: options of ONNX export" in capsys.readouterr().err
    assert not (tmp_path / "m.py").exists()


def test_constant_weights_of_an_onnx_input(cntk_dir, tmp_path, capsys):
    src = cntk_dir / "onnx-from-cntk" / "MC.onnx"
    out = tmp_path / "mc.nsm"
    assert main(["convert", str(src), str(out), "--constant-weights"]) == 0
    params = [n for n in formats.load(out) if n.op == "LearnableParameter"]
    assert params and all(n.learning_rate_multiplier == 0 for n in params)
    assert main(["convert", str(src), str(tmp_path / "l.nsm")]) == 0
    learnable = [n for n in formats.load(tmp_path / "l.nsm") if n.op == "LearnableParameter"]
    assert learnable and all(n.learning_rate_multiplier == 1 for n in learnable)
    capsys.readouterr()
    mc = cntk_dir / "models" / "MC.dnn"
    assert main(["convert", str(mc), str(tmp_path / "x.nsm"), "--constant-weights"]) == 1
    assert "--constant-weights applies to an ONNX input only" in capsys.readouterr().err
