"""Issue 15 trap: every file netsurgeon writes gets the process umask (``0666 & ~umask``), and a
save over an existing file keeps that file's mode, for every writer: native, CNTK v1, CNTK v2,
ONNX, the standalone torch module (+ its weights), checkpoints, and ``netsurgeon convert``
in place (a shared 0644 model must not become private)."""

from __future__ import annotations

import os
import shutil
import stat

import pytest

from netsurgeon.cli import main
from netsurgeon.formats import load, save


@pytest.fixture
def umask():
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


@pytest.fixture
def mc(cntk_dir):
    return load(cntk_dir / "models/MC.dnn")


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _write_all(net, d) -> list:
    """Every writer once into ``d``; returns the files written."""
    from netsurgeon.runtime import checkpoint
    from netsurgeon.runtime.standalone import write_module

    save(net, d / "m.nsm")
    save(net, d / "m.dnn")
    save(net, d / "m.model")  # CNTK v2
    save(net, d / "m.onnx", outputs=["z"])
    py, weights = write_module(net, d / "mod.py", ["z"])
    checkpoint.write(d / "m.ckpt", {"epoch": 1})
    return [d / "m.nsm", d / "m.dnn", d / "m.model", d / "m.onnx", py, weights, d / "m.ckpt"]


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_every_writer_uses_the_umask(mc, tmp_path, umask, mask):
    umask(mask)
    for path in _write_all(mc, tmp_path):
        assert _mode(path) == 0o666 & ~mask, path.name


def test_every_writer_keeps_the_mode_of_the_file_it_replaces(mc, tmp_path, umask):
    umask(0o022)
    files = _write_all(mc, tmp_path)
    for path in files:
        path.chmod(0o640)
    umask(0o077)  # a private umask now: the replaced files keep their 0640 all the same
    assert _write_all(mc, tmp_path) == files
    for path in files:
        assert _mode(path) == 0o640, path.name


def test_an_in_place_convert_keeps_a_shared_model_shared(cntk_dir, tmp_path, umask, capsys):
    umask(0o077)
    model = tmp_path / "MC.dnn"
    shutil.copyfile(cntk_dir / "models/MC.dnn", model)
    model.chmod(0o644)
    assert main(["convert", str(model), str(model)]) == 0
    assert _mode(model) == 0o644
    assert main(["convert", str(model), str(tmp_path / "new.nsm")]) == 0
    assert _mode(tmp_path / "new.nsm") == 0o600  # a new file: 0666 & ~0077
