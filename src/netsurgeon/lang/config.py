"""CNTK's shared config layer (ndl-mel.md §A): comments, ``$var$``, records, dictionaries, arrays.

NDL, MEL and ``.cntk`` config files all go through the same legacy reader and tokenizer, and
real files depend on its quirks, so this module reproduces them:

* comment stripping looks only at the **first** ``#`` of a line (``x = 1#INF  # note`` keeps
  ``# note``) and knows nothing about quotes (A.1);
* ``$name$`` is replaced by a variable's value, line by line, after comment stripping (A.2);
* the record tokenizer splits on ``,``, ``\\r``, ``\\n`` and one *extra separator*, matches
  brackets and quotes, has an "outer brace" content mode and the custom-separator rule that
  makes ``Scale(-1, x)`` read as ``1, x`` (A.3);
* config dictionaries are case-insensitive, merge repeated ``[...]`` sections and fall
  through to the enclosing scope (A.4); config arrays repeat ``value*N`` (A.5);
* scalar conversions follow CNTK: whole-string base-10 integers, ``strtod`` floats plus
  ``1#INF``, and the exact boolean spellings (A.6).

Every piece of processed text keeps a :class:`TextMap` back to the original file, so errors
report the line and column a user wrote, even after comments were removed and variables
substituted. Nothing here recurses with the input's nesting depth.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from netsurgeon._inputs import read_text
from netsurgeon.errors import ParseError, SourceLocation
from netsurgeon.ops._convert import parse_bool

__all__ = [
    "OPEN_BRACES",
    "CLOSE_BRACE",
    "TextMap",
    "DeferredLocation",
    "SourceText",
    "Record",
    "Tokenizer",
    "ConfigDict",
    "read_source",
    "read_file",
    "read_text_file",
    "strip_comments",
    "strip_line",
    "substitute_variables",
    "find_braces",
    "first_of",
    "tokenize",
    "split_array",
    "split_array_records",
    "parse_config",
    "parse_config_file",
    "strtod",
    "to_int",
    "to_float",
    "to_bool",
    "unquote",
    "mapping_lookup",
]

OPEN_BRACES = "([{\""
CLOSE_BRACE = {"(": ")", "[": "]", "{": "}", '"': '"'}
_CLOSERS = {")": "(", "]": "[", "}": "{"}
_BRACE_RE = re.compile(r'[()\[\]{}"]')
#: characters that, right after a block's opening brace, become that block's extra separator
CUSTOM_SEPARATORS = "`~!@$%^&*_-+|:;,?."
#: characters that end a ``$name`` without closing it (A.2)
_VAR_STOP = set(",/<>?;':\"[]{}\\|!@#%^&*()+=~` \t\n")
#: the largest N accepted in an array's ``value*N``
MAX_REPEAT = 1_000_000
_TYPOGRAPHIC = str.maketrans({"\u201c": '"', "\u201d": '"'})


# ---- source text with a map back to the original file ---------------------------------------
class TextMap:
    """Maps offsets of processed text back to (line, column) of the original file.

    A list of segments ``(offset, line, column, fixed)``: text from ``offset`` on comes from
    ``line``/``column`` onwards, character for character, unless ``fixed`` (text inserted by a
    ``$var$`` substitution, which maps to the ``$`` that was replaced).
    """

    __slots__ = ("source", "_offsets", "_segments")

    def __init__(self, source: str | None = None) -> None:
        self.source = source
        self._offsets: list[int] = []
        self._segments: list[tuple[int, int, bool]] = []

    def add(self, offset: int, line: int, column: int, fixed: bool = False) -> None:
        """Add a segment; offsets must not decrease."""
        if self._offsets and self._offsets[-1] == offset:
            self._segments[-1] = (line, column, fixed)
            return
        self._offsets.append(offset)
        self._segments.append((line, column, fixed))

    def location(self, offset: int) -> SourceLocation:
        """The original position of processed-text ``offset``."""
        i = bisect.bisect_right(self._offsets, offset) - 1
        if i < 0:
            return SourceLocation(self.source, 1, 1)
        line, column, fixed = self._segments[i]
        return SourceLocation(self.source, line,
                              column if fixed else column + offset - self._offsets[i])

    def deferred(self, offset: int) -> SourceLocation:
        """:meth:`location` computed on first use (a parser keeps one per symbol, and nearly
        all of them are never read)."""
        loc = _new_deferred(DeferredLocation)
        _set_map(loc, self)
        _set_offset(loc, offset)
        return loc

    @classmethod
    def starting_at(cls, text: str, location: SourceLocation | None) -> TextMap:
        """A map for ``text`` that starts at ``location`` (continuation lines start at column 1)."""
        loc = location or SourceLocation(None, 1, 1)
        tmap = cls(loc.file)
        line, column = loc.line or 1, loc.column or 1
        tmap.add(0, line, column)
        pos = text.find("\n")
        while pos >= 0:
            line += 1
            tmap.add(pos + 1, line, 1)
            pos = text.find("\n", pos + 1)
        return tmap


class DeferredLocation(SourceLocation):
    """A :class:`SourceLocation` for an offset of processed text whose line and column are
    looked up in the :class:`TextMap` when first read; equal to, hashing, printing and
    pickling as the plain location it stands for."""

    __slots__ = ("_map", "_offset", "_real")

    def __init__(self, tmap: TextMap, offset: int) -> None:
        _set_map(self, tmap)
        _set_offset(self, offset)

    def _resolved(self) -> SourceLocation:
        try:
            return self._real
        except AttributeError:
            real = self._map.location(self._offset)
            _set_real(self, real)
            return real

    @property
    def file(self) -> str | None:  # type: ignore[override]
        return self._map.source

    @property
    def line(self) -> int | None:  # type: ignore[override]
        return self._resolved().line

    @property
    def column(self) -> int | None:  # type: ignore[override]
        return self._resolved().column

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")  # frozen, like its base

    def __eq__(self, other: object) -> bool:
        return self._resolved() == other

    def __hash__(self) -> int:
        return hash(self._resolved())

    def __repr__(self) -> str:
        return repr(self._resolved())

    def __str__(self) -> str:
        return str(self._resolved())

    def __reduce__(self) -> tuple:
        real = self._resolved()
        return SourceLocation, (real.file, real.line, real.column)


_new_deferred = object.__new__
_set_map = DeferredLocation._map.__set__  # type: ignore[attr-defined]
_set_offset = DeferredLocation._offset.__set__  # type: ignore[attr-defined]
_set_real = DeferredLocation._real.__set__  # type: ignore[attr-defined]


@dataclass(slots=True)
class SourceText:
    """Processed text plus the map to where each character was written."""

    text: str
    map: TextMap

    @property
    def source(self) -> str | None:
        return self.map.source

    def location(self, offset: int) -> SourceLocation:
        return self.map.location(offset)

    @classmethod
    def plain(cls, text: str, source: str | None = None,
              location: SourceLocation | None = None) -> SourceText:
        """Wrap already-processed text (no comment stripping) with a simple line map."""
        text = text.translate(_TYPOGRAPHIC)
        if location is None:
            location = SourceLocation(source, 1, 1)
        elif source is not None and location.file is None:
            location = SourceLocation(source, location.line, location.column)
        return cls(text, TextMap.starting_at(text, location))


def strip_line(line: str) -> tuple[str, int] | None:
    """Comment-strip one line (A.1): the kept text and its 0-based start column, or None."""
    first = 0
    n = len(line)
    while first < n and line[first] in " \t":
        first += 1
    if first == n or line[first] == "#":
        return None
    hash_at = line.find("#", first + 1)
    if hash_at < 0:
        return line, 0
    if line[hash_at - 1] in " \t":
        return line[first:hash_at], first
    return line, 0  # quirk: a '#' not after a blank keeps the whole line, later comments too


def read_source(text: str, source: str | None = None,
                lookup: Callable[[str], str | None] | None = None,
                *, first_line: int = 1, keep_empty_lines: bool = False) -> SourceText:
    """Read config text as CNTK did: comment stripping (A.1), then ``$var$`` substitution (A.2).

    ``lookup`` returns a variable's value (case-insensitive lookup is the caller's business) or
    None; without it, ``$`` is left alone. Typographic quotes are read as ``"``.

    ``keep_empty_lines`` keeps a line that A.1 drops as an empty line instead. The records
    are the same (a newline is only a separator), but a piece of the text that spans lines
    (a MEL snippet body, handed on as plain text) keeps its line numbers.
    """
    text = text.translate(_TYPOGRAPHIC)
    tmap = TextMap(source)
    offsets, segments = tmap._offsets, tmap._segments  # appended to directly: offsets grow
    lines: list[str] = []  # each kept line, without its newline
    out = 0
    substitute = lookup is not None and "$" in text
    for index, raw in enumerate(text.split("\n"), first_line):
        if raw and raw[0] not in " \t#" and "#" not in raw and not substitute:
            # the common line (strip_line keeps it whole): one segment
            offsets.append(out)
            segments.append((index, 1, False))
            lines.append(raw)
            out += len(raw) + 1
            continue
        kept = strip_line(raw)
        if kept is None:
            if keep_empty_lines:
                offsets.append(out)
                segments.append((index, 1, False))
                lines.append("")
                out += 1
            continue
        body, col = kept
        if substitute and "$" in body:
            pieces = _substitute_line(body, lookup, SourceLocation(source, index, col + 1))
            for piece_text, piece_col, fixed in pieces:
                tmap.add(out, index, col + piece_col + 1, fixed)
                out += len(piece_text)
            lines.append("".join(p[0] for p in pieces))
        else:
            offsets.append(out)
            segments.append((index, col + 1, False))
            lines.append(body)
            out += len(body)
        out += 1
    return SourceText("\n".join(lines) + "\n" if lines else "", tmap)


def read_text_file(path: str | Path, what: str = "") -> str:
    """The text of a file (UTF-8, BOM tolerated; bytes that are not UTF-8 read as Latin-1, as
    CNTK read bytes). A file that cannot be read as text (missing, not a regular file, above
    the text size cap, UTF-16/32, NUL bytes: see :mod:`netsurgeon._inputs`) raises ParseError
    ``<path>: cannot read the <what>: <why>``."""
    if not what:
        what = _KIND_BY_SUFFIX.get(Path(path).suffix.lower(), "input file")
    return read_text(path, what, ParseError)


_KIND_BY_SUFFIX = {".ndl": "NDL file", ".mel": "MEL script", ".bs": "BrainScript file",
                   ".cntk": "config file", ".config": "config file"}


def read_file(path: str | Path, lookup: Callable[[str], str | None] | None = None,
              what: str = "") -> SourceText:
    """Read a file through :func:`read_source`. Raises ParseError (see :func:`read_text_file`)."""
    return read_source(read_text_file(path, what), str(path), lookup)


def strip_comments(text: str) -> str:
    """The text after A.1 comment stripping: kept lines joined, each ending in ``\\n``."""
    return read_source(text).text


def _substitute_line(line: str, lookup: Callable[[str], str | None],
                     location: SourceLocation, resolve: bool = True) -> list[tuple[str, int, bool]]:
    """Substitute ``$name$`` in one line; returns pieces (text, source column, inserted?)."""
    pieces: list[tuple[str, int, bool]] = []
    start = 0  # start of the not-yet-emitted original text
    pos = line.find("$")
    while pos >= 0:
        nxt = line[pos + 1] if pos + 1 < len(line) else ""
        if nxt == "$":
            raise ParseError("'$$' is not allowed; write a variable name between the $ signs",
                             location=_shift(location, pos))
        if not (nxt.isalpha() or nxt == "_"):
            pos = line.find("$", pos + 1)
            continue
        end = pos + 1
        while end < len(line) and line[end] != "$" and line[end] not in _VAR_STOP:
            end += 1
        if end >= len(line) or line[end] != "$":
            pos = line.find("$", pos + 1)
            continue
        name = line[pos + 1:end]
        value = _resolve_variable(name, lookup, _shift(location, pos), resolve)
        if pos > start:
            pieces.append((line[start:pos], start, False))
        if value:
            pieces.append((value, pos, True))
        start = end + 1
        pos = line.find("$", start)
    if start < len(line) or not pieces:
        pieces.append((line[start:], start, False))
    return pieces


def _shift(location: SourceLocation, columns: int) -> SourceLocation:
    return SourceLocation(location.file, location.line,
                          (location.column or 1) + columns)


def _resolve_variable(name: str, lookup: Callable[[str], str | None],
                      location: SourceLocation, resolve: bool = True) -> str:
    """A variable's value with its own ``$var$`` resolved (bounded, so cycles fail clearly)."""
    value = lookup(name)
    if value is None:
        raise ParseError(f"No variable found with the name '{name}'", location=location,
                         hint="define it in the config file or pass --set "
                              f"{name}=VALUE")
    value = str(value)
    if not resolve:
        return value
    seen = {value}
    cycle = True
    for _depth in range(64):
        pieces = _substitute_line(value, lookup, location, False) if "$" in value else []
        if not any(inserted for _t, _c, inserted in pieces):
            cycle = False
            break
        value = "".join(p[0] for p in pieces)
        if value in seen:
            break
        seen.add(value)
    if cycle:
        raise ParseError(f"variable '{name}' refers to itself through $...$", location=location)
    if "\n" in value or "\r" in value:
        raise ParseError(f"the value of variable '{name}' contains a newline", location=location)
    return value


