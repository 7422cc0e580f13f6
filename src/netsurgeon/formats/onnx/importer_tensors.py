"""ONNX tensors (initializers, Constant values) as numpy arrays, checked before allocating.

A tensor's ``dims`` are checked against the bytes it actually holds before numpy is asked for
anything, so a hostile ``dims`` of 2^40 is an error, not an allocation. External data
(models over 2 GB keep their weights in side files) is memory-mapped copy-on-write from a
regular file beside the model, after checking that the file exists, that the path stays in
the model's folder and that offset + length lie inside it.
"""

from __future__ import annotations

import os
from math import prod
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from netsurgeon._inputs import map_file
from netsurgeon.errors import FormatError, SourceLocation

__all__ = ["tensor_array", "ExternalData"]

# TensorProto.DataType -> (numpy dtype, the typed field that holds it when not raw)
_TYPES: dict[int, tuple[str, str]] = {
    1: ("<f4", "float_data"), 2: ("u1", "int32_data"), 3: ("i1", "int32_data"),
    4: ("<u2", "int32_data"), 5: ("<i2", "int32_data"), 6: ("<i4", "int32_data"),
    7: ("<i8", "int64_data"), 9: ("?", "int32_data"), 10: ("<f2", "int32_data"),
    11: ("<f8", "double_data"), 12: ("<u4", "uint64_data"), 13: ("<u8", "uint64_data"),
}
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL


class ExternalData:
    """Maps the side files of one model (each once), relative to the model's folder."""

    def __init__(self, folder: Path | None, where: SourceLocation) -> None:
        self.folder = folder
        self.where = where
        self._maps: dict[str, tuple[Any, int]] = {}

    def read(self, name: str, info: dict[str, str], dtype: np.dtype, count: int,
             dims: tuple[int, ...]) -> np.ndarray:
        location = info.get("location", "")
        if self.folder is None:
            raise FormatError(f"tensor '{name}' keeps its data in the external file "
                              f"'{location}'; give the model's path (read) so it can be found",
                              location=self.where)
        rel = PurePath(location)
        if not location or rel.is_absolute() or ".." in rel.parts:
            raise FormatError(f"tensor '{name}': external data location {location!r} must be "
                              "a relative path inside the model's folder", location=self.where)
        path = self.folder / rel
        if not path.exists():
            raise FormatError(f"tensor '{name}': its external data file '{path}' is missing "
                              "(a model over 2 GB keeps its weights beside the .onnx file; "
                              "copy them along)", location=self.where)
        key = os.fspath(path)
        if key not in self._maps:
            self._maps[key] = map_file(path, "ONNX external data", FormatError, copy=True)
        mapping, size = self._maps[key]
        try:
            offset = int(info.get("offset", "0"))
            length = int(info["length"]) if "length" in info else count * dtype.itemsize
        except ValueError:
            raise FormatError(f"tensor '{name}': external offset/length are not numbers",
                              location=self.where) from None
        if length != count * dtype.itemsize or offset < 0 or offset + length > size:
            raise FormatError(f"tensor '{name}': external data [{offset}, {offset + length}) "
                              f"of '{path}' ({size} bytes) does not hold {count} values of "
                              f"{dtype}", location=self.where)
        if count == 0:
            return np.zeros(dims, dtype)
        return np.frombuffer(mapping, dtype, count, offset).reshape(dims)


def tensor_array(t: Any, where: SourceLocation, external: ExternalData | None = None,
                 what: str = "tensor") -> np.ndarray:
    """The numpy value of a ``TensorProto`` (little-endian, the ONNX dtype)."""
    name = t.name or "<unnamed>"
    if t.data_type not in _TYPES:
        raise FormatError(f"{what} '{name}': element type {t.data_type} is not supported "
                          "(numbers only)", location=where)
    code, field = _TYPES[t.data_type]
    dtype = np.dtype(code)
    dims = tuple(int(d) for d in t.dims)
    if any(d < 0 for d in dims):
        raise FormatError(f"{what} '{name}': negative dimension in {list(dims)}", location=where)
    count = prod(dims)
    if t.data_location == _EXTERNAL:
        info = {e.key: e.value for e in t.external_data}
        return (external or ExternalData(None, where)).read(name, info, dtype, count, dims)
    raw = t.raw_data
    if raw:
        if len(raw) != count * dtype.itemsize:
            raise FormatError(f"{what} '{name}': {len(raw)} bytes of data do not hold dims "
                              f"{list(dims)} of {dtype} ({count * dtype.itemsize} bytes)",
                              location=where)
        return np.frombuffer(raw, dtype, count).reshape(dims).copy()
    values = getattr(t, field)
    if len(values) != count:
        raise FormatError(f"{what} '{name}': {len(values)} values do not fill dims {list(dims)}",
                          location=where)
    if t.data_type == 10:  # float16 stored as its bit patterns in int32_data
        return np.asarray(values, np.uint16).view(np.float16).reshape(dims)
    return np.asarray(values, dtype).reshape(dims)
