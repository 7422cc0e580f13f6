"""Issue 10: the CTF reader reads finite float32 values only, says where a bad one is, and
refuses an empty file, an empty dense field and anything but a regular file."""

from __future__ import annotations

import os

import numpy as np
import pytest

from netsurgeon.errors import FormatError
from netsurgeon.runtime.batch import SparseRows
from netsurgeon.runtime.readers import CTFReader, StreamSpec

SPECS = [StreamSpec("x", "x", (2,)), StreamSpec("w", "w", (4,))]
NOT_FINITE = ("is not a finite float32 number (NaN, Inf and values beyond ±3.403e+38 cannot "
              "be read)")


def _read(tmp_path, text: str):
    p = tmp_path / "d.ctf"
    p.write_text(text)
    return p, list(CTFReader(p, SPECS))


def _refused(tmp_path, text: str) -> str:
    p = tmp_path / "d.ctf"
    p.write_text(text)
    with pytest.raises(FormatError) as info:
        list(CTFReader(p, SPECS))
    message = str(info.value)
    assert "\n" not in message
    return message.replace(str(p), "FILE")


@pytest.mark.parametrize("text", ["", "\n\n  \n\t\n", "\r\n"])
def test_a_file_without_samples(tmp_path, text):
    assert _refused(tmp_path, text) == (
        "no samples in FILE: the file is empty or holds only blank lines; give a CTF file with "
        "lines like '|name v1 v2 ...'")


@pytest.mark.parametrize(("text", "line", "token"), [
    ("|x 1 2 |w 0:1\n|x nan 2 |w 0:1\n", 2, "nan"),
    ("|x 1 NaN |w 0:1\n", 1, "NaN"),
    ("|x inf 2 |w 0:1\n", 1, "inf"),
    ("|x 1 -Infinity |w 0:1\n", 1, "-Infinity"),
    ("\n|x 1 2 |w 0:1\n|x 1e39 2 |w 0:1\n", 3, "1e39"),
    ("|x -3.5e38 2 |w 0:1\n", 1, "-3.5e38"),
])
def test_dense_values_that_are_not_finite_float32(tmp_path, text, line, token):
    assert _refused(tmp_path, text) == f"FILE:{line}: stream 'x': '{token}' {NOT_FINITE}"


@pytest.mark.parametrize("token", ["0:inf", "3:-inf", "1:nan", "2:1e39"])
def test_sparse_values_that_are_not_finite_float32(tmp_path, token):
    assert _refused(tmp_path, f"|x 1 2 |w 0:1\n|x 1 2 |w {token}\n") == (
        f"FILE:2: stream 'w': '{token}' {NOT_FINITE}")


def test_the_largest_float32_is_read(tmp_path):
    _, (mb,) = _read(tmp_path, "|x 3.4e38 -3.4e38 |w 0:3.4e38\n")
    assert np.isfinite(mb.streams["x"]).all() and np.isfinite(mb.streams["w"].values).all()


def test_an_empty_dense_field(tmp_path):
    want = ("stream 'x' is empty, but a dense sample of input 'x' needs 2 values (only a sparse "
            "stream's sample may be empty)")
    assert _refused(tmp_path, "|x 1 2 |w 0:1\n|x |w 1:1\n") == f"FILE:2: {want}"
    assert _refused(tmp_path, "|x |w 0:1\n|x 1 2 |w 1:1\n") == (
        f"FILE:1: {want} (line 2 shows that it is dense)")


def test_an_empty_sparse_field_is_an_all_zero_sample(tmp_path):
    _, (mb,) = _read(tmp_path, "|x 1 2 |w\n|x 3 4 |w 2:5\n|x 5 6 |w |# note\n")
    w = mb.streams["w"]
    assert isinstance(w, SparseRows)
    assert w.to_dense().tolist() == [[0, 0, 0, 0], [0, 0, 5, 0], [0, 0, 0, 0]]
    assert mb.streams["x"].reshape(3, 2).tolist() == [[1, 2], [3, 4], [5, 6]]


def test_only_regular_files_are_data(tmp_path):
    os.mkfifo(tmp_path / "pipe")  # refused by its stat, never opened: cannot block
    with pytest.raises(FormatError) as info:
        CTFReader(tmp_path / "pipe", SPECS)
    assert str(info.value).startswith(f"{tmp_path / 'pipe'}: cannot read the data file: it is "
                                      "a FIFO (named pipe)")
    with pytest.raises(FormatError) as info:
        CTFReader(tmp_path, SPECS)
    assert str(info.value) == f"{tmp_path}: cannot read the data file: it is a directory"
    with pytest.raises(FormatError, match="cannot read the data file: not found"):
        CTFReader(tmp_path / "none.ctf", SPECS)