def substitute_variables(text: str, lookup: Callable[[str], str | None],
                         location: SourceLocation | None = None) -> str:
    """Replace every ``$name$`` in ``text`` (A.2), line by line. Raises ParseError.

    ``location`` is where ``text`` starts, for error messages.
    """
    loc = location or SourceLocation(None, 1, 1)
    out = []
    for i, line in enumerate(text.split("\n")):
        if "$" in line:
            line_loc = SourceLocation(loc.file, (loc.line or 1) + i,
                                      (loc.column or 1) if i == 0 else 1)
            line = "".join(p[0] for p in _substitute_line(line, lookup, line_loc))
        out.append(line)
    return "\n".join(out)


# ---- the record tokenizer (A.3) ----------------------------------------------------------------
def find_braces(text: str, start: int, end: int | None = None,
                location: Callable[[int], SourceLocation] | None = None) -> int:
    """Index of the bracket or quote that closes the one at ``text[start]``.

    Brackets nest with a stack; inside ``"`` only the closing ``"`` counts. Raises ParseError
    for a closer of the wrong kind or a missing closer. Iterative: any depth works.
    """
    stop = len(text) if end is None else end
    where = location or (lambda _o: None)
    opener = text[start]
    if opener not in CLOSE_BRACE:
        raise ParseError(f"expected an opening bracket, found {opener!r}", location=where(start))
    if opener == '"':
        close = text.find('"', start + 1, stop)
        if close < 0:
            raise ParseError('no closing " found in parameters', location=where(start))
        return close
    stack = [opener]
    pos = start + 1
    while True:
        m = _BRACE_RE.search(text, pos, stop)
        if m is None:
            raise ParseError(f"no closing {CLOSE_BRACE[stack[-1]]} found in parameters",
                             location=where(start),
                             hint=f"the {stack[-1]!r} here is never closed")
        ch = m.group()
        i = m.start()
        if ch == '"':
            close = text.find('"', i + 1, stop)
            if close < 0:
                raise ParseError('no closing " found in parameters', location=where(i))
            pos = close + 1
            continue
        if ch in "([{":
            stack.append(ch)
        else:
            if _CLOSERS[ch] != stack[-1]:
                raise ParseError(
                    f"unmatched bracket found in parameters: {ch!r} closes {stack[-1]!r}",
                    location=where(i))
            stack.pop()
            if not stack:
                return i
        pos = i + 1


