"""Reading a user's ``.npy`` array safely: the header is checked against the file first.

Only regular files; only numeric arrays (booleans, integers, floats: no objects, strings,
records or pickles); the header's shape times the item size must be exactly the bytes that
follow it, so a 129-byte file claiming 32 GiB is refused before anything is allocated. The
array is then memory-mapped read-only (``allow_pickle=False``). A ``.npz`` archive, garbage
and truncated files are one-line :class:`~netsurgeon.errors.FormatError`\\ s naming the file.
"""

from __future__ import annotations

import os
from math import prod

import numpy as np
from numpy.lib import format as npy_format

from netsurgeon._inputs import open_regular
from netsurgeon.errors import FormatError

__all__ = ["load_npy"]

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = b"PK\x03\x04"


def load_npy(path: str | os.PathLike[str], what: str = ".npy input") -> np.ndarray:
    """A read-only (memory-mapped) numeric array from a checked ``.npy`` file."""
    path = os.fspath(path)
    with open_regular(path, what, FormatError) as (f, size):
        head = f.read(len(_NPY_MAGIC))
        if head[:4] == _ZIP_MAGIC:
            raise _bad(path, what, "it is a .npz archive (several arrays); save the one array to "
                             "feed with np.save('x.npy', np.load(file)['name'])")
        if head != _NPY_MAGIC:
            raise _bad(path, what, "it is not a .npy file (no \\x93NUMPY magic at byte 0); "
                             "write it with numpy.save")
        version = f.read(2)
        width = {b"\x01\x00": 2, b"\x02\x00": 4, b"\x03\x00": 4}.get(version)
        field = f.read(width or 0)
        if width is None or len(field) < width:
            why = (f"unknown .npy version {version[0]}.{version[1]}" if width is None
                   and len(version) == 2 else "the file ends inside it")
            raise _bad(path, what, f"its header cannot be read ({why})")
        room = size - f.tell()
        if int.from_bytes(field, "little") > room:
            # before numpy reads it: a 4 GiB header length would be allocated at once
            raise _bad(path, what, f"it is truncated: its header is "
                             f"{int.from_bytes(field, 'little')} bytes long, {room} bytes follow")
        f.seek(len(_NPY_MAGIC) + 2)
        try:
            if version == b"\x01\x00":
                shape, fortran, dtype = npy_format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = npy_format.read_array_header_2_0(f)
        except Exception as exc:  # numpy's header parser raises many kinds (TokenError too)
            raise _bad(path, what, f"its header cannot be read ({_short(exc)})") from None
        offset = f.tell()
    if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None \
            or dtype.subdtype is not None:
        raise _bad(path, what, f"its values are {dtype} ({_kind(dtype)}); an input must be a "
                         "numeric array (bool, int or float)")
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise _bad(path, what, f"its header gives the shape {shape!r}")
    need = prod(shape) * dtype.itemsize
    have = size - offset
    if need != have:
        state = "truncated" if have < need else "longer than its header says"
        raise _bad(path, what, f"it is {state}: the header's shape {tuple(shape)} of {dtype} needs "
                         f"{need} bytes after byte offset {offset}, the file has {have} bytes")
    if need == 0:
        return np.zeros(shape, dtype)
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise _bad(path, what, f"it cannot be read ({_short(exc)})") from None


def _bad(path: str, what: str, why: str) -> FormatError:
    return FormatError(f"{path}: cannot read the {what}: {why}")


def _short(exc: BaseException) -> str:
    args = exc.args
    text = args[0] if len(args) > 1 and isinstance(args[0], str) else str(exc)  # TokenError
    text = " ".join(text.split())
    return (text[:160] + "...") if len(text) > 160 else (text or type(exc).__name__)


def _kind(dtype: np.dtype) -> str:
    if dtype.hasobject:
        return "Python objects"
    if dtype.fields is not None:
        return "records"
    return {"U": "text", "S": "bytes", "c": "complex numbers", "M": "dates",
            "m": "time spans", "V": "raw bytes"}.get(dtype.kind, "not numbers")
