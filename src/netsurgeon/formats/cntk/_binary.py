"""Bounds-checked primitives of the CNTK v1 binary format (cntk-model-format.md §1).

:class:`BinaryReader` reads little-endian scalars, UTF-16 strings, markers, TensorShapes and
matrices from a buffer (``bytes`` or a read-only ``mmap``). Every read checks the bytes it
needs against the end of the buffer first, and every count is checked against what the
remaining bytes can hold *before* anything is allocated, so a corrupt or hostile file can
neither hang the reader nor make it allocate more than the file's size suggests. Every
failure raises :class:`CntkFormatError` naming the file, the byte offset and the section.

Reads are fast paths with the checks in front: a fixed-layout group of fields is one
``struct.unpack_from``, a string one ``find`` of its terminator. Code that decodes a whole
record at once (``_fields``, ``_matrix``, ``_reader``) uses :func:`wide_end` and the structs
here, and on anything unusual rewinds and reads the record again through the methods, which
raise the error with its exact offset.

:class:`BinaryWriter` is the mirror image: it collects byte chunks (large arrays as
zero-copy memoryviews) that are written out in one go.
"""

from __future__ import annotations

import codecs
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from netsurgeon.errors import FormatError

__all__ = ["CntkFormatError", "BinaryReader", "BinaryWriter", "ELEM_DTYPES", "MAX_STRING_UNITS",
           "MAGIC", "wide", "wide_end", "decode_utf16", "MAX_STRING_BYTES", "U32", "U64",
           "dims_struct"]

#: element size in a BMAT header -> numpy dtype (little-endian)
ELEM_DTYPES = {4: np.dtype("<f4"), 8: np.dtype("<f8"), 2: np.dtype("<f2")}

#: longest wide string accepted (UTF-16 units); a name longer than this is a corrupt file
MAX_STRING_UNITS = 1 << 20

#: ``decode_utf16(data, "strict", True)[0]`` is ``data.decode("utf-16-le")`` without the
#: codec's Python wrapper (a call per name read)
decode_utf16 = codecs.utf_16_le_decode


def wide(text: str) -> bytes:
    """``text`` as CNTK stores a string or marker: UTF-16LE plus a two-byte terminator."""
    return text.encode("utf-16-le") + b"\0\0"


#: the first 8 bytes of every v1 file: the marker "BCN" (the one place it is spelled)
MAGIC = wide("BCN")

#: the most bytes a wide string and its terminator may take
MAX_STRING_BYTES = _MAX_STRING_BYTES = 2 * MAX_STRING_UNITS + 2
_MARKERS: dict[str, bytes] = {}


def wide_end(buf: Any, start: int) -> int:
    """Offset of the two-byte terminator of the wide string at ``start`` (at an even distance
    from it, within :data:`MAX_STRING_BYTES`), or -1 when there is none."""
    end = buf.find(b"\0\0", start, start + _MAX_STRING_BYTES)
    if end < 0 or not (end - start) & 1:
        return end
    # an odd hit is the high byte of a character below 256 and the terminator's first byte
    # (ASCII text ends so): the terminator starts one byte on when its second byte is 0
    try:
        if buf[end + 2] == 0 and end + 3 - start <= _MAX_STRING_BYTES:
            return end + 1
    except IndexError:  # the buffer ends there
        pass
    limit = start + _MAX_STRING_BYTES
    while end >= 0 and (end - start) & 1:
        end = buf.find(b"\0\0", end + 1, limit)
    return end


_DIMS: dict[int, struct.Struct] = {}


def dims_struct(rank: int) -> struct.Struct:
    """The struct of ``rank`` u32 dimensions (cached; ranks up to 16 are what files hold)."""
    found = _DIMS.get(rank)
    if found is None:
        found = _DIMS[rank] = struct.Struct(f"<{rank}I")
    return found


for _rank in range(17):
    dims_struct(_rank)


