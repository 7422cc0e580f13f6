"""Fixtures of the command tests: a tiny model, tiny CTF data, one-line error checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import CNTK
from tests.runtime import nets

from netsurgeon import formats


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    import torch

    torch.set_num_threads(2)
    yield


@pytest.fixture
def lr_model(tmp_path) -> Path:
    """The HelloWorld logistic regression network (features 2, labels 1) as a .nsm file."""
    path = tmp_path / "lr.nsm"
    formats.save(nets.logistic_regression(), path)
    return path


@pytest.fixture
def ctf(tmp_path) -> Path:
    """40 samples of CTF training data for lr_model."""
    r = nets.rng(3)
    x = r.normal(size=(40, 2)).astype(np.float32)
    y = (x.sum(1) > 0).astype(np.float32)
    path = tmp_path / "train.ctf"
    path.write_text("".join(f"|features {a:.6f} {b:.6f} |labels {c:g}\n"
                            for (a, b), c in zip(x, y)))
    return path


@pytest.fixture
def hello(tmp_path, monkeypatch):
    """A working directory holding the HelloWorld data (the configs' relative paths)."""
    for name in ("Train_cntk_text.txt", "Test_cntk_text.txt", "Train-3Classes_cntk_text.txt",
                 "Test-3Classes_cntk_text.txt"):
        shutil.copy(CNTK / "data" / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path
