"""Where MEL's file writes go: staged until the whole script succeeded, or straight to disk.

A script that fails half-way must leave every existing file untouched (the issue's rule), so
the interpreter writes each SaveModel/Dump result to a temporary file *beside* its target
(same directory, same extension, so format detection and atomic ``os.replace`` both work) and
renames them all over their targets only after the last statement ran. A later LoadModel of a
path saved earlier in the same script reads the staged file. ``--dry-run`` stages in a private
temporary directory and deletes it, so nothing in the user's directories is touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

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
        directory = Path(path).parent
        if not directory.is_dir():
            from netsurgeon.errors import EditError

            raise EditError(f"cannot write {path}: directory {directory} does not exist")
        produce(path)


class StagedWriter(Writer):
    """Stage every write; ``commit`` renames them over their targets, ``discard`` deletes them."""

    def __init__(self, dry_run: bool = False) -> None:
        self.dry_run = dry_run
        self._staged: dict[str, str] = {}  # absolute target -> staged file
        self._order: list[str] = []
        self._tmpdir: str | None = None

    def _stage_path(self, target: Path) -> str:
        if self.dry_run:
            if self._tmpdir is None:
                self._tmpdir = tempfile.mkdtemp(prefix="netsurgeon-dry-run-")
            directory = Path(self._tmpdir)
        else:
            directory = target.parent
            if not directory.is_dir():
                from netsurgeon.errors import EditError

                raise EditError(f"cannot write {target}: directory {directory} does not exist")
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.mel-", suffix=target.suffix or ".tmp",
                                   dir=directory)
        os.close(fd)
        return tmp

    def write(self, path: str, produce: Callable[[str], object]) -> None:
        target = str(Path(path).absolute())
        staged = self._staged.get(target)
        if staged is None:
            staged = self._stage_path(Path(target))
            self._staged[target] = staged
            self._order.append(target)
        produce(staged)

    def resolve(self, path: str) -> str:
        return self._staged.get(str(Path(path).absolute()), path)

    @property
    def pending(self) -> list[str]:
        return list(self._order)

    def commit(self) -> list[str]:
        """Move every staged file onto its target (or drop them all in a dry run)."""
        if self.dry_run:
            self.discard()
            return []
        done = []
        for target in self._order:
            os.replace(self._staged[target], target)
            done.append(target)
        self._staged.clear()
        self._order.clear()
        return done

    def discard(self) -> None:
        for staged in self._staged.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(staged)
        self._staged.clear()
        self._order.clear()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
