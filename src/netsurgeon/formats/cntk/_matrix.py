"""Matrix records (cntk-model-format.md §4): dense column-major and sparse CSC/CSR.

A dense matrix is returned as a read-only view of the file buffer (``np.frombuffer``), never
copied element by element; the caller reshapes it to numpy order, which for CNTK's
column-major data is a plain reshape to the reversed dims.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from netsurgeon.formats.cntk._binary import (
    ELEM_DTYPES,
    U64,
    BinaryReader,
    BinaryWriter,
    CntkFormatError,
    decode_utf16,
    wide,
    wide_end,
)

__all__ = ["MatrixRecord", "read_matrix", "write_matrix", "dense_view"]

DENSE_FORMAT = 0
CSC_FORMAT = 6
CSR_FORMAT = 7


@dataclass(slots=True)
class MatrixRecord:
    """A decoded matrix: flat data in column-major order (element (r,c) at r + c*rows)."""

    data: np.ndarray
    rows: int
    cols: int
    name: str = "unnamed"
    sparse_format: int | None = None  # 6 (CSC) / 7 (CSR) when stored sparse


_BMAT = wide("BMAT")
_EMAT = wide("EMAT")
_DENSE_HEAD = struct.Struct("<iQQ")  # format, rows, cols


_UNNAMED_Z = wide("unnamed")  # the usual name, terminator included


def _dense_head(buf, pos: int, size: int, itemsize: int | None
                ) -> tuple[np.dtype, str, int, int, int] | None:
    """``(element dtype, name, rows, cols, offset of the data)`` of a well-formed dense
    record head at ``pos`` (of ``itemsize``-byte elements, when given), or None: the
    one-pass decoders' common part; the field-by-field reader names any defect."""
    if pos + 19 > size or buf[pos] != 100 or buf[pos + 1:pos + 11] != _BMAT:  # 'd', BMAT
        return None
    (elem_size,) = U64.unpack_from(buf, pos + 11)
    elem = ELEM_DTYPES.get(elem_size)
    if elem is None or (itemsize is not None and elem_size != itemsize):
        return None
    start = pos + 19
    if buf[start:start + 16] == _UNNAMED_Z:
        name = "unnamed"
        pos = start + 16
    else:
        end = wide_end(buf, start)
        if end < 0:
            return None
        try:
            name = decode_utf16(buf[start:end], "strict", True)[0]
        except UnicodeDecodeError:
            return None
        pos = end + 2
    if pos + 20 > size:
        return None
    fmt, rows, cols = _DENSE_HEAD.unpack_from(buf, pos)
    if fmt != DENSE_FORMAT:
        return None
    return elem, name, rows, cols, pos + 20


def _read_dense(r: BinaryReader, dtype: np.dtype | None) -> MatrixRecord | None:
    """A well-formed dense record decoded in one pass, or None (nothing consumed) for
    anything else: the caller reads it field by field, which names the defect."""
    buf, size = r.buf, r.size
    head = _dense_head(buf, r.pos, size, None if dtype is None else dtype.itemsize)
    if head is None:
        return None
    elem, name, rows, cols, pos = head
    n = rows * cols
    end = pos + n * elem.itemsize
    if end + 10 > size or buf[end:end + 10] != _EMAT:
        return None
    data = np.frombuffer(buf, elem, n, pos)
    if data.flags.writeable:
        data.flags.writeable = False
    r.pos = end + 10
    return MatrixRecord(data, rows, cols, name)


def dense_view(r: BinaryReader, pos: int, dtype: np.dtype, shape: tuple[int, ...], rows: int,
               cols: int) -> tuple[np.ndarray, str, int] | None:
    """The dense matrix record at ``pos`` when it is well-formed and holds exactly ``rows`` x
    ``cols`` elements of ``dtype``'s size: ``(read-only view of the data in numpy ``shape``,
    matrix name, offset after EMAT)``; else None (the caller reads it with
    :func:`read_matrix`, which names the defect). ``r.pos`` is not moved.

    What a parameter record needs in one pass: the view is made with its final shape, so no
    flat array is made and reshaped."""
    buf, size = r.buf, r.size
    head = _dense_head(buf, pos, size, dtype.itemsize)
    if head is None:
        return None
    elem, name, stored_rows, stored_cols, pos = head
    n = rows * cols
    end = pos + n * elem.itemsize
    if (stored_rows != rows or stored_cols != cols or not n or end + 10 > size
            or buf[end:end + 10] != _EMAT):
        return None
    data = np.ndarray(shape, elem, buf, pos)
    if data.flags.writeable:
        data.flags.writeable = False
    return data, name, end + 10