class Record:
    """One record of the tokenizer.

    ``start``/``end`` are offsets of ``text`` in the tokenized string (``text`` is exactly
    ``string[start:end]``). ``quoted``: a ``"..."`` record given without its quotes;
    ``braced``: a bracketed record taken whole inside a block. ``location`` (where ``text``
    starts in the original file) is computed on first use.
    """

    __slots__ = ("text", "start", "end", "quoted", "braced", "_location", "_locate")

    def __init__(self, text: str, start: int, end: int, location: SourceLocation | None = None,
                 quoted: bool = False, braced: bool = False,
                 locate: Callable[[int], SourceLocation | None] | None = None) -> None:
        self.text = text
        self.start = start
        self.end = end
        self.quoted = quoted
        self.braced = braced
        self._location = location
        self._locate = locate

    @property
    def location(self) -> SourceLocation | None:
        if self._location is None and self._locate is not None:
            self._location = self._locate(self.start)
            self._locate = None
        return self._location

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Record) and (self.text, self.start, self.end, self.quoted,
                                               self.braced) ==
                (other.text, other.start, other.end, other.quoted, other.braced))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Record({self.text!r}, {self.start}, {self.end})"


class Tokenizer:
    """CNTK's record splitter over ``text[start:end]`` (A.3), one record at a time.

    A caller may move :attr:`pos` forward between records (NDL reads a macro body that way).
    ``custom_separators=False`` turns off the custom-separator rule, so a block's first
    character is always part of its first record (MEL's choice: ``Copy(*.W, x)``).
    """

    def __init__(self, text: str | SourceText, extra_sep: str = "", start: int = 0,
                 end: int | None = None, *, block: bool = False,
                 custom_separators: bool = True) -> None:
        self.custom_separators = custom_separators
        if isinstance(text, SourceText):
            self.src: SourceText | None = text
            self.text = text.text
        else:
            self.src = None
            self.text = text.translate(_TYPOGRAPHIC)
        self.base_seps = ",\r\n" + extra_sep
        self.seps = self.base_seps
        self.pos = start
        self.end = len(self.text) if end is None else end
        self._blocks: list[tuple[int, str]] = []  # (closer offset, separators outside)
        if block:
            self._enter_block()

    def _enter_block(self) -> None:
        """Start inside a block: the text's own enclosing ``[...]``/``{...}`` if it has one,
        else as if the whole range were wrapped in ``[ ]`` (how NDL reads a file or body)."""
        text, skip = self.text, self.seps + " \t"
        pos = self.pos
        while pos < self.end and text[pos] in skip:
            pos += 1
        if pos < self.end and text[pos] in "[{":
            close = find_braces(text, pos, self.end, self.location)
            after = close + 1
            while after < self.end and text[after] in skip:
                after += 1
            if after >= self.end:
                self._blocks.append((close, self.seps))
                pos += 1
                if self._custom_separator_at(pos, close):
                    self.seps = self.seps + text[pos]
                    pos += 1
                self.pos = pos
                return
        self._blocks.append((self.end, self.seps))

    def _custom_separator_at(self, pos: int, close: int) -> bool:
        """Whether ``text[pos]``, right after a block's opening brace, becomes its separator."""
        text = self.text
        return (self.custom_separators and pos < close and text[pos] in CUSTOM_SEPARATORS
                and not text.startswith(("..", ".\\", "./", "\\\\"), pos))

    def location(self, offset: int) -> SourceLocation | None:
        if self.src is not None:
            return self.src.location(offset)
        return SourceLocation(None, *_line_col(self.text, offset))

    @property
    def in_block(self) -> bool:
        return bool(self._blocks)

    def __iter__(self) -> Iterator[Record]:
        while True:
            rec = self.next_record()
            if rec is None:
                return
            yield rec

    def _limit(self) -> int:
        return self._blocks[-1][0] if self._blocks else self.end

    def next_record(self) -> Record | None:
        """The next record, or None at the end."""
        text = self.text
        skip = self.seps + " \t"
        while True:
            limit = self._limit()
            pos = self.pos
            while pos < limit and text[pos] in skip:
                pos += 1
            self.pos = pos
            if self._blocks and pos >= limit:
                # leave the block at its closer
                _closer, seps = self._blocks.pop()
                self.seps = seps
                skip = self.seps + " \t"
                self.pos = limit + 1
                continue
            if pos >= limit:
                return None
            ch = text[pos]
            if ch in OPEN_BRACES:
                close = find_braces(text, pos, self.end, self.location)
                if not self._blocks:
                    self._blocks.append((close, self.seps))
                    pos += 1
                    if self._custom_separator_at(pos, close):
                        self.seps = self.seps + text[pos]
                        skip = self.seps + " \t"
                        pos += 1
                    self.pos = pos
                    continue
                self.pos = close + 1
                if ch == '"':
                    return Record(text[pos + 1:close], pos + 1, close, quoted=True,
                                  locate=self.location)
                return Record(text[pos:close + 1], pos, close + 1, braced=True,
                              locate=self.location)
            # an ordinary record: up to a separator, or through the first bracket's match
            m = _stop_re(self.seps).search(text, pos, limit)
            if m is None:
                stop = limit
            elif m.group() in OPEN_BRACES:
                stop = find_braces(text, m.start(), self.end, self.location) + 1
            else:
                stop = m.start()
            if stop > limit:
                raise ParseError("unmatched bracket found in parameters",
                                 location=self.location(limit))
            self.pos = stop
            end = stop
            while end > pos and text[end - 1] in " \t":
                end -= 1
            return Record(text[pos:end], pos, end, locate=self.location)


