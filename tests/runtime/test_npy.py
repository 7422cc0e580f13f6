"""Issue 10: ``load_npy`` (``eval --input NODE=file.npy``) checks a user's array file before
numpy allocates anything: numeric arrays only, header against file size, regular files."""

from __future__ import annotations

import os
import struct
import time
import tracemalloc

import numpy as np
import pytest

from netsurgeon.errors import FormatError
from netsurgeon.runtime.readers import load_npy

WHAT = "--input x array"


def _header(text: str, version: int = 1) -> bytes:
    """A .npy header holding ``text`` (padded as numpy pads it)."""
    raw = text.encode("latin1")
    width = 2 if version == 1 else 4
    raw += b" " * (-(6 + 2 + width + len(raw) + 1) % 64) + b"\n"
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<H" if width == 2 else "<I",
                                                            len(raw)) + raw


def _header_dict(descr: str = "<f4", shape: str = "(2,)") -> str:
    return f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"


def _refused(path) -> str:
    start = time.monotonic()
    with pytest.raises(FormatError) as info:
        load_npy(path, WHAT)
    assert time.monotonic() - start < 5
    text = str(info.value)
    assert "\n" not in text
    prefix = f"{path}: cannot read the {WHAT}: "
    assert text.startswith(prefix), text
    return text[len(prefix):]


def test_a_good_array_is_mapped_read_only(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.arange(6, dtype=np.float32).reshape(3, 2))
    a = load_npy(p, WHAT)
    assert a.tolist() == [[0, 1], [2, 3], [4, 5]] and not a.flags.writeable
    np.save(p, np.zeros((0, 2), np.int32))
    assert load_npy(p, WHAT).shape == (0, 2)  # eval refuses it as "holds no samples"
    np.save(p, np.ones((2, 2), bool))
    assert load_npy(p, WHAT).dtype == bool


def test_npz(tmp_path):
    p = tmp_path / "a.npz"
    np.savez(p, x=np.zeros(3))
    assert _refused(p).startswith("it is a .npz archive (several arrays)")


def test_text_and_empty_files(tmp_path):
    p = tmp_path / "a.npy"
    p.write_text("1 2 3\n")
    assert _refused(p) == ("it is not a .npy file (no \\x93NUMPY magic at byte 0); write it "
                           "with numpy.save")
    p.write_bytes(b"")
    assert _refused(p).startswith("it is not a .npy file")


@pytest.mark.parametrize(("array", "words"), [
    (np.array([{"a": 1}, None], dtype=object), "its values are object (Python objects)"),
    (np.array(["ab", "c"]), "its values are <U2 (text)"),
    (np.array([b"ab"]), "its values are |S2 (bytes)"),
    (np.zeros(2, dtype=[("a", "f4"), ("b", "i4")]), "(records)"),
    (np.zeros(2, np.complex64), "its values are complex64 (complex numbers)"),
    (np.zeros(2, "datetime64[s]"), "its values are datetime64[s] (dates)"),
])
def test_arrays_that_are_not_numbers(tmp_path, array, words):
    p = tmp_path / "a.npy"
    np.save(p, array, allow_pickle=True)
    line = _refused(p)
    assert words in line and line.endswith("an input must be a numeric array (bool, int or float)")


def test_a_tiny_file_claiming_a_huge_array_is_refused_at_once(tmp_path):
    p = tmp_path / "huge.npy"
    p.write_bytes(_header(_header_dict(shape="(8589934592,)")) + b"\0" * 8)
    tracemalloc.start()
    try:
        line = _refused(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert line == ("it is truncated: the header's shape (8589934592,) of float32 needs "
                    "34359738368 bytes after byte offset 128, the file has 8 bytes")
    assert peak < 1 << 20


def test_a_header_length_beyond_the_file_is_refused_before_it_is_read(tmp_path):
    """numpy reads the header length it is given (4 GiB for a version 2 header) at once."""
    p = tmp_path / "a.npy"
    p.write_bytes(b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{'descr'")
    tracemalloc.start()
    try:
        line = _refused(p)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert line == "it is truncated: its header is 4294967280 bytes long, 8 bytes follow"
    assert peak < 1 << 20


def test_truncated_files(tmp_path):
    p = tmp_path / "a.npy"
    np.save(p, np.ones((4, 2), np.float32))
    raw = p.read_bytes()
    p.write_bytes(raw[:-5])
    assert _refused(p) == ("it is truncated: the header's shape (4, 2) of float32 needs 32 bytes "
                           "after byte offset 128, the file has 27 bytes")
    p.write_bytes(raw + b"xx")
    assert _refused(p).startswith("it is longer than its header says")
    p.write_bytes(raw[:50])
    assert _refused(p) == "it is truncated: its header is 118 bytes long, 40 bytes follow"
    p.write_bytes(raw[:7])
    assert _refused(p) == "its header cannot be read (the file ends inside it)"


@pytest.mark.parametrize(("header", "words"), [
    (_header(_header_dict(shape="(-1,)")), "its header gives the shape (-1,)"),
    (_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,"),
     "its header cannot be read (EOF in multi-line statement)"),
    (_header("{'descr': __import__('os').getcwd(), 'fortran_order': False, 'shape': (2,)}"),
     "its header cannot be read (malformed node or string"),
    (_header("[1, 2]"), "its header cannot be read (Header is not a dictionary: [1, 2])"),
    (_header(_header_dict(descr="zz")), "its header cannot be read (descr is not a valid dtype"),
    (_header(_header_dict(shape="(" * 300 + ")" * 300)), "its header cannot be read ("),
    (b"\x93NUMPY\x07\x00" + b"\0" * 16, "its header cannot be read (unknown .npy version 7.0)"),
])
def test_bad_headers(tmp_path, header, words):
    p = tmp_path / "a.npy"
    p.write_bytes(header + b"\0" * 8)
    assert _refused(p).startswith(words)


def test_a_version_2_header_is_read(tmp_path):
    p = tmp_path / "a.npy"
    p.write_bytes(_header(_header_dict(), version=2) + np.ones(2, np.float32).tobytes())
    assert load_npy(p, WHAT).tolist() == [1, 1]


def test_a_fifo_or_directory(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    assert _refused(tmp_path / "pipe").startswith("it is a FIFO (named pipe)")
    assert _refused(tmp_path) == "it is a directory"
    assert _refused(tmp_path / "none.npy") == "not found"
