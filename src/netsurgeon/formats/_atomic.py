"""The one atomic file writer: a temporary file beside the target, fsynced, renamed over it.

A failed or interrupted save never leaves a half-written file and never touches the existing
one (which may be the very file a network was memory-mapped from: POSIX keeps the old inode
alive for existing mappings after the rename). Only regular files are written: a directory,
device, FIFO or socket target is refused before anything is created, and a symlink is written
*through* (the link stays, the file it points to is replaced). New files get ``0666 & ~umask``;
replacing a file keeps its mode (and, where permitted, its owner). Temporary files are named
``.<name>.netsurgeon-tmp-<host>-<pid>-<random>`` so that a later save of the same target, or
``netsurgeon cleanup``, can remove the ones a killed process left (see :func:`is_stale`).
Every OS error becomes a one-line :class:`~netsurgeon.errors.FormatError` naming the path.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import io
import os
import re
import secrets
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from netsurgeon.errors import FormatError

__all__ = ["atomic_write", "output_path", "create_temp", "sync_directory", "write_error",
           "keep_mode", "temp_name", "parse_temp_name", "is_stale", "remove_stale", "TEMP_MARK",
           "STALE_AGE_S"]

TEMP_MARK = ".netsurgeon-tmp-"
STALE_AGE_S = 24 * 3600  # a temp file untouched this long is stale whoever made it
_NAME_BUDGET = 200  # bytes of the target's name kept in a temp name (NAME_MAX is 255)
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.netsurgeon-tmp-(?P<host>[A-Za-z0-9]+)-(?P<pid>\d{1,10})"
                      r"-(?P<rand>[a-z0-9]{8})$", re.S)
_HINTS = {
    errno.ENOSPC: "free some space or write elsewhere",
    errno.EDQUOT: "free some space or write elsewhere",
    errno.EROFS: "the file system is read-only; write elsewhere",
    errno.EACCES: "check the permissions of the file and its directory",
    errno.EPERM: "check the permissions of the file and its directory",
    errno.EIO: "the disk or network file system reported a failure",
    errno.ENAMETOOLONG: "choose a shorter name",
}


def _host() -> str:
    token = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname().split(".")[0])[:16]
    return token or "host"


_HOST = _host()


# ---- naming and stale temp files ---------------------------------------------------------------
def _base(name: str) -> str:
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= _NAME_BUDGET:
        return name
    return raw[:_NAME_BUDGET].decode("utf-8", "ignore")


def temp_name(target_name: str) -> str:
    """A fresh temp file name for a target called ``target_name`` (not created)."""
    rand = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(8))
    return f".{_base(target_name)}{TEMP_MARK}{_HOST}-{os.getpid()}-{rand}"


def parse_temp_name(name: str) -> tuple[str, str, int] | None:
    """``(target name, host, pid)`` of a netsurgeon temp file name, or None if it is not one."""
    m = _TEMP_RE.match(name)
    return (m["name"], m["host"], int(m["pid"])) if m else None


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError) as exc:
        return isinstance(exc, PermissionError)
    return True


def _process_start(pid: int) -> float | None:
    """Start time (epoch seconds) of a process, where /proc tells it; else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def is_stale(path: str | os.PathLike[str], now: float | None = None) -> bool:
    """Whether a netsurgeon temp file was left behind: its process (on this machine) is gone or
    started after the file was last written (a reused pid), or it is untouched for
    :data:`STALE_AGE_S`. A file made on another machine is judged by its age only."""
    parsed = parse_temp_name(Path(path).name)
    if parsed is None:
        return False
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    if (now if now is not None else time.time()) - st.st_mtime > STALE_AGE_S:
        return True
    _, host, pid = parsed
    if host != _HOST:
        return False
    if not _pid_alive(pid):
        return True
    started = _process_start(pid)
    return started is not None and started > st.st_mtime + 2


def remove_stale(target: str | os.PathLike[str]) -> list[str]:
    """Delete stale temp files of ``target`` in its directory (best effort); returns them."""
    target = Path(target)
    base = _base(target.name)
    removed = []
    with contextlib.suppress(OSError), os.scandir(target.parent) as entries:
        for entry in entries:
            parsed = parse_temp_name(entry.name)
            if parsed and parsed[0] == base and is_stale(entry.path):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(entry.path)
    return removed


# ---- checks and errors ---------------------------------------------------------------------
def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _shown(path: str | os.PathLike[str], real: str | os.PathLike[str] | None = None) -> str:
    if real is not None and os.path.islink(path):
        return f"{os.fspath(path)} (a link to {os.fspath(real)})"
    return os.fspath(path)


def write_error(exc: OSError, path: str | os.PathLike[str],
                real: str | os.PathLike[str] | None = None) -> FormatError:
    """A one-line error for an OS failure while writing ``path``."""
    reason = (exc.strerror or str(exc) or type(exc).__name__)
    reason = reason[:1].lower() + reason[1:]
    return FormatError(f"cannot write {_shown(path, real)}: {reason}",
                       hint=_HINTS.get(exc.errno or 0))


def _read_only_mount(directory: Path) -> bool:
    try:
        return bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