_STOP_CACHE: dict[str, re.Pattern[str]] = {}


def _stop_re(seps: str) -> re.Pattern[str]:
    """A regex finding the next separator or opening bracket (cached per separator set)."""
    pat = _STOP_CACHE.get(seps)
    if pat is None:
        pat = re.compile("[" + re.escape(seps + OPEN_BRACES) + "]")
        _STOP_CACHE[seps] = pat
    return pat


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def tokenize(text: str | SourceText, extra_sep: str = ";", start: int = 0,
             end: int | None = None) -> list[Record]:
    """All records of ``text`` (A.3); ``extra_sep`` is ``;`` for scripts and dictionaries,
    ``:`` for config arrays and ``,`` for MEL argument lists."""
    return list(Tokenizer(text, extra_sep, start, end))


# ---- config arrays (A.5) ------------------------------------------------------------------------
def _repeat_split(text: str) -> tuple[str, int] | None:
    """``value*N`` with the ``*`` outside brackets: (value, N), else None."""
    star = text.rfind("*")
    if star <= 0:
        return None
    count = text[star + 1:].strip()
    if not count.isdigit():
        return None
    head = text[:star]
    depth = 0
    in_quote = False
    for c in head:
        if in_quote:
            in_quote = c != '"'
        elif c == '"':
            in_quote = True
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
    if depth != 0 or in_quote:
        return None
    return head.rstrip(), int(count)