def read_matrix(r: BinaryReader, dtype: np.dtype, what: str) -> MatrixRecord:
    """Read one matrix record; the element size must match the node's precision ``dtype``."""
    if dtype is not None:
        dtype = np.dtype(dtype)
    record = _read_dense(r, dtype)
    if record is not None:
        return record
    start = r.pos
    kind = r.byte(f"{what} kind")
    if kind not in (ord("d"), ord("s")):
        raise r.error(f"{what}: matrix kind byte is {kind:#04x}, expected 'd' or 's'", start)
    r.marker("BMAT")
    size_at = r.pos
    elem_size = r.u64(f"{what} element size")
    if elem_size not in ELEM_DTYPES:
        raise r.error(f"{what}: element size {elem_size} is not 2, 4 or 8", size_at)
    elem = ELEM_DTYPES[elem_size]
    if dtype is not None and elem.itemsize != np.dtype(dtype).itemsize:
        raise r.error(f"{what}: element size {elem_size} does not match the node's precision "
                      f"({np.dtype(dtype).name})", size_at)
    name = r.wstr(f"{what} name")
    fmt_at = r.pos
    fmt = r.i32(f"{what} format")
    if kind == ord("d"):
        if fmt != DENSE_FORMAT:
            raise r.error(f"{what}: dense matrix format {fmt}, expected 0", fmt_at)
        rows = r.u64(f"{what} rows")
        cols = r.u64(f"{what} cols")
        n = rows * cols
        if rows and cols and n > r.remaining // elem_size:
            raise r.error(f"{what}: {rows} x {cols} elements do not fit in the {r.remaining} bytes "
                          "left", fmt_at + 4)
        data = r.array(elem, n, f"{what} data")
        record = MatrixRecord(data, rows, cols, name)
    else:
        record = _read_sparse(r, elem, fmt, fmt_at, name, what)
    r.marker("EMAT")
    return record


def _read_sparse(r: BinaryReader, elem: np.dtype, fmt: int, fmt_at: int, name: str,
                 what: str) -> MatrixRecord:
    if fmt not in (CSC_FORMAT, CSR_FORMAT):
        raise r.error(f"{what}: sparse matrix format {fmt}, expected 6 (CSC) or 7 (CSR)", fmt_at)
    nz_at = r.pos
    nz = r.u64(f"{what} non-zero count")
    cols = r.u64(f"{what} cols")
    rows = r.u64(f"{what} rows")
    major = cols if fmt == CSC_FORMAT else rows
    minor = rows if fmt == CSC_FORMAT else cols
    # the dense result may be larger than the file; refuse sizes no real model has
    limit = max(64 << 20, 16 * r.size)
    if rows * cols * elem.itemsize > limit:
        raise r.error(f"{what}: sparse matrix {rows} x {cols} is too large to expand", nz_at)
    dense = np.zeros(rows * cols, elem)
    if nz:
        if nz > r.remaining // (elem.itemsize + 8):
            raise r.error(f"{what}: non-zero count {nz} exceeds the bytes left", nz_at)
        values = r.array(elem, nz, f"{what} values")
        index = r.array("<u8", nz, f"{what} indices")
        offsets = r.array("<u8", major + 1, f"{what} offsets")
        if (offsets[0] != 0 or offsets[-1] != nz or np.any(np.diff(offsets.astype(np.int64)) < 0)
                or (nz and int(index.max()) >= minor)):
            raise r.error(f"{what}: inconsistent sparse indices", nz_at)
        outer = np.repeat(np.arange(major, dtype=np.int64), np.diff(offsets.astype(np.int64)))
        inner = index.astype(np.int64)
        if fmt == CSC_FORMAT:
            flat = inner + outer * rows  # (row, col) column-major
        else:
            flat = outer + inner * rows  # row = outer, col = inner
        dense[flat] = values
    dense.flags.writeable = False
    return MatrixRecord(dense, rows, cols, name, fmt)


def write_matrix(w: BinaryWriter, flat_colmajor: np.ndarray, rows: int, cols: int, dtype: np.dtype,
                 name: str = "unnamed", sparse_format: int | None = None) -> None:
    """Write a matrix whose data (column-major, rows*cols elements) is ``flat_colmajor``."""
    data = np.asarray(flat_colmajor)
    if data.dtype != dtype:
        data = data.astype(dtype)
    if data.size != rows * cols:
        raise CntkFormatError(f"matrix data has {data.size} elements, not {rows} x {cols}")
    w.byte(ord("s") if sparse_format else ord("d"))
    w.marker("BMAT")
    w.u64(np.dtype(dtype).itemsize)
    w.wstr(name)
    if not sparse_format:
        w.i32(DENSE_FORMAT)
        w.u64(rows)
        w.u64(cols)
        w.array(data.reshape(-1))
    else:
        w.i32(sparse_format)
        flat = data.reshape(-1)
        if sparse_format == CSC_FORMAT:
            grid = flat.reshape(cols, rows)  # [col][row]
        else:
            grid = flat.reshape(cols, rows).T  # [row][col]
        major_idx, minor_idx = np.nonzero(grid)
        nz = len(major_idx)
        w.u64(nz)
        w.u64(cols)
        w.u64(rows)
        if nz:
            w.array(grid[major_idx, minor_idx].astype(dtype))
            w.array(minor_idx.astype("<u8"))
            counts = np.bincount(major_idx, minlength=grid.shape[0])
            w.array(np.concatenate([[0], np.cumsum(counts)]).astype("<u8"))
    w.marker("EMAT")