def output_path(path: str | os.PathLike[str]) -> Path:
    """The regular file a write of ``path`` replaces (a symlink followed), after checking it
    can be one: the parent directory exists and the target, if present, is a regular file.

    Raises:
        FormatError: naming the path and what would fix it; nothing was written.
    """
    given = os.fspath(path)
    if given.endswith(("/", os.sep)) and not os.path.isdir(given):
        raise FormatError(f"cannot write {given}: a file name cannot end with '/'",
                          hint="drop the slash, or create the directory and name a file in it")
    real = Path(os.path.realpath(given))
    try:
        st = os.stat(real)
    except (FileNotFoundError, NotADirectoryError):
        st = None  # the parent check below says which
    except OSError as exc:
        raise write_error(exc, given, real) from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        hint = ("give a file name inside it" if stat.S_ISDIR(st.st_mode)
                else "netsurgeon writes only regular files ('dump -o -' writes to standard "
                     "output)")
        raise FormatError(f"cannot write {_shown(given, real)}: it is {_kind(st.st_mode)}",
                          hint=hint)
    if st is not None and not os.access(real, os.W_OK):
        if _read_only_mount(real.parent):
            raise FormatError(f"cannot write {_shown(given, real)}: read-only file system",
                              hint=_HINTS[errno.EROFS])
        raise FormatError(f"cannot write {_shown(given, real)}: the file is read-only",
                          hint="make it writable (chmod u+w) or write elsewhere")
    parent = real.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise FormatError(f"cannot write {_shown(given, real)}: directory {parent} {what}",
                          hint="create it first" if what == "does not exist" else None)
    return real


def create_temp(target: Path) -> tuple[int, str]:
    """Create an empty temp file beside ``target`` (a checked :func:`output_path`); returns
    ``(fd, path)``. Its mode is the existing target's, else ``0666 & ~umask``."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = str(target.parent / temp_name(target.name))
        try:
            fd = os.open(tmp, flags, 0o666)  # the kernel applies the umask
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(errno.EEXIST, "no free temporary file name", str(target.parent))
    try:
        st = os.stat(target)
    except OSError:
        return fd, tmp
    try:
        keep_mode(fd, st)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return fd, tmp


_NO_PERMISSIONS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EINVAL, errno.EACCES}


def keep_mode(fd_or_path: int | str, old: os.stat_result) -> None:
    """Give a new file the mode (and, where permitted, the owner) of the file it replaces;
    a file system without permissions is no error, a failing disk is."""
    try:
        os.chmod(fd_or_path, stat.S_IMODE(old.st_mode))
    except OSError as exc:
        if exc.errno not in _NO_PERMISSIONS:
            raise
    if (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
        with contextlib.suppress(OSError):  # only root may give a file away
            os.chown(fd_or_path, old.st_uid, old.st_gid)


_NO_DIR_SYNC = {errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES, errno.EISDIR}


def sync_directory(directory: str | os.PathLike[str]) -> None:
    """fsync a directory so a rename in it survives a crash (silently skipped where the file
    system cannot do it); other failures raise OSError."""
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(directory, flags)
    except OSError as exc:
        if exc.errno in _NO_DIR_SYNC:
            return
        raise
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in _NO_DIR_SYNC:
            raise
    finally:
        os.close(fd)


# ---- the writer ----------------------------------------------------------------------------
class _FdWriter(io.RawIOBase):
    """A raw file over an fd whose writes go through ``os.write`` (so tests can fail them)."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def write(self, data) -> int:
        n = os.write(self._fd, data)
        shown = _PROGRESS.get()
        if shown is not None:
            shown.update(n)
        return n

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if not self.closed:
            try:
                os.close(self._fd)
            finally:
                super().close()


_PROGRESS: contextvars.ContextVar[Any] = contextvars.ContextVar("write_progress", default=None)


@contextlib.contextmanager
def reporting(progress: Any) -> Iterator[None]:
    """Count the bytes every :func:`atomic_write` in this block writes on ``progress``
    (a bar of :mod:`netsurgeon.progress`: its ``update(n)`` is called per write)."""
    token = _PROGRESS.set(progress)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a binary file; on success it replaces ``path``, on any error it is deleted.

    Raises:
        FormatError: the target cannot be written (a directory, device or FIFO; a missing
            directory; or any OS error on the way, named with the path); the old file, if any,
            is unchanged.
    """
    real = output_path(path)
    remove_stale(real)
    try:
        fd, tmp = create_temp(real)
    except OSError as exc:
        raise write_error(exc, path, real) from None
    raw = _FdWriter(fd)
    handle = io.BufferedWriter(raw, buffer_size=1 << 20)
    try:
        yield handle
        handle.flush()
        os.fsync(fd)
        handle.close()
        os.replace(tmp, real)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            raw.close()  # first, so closing the buffer does not flush into a doomed file
        with contextlib.suppress(Exception):
            handle.close()
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise write_error(exc, path, real) from exc
        raise
    try:
        sync_directory(real.parent)
    except OSError as exc:
        raise FormatError(f"{_shown(path, real)} was written, but syncing its directory failed: "
                          f"{exc.strerror or exc}",
                          hint="the new file may not survive a power loss; check the disk"
                          ) from exc