def _locator(text: str | SourceText) -> Callable[[int], SourceLocation | None]:
    if isinstance(text, SourceText):
        return text.location
    return lambda offset: SourceLocation(None, *_line_col(text, offset))


def split_array_records(text: str | SourceText, start: int = 0,
                        end: int | None = None) -> list[Record]:
    """The elements of a config array (A.5) as records: ``,``/newline/``:`` separated,
    ``value*N`` repeated N times, bracketed elements kept whole, all trimmed."""
    out: list[Record] = []
    for rec in Tokenizer(text, ":", start, end):
        if not rec.quoted and not rec.braced:
            rep = _repeat_split(rec.text)
            if rep is not None:
                value, count = rep
                if count > MAX_REPEAT:
                    raise ParseError(f"'{rec.text}' repeats a value more than {MAX_REPEAT:,} times",
                                     location=rec.location)
                out.extend([Record(value, rec.start, rec.start + len(value),
                                   locate=_locator(text))] * count)
                continue
        out.append(rec)
    return out


def split_array(text: str | SourceText) -> list[str]:
    """The elements of a config array as strings (A.5)."""
    return [r.text for r in split_array_records(text)]


# ---- scalar conversions (A.6) ------------------------------------------------------------------
_DEC = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)\Z")
_HEX = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?\d+)?\Z")
_SPECIAL = re.compile(r"([+-]?)(inf|infinity|nan(?:\([0-9A-Za-z_]*\))?)\Z", re.IGNORECASE)
_INT = re.compile(r"[+-]?\d+\Z")


