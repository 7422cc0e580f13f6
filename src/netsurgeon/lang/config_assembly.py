"""Assembling a CNTK config from a command line (cntk-config-driver.md §2.1).

``cntk configFile=a.cntk+b.cntk key=value Section=[key=value]`` builds one config text: the
arguments are taken left to right, each ``configFile=`` reads its ``+``-separated files (in
order), every other argument becomes one line at that point (so overrides after the files
win, and a ``[...]`` override is merged into the section of the same name), and
``currentDirectory=DIR`` changes the directory that later relative paths are read from.
Afterwards every line that starts exactly with ``include=`` is replaced by the files it names
(recursively; a file read before is skipped with a warning, one that includes itself through
a chain is an error). Every character keeps its file and line, so errors say
``file.cntk:LINE: ...``.

This module is pure config language: no torch, no runtime.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from netsurgeon.errors import ParseError, SourceLocation
from netsurgeon.lang.config import ConfigDict, SourceText, read_source, read_text_file

__all__ = ["AssembledConfig", "JoinedMap", "assemble", "is_block", "scope_lookup",
           "visible_values"]


class JoinedMap:
    """The offset → (file, line, column) map of text joined from several :class:`SourceText`
    pieces (duck-types :class:`~netsurgeon.lang.config.TextMap`)."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._pieces: list[SourceText] = []

    @property
    def source(self) -> str | None:
        return self._pieces[0].source if self._pieces else None

    def add(self, offset: int, piece: SourceText) -> None:
        self._starts.append(offset)
        self._pieces.append(piece)

    def location(self, offset: int) -> SourceLocation:
        i = bisect.bisect_right(self._starts, offset) - 1
        if i < 0:
            return SourceLocation(self.source, 1, 1)
        return self._pieces[i].location(offset - self._starts[i])


@dataclass
class AssembledConfig:
    """The parsed config of a command line and what was read to make it."""

    root: ConfigDict
    text: SourceText
    files: list[Path] = field(default_factory=list)  # config files read, in order (included too)
    base_dir: Path = field(default_factory=Path)  # the last currentDirectory= (or the cwd)
    warnings: list[str] = field(default_factory=list)

    @property
    def include_dirs(self) -> list[Path]:
        """The directories of every config file read (BrainScript ``include`` paths)."""
        out: list[Path] = []
        for f in self.files:
            if f.parent not in out:
                out.append(f.parent)
        return out

    @property
    def main_file(self) -> Path | None:
        return self.files[0] if self.files else None

    def path(self, value: str) -> Path:
        """A file name from the config, relative to ``currentDirectory``."""
        p = Path(os.path.expanduser(value))
        return p if p.is_absolute() else self.base_dir / p


def is_block(value: str | None) -> bool:
    """Whether a raw config value is a ``[...]``/``{...}`` block."""
    return value is not None and value.lstrip()[:1] in ("[", "{")


def visible_values(scope: ConfigDict) -> dict[str, str]:
    """Every plain (non-block) value seen from ``scope``, its own winning over the enclosing
    blocks', quotes removed: the ``$var$`` values CNTK's edit action gives a MEL script."""
    from netsurgeon.lang.config import unquote

    chain = []
    s: ConfigDict | None = scope
    while s is not None:
        chain.append(s)
        s = s.parent
    return {key: unquote(value) for s in reversed(chain) for key, value in s.items()
            if not is_block(value)}


def scope_lookup(scope: ConfigDict) -> Callable[[str], str | None]:
    """``$var$`` lookup through ``scope`` and its parents (values as written, quotes removed)."""
    return scope.raw


def _piece_lines(piece: SourceText) -> list[tuple[str, SourceText]]:
    """A read file split into its lines, each a SourceText keeping its locations."""
    out = []
    text = piece.text
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        line = text[start:end]
        out.append((line, SourceText(line, _ShiftMap(piece.map, start))))  # type: ignore[arg-type]
        start = end
    return out


class _ShiftMap:
    def __init__(self, inner, start: int) -> None:
        self.inner = inner
        self.start = start

    @property
    def source(self) -> str | None:
        return self.inner.source

    def location(self, offset: int) -> SourceLocation:
        return self.inner.location(offset + self.start)


def _split_files(value: str) -> list[str]:
    return [p.strip().strip('"') for p in value.split("+") if p.strip().strip('"')]


