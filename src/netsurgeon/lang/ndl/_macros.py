"""NDL macros: definitions, the global macro table, the standard library, the name counter.

A macro body is parsed once when it is defined (which checks it and uses up ``unnamedN``
numbers, as CNTK did) and kept as statement *templates*; every call re-runs the templates in
the instance's own scope, so each instance gets fresh nodes, names and numbers (§B.5, §B.6).

The standard library (``stdlib/*.ndl``, package data) is parsed once per registry with a
private counter, so loading it never shifts the ``unnamedN`` numbers of a user's network. A
user's definition replaces a standard macro of the same name; redefining a user macro is an
error, as in CNTK.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from netsurgeon.errors import NetsurgeonError, ParseError, SourceLocation
from netsurgeon.lang.config import Record, SourceText, read_text_file
from netsurgeon.ops import OPS, OpRegistry

__all__ = ["MacroDef", "MacroTable", "NameCounter", "StmtTemplate"]


class NameCounter:
    """The ``unnamedN`` counter (§B.6) and the automatic parameter seeds (§B.9.1).

    One per session: CNTK's were process-wide and never reset; here a MEL session, a build or
    a test owns one, so names do not depend on unrelated earlier work.
    """

    __slots__ = ("value", "seed_value")

    def __init__(self, start: int = 0) -> None:
        self.value = start
        self.seed_value = 0

    def next(self) -> int:
        """Add 1 and return the new value (the first generated name is ``unnamed1``)."""
        self.value += 1
        return self.value

    def name(self) -> str:
        return f"unnamed{self.next()}"

    def next_seed(self) -> int:
        """The next automatic random seed number: 1, 2, 3, ..."""
        self.seed_value += 1
        return self.seed_value

    def __repr__(self) -> str:
        return f"NameCounter(value={self.value}, seed_value={self.seed_value})"


@dataclass(slots=True)
class StmtTemplate:
    """One statement of a macro body, as parsed at definition time.

    ``kind``: ``assign`` (``key = value``), ``nameless`` (a bare call in a one-line body) or
    ``define`` (a nested macro definition, not repeated per instance). ``target`` is the
    function or macro the statement's call named at definition time; ``name`` the generated
    name of a nameless call (instances keep it, as CNTK's copies did).
    """

    rec: Record
    src: SourceText
    kind: str = "assign"
    name: str | None = None
    target: Any = None


@dataclass(slots=True)
class MacroDef:
    """A macro: name, formal parameters and body templates."""

    name: str
    params: list[str]
    location: SourceLocation | None
    one_line: bool = False
    body: list[StmtTemplate] = field(default_factory=list)
    standard: bool = False
    broken: str | None = None  # a standard macro whose body names an unknown function

    def signature(self) -> str:
        return f"{self.name}({', '.join(self.params)})"


_STD_CACHE: dict[int, dict[str, MacroDef]] = {}


class MacroTable:
    """The global macro table of one command or session (§B.5), case-insensitive."""

    def __init__(self, registry: OpRegistry | None = None) -> None:
        self._macros: dict[str, MacroDef] = {}
        self.registry: OpRegistry = registry if registry is not None else OPS

    # ---- construction ------------------------------------------------------------------------
    @classmethod
    def standard(cls, registry: OpRegistry | None = None) -> MacroTable:
        """A new table holding the shipped standard library (FF, BFF, RBFF, SMBFF, ...)."""
        table = cls(registry)
        key = id(table.registry)
        cached = _STD_CACHE.get(key)
        if cached is None:
            scratch = cls(table.registry)
            for text, source in _stdlib_texts():
                scratch._load(_read_source(text, source, None), NameCounter(), strict=False,
                              standard=True)
            cached = dict(scratch._macros)
            _STD_CACHE[key] = cached
        table._macros = dict(cached)
        return table

    def copy(self) -> MacroTable:
        other = MacroTable(self.registry)
        other._macros = dict(self._macros)
        return other

    def load_text(self, text: str, source: str = "<string>",
                  variables: Mapping[str, str] | Callable[[str], str | None] | None = None,
                  counter: NameCounter | None = None) -> list[str]:
        """Load macro definitions from NDL text (FileParse: ``load``/``run`` sections or the
        whole text). Other statements are parsed and thrown away, as CNTK did. ``variables``
        enables ``$var$`` substitution. Returns the names defined."""
        from netsurgeon.lang.ndl._script import variable_lookup

        lookup = variable_lookup(variables) if variables is not None else None
        return self._load(_read_source(text, source, lookup), counter or NameCounter())

    def load_file(self, path: str | Path,
                  variables: Mapping[str, str] | Callable[[str], str | None] | None = None,
                  counter: NameCounter | None = None) -> list[str]:
        """Load a macro file (``ndlMacros``); see :meth:`load_text`."""
        text = read_text_file(path, "macro file")
        return self.load_text(text, str(Path(path)), variables, counter)

    def _load(self, src: SourceText, counter: NameCounter, *, strict: bool = True,
              standard: bool = False) -> list[str]:
        from netsurgeon.lang.ndl._parser import Parser
        from netsurgeon.lang.ndl._script import file_blocks
        from netsurgeon.lang.ndl._symbols import Scope

        before = {k: id(v) for k, v in self._macros.items()}
        parser = Parser(self, counter, self.registry, strict=strict, standard=standard)
        scratch = Scope()
        for start, end in file_blocks(src):
            parser.parse_block(src, start, end, scratch, mode="normal", allow_definitions=True)
        return [m.name for k, m in self._macros.items() if before.get(k) != id(m)]

    # ---- access --------------------------------------------------------------------------------
    def get(self, name: str) -> MacroDef | None:
        return self._macros.get(name.lower())

    def define(self, macro: MacroDef) -> None:
        """Add a macro. Raises ParseError if a non-standard macro or a built-in has the name."""
        low = macro.name.lower()
        old = self._macros.get(low)
        if old is not None and not old.standard:
            raise ParseError(f"function '{macro.name}' already defined", location=macro.location,
                             hint=f"first defined at {old.location}" if old.location else None)
        if self.registry.is_reserved(macro.name, "ndl"):
            raise ParseError(f"function '{macro.name}' already defined: it is a built-in function",
                             location=macro.location, hint="choose another macro name")
        self._macros[low] = macro

    def names(self) -> list[str]:
        return [m.name for m in self._macros.values()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._macros

    def __len__(self) -> int:
        return len(self._macros)

    def __iter__(self):
        return iter(list(self._macros.values()))

    def __repr__(self) -> str:
        return f"<MacroTable: {len(self._macros)} macros>"


def _read_source(text: str, source: str, lookup) -> SourceText:
    from netsurgeon.lang.config import read_source

    return read_source(text, source, lookup)


def _stdlib_texts() -> list[tuple[str, str]]:
    """(text, source name) of every ``stdlib/*.ndl`` file, in name order."""
    out = []
    try:
        root = resources.files("netsurgeon.lang.ndl") / "stdlib"
        entries = sorted((e for e in root.iterdir() if e.name.endswith(".ndl")),
                         key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError, ModuleNotFoundError) as exc:  # pragma: no cover
        raise NetsurgeonError(
            f"the NDL standard library is missing from the installation: {exc}") from exc
    for entry in entries:
        out.append((entry.read_text(encoding="utf-8"), f"<stdlib>/{entry.name}"))
    return out