def strtod(text: str) -> float | None:
    """C ``strtod`` over the whole string (leading blanks allowed), or None. ``''`` is 0."""
    s = text.lstrip(" \t\n\r\f\v")
    if s == "" and text == "":
        return 0.0
    if _DEC.match(s):
        return float(s)
    if _HEX.match(s):
        sign = -1.0 if s.startswith("-") else 1.0
        body = s.lstrip("+-")
        if "p" not in body.lower():
            body += "p0"
        try:
            return sign * float.fromhex(body)
        except (ValueError, OverflowError):
            return None
    m = _SPECIAL.match(s)
    if m:
        value = math.nan if m.group(2).lower().startswith("nan") else math.inf
        return -value if m.group(1) == "-" else value
    return None


def to_int(text: str, what: str = "value", location: SourceLocation | None = None) -> int:
    """A base-10 integer from the whole string (``784.0`` and ``1e3`` are errors)."""
    s = str(text).strip()
    if not _INT.match(s):
        raise ParseError(f"{what} must be an integer, not '{text}'", location=location)
    return int(s)


def to_float(text: str, what: str = "value", location: SourceLocation | None = None) -> float:
    """A float by ``strtod`` rules; ``<number>#INF`` (any case) is infinity."""
    s = str(text).strip()
    value = strtod(s) if s else None
    if value is None:
        hash_at = s.find("#")
        if hash_at > 0 and s[hash_at:].upper() == "#INF" and strtod(s[:hash_at]) is not None:
            return -math.inf if s.startswith("-") else math.inf
        raise ParseError(f"{what} must be a number, not '{text}'", location=location)
    return value


def to_bool(text: str | bool, what: str = "value", location: SourceLocation | None = None) -> bool:
    """CNTK's booleans (A.6, :func:`netsurgeon.ops._convert.parse_bool`): ``t true T True TRUE
    1`` and ``f false F False FALSE 0`` or empty; case matters (``tRUE`` is an error)."""
    if isinstance(text, bool):
        return text
    found = parse_bool(str(text))
    if found is None:
        raise ParseError(f"boolean argument expected for {what}, not '{text}'", location=location,
                         hint="use true or false")
    return found


