"""Issue 10 through ``netsurgeon eval``: every ``--input`` array file is checked before it is
used (one line naming the file, exit 1, fast even for a header claiming 32 GiB), and
``--save-outputs`` is checked before the evaluation and never replaces a file."""

from __future__ import annotations

import os
import struct
import time

import numpy as np
import pytest
from tests.commands.helpers import listing, one_error

from netsurgeon.cli import main


@pytest.fixture
def mc(cntk_dir):
    return str(cntk_dir / "models/MC.dnn")


def _eval(model, array, *extra) -> int:
    return main(["eval", model, "--input", f"features={array}", "--output", "z", *map(str, extra)])


def test_a_good_array_is_evaluated_and_saved(mc, tmp_path, capsys):
    x = tmp_path / "x.npy"
    np.save(x, np.ones((5, 2), np.float32))
    assert _eval(mc, x, "--save-outputs", tmp_path / "out") == 0
    assert "5 samples in 5 sequences" in capsys.readouterr().out
    z = np.load(tmp_path / "out" / "z.npy")
    assert z.shape[0] == 5 and np.isfinite(z).all()
    assert listing(tmp_path / "out") == ["z.npy"]


def _huge(path):
    with open(path, "wb") as f:  # a valid header for 32 GiB of float32, then 8 bytes
        header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (8589934592,), }"
        header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 8)


def _write(kind: str, path) -> None:
    if kind == "npz":
        with open(path, "wb") as f:
            np.savez(f, features=np.ones((5, 2), np.float32))
    elif kind == "text":
        path.write_text("1 2\n3 4\n")
    elif kind == "object":
        np.save(path, np.array([[1.0, None]], dtype=object), allow_pickle=True)
    elif kind == "string":
        np.save(path, np.array([["1", "2"]]))
    elif kind == "huge":
        _huge(path)
    elif kind == "truncated":
        np.save(path, np.ones((5, 2), np.float32))
        path.write_bytes(path.read_bytes()[:-3])
    elif kind == "0-d":
        np.save(path, np.float32(1.0))
    elif kind == "empty":
        np.save(path, np.zeros((0, 2), np.float32))
    elif kind == "fifo":
        os.mkfifo(path)  # refused by its stat: never opened, so it cannot block


@pytest.mark.parametrize(("kind", "words"), [
    ("npz", "cannot read the --input features array: it is a .npz archive (several arrays)"),
    ("text", "cannot read the --input features array: it is not a .npy file"),
    ("object", "cannot read the --input features array: its values are object (Python "
               "objects); an input must be a numeric array (bool, int or float)"),
    ("string", "cannot read the --input features array: its values are <U1 (text)"),
    ("huge", "cannot read the --input features array: it is truncated: the header's shape "
             "(8589934592,) of float32 needs 34359738368 bytes after byte offset 128, the file "
             "has 8 bytes"),
    ("truncated", "cannot read the --input features array: it is truncated: the header's shape "
                  "(5, 2) of float32 needs 40 bytes"),
    ("0-d", "--input features: the array () holds no samples; give an array shaped (batch, "
            "*sample)"),
    ("empty", "--input features: the array (0, 2) holds no samples"),
    ("fifo", "cannot read the --input features array: it is a FIFO (named pipe)"),
])
def test_a_bad_array_is_one_line_naming_the_file(mc, tmp_path, capsys, kind, words):
    x = tmp_path / "x.npy"
    _write(kind, x)
    start = time.monotonic()
    assert _eval(mc, x, "--save-outputs", tmp_path / "out") == 1
    assert time.monotonic() - start < 5
    assert one_error(capsys.readouterr().err).startswith(f"{x}: {words}")
    assert listing(tmp_path) == ["x.npy"]  # nothing evaluated, nothing saved


def test_an_array_of_the_wrong_sample_shape(mc, tmp_path, capsys):
    x = tmp_path / "x.npy"
    np.save(x, np.ones((5, 3), np.float32))
    assert _eval(mc, x) == 1
    assert one_error(capsys.readouterr().err) == (
        "input 'features' has shape (5, 3); expected (batch, *(2,)) or (batch, time, *(2,))")


def test_save_outputs_onto_a_file(mc, tmp_path, capsys):
    x, taken = tmp_path / "x.npy", tmp_path / "taken"
    np.save(x, np.ones((5, 2), np.float32))
    taken.write_bytes(b"keep me")
    assert _eval(mc, x, "--save-outputs", taken) == 1
    assert one_error(capsys.readouterr().err) == (
        f"--save-outputs {taken}: it is not a directory (give a directory; it is created if "
        "missing)")
    assert taken.read_bytes() == b"keep me"


def test_save_outputs_is_checked_before_the_evaluation(mc, tmp_path, capsys, monkeypatch):
    x, out = tmp_path / "x.npy", tmp_path / "out"
    np.save(x, np.ones((5, 2), np.float32))
    (out / "z.npy").mkdir(parents=True)
    from netsurgeon.runtime import Evaluator

    def not_now(*a, **k):
        raise AssertionError("evaluated before the output place was checked")

    monkeypatch.setattr(Evaluator, "run", not_now)
    assert _eval(mc, x, "--save-outputs", out) == 1
    assert one_error(capsys.readouterr().err) == (
        f"cannot write {out / 'z.npy'}: it is a directory (give a file name inside it)")
