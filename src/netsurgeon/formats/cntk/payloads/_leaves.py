"""Leaves: LearnableParameter, InputValue/SparseInputValue, Mean/InvStdDev (§7.1, §7.2)."""

from __future__ import annotations

import math
import struct
from typing import TYPE_CHECKING

import numpy as np

from netsurgeon.formats.cntk._binary import (
    U32,
    BinaryReader,
    BinaryWriter,
    CntkFormatError,
    decode_utf16,
    dims_struct,
    wide_end,
)
from netsurgeon.formats.cntk._codec import Codec, key
from netsurgeon.formats.cntk._context import Parts, ReadContext, WriteContext
from netsurgeon.formats.cntk._layer import CNTK_V1
from netsurgeon.formats.cntk._matrix import dense_view, read_matrix, write_matrix
from netsurgeon.formats.cntk.payloads._common import cntk_dims, write_legacy_shape
from netsurgeon.ops.leaves import NO_SEQUENCE_AXIS

if TYPE_CHECKING:
    from netsurgeon.graph import Node
    from netsurgeon.ops import OpSpec

__all__ = ["LearnableParameterCodec", "InputValueCodec", "PrecomputeCodec"]

_LRM_RANK = struct.Struct("<fI")
_INPUT_HEAD = struct.Struct("<QQII")  # rows, cols, shape rank, its first dimension
_F32 = struct.Struct("<f")
_MATRIX_NAME = key("matrix_name")  # the matrix's name when not "unnamed"
_SPARSE_FORMAT = key("sparse_format")  # 6 (CSC) / 7 (CSR) when the matrix was stored sparse


def _matrix_fields(parts: Parts, m) -> None:
    if m.name != "unnamed":
        parts.file_fields[_MATRIX_NAME] = m.name
    if m.sparse_format:
        parts.file_fields[_SPARSE_FORMAT] = m.sparse_format


class LearnableParameterCodec(Codec):
    """v>=3: f32 multiplier, shape, matrix. v<3: bool needsGradient, u64 rows, u64 cols,
    [legacy-accepting shape when rows is 0], matrix.

    File fields: ``v2_header`` (rows, cols, legacy W,H,C form) of v < 3 files, the matrix name
    and sparse format.
    """

    own_fields = ("v2_header", "matrix_name", "sparse_format")
    _HEADER = key("v2_header")

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        if ctx.version >= 3:
            parts = self._read_plain(r, ctx)
            if parts is not None:
                return parts
        parts = Parts()
        if ctx.version >= 3:
            pos = r.pos
            rank = -1
            if pos + 8 <= r.size:  # multiplier, rank and dims in two reads (the common case)
                lrm, rank = _LRM_RANK.unpack_from(r.buf, pos)
                if rank > 16 or pos + 8 + 4 * rank > r.size:
                    rank = -1
            if rank >= 0:
                parts.learning_rate_multiplier = lrm
                dims = list(dims_struct(rank).unpack_from(r.buf, pos + 8))
                r.pos = pos + 8 + 4 * rank
            else:  # field by field: the error names the field and its offset
                parts.learning_rate_multiplier = r.f32("learningRateMultiplier")
                dims = r.shape("sample shape")
        else:
            parts.learning_rate_multiplier = 1.0 if r.bool("needsGradient") else 0.0
            rows = r.u64("rows")
            cols = r.u64("cols")
            legacy = None
            if rows != 0:
                dims = [rows, cols]
            else:
                dims, legacy = r.legacy_shape("sample shape")
                if cols > 1:
                    dims = dims + [cols]
            parts.file_fields[self._HEADER] = (rows, cols, legacy)
        at = r.pos
        m = read_matrix(r, ctx.dtype, "parameter matrix")
        want_rows = dims[0] if dims else 1
        want_cols = math.prod(dims[1:])
        if (m.rows, m.cols) != (want_rows, want_cols):
            raise r.error(f"parameter matrix is {m.rows} x {m.cols} but its shape {dims} needs "
                          f"{want_rows} x {want_cols}", at)
        parts.shape = tuple(reversed(dims))
        parts.value = m.data.reshape(parts.shape)
        _matrix_fields(parts, m)
        return parts

    @staticmethod
    def _read_plain(r: BinaryReader, ctx: ReadContext) -> Parts | None:
        """A v >= 3 record whose header and dense matrix are well-formed and agree, in one
        pass; else None (nothing consumed) and :meth:`read` reads it field by field."""
        buf, pos = r.buf, r.pos
        if pos + 8 > r.size:
            return None
        lrm, rank = _LRM_RANK.unpack_from(buf, pos)
        if rank > 16 or pos + 8 + 4 * rank > r.size:
            return None
        dims = dims_struct(rank).unpack_from(buf, pos + 8)
        shape = dims[::-1]
        found = dense_view(r, pos + 8 + 4 * rank, ctx.dtype, shape,
                           dims[0] if dims else 1, math.prod(dims[1:]))
        if found is None:
            return None
        value, name, r.pos = found
        parts = Parts(shape=shape, value=value, learning_rate_multiplier=lrm)
        if name != "unnamed":
            parts.file_fields[_MATRIX_NAME] = name
        return parts

    def check(self, node: Node, ctx: WriteContext) -> None:
        if node.value is None:
            raise CntkFormatError(f"parameter '{node.name}' has no value; initialise it "
                                  "(netsurgeon.graph.prepare) before saving", node=node.name)

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        value = np.asarray(ctx.value_overrides.get(node, node.value))
        dims = [int(d) for d in reversed(value.shape)]
        rows, cols = (dims[0] if dims else 1), math.prod(dims[1:])
        if ctx.version >= 3:
            w.f32(node.learning_rate_multiplier)
            w.shape(dims)
        else:
            w.bool(node.learning_rate_multiplier > 0)
            header = node.file_fields.get(self._HEADER)
            if header and header[0] == 0 and dims:
                w.u64(0)
                w.u64(header[1])
                write_legacy_shape(w, dims[:-1] if header[1] > 1 else dims, bool(header[2]))
            else:
                w.u64(rows)
                w.u64(cols)
        ff = node.file_fields
        write_matrix(w, value, rows, cols, ctx.dtype_of(node), ff.get(_MATRIX_NAME, "unnamed"),
                     ff.get(_SPARSE_FORMAT))


