"""The one place user files are opened for reading.

* Regular files only. The path is ``stat``-ed before it is opened, so a FIFO, a device, a
  socket or a directory is refused at once (never opened, never read); the file is then
  opened with ``O_NONBLOCK`` and checked again with ``fstat``, so a path swapped in between
  cannot make a read block either.
* Text inputs (NDL, MEL, BrainScript, config, include and macro files) are capped at
  :data:`DEFAULT_TEXT_LIMIT` bytes (256 MiB); the CLI's ``--max-text-size`` or the
  environment variable :data:`TEXT_LIMIT_ENV` (a byte count, ``K``/``M``/``G`` suffixes
  allowed) raises or lowers the cap. Text that is UTF-16 or UTF-32 (a byte order mark) or
  holds a NUL byte is refused with one line; other bytes that are not UTF-8 are read as
  Latin-1, as CNTK read bytes.
* Binary inputs are memory-mapped (:func:`map_file`) or read a bounded number of bytes at a
  time (:func:`read_head`), never more than the file holds.

Every failure is one :class:`~netsurgeon.errors.NetsurgeonError` of the class the caller asks
for, located at the file: ``<path>: cannot read the <what>: <why>``.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import stat
from collections.abc import Iterator
from typing import BinaryIO

from netsurgeon.errors import NetsurgeonError, SourceLocation, not_found_error

__all__ = ["TEXT_LIMIT_ENV", "DEFAULT_TEXT_LIMIT", "text_limit", "set_text_limit", "parse_size",
           "check_regular", "open_regular",
           "read_bytes", "read_head", "read_text", "decode_text", "map_file"]

TEXT_LIMIT_ENV = "NETSURGEON_MAX_TEXT_BYTES"
DEFAULT_TEXT_LIMIT = 256 * 1024 * 1024

PathLike = str | os.PathLike[str]
ErrorClass = type[NetsurgeonError]

_FLAGS = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
          | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
_KINDS = (
    (stat.S_ISDIR, "it is a directory"),
    (stat.S_ISFIFO, "it is a FIFO (named pipe); netsurgeon reads only regular files (save the "
                    "stream to a file first)"),
    (stat.S_ISCHR, "it is a character device; netsurgeon reads only regular files"),
    (stat.S_ISBLK, "it is a block device; netsurgeon reads only regular files"),
    (stat.S_ISSOCK, "it is a socket; netsurgeon reads only regular files"),
)
_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE one
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"),
    (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
    (b"\xff\xfe", "UTF-16 (little-endian)"),
    (b"\xfe\xff", "UTF-16 (big-endian)"),
)


def _fail(error: ErrorClass, path: PathLike, what: str, why: str,
          line: int | None = None, column: int | None = None) -> NetsurgeonError:
    where = SourceLocation(str(path), line, column)
    message = f"cannot read the {what or 'file'}: {why}"
    if why == _NOT_FOUND:  # also a FileNotFoundError, for `except FileNotFoundError`
        return not_found_error(error, message, location=where)
    return error(message, location=where)


_NOT_FOUND = "not found"


_override: int | None = None  # set_text_limit (the CLI's --max-text-size)


def parse_size(text: str) -> int | None:
    """A byte count such as ``536870912``, ``512M`` or ``1GiB``; None if it is not one."""
    match = re.fullmatch(r"(\d+)\s*([KMGT]?)(?:i?B)?", text.strip(), re.IGNORECASE)
    return int(match[1]) * _SUFFIX[match[2].upper()] if match else None


def set_text_limit(limit: int | None) -> None:
    """Cap text inputs at ``limit`` bytes in this process (None: back to the default rule)."""
    global _override
    _override = limit


def text_limit() -> int:
    """The byte cap on text inputs: :func:`set_text_limit`'s, else :data:`TEXT_LIMIT_ENV`'s,
    else 256 MiB."""
    if _override is not None:
        return _override
    raw = os.environ.get(TEXT_LIMIT_ENV, "").strip()
    if not raw:
        return DEFAULT_TEXT_LIMIT
    size = parse_size(raw)
    if size is None:
        raise NetsurgeonError(f"{TEXT_LIMIT_ENV}={raw!r} is not a byte count; give e.g. "
                              "536870912 or 512M")
    return size


def _why(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return _NOT_FOUND
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, NotADirectoryError):
        return "a folder on its path is a file"
    return (exc.strerror or str(exc)).lower()


def _refuse_kind(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    return next((why for test, why in _KINDS if test(mode)), "it is not a regular file")


def check_regular(path: PathLike, what: str = "file",
                  error: ErrorClass = NetsurgeonError) -> os.stat_result:
    """``os.stat(path)`` if it is a regular file (symlinks followed); else ``error``."""
    try:
        st = os.stat(path)
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        why = _why(exc) if isinstance(exc, OSError) else "the path holds a NUL character"
        raise _fail(error, path, what, why) from None
    why = _refuse_kind(st.st_mode)
    if why is not None:
        raise _fail(error, path, what, why)
    return st


@contextlib.contextmanager
def open_regular(path: PathLike, what: str = "file",
                 error: ErrorClass = NetsurgeonError) -> Iterator[tuple[BinaryIO, int]]:
    """Yield ``(binary file, size)`` for a regular file; see the module docstring."""
    check_regular(path, what, error)
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        raise _fail(error, path, what, _why(exc)) from None
    try:
        st = os.fstat(fd)
        why = _refuse_kind(st.st_mode)
        if why is not None:  # swapped for something else since the stat
            raise _fail(error, path, what, why)
        with contextlib.suppress(ImportError, AttributeError, OSError):  # blocking again (POSIX)
            import fcntl

            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        handle = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with handle:
        try:
            yield handle, st.st_size
        except OSError as exc:
            raise _fail(error, path, what, _why(exc)) from None


def read_bytes(path: PathLike, what: str = "file", error: ErrorClass = NetsurgeonError,
               limit: int | None = None) -> bytes:
    """The bytes of a regular file; more than ``limit`` bytes is an ``error`` naming the cap."""
    with open_regular(path, what, error) as (f, size):
        if limit is not None and size > limit:
            raise _too_big(error, path, what, size, limit)
        data = f.read() if limit is None else _read_at_most(f, limit + 1, size)
    if limit is not None and len(data) > limit:  # it grew, or fstat reports no size (/proc)
        raise _too_big(error, path, what, None, limit)
    return data


def _read_at_most(f: BinaryIO, count: int, size: int) -> bytes:
    """Up to ``count`` bytes, allocating what the file holds rather than ``count`` up front
    (``read(n)`` reserves n bytes: 256 MiB for every small text file otherwise)."""
    first = f.read(min(count, size + 1))
    if len(first) <= size or len(first) >= count:
        return first
    parts, total = [first], len(first)  # the file grew, or its size is not known (/proc)
    while total < count:
        piece = f.read(min(count - total, 1 << 20))
        if not piece:
            break
        parts.append(piece)
        total += len(piece)
    return b"".join(parts)


def _too_big(error: ErrorClass, path: PathLike, what: str, size: int | None,
             limit: int) -> NetsurgeonError:
    amount = f"{size} bytes" if size is not None else f"more than {limit} bytes"
    suggest = ((size or limit) >> 20) + 1
    return _fail(error, path, what, f"it is {amount}, above the limit of {limit} bytes for text "
                 f"inputs (raise it with netsurgeon --max-text-size {suggest}M, or "
                 f"{TEXT_LIMIT_ENV}={suggest}M)")


def read_head(path: PathLike, count: int, what: str = "file",
              error: ErrorClass = NetsurgeonError) -> bytes:
    """At most the first ``count`` bytes of a regular file."""
    with open_regular(path, what, error) as (f, _size):
        return f.read(count)


def decode_text(data: bytes, path: PathLike, what: str = "file",
                error: ErrorClass = NetsurgeonError) -> str:
    """``data`` as text: UTF-8 (BOM dropped), else Latin-1; UTF-16/32 or NUL bytes refused."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise _fail(error, path, what, f"it is {name} text (byte order mark "
                        f"{bom.hex(' ').upper()}); netsurgeon reads UTF-8: convert it, e.g. "
                        f"iconv -f {name.split()[0]} -t UTF-8", 1, 1)
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        column = nul - (data.rfind(b"\n", 0, nul) + 1) + 1
        if nul <= 1 and data.count(b"\0") * 4 >= len(data):
            hint = ("it looks like UTF-16 text without a byte order mark; netsurgeon reads "
                    "UTF-8: convert it, e.g. iconv -f UTF-16LE -t UTF-8")
        else:
            hint = "it is not a text file (text inputs are UTF-8)"
        raise _fail(error, path, what, f"NUL byte at byte offset {nul}: {hint}", line, column)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_text(path: PathLike, what: str = "file", error: ErrorClass = NetsurgeonError,
              limit: int | None = None) -> str:
    """The text of a regular file, capped at ``limit`` (default :func:`text_limit`)."""
    data = read_bytes(path, what, error, text_limit() if limit is None else limit)
    return decode_text(data, path, what, error)


def map_file(path: PathLike, what: str = "file", error: ErrorClass = NetsurgeonError,
             *, copy: bool = False) -> tuple[mmap.mmap | bytes, int]:
    """``(mapping, size)`` of a regular file: read-only, or copy-on-write with ``copy``
    (writes stay in memory). An empty file maps to ``b""``."""
    with open_regular(path, what, error) as (f, size):
        if size == 0:
            return b"", 0
        access = mmap.ACCESS_COPY if copy else mmap.ACCESS_READ
        try:
            return mmap.mmap(f.fileno(), 0, access=access), size
        except (OSError, ValueError) as exc:
            why = _why(exc) if isinstance(exc, OSError) else str(exc)
            raise _fail(error, path, what, f"it cannot be memory-mapped ({why})") from None
