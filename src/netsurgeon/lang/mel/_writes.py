"""Where MEL's file writes go: staged until the whole script succeeded, or straight to disk.

A script that fails half-way must write nothing at all, so the interpreter writes each
SaveModel/Dump result to a temp file *beside* its target (same directory, so the final rename
is atomic; named as :mod:`netsurgeon.formats._atomic` names temp files, so a killed run's
leftovers are found by ``netsurgeon cleanup``) and moves them all into place only after the
last statement ran. Before the first rename every target is checked again (still a writable
regular file or a new name in an existing directory); if a rename still fails, the ones
already made are rolled back (each previous file restored from a hard link kept for that).
A later LoadModel of a path saved earlier in the same script reads the staged file.
``--dry-run`` stages in a private temporary directory and deletes it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from netsurgeon.errors import FormatError
from netsurgeon.formats._atomic import (
    keep_mode,
    output_path,
    sync_directory,
    temp_name,
    write_error,
)

__all__ = ["Writer", "StagedWriter", "DirectWriter"]


class Writer:
    """Interface: ``write(path, produce)`` calls ``produce(real_path_to_write)``."""

    def write(self, path: str, produce: Callable[[str], object]) -> None:
        raise NotImplementedError

    def resolve(self, path: str) -> str:
        """The file a read of ``path`` should open (a staged version if there is one)."""
        return path

    def commit(self) -> list[str]:
        return []

    def discard(self) -> None:
        pass


class DirectWriter(Writer):
    """Write at once (each save is still atomic); used by the Python API."""

    def write(self, path: str, produce: Callable[[str], object]) -> None:
        output_path(path)  # a clear error before any work for a directory, device, no parent
        produce(path)


def _key(path: str) -> str:
    return os.path.realpath(path)


class StagedWriter(Writer):
    """Stage every write; ``commit`` moves them over their targets, ``discard`` deletes them."""

    def __init__(self, dry_run: bool = False, make_dirs: bool = False) -> None:
        self.dry_run = dry_run
        self.make_dirs = make_dirs  # create missing directories of targets (as CNTK did)
        self._staged: dict[str, str] = {}  # real target -> staged file
        self._shown: dict[str, str] = {}  # real target -> the path as the script gave it
        self._tmpdir: str | None = None

    def _stage_path(self, target: Path) -> str:
        if self.dry_run:
            if self._tmpdir is None:
                self._tmpdir = tempfile.mkdtemp(prefix="netsurgeon-dry-run-")
            return str(Path(self._tmpdir) / temp_name(target.name))
        return str(target.parent / temp_name(target.name))

    def write(self, path: str, produce: Callable[[str], object]) -> None:
        if self.make_dirs and not self.dry_run:
            from netsurgeon.commands._common import make_parent_dirs

            make_parent_dirs(path)
        target = output_path(path)  # raises before anything is produced
        key = str(target)
        staged = self._stage_path(target)  # a fresh name per write: the older one goes after
        try:
            produce(staged)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(staged)
            raise
        old = self._staged.get(key)
        self._staged[key] = staged
        self._shown.setdefault(key, str(Path(path).absolute()))
        if old is not None:
            with contextlib.suppress(OSError):
                os.unlink(old)

    def resolve(self, path: str) -> str:
        return self._staged.get(_key(path), path)

    @property
    def pending(self) -> list[str]:
        return list(self._shown.values())

    def _check(self) -> None:
        """Every target still takes a file, every staged file is still there."""
        for key, staged in self._staged.items():
            output_path(key)
            if not os.access(Path(key).parent, os.W_OK | os.X_OK):
                raise FormatError(f"cannot write {self._shown[key]}: permission denied in "
                                  f"directory {Path(key).parent}",
                                  hint="check the directory's permissions; nothing was written")
            if not os.path.isfile(staged):
                raise FormatError(f"cannot write {self._shown[key]}: its staged copy {staged} "
                                  "disappeared; nothing was written")

    def commit(self) -> list[str]:
        """Move every staged file onto its target, all or none (nothing in a dry run)."""
        if self.dry_run:
            self.discard()
            return []
        try:
            self._check()
        except BaseException:
            self.discard()
            raise
        done: list[tuple[str, str | None]] = []  # (target, hard link to its previous file)
        backup: str | None = None
        try:
            for key, staged in self._staged.items():
                backup = None
                backup = _keep_previous(key, staged)
                os.replace(staged, key)
                done.append((key, backup))
        except BaseException as exc:  # an OS error, or Ctrl-C half-way: undo, all or nothing
            failed = key
            if backup is not None:
                with contextlib.suppress(OSError):
                    os.unlink(backup)
            problems = _roll_back(done)
            if not isinstance(exc, OSError):
                self.discard()
                raise
            error = write_error(exc, self._shown[failed], failed)
            self.discard()
            undo = ("; nothing was written" if not problems
                    else "; could not restore " + ", ".join(problems))
            raise FormatError(error.message + undo, hint=error.hint) from None
        written = [self._shown[key] for key, _ in done]
        for _, backup in done:
            if backup is not None:
                with contextlib.suppress(OSError):
                    os.unlink(backup)
        self._staged.clear()
        self._shown.clear()
        for directory in {str(Path(key).parent) for key, _ in done}:
            try:
                sync_directory(directory)
            except OSError as exc:
                raise FormatError(f"wrote {', '.join(written)}, but syncing directory "
                                  f"{directory} failed: {exc.strerror or exc}",
                                  hint="the files may not survive a power loss; check the disk"
                                  ) from exc
        return written

    def discard(self) -> None:
        for staged in self._staged.values():
            with contextlib.suppress(OSError):
                os.unlink(staged)
        self._staged.clear()
        self._shown.clear()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


def _keep_previous(target: str, staged: str) -> str | None:
    """Give ``staged`` the mode of the file it replaces and keep that file reachable under a
    temp name (a hard link, else a copy) for a rollback; None when there is no such file."""
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return None
    keep_mode(staged, st)
    backup = str(Path(target).parent / temp_name(Path(target).name))
    try:
        os.link(target, backup)
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        try:  # a file system without hard links (or not permitted): a copy
            shutil.copy2(target, backup)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(backup)
            raise
    return backup


_NO_LINKS = {errno.EPERM, errno.EACCES, errno.EXDEV, errno.EMLINK, errno.ENOTSUP,
             errno.EOPNOTSUPP}


def _roll_back(done: list[tuple[str, str | None]]) -> list[str]:
    """Undo the renames made so far (newest first); returns what could not be restored."""
    problems = []
    for target, backup in reversed(done):
        try:
            if backup is None:
                os.unlink(target)
            elif os.path.exists(backup):
                os.replace(backup, target)
        except FileNotFoundError:
            pass
        except OSError as exc:
            where = f" (the previous file is kept as {backup})" if backup else ""
            problems.append(f"{target}: {exc.strerror or exc}{where}")
    return problems