_U64 = struct.Struct("<Q")
_I64 = struct.Struct("<q")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")
U64, U32 = _U64, _U32


class CntkFormatError(FormatError):
    """A CNTK v1 model file that cannot be read or written.

    Attributes:
        offset: byte offset in the file where the problem was found (None when writing).
        section: the part of the file being read (``node list``, ``node 'W' (Times) payload``...).
        path: the file.
    """

    def __init__(self, message: str, *, path: str | None = None, offset: int | None = None,
                 section: str | None = None, node: str | None = None, hint: str | None = None):
        self.path = path
        self.offset = offset
        self.section = section
        where = []
        if path:
            where.append(str(path))
        if offset is not None:
            where.append(f"byte {offset}")
        if section:
            where.append(f"section {section}")
        text = (", ".join(where) + ": " if where else "") + message
        super().__init__(text, node=None, hint=hint)
        self.node = node


class BinaryReader:
    """Sequential little-endian reader over ``buf`` with an offset in every error.

    ``section`` names the part of the file being read in errors: a string, or the pair
    ``(node name, op name)`` while a node record's payload is read (formatted only when an
    error is raised, not once per node).
    """

    __slots__ = ("buf", "pos", "size", "path", "section")

    def __init__(self, buf: Any, path: str | None = None) -> None:
        self.buf = buf
        self.pos = 0
        self.size = len(buf)
        self.path = path
        self.section = "header"

    # ---- errors -----------------------------------------------------------------------------
    def error(self, message: str, offset: int | None = None,
              hint: str | None = None) -> CntkFormatError:
        """A CntkFormatError at ``offset`` (default: the current position) in the current
        section."""
        section = self.section
        if type(section) is tuple:  # a node record's payload, named only when needed
            section = f"node '{section[0]}' ({section[1]}) payload"
        return CntkFormatError(message, path=self.path,
                               offset=self.pos if offset is None else offset,
                               section=section, hint=hint)

    @property
    def remaining(self) -> int:
        return self.size - self.pos

    def need(self, n: int, what: str) -> None:
        """Fail unless ``n`` more bytes exist."""
        if n > self.size - self.pos:
            raise self.error(f"file truncated: {what} needs {n} bytes, only "
                             f"{self.size - self.pos} left")

    # ---- scalars ---------------------------------------------------------------------------------
    def _unpack(self, st: struct.Struct, what: str) -> Any:
        if st.size > self.size - self.pos:
            self.need(st.size, what)
        (value,) = st.unpack_from(self.buf, self.pos)
        self.pos += st.size
        return value

    def u64(self, what: str = "u64") -> int:
        return self._unpack(_U64, what)

    def i64(self, what: str = "i64") -> int:
        return self._unpack(_I64, what)

    def u32(self, what: str = "u32") -> int:
        return self._unpack(_U32, what)

    def i32(self, what: str = "i32") -> int:
        return self._unpack(_I32, what)

    def f32(self, what: str = "f32") -> float:
        return self._unpack(_F32, what)

    def f64(self, what: str = "f64") -> float:
        return self._unpack(_F64, what)

    def byte(self, what: str = "byte") -> int:
        self.need(1, what)
        value = self.buf[self.pos]
        self.pos += 1
        return value

    def bool(self, what: str = "bool") -> bool:
        start = self.pos
        value = self.byte(what)
        if value > 1:
            raise self.error(f"{what}: a bool field holds {value:#04x} (expected 0 or 1)", start)
        return bool(value)

    def elem(self, dtype: np.dtype, what: str = "value") -> float:
        """One value of the node's element type (f32, f64 or binary16)."""
        size = dtype.itemsize
        self.need(size, what)
        value = float(np.frombuffer(self.buf, dtype, 1, self.pos)[0])
        self.pos += size
        return value

    # ---- strings and markers ---------------------------------------------------------------------
    def wstr(self, what: str = "string") -> str:
        """A NUL-terminated UTF-16LE string (any alignment)."""
        start = self.pos
        buf = self.buf
        end = wide_end(buf, start)
        if end < 0:
            if start + _MAX_STRING_BYTES < self.size:
                raise self.error(f"{what}: string longer than {MAX_STRING_UNITS} characters", start)
            raise self.error(f"file truncated: {what} has no terminator", start)
        self.pos = end + 2
        try:
            return decode_utf16(buf[start:end], "strict")[0]
        except UnicodeDecodeError as exc:
            raise self.error(f"{what}: not valid UTF-16 ({exc.reason})", start) from None

    def nstr(self, what: str = "string") -> str:
        """A NUL-terminated 8-bit string (Trace node only)."""
        start = self.pos
        end = self.buf.find(b"\0", start, min(self.size, start + MAX_STRING_UNITS + 1))
        if end < 0:
            raise self.error(f"file truncated: {what} has no terminator", start)
        self.pos = end + 1
        return bytes(self.buf[start:end]).decode("latin-1")

    def marker(self, expected: str) -> None:
        """Read the marker ``expected``; fail naming what was found instead."""
        start = self.pos
        data = _MARKERS.get(expected)
        if data is None:
            data = _MARKERS[expected] = wide(expected)
        end = start + len(data)
        if self.buf[start:end] == data:
            self.pos = end
            return
        try:
            found = self.wstr(f"marker '{expected}'")
        except CntkFormatError as exc:
            why = "file truncated: " if "truncated" in exc.message else ""
            raise self.error(f"{why}expected marker '{expected}'", start) from None
        if found != expected:
            shown = found if len(found) <= 40 else found[:40] + "..."
            raise self.error(f"expected marker '{expected}', found {shown!r}", start)

    def optional_marker(self, expected: str) -> bool:
        """Consume ``expected`` if it is next; else leave the position alone (CNTK's rewind)."""
        data = _MARKERS.get(expected)
        if data is None:
            data = _MARKERS[expected] = wide(expected)
        end = self.pos + len(data)
        if end <= self.size and self.buf[self.pos:end] == data:
            self.pos = end
            return True
        return False

    def peek_marker(self, *candidates: str) -> str | None:
        """Which of ``candidates`` comes next (without consuming it), or None."""
        for c in candidates:
            data = wide(c)
            if self.buf[self.pos:self.pos + len(data)] == data:
                return c
        return None

    # ---- counts, shapes, arrays ---------------------------------------------------------------
    def count(self, what: str, min_item_bytes: int, wide: bool = True) -> int:
        """A u64 (or u32) count, checked against the bytes left (each item >= min_item_bytes)."""
        start = self.pos
        n = self.u64(what) if wide else self.u32(what)
        if min_item_bytes and n > (self.size - self.pos) // min_item_bytes:
            raise self.error(
                f"{what} is {n}, more than the {self.size - self.pos} bytes left can hold", start)
        return n

    def shape(self, what: str = "TensorShape") -> list[int]:
        """A TensorShape: u32 rank, rank x u32 dims (CNTK order)."""
        pos = self.pos
        if pos + 4 <= self.size:
            (rank,) = _U32.unpack_from(self.buf, pos)
            if rank <= (self.size - pos - 4) >> 2:
                self.pos = pos + 4 + 4 * rank
                if rank <= 16:
                    return list(dims_struct(rank).unpack_from(self.buf, pos + 4)) if rank else []
                return [int(d) for d in np.frombuffer(self.buf, "<u4", rank, pos + 4)]
        self.count(f"{what} rank", 4, wide=False)  # raises
        raise AssertionError("unreachable")

    def legacy_shape(self, what: str = "TensorShape") -> tuple[list[int], bool]:
        """A legacy-accepting TensorShape (§1.1): returns (dims, was_legacy_WHC)."""
        start = self.pos
        rank = self.u32(f"{what} rank")
        dim0 = self.u32(f"{what} first dimension") if rank > 0 else 0
        if dim0 != 0:
            if rank - 1 > (self.size - self.pos) // 4:
                raise self.error(f"{what} rank is {rank}, more than the bytes left can hold", start)
            rest = np.frombuffer(self.buf, "<u4", rank - 1, self.pos)
            self.pos += 4 * (rank - 1)
            return [dim0] + [int(d) for d in rest], False
        self.pos = start
        w = self.u64(f"{what} (legacy) width")
        h = self.u64(f"{what} (legacy) height")
        c = self.u64(f"{what} (legacy) channels")
        if max(w, h, c) >= 1 << 32:
            raise self.error(f"{what} (legacy W,H,C encoding) has a dimension >= 2^32", start)
        return [c, w, h], True

    def array(self, dtype: Any, n: int, what: str) -> np.ndarray:
        """``n`` elements of ``dtype`` as a read-only view of the buffer (no copy)."""
        dt = np.dtype(dtype)
        nbytes = n * dt.itemsize
        self.need(nbytes, what)
        arr = np.frombuffer(self.buf, dt, n, self.pos)
        self.pos += nbytes
        if arr.flags.writeable:
            arr.flags.writeable = False
        return arr