class InputValueCodec(Codec):
    """u64 rows, u64 cols (placeholders), legacy-accepting shape; v>=8 u32 axis count and
    the axis name; v>=10 f32 multiplier.

    File fields, each only where the writer would not reproduce the file otherwise:
    non-zero ``rows_placeholder``/``cols_placeholder``, ``legacy_shape`` (the W,H,C form),
    ``stored_shape`` (the shape CNTK replaced by [rows]), ``num_dynamic_axes`` 0, and
    ``input_lr_is_one`` (a multiplier of 1.0 read from the file, not netsurgeon's default).
    """

    own_fields = ("rows_placeholder", "cols_placeholder", "legacy_shape", "stored_shape",
                  "num_dynamic_axes", "input_lr_is_one")
    _ROWS, _COLS, _LEGACY, _STORED, _AXES, _LR_ONE = (key(n) for n in own_fields)

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        if ctx.version >= 10:
            parts = self._read_plain(r)
            if parts is not None:
                return parts
        parts = Parts()
        ff = parts.file_fields
        rows = r.u64("rows placeholder")
        cols = r.u64("cols placeholder")
        dims, legacy = r.legacy_shape("sample shape")
        if rows:
            ff[self._ROWS] = rows
        if cols:
            ff[self._COLS] = cols
        if legacy:
            ff[self._LEGACY] = True
        if rows and rows != math.prod(dims):
            ff[self._STORED] = tuple(dims)  # CNTK replaces the shape by [rows]
            dims = [rows]
        parts.shape = tuple(reversed(dims))
        if ctx.version >= 8:
            at = r.pos
            n = r.u32("dynamic axis count")
            if n > 1:
                raise r.error(f"dynamic axis count is {n}; CNTK stores 0 or 1", at)
            if n == 1:
                parts.attrs["dynamic_axis"] = r.wstr("dynamic axis name")
            else:
                ff[self._AXES] = 0
        lr = r.f32("learningRateMultiplier") if ctx.version >= 10 else 0.0
        parts.learning_rate_multiplier = lr
        if lr == 1.0:
            ff[self._LR_ONE] = True
        return parts

    def _read_plain(self, r: BinaryReader) -> Parts | None:
        """A v >= 10 record with a TensorShape (not the legacy W,H,C form) and 0 or 1 dynamic
        axes, in one pass; else None (nothing consumed) and :meth:`read` reads it field by
        field."""
        buf, pos, size = r.buf, r.pos, r.size
        if pos + 24 > size:
            return None
        rows, cols, rank, dim0 = _INPUT_HEAD.unpack_from(buf, pos)
        at = pos + 20 + 4 * rank  # after the dims
        if not rank or not dim0 or rank > 16 or at + 4 > size:
            return None
        dims = dims_struct(rank).unpack_from(buf, pos + 20)
        (axes,) = U32.unpack_from(buf, at)
        at += 4
        parts = Parts()
        ff = parts.file_fields
        if axes == 1:
            end = wide_end(buf, at)
            if end < 0:
                return None
            try:
                parts.attrs["dynamic_axis"] = decode_utf16(buf[at:end], "strict", True)[0]
            except UnicodeDecodeError:
                return None
            at = end + 2
        elif axes == 0:
            ff[self._AXES] = 0
        else:
            return None
        if at + 4 > size:
            return None
        (lr,) = _F32.unpack_from(buf, at)
        r.pos = at + 4
        if rows:
            ff[self._ROWS] = rows
            if rows != math.prod(dims):
                ff[self._STORED] = dims  # CNTK replaces the shape by [rows]
                dims = (rows,)
        if cols:
            ff[self._COLS] = cols
        parts.shape = dims[::-1]
        parts.learning_rate_multiplier = lr
        if lr == 1.0:
            ff[self._LR_ONE] = True
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        ff = node.file_fields
        stored = ff.get(self._STORED)
        dims = list(stored) if stored is not None else cntk_dims(node)
        if not dims:
            dims = [1]  # a scalar input is stored as [1] (rank 0 is misread as the legacy form)
        w.u64(ff.get(self._ROWS, 0))
        w.u64(ff.get(self._COLS, 0))
        write_legacy_shape(w, dims, bool(ff.get(self._LEGACY, False)))
        if ctx.version >= 8:
            n = int(ff.get(self._AXES, 1))
            w.u32(n)
            if n == 1:
                axis = node.attrs["dynamic_axis"]  # v1 has no batch-only input: the default
                w.wstr("" if axis == NO_SEQUENCE_AXIS else axis)
        if ctx.version >= 10:
            # CNTK inputs carry multiplier 0; netsurgeon's default 1.0 means "not set"
            lr = node.learning_rate_multiplier
            w.f32(0.0 if lr == 1.0 and not ff.get(self._LR_ONE) else lr)

    def check(self, node: Node, ctx: WriteContext) -> None:
        ff = node.file_fields
        if self._STORED not in ff and not ff.get(self._LEGACY):
            dims = cntk_dims(node)
            if dims and dims[0] == 0:
                raise CntkFormatError(
                    f"input '{node.name}' has a first (CNTK) dimension of 0, which CNTK misreads "
                    "as the legacy W,H,C shape; give it its real dimension", node=node.name)