def assemble(argv: list[str], cwd: str | os.PathLike[str] | None = None, *,
             warn: Callable[[str], None] | None = None) -> AssembledConfig:
    """Build and parse the config of a CNTK command line (``argv`` without the program).

    ``cwd``: the directory relative paths start from (default: the process's); a
    ``currentDirectory=DIR`` argument changes it for what follows (the process's working
    directory is not changed). Raises ParseError with file:line.
    """
    base = Path(cwd) if cwd is not None else Path.cwd()
    pieces: list[tuple[str, SourceText]] = []  # lines
    files: list[Path] = []
    cmdline_files: set[Path] = set()
    warnings: list[str] = []

    def note(text: str) -> None:
        warnings.append(text)
        if warn is not None:
            warn(text)

    for index, arg in enumerate(argv, 1):
        key, sep, value = arg.partition("=")
        if sep and key.strip().lower() == "configfile":
            for name in _split_files(value):
                path = Path(os.path.expanduser(name))
                path = path if path.is_absolute() else base / path
                real = path.resolve()
                if real in cmdline_files:
                    raise ParseError(f"Cannot specify same config file multiple times: {name}",
                                     location=SourceLocation("<command line>", None, None),
                                     hint="name each config file once in configFile=")
                cmdline_files.add(real)
                files.append(path)
                pieces.extend(_piece_lines(read_source(read_text_file(path, "config file"),
                                                       str(path))))
            continue
        if sep and key.strip().lower() == "currentdirectory":
            d = Path(os.path.expanduser(value.strip().strip('"')))
            base = d if d.is_absolute() else base / d
            if not base.is_dir():
                raise ParseError(f"currentDirectory={value}: no such directory",
                                 location=SourceLocation("<command line>", None, None))
        line = arg.strip()
        if line:
            src = read_source(line, "<command line>", first_line=index)
            pieces.extend(_piece_lines(src))

    pieces = _expand_includes(pieces, files, base, note)
    joined = JoinedMap()
    parts: list[str] = []
    offset = 0
    for line, piece in pieces:
        joined.add(offset, piece)
        parts.append(line)
        offset += len(line)
    text = SourceText("".join(parts), joined)  # type: ignore[arg-type]
    root = ConfigDict(text, None, "global")
    root._parse(text, 0, len(text.text))
    return AssembledConfig(root, text, files, base, warnings)


def _expand_includes(lines: list[tuple[str, SourceText]], files: list[Path], base: Path,
                     note: Callable[[str], None]) -> list[tuple[str, SourceText]]:
    """Replace ``include=`` lines by the files they name (iteratively; §2.1)."""
    read = {f.resolve() for f in files}
    out: list[tuple[str, SourceText]] = []
    # a stack of (remaining lines, chain of files that led here)
    stack: list[tuple[list[tuple[str, SourceText]], tuple[Path, ...]]] = [(list(reversed(lines)),
                                                                          ())]
    while stack:
        pending, chain = stack[-1]
        if not pending:
            stack.pop()
            continue
        line, piece = pending.pop()
        if not line.startswith("include="):
            out.append((line, piece))
            continue
        where = piece.location(0)
        value = line[len("include="):].strip()
        if "$" in value:
            raise ParseError("include= cannot use $variables$ (CNTK reads includes before "
                             "variables are known)", location=where)
        names = _split_files(value)
        if len(names) > 1:  # one include line per file, in order
            pending.extend((f"include={n}\n", piece) for n in reversed(names))
            continue
        if not names:
            continue
        name = names[0]
        here_file = where.file if where.file and not where.file.startswith("<") else None
        here = Path(here_file).parent if here_file else base
        full_chain = chain or ((Path(here_file).resolve(),) if here_file else ())
        path = Path(os.path.expanduser(name))
        if not path.is_absolute():
            path = here / path if (here / path).exists() else base / path
        real = path.resolve()
        if real in full_chain:
            raise ParseError(f"circular include: {name} includes itself ("
                             + " -> ".join(p.name for p in (*full_chain, real)) + ")",
                             location=where)
        if real in read:
            note(f"{where}: warning: {name} was already read; include skipped")
            continue
        read.add(real)
        files.append(path)
        src = read_source(read_text_file(path, "config file"), str(path))
        stack.append((list(reversed(_piece_lines(src))), (*full_chain, real)))
    return out