class BinaryWriter:
    """Collects the bytes of a file as a list of chunks (arrays stay zero-copy views)."""

    __slots__ = ("chunks", "size", "_small")

    def __init__(self) -> None:
        self.chunks: list[Any] = []
        self._small = bytearray()
        self.size = 0

    def raw(self, data: bytes) -> None:
        self._small += data
        self.size += len(data)

    def _flush_small(self) -> None:
        if self._small:
            self.chunks.append(bytes(self._small))
            self._small = bytearray()

    def u64(self, v: int) -> None:
        if not 0 <= int(v) < 1 << 64:
            raise CntkFormatError(f"value {v} does not fit a u64 field")
        self.raw(_U64.pack(int(v)))

    def i64(self, v: int) -> None:
        self.raw(_I64.pack(int(v)))

    def u32(self, v: int) -> None:
        if not 0 <= int(v) < 1 << 32:
            raise CntkFormatError(f"value {v} does not fit a u32 field")
        self.raw(_U32.pack(int(v)))

    def i32(self, v: int) -> None:
        self.raw(_I32.pack(int(v)))

    def f32(self, v: float) -> None:
        self.raw(_F32.pack(float(v)))

    def f64(self, v: float) -> None:
        self.raw(_F64.pack(float(v)))

    def byte(self, v: int) -> None:
        self.raw(bytes((int(v),)))

    def bool(self, v: Any) -> None:
        self.raw(b"\x01" if v else b"\x00")

    def elem(self, dtype: np.dtype, v: float) -> None:
        self.raw(np.asarray(v, dtype=dtype).tobytes())

    def wstr(self, text: str) -> None:
        if "\0" in text:
            raise CntkFormatError(f"string {text!r} contains a NUL character")
        if any(ord(ch) > 0xFFFF for ch in text):
            raise CntkFormatError(f"string {text!r} has characters outside the BMP, which CNTK "
                                  "files cannot hold")
        self.raw(wide(text))

    def nstr(self, text: str) -> None:
        self.raw(text.encode("latin-1") + b"\0")

    marker = wstr

    def shape(self, dims: Sequence[int]) -> None:
        self.u32(len(dims))
        for d in dims:
            self.u32(d)

    def array(self, arr: np.ndarray) -> None:
        """Append an array's bytes (C order) without copying when it is contiguous."""
        arr = np.ascontiguousarray(arr)
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        self._flush_small()
        view = memoryview(arr).cast("B") if arr.size else b""
        self.chunks.append(view)
        self.size += arr.nbytes

    def getvalue_chunks(self) -> list[Any]:
        self._flush_small()
        return self.chunks

    def getvalue(self) -> bytes:
        return b"".join(bytes(c) for c in self.getvalue_chunks())