class PrecomputeCodec(Codec):
    """Mean / InvStdDev: bool hasComputed, then the matrix of statistics.

    Statistics not computed yet are an all-zero matrix in the file and ``value=None`` here
    (the matrix size is kept in the file field ``matrix_dims`` for the round trip).
    """

    own_fields = ("matrix_dims", "matrix_name", "sparse_format")
    _DIMS = key("matrix_dims")

    def read(self, r: BinaryReader, ctx: ReadContext, spec: OpSpec) -> Parts:
        parts = Parts()
        computed = r.bool("hasComputed")
        m = read_matrix(r, ctx.dtype, "statistics matrix")
        parts.attrs["has_computed"] = computed
        if not computed and not np.any(m.data):
            parts.file_fields[self._DIMS] = (m.rows, m.cols)
        else:
            parts.value = m.data.reshape((m.cols, m.rows) if m.cols != 1 else (m.rows,))
        _matrix_fields(parts, m)
        return parts

    def write(self, w: BinaryWriter, ctx: WriteContext, node: Node, spec: OpSpec) -> None:
        ff = node.file_fields
        dtype = ctx.dtype_of(node)
        w.bool(node.attrs["has_computed"] and node.value is not None)
        if node.value is not None:
            value = np.asarray(node.value)
            rows = value.shape[-1] if value.ndim else 1
            cols = value.size // rows if rows else 0
        else:
            if ff.get(self._DIMS):
                rows, cols = (int(d) for d in ff[self._DIMS])
            else:  # not computed yet: zeros of the sample shape, as CNTK allocates them
                dims = cntk_dims(node) if node.shape is not None else [1]
                rows, cols = (dims[0] if dims else 1), math.prod(dims[1:])
            value = np.zeros(rows * cols, dtype)
        write_matrix(w, value, rows, cols, dtype, ff.get(_MATRIX_NAME, "unnamed"),
                     ff.get(_SPARSE_FORMAT))


CNTK_V1.add("LearnableParameter", LearnableParameterCodec())
CNTK_V1.add(("InputValue", "SparseInputValue"), InputValueCodec())
CNTK_V1.add(("Mean", "InvStdDev"), PrecomputeCodec())
