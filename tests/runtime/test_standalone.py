"""``write_module``: a standalone ``OUT.py`` + ``OUT.safetensors`` that run without netsurgeon.

The written files are imported in a subprocess started with ``python -I -S`` whose
``sys.path`` holds only the standard library, torch's site-packages and the output folder
(``netsurgeon`` is blocked outright), and compared with :func:`netsurgeon.to_torch`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
import torch

import netsurgeon
from netsurgeon.errors import FormatError
from netsurgeon.formats import load
from netsurgeon.runtime.standalone import write_module

MODELS = {  # stem -> (model, outputs)
    "mc": ("MC.dnn", None),
    "resnet": ("cifar10.ResNet.cmf", ["z"]),
    "slu": ("slu.forward.nobn.cmf", ["z"]),
}

_RUNNER = r"""
import sys
sys.modules["netsurgeon"] = None  # importing it fails
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import importlib
import torch
inputs = torch.load(sys.argv[3], weights_only=True)
results = {}
for stem, feeds in inputs.items():
    module = importlib.import_module(stem).load()
    with torch.no_grad():
        results[stem] = {"eval": module(**feeds), "keys": sorted(module.state_dict())}
        if stem == "mc":
            results[stem]["train"] = module.train()(**feeds)
torch.save(results, sys.argv[4])
print(sorted(m for m, v in sys.modules.items()
             if v is not None and m.split(".")[0] in ("netsurgeon", "safetensors")))
"""


@pytest.fixture(scope="module")
def written(cntk_dir, tmp_path_factory):
    """The three models written and run in one subprocess (one torch import)."""
    out = tmp_path_factory.mktemp("standalone")
    modules, feeds = {}, {}
    g = torch.Generator().manual_seed(1)
    for stem, (model, outputs) in MODELS.items():
        net = load(cntk_dir / "models" / model)
        paths = write_module(net, out / f"{stem}.py", outputs)
        assert paths == (out / f"{stem}.py", out / f"{stem}.safetensors")
        modules[stem] = netsurgeon.to_torch(net, outputs)
        shapes = dict(zip(modules[stem].input_names, (s for _, s in modules[stem]._inputs)))
        if stem == "slu":
            feeds[stem] = {"query": torch.rand(2, 4, *shapes["query"], generator=g),
                           "lengths": torch.tensor([4, 2])}
        else:
            feeds[stem] = {k: torch.rand(3, *s, generator=g) for k, s in shapes.items()}
    torch.save(feeds, out / "inputs.pt")
    site = str(Path(torch.__file__).resolve().parents[1])
    run = subprocess.run([sys.executable, "-I", "-S", "-c", _RUNNER, str(out), site,
                          str(out / "inputs.pt"), str(out / "results.pt")],
                         capture_output=True, text=True, cwd=out, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip() == "[]"  # neither netsurgeon nor safetensors was imported
    return out, modules, feeds, torch.load(out / "results.pt", weights_only=True)


@pytest.mark.parametrize("stem", list(MODELS))
def test_standalone_matches_to_torch(written, stem):
    _, modules, feeds, results = written
    module = modules[stem]
    with torch.no_grad():
        want = module(**feeds[stem])
    got = results[stem]["eval"]
    assert list(got) == list(want)
    for k in want:
        assert torch.equal(got[k], want[k]), k
    assert results[stem]["keys"] == sorted(module.state_dict())
    if stem == "mc":
        with torch.no_grad():
            train = module.train()(**feeds[stem])
        module.eval()
        assert all(torch.equal(results[stem]["train"][k], train[k]) for k in train)


def test_weights_are_the_nodes(written, cntk_dir):
    out, modules, _, _ = written
    weights = safetensors.numpy.load_file(out / "resnet.safetensors")
    net = load(cntk_dir / "models/cifar10.ResNet.cmf")
    assert sorted(weights) == sorted(modules["resnet"].state_dict())
    for name, value in weights.items():
        np.testing.assert_array_equal(value, net.node(name).value)


def test_source_imports_only_torch(written):
    out = written[0]
    for stem in MODELS:
        tree = ast.parse((out / f"{stem}.py").read_text())
        roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                 for a in n.names}
        roots |= {n.module.split(".")[0] for n in ast.walk(tree)
                  if isinstance(n, ast.ImportFrom) and n.module}
        assert roots - set(sys.stdlib_module_names) == {"torch"}, stem
    text = (out / "slu.py").read_text()
    assert "def forward_eval(self, x_query, mask, lengths, B, T):" in text
    assert "for t in range(T):" in text  # the recurrent loop, readable
    assert "def forward(self, query, lengths=None):" in text


def test_write_is_atomic_and_refuses_a_directory(tmp_path, cntk_dir):
    net = load(cntk_dir / "models/MC.dnn")
    (tmp_path / "m.safetensors").mkdir()
    with pytest.raises(FormatError, match="m.safetensors"):
        write_module(net, tmp_path / "m.py")
    assert not (tmp_path / "m.py").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
