"""Issue 15: the public Python API is listed (``dir(netsurgeon)``, ``__all__``), loaded lazily
(``import netsurgeon`` imports neither torch nor onnx), and typed: mypy checks a usage example
clean and sees the real types (a misuse is an error, not Any)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import netsurgeon

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = {"mel", "evaluate", "Trainer", "save", "load", "clone_function", "to_torch",
          "Network", "Node", "NetsurgeonError", "build_ndl", "dump", "OPS"}


def test_dir_and_all_list_the_public_names():
    listed = set(dir(netsurgeon))
    assert PUBLIC <= listed and PUBLIC <= set(netsurgeon.__all__)
    for private in ("Any", "TYPE_CHECKING", "annotations", "_LAZY", "_typing"):
        assert private not in listed and private not in netsurgeon.__all__
    for name in netsurgeon.__all__:
        assert getattr(netsurgeon, name) is not None


def test_import_stays_light():
    code = ("import sys, netsurgeon; names = dir(netsurgeon); "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert out.strip() == "[]"


def test_py_typed_is_shipped():
    assert (ROOT / "src/netsurgeon/py.typed").is_file()
    assert "py.typed" in (ROOT / "pyproject.toml").read_text()


USAGE = '''
import numpy as np

import netsurgeon
import netsurgeon.mel
from netsurgeon.graph import Network

net: Network = netsurgeon.load("MC.dnn")
out: dict[str, np.ndarray] = netsurgeon.evaluate(
    net, {"features": np.zeros((4, 2), np.float32)}, ["z"])
fmt: str = netsurgeon.save(net, "mc.nsm")
f = netsurgeon.clone_function([net.node("features")], net.node("z"), parameters="shared")
trainer = netsurgeon.Trainer(net)
ed = netsurgeon.mel.Editor()
ed.add_model("m", net)
models = netsurgeon.mel.run("seed.mel", variables={"inModel": "m.dnn"})
try:
    netsurgeon.load("missing.dnn")
except FileNotFoundError:
    pass
'''


def _mypy(tmp_path: Path, code: str) -> subprocess.CompletedProcess:
    src = tmp_path / "usage.py"
    src.write_text(textwrap.dedent(code))
    env = {**os.environ, "MYPYPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent",
         "--cache-dir", str(tmp_path / "cache"), "--no-error-summary", str(src)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy is not installed (pip install -e '.[dev]' installs it)")
def test_mypy_checks_a_usage_example(tmp_path):
    # one run (mypy takes seconds): the example is clean but for the two misuses at the end
    wrong = _mypy(tmp_path, USAGE + 'count: int = netsurgeon.load("m.dnn")\n'
                  'netsurgeon.save(net, 3)\n')
    first_wrong = len(textwrap.dedent(USAGE).splitlines()) + 1
    errors = [line for line in wrong.stdout.splitlines() if ": error: " in line]
    assert [int(e.split(":")[1]) for e in errors] == [first_wrong, first_wrong + 1], \
        wrong.stdout + wrong.stderr
    assert '"Network", variable has type "int"' in errors[0]
    assert 'Argument 2 to "save"' in errors[1]