def unquote(text: str) -> str:
    """Remove one pair of enclosing double quotes."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1]
    return text


# ---- config dictionaries (A.4) -----------------------------------------------------------------
@dataclass(slots=True)
class _Entry:
    key: str
    value: str
    spans: list[tuple[int, int]]  # where the value text is, in the dictionary's source
    location: SourceLocation | None


class ConfigDict:
    """A CNTK config dictionary: case-insensitive keys, sections, lookup through parents.

    Values are kept as text; quoted values lose their quotes. A value starting with ``[`` is
    a section: :meth:`section` parses it into a child dictionary. :meth:`get` applies
    ``$var$`` substitution against this scope and its parents (A.4).
    """

    def __init__(self, src: SourceText | None = None, parent: ConfigDict | None = None,
                 name: str = "") -> None:
        self.src = src
        self.parent = parent
        self.name = name
        self._entries: dict[str, _Entry] = {}
        self._sections: dict[str, ConfigDict] = {}

    # -- building --
    def _add(self, key: str, value: str, span: tuple[int, int] | None,
             location: SourceLocation | None) -> None:
        low = key.lower()
        old = self._entries.get(low)
        spans = [span] if span is not None else []
        if old is not None and value.startswith("["):
            old.value = old.value + " " + value
            old.spans.extend(spans)
            self._sections.pop(low, None)
            return
        # a replaced key keeps its first spelling (CNTK's case-insensitive map)
        self._entries[low] = _Entry(old.key if old is not None else key, value, spans, location)
        self._sections.pop(low, None)

    def set(self, key: str, value: str) -> None:
        """Set a value (as ``key=value`` written last)."""
        self._add(key, value, None, None)

    def _parse(self, src: SourceText, start: int, end: int) -> None:
        tok = Tokenizer(src, ";", start, end)
        text = src.text
        for rec in tok:
            body = rec.text
            eq = first_of(body, "=" + OPEN_BRACES)
            if eq < 0 or body[eq] != "=":
                key = body.strip()
                if key:
                    self._add(key, "true", None, rec.location)
                continue
            key = body[:eq].strip()
            if not key:
                raise ParseError(f"missing name before '=' in '{body}'", location=rec.location)
            vstart = rec.start + eq + 1
            while vstart < rec.end and text[vstart] in " \t":
                vstart += 1
            if vstart < rec.end and text[vstart] in OPEN_BRACES:
                close = find_braces(text, vstart, end, src.location)
                if text[vstart] == '"':
                    value, span = text[vstart + 1:close], (vstart + 1, close)
                else:
                    value, span = text[vstart:close + 1], (vstart, close + 1)
                if close + 1 > tok.pos:
                    tok.pos = close + 1
            else:
                value = text[vstart:rec.end].strip()
                span = (vstart, vstart + len(value))
            self._add(key, value, span, src.location(vstart))

    # -- reading --
    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.find(key) is not None

    def has_local(self, key: str) -> bool:
        return key.lower() in self._entries

    def keys(self) -> list[str]:
        """Local keys as written, in first-definition order."""
        return [e.key for e in self._entries.values()]

    def items(self) -> list[tuple[str, str]]:
        return [(e.key, e.value) for e in self._entries.values()]

    def find(self, key: str) -> ConfigDict | None:
        """The innermost scope (this one or a parent) that defines ``key``."""
        scope: ConfigDict | None = self
        low = key.lower()
        while scope is not None:
            if low in scope._entries:
                return scope
            scope = scope.parent
        return None

    def raw(self, key: str, default: str | None = None) -> str | None:
        """The value as written (no ``$var$`` substitution), looked up through parents."""
        scope = self.find(key)
        return default if scope is None else scope._entries[key.lower()].value

    def location_of(self, key: str) -> SourceLocation | None:
        scope = self.find(key)
        return None if scope is None else scope._entries[key.lower()].location

    def lookup_variable(self, name: str) -> str | None:
        """For ``$name$``: the raw value through this scope and its parents, or None."""
        return self.raw(name)

    def get(self, key: str, default: str | None = None) -> str | None:
        """The value with ``$var$`` substituted against the scope chain, or ``default``."""
        scope = self.find(key)
        if scope is None:
            return default
        entry = scope._entries[key.lower()]
        if "$" not in entry.value:
            return entry.value
        return substitute_variables(entry.value, self._lookup_for(key, scope), entry.location)

    def _lookup_for(self, key: str, scope: ConfigDict) -> Callable[[str], str | None]:
        """``$var$`` lookup for the value of ``key`` found in ``scope``: ``modelPath =
        $modelPath$`` takes the enclosing scope's modelPath (a key cannot be its own
        variable), every other name this scope's chain."""
        low = key.lower()
        parent = scope.parent

        def lookup(name: str) -> str | None:
            if name.lower() == low:
                return parent.raw(name) if parent is not None else None
            return self.lookup_variable(name)

        return lookup

    def locate_value(self, key: str) -> tuple[str, Callable[[int], SourceLocation]] | None:
        """The value of ``key`` as :meth:`get` gives it, with a function from offsets in that
        text to where each character was written in the file (text a ``$var$`` inserted maps
        to its ``$``; a value set by :meth:`set` maps to its start), or None if not defined."""
        scope = self.find(key)
        if scope is None:
            return None
        entry = scope._entries[key.lower()]
        start = entry.location or SourceLocation(None, 1, 1)
        src = scope.src
        spans = entry.spans if src is not None else []
        # offset in the raw value -> offset in the dictionary's source ("value value" of
        # repeated sections: the joining blank maps to the end of the previous span)
        raw_starts: list[int] = []
        pos = 0
        for s, e in spans:
            raw_starts.append(pos)
            pos += e - s + 1

        def raw_location(offset: int) -> SourceLocation:
            if not spans or src is None:
                return start
            i = max(bisect.bisect_right(raw_starts, offset) - 1, 0)
            s, e = spans[i]
            return src.location(min(s + offset - raw_starts[i], max(e - 1, s)))

        value = entry.value
        out_starts: list[int] = []
        pieces: list[tuple[int, bool]] = []  # (raw offset, inserted) per output piece
        text_parts: list[str] = []
        out = 0
        raw = 0
        for i, line in enumerate(value.split("\n")):
            if i:
                out_starts.append(out)
                pieces.append((raw, False))
                text_parts.append("\n")
                out += 1
                raw += 1
            if "$" in line:
                line_loc = raw_location(raw)
                parts = _substitute_line(line, self._lookup_for(key, scope), line_loc)
            else:
                parts = [(line, 0, False)]
            for text, col, inserted in parts:
                out_starts.append(out)
                pieces.append((raw + col, inserted))
                text_parts.append(text)
                out += len(text)
            raw += len(line)

        def locate(offset: int) -> SourceLocation:
            j = max(bisect.bisect_right(out_starts, offset) - 1, 0)
            if not pieces:
                return start
            r, inserted = pieces[j]
            return raw_location(r if inserted else r + offset - out_starts[j])

        return "".join(text_parts), locate

    def section(self, key: str) -> ConfigDict | None:
        """The child dictionary for a ``key=[...]`` value (looked up through parents)."""
        scope = self.find(key)
        if scope is None:
            return None
        low = key.lower()
        cached = scope._sections.get(low)
        if cached is not None:
            return cached
        entry = scope._entries[low]
        child = ConfigDict(scope.src, scope, entry.key)
        if scope.src is not None and entry.spans:
            for s, e in entry.spans:
                child._parse(scope.src, s, e)
        else:
            child._parse(SourceText.plain(entry.value), 0, len(entry.value))
        scope._sections[low] = child
        return child

    def is_section(self, key: str) -> bool:
        value = self.raw(key)
        return value is not None and value.lstrip().startswith("[")

    def walk(self) -> Iterator[tuple[ConfigDict, str, str]]:
        """Every (scope, key, raw value) in this dictionary and its sections, depth first,
        in file order (iterative)."""
        stack: list[Iterator[_Entry]] = [iter(list(self._entries.values()))]
        scopes: list[ConfigDict] = [self]
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                scopes.pop()
                continue
            scope = scopes[-1]
            yield scope, entry.key, entry.value
            if entry.value.lstrip().startswith("["):
                child = scope.section(entry.key)
                if child is not None:
                    stack.append(iter(list(child._entries.values())))
                    scopes.append(child)

    def __repr__(self) -> str:
        return f"<ConfigDict {self.name or '(root)'}: {', '.join(self.keys())}>"


def first_of(text: str, chars: str) -> int:
    """Index in ``text`` of the first of any of ``chars``, or -1 (CNTK's find_first_of)."""
    best = -1
    for c in chars:
        i = text.find(c)
        if i >= 0 and (best < 0 or i < best):
            best = i
    return best


def parse_config(text: str | SourceText, source: str | None = None,
                 lookup: Callable[[str], str | None] | None = None) -> ConfigDict:
    """Parse config text (comment-stripped here if given as a plain string) into a dictionary."""
    src = text if isinstance(text, SourceText) else read_source(text, source, lookup)
    root = ConfigDict(src)
    root._parse(src, 0, len(src.text))
    return root


def parse_config_file(path: str | Path) -> ConfigDict:
    """Parse a ``.cntk`` config file. Variables are substituted when values are fetched."""
    return parse_config(read_file(path, what="config file"))


def mapping_lookup(values: Mapping[str, str]) -> Callable[[str], str | None]:
    """A case-insensitive ``$var$`` lookup over a plain mapping."""
    low = {str(k).lower(): str(v) for k, v in values.items()}
    return lambda name: low.get(name.lower())
