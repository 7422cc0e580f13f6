"""Reading MEL text into statements (ndl-mel.md §A.1–A.3, §C.2).

Three steps, each keeping original line numbers so every error can say ``file:line:col``:

1. per line: typographic quotes become ``"`` (people paste from the documentation), CNTK's
   comment rule (A.1: a ``#`` starts a comment only at line start or after a blank, and only
   the *first* ``#`` of a line is looked at, so ``1#INF`` survives), then ``$var$``
   substitution (A.2) from the caller's variables;
2. the record tokenizer (A.3): records end at ``,`` ``;`` or a newline outside brackets and
   quotes; a record that reaches an opening bracket extends to its match and stops there;
3. classification (C.2): command call, ``m = CreateModel()``/``m = LoadModel(...)``, NDL snippet
   ``m = [ ... ]``, or in-line NDL.

Deliberate deviation: CNTK's "custom separator" rule (a first argument starting with ``*``,
``.``, ``-``, ``_``, ``~`` ... lost that character) is not reproduced; ``Copy(*.W, ...)``
means what it says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from netsurgeon.errors import ParseError, SourceLocation

__all__ = [
    "Argument",
    "Statement",
    "normalize_quotes",
    "strip_comment",
    "substitute_line",
    "parse_script",
    "split_arguments",
    "SourceText",
]

_TYPOGRAPHIC = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
                              "\u2033": '"'})
_OPEN = {"(": ")", "[": "]", "{": "}", '"': '"'}
_CLOSE = {")", "]", "}"}
_VAR_STOP = set(",/<>?;':\"[]{}\\|!@#%^&*()+=~` \t\n")


def normalize_quotes(text: str) -> str:
    """Typographic double quotes (as pasted from the MEL documentation) become ``"``."""
    return text.translate(_TYPOGRAPHIC)


def strip_comment(line: str) -> tuple[str, int]:
    """CNTK's comment rule for one line (A.1); returns (text, columns dropped at the left)."""
    stripped = line.lstrip(" \t")
    if not stripped or stripped[0] == "#":
        return "", 0
    lead = len(line) - len(stripped)
    hash_at = stripped.find("#", 1)
    if hash_at == -1 or stripped[hash_at - 1] not in " \t":
        return line, 0
    return stripped[:hash_at], lead


def substitute_line(
    line: str, lookup: Callable[[str], str | None], location: SourceLocation
) -> str:
    """Replace ``$name$`` with its value (A.2). Unknown names and ``$$`` are errors."""
    out: list[str] = []
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if c != "$":
            out.append(c)
            i += 1
            continue
        if i + 1 < n and line[i + 1] == "$":
            raise ParseError("'$$' is not allowed", location=location)
        if i + 1 >= n or not (line[i + 1].isalpha() or line[i + 1] == "_"):
            out.append(c)
            i += 1
            continue
        j = i + 1
        while j < n and line[j] != "$" and line[j] not in _VAR_STOP:
            j += 1
        if j >= n or line[j] != "$":
            out.append(c)
            i += 1
            continue
        name = line[i + 1:j]
        value = _resolve_variable(name, lookup, location)
        out.append(value)
        i = j + 1
    return "".join(out)


def _resolve_variable(name: str, lookup: Callable[[str], str | None], location: SourceLocation) -> str:
    value = lookup(name)
    if value is None:
        raise ParseError(
            f"No variable found with the name '{name}'",
            location=location,
            hint="give it with --set NAME=VALUE or run(..., variables={...})",
        )
    seen = {name.lower()}
    for _ in range(64):  # a value may itself contain $other$ (resolved iteratively)
        if "$" not in value:
            break
        before = value
        inner: list[str] = []

        def inner_lookup(key: str) -> str | None:
            if key.lower() in seen:
                raise ParseError(f"variable '{key}' refers to itself", location=location)
            inner.append(key.lower())
            return lookup(key)

        value = substitute_line(value, inner_lookup, location)
        seen.update(inner)
        if value == before:
            break
    if "\n" in value or "\r" in value:
        raise ParseError(f"variable '{name}' has a newline in its value", location=location)
    return value


@dataclass
class SourceText:
    """Comment-stripped, substituted text joined with ``\\n``, with a map back to lines."""

    text: str
    file: str | None
    starts: list[int] = field(default_factory=list)  # offset of each kept line
    lines: list[int] = field(default_factory=list)  # its original line number
    shifts: list[int] = field(default_factory=list)  # columns dropped at its left

    def location(self, offset: int) -> SourceLocation:
        import bisect

        k = max(0, bisect.bisect_right(self.starts, offset) - 1)
        if not self.starts:
            return SourceLocation(self.file, 1, 1)
        return SourceLocation(self.file, self.lines[k], offset - self.starts[k] + 1 + self.shifts[k])

    @classmethod
    def read(
        cls, text: str, file: str | None, lookup: Callable[[str], str | None] | None = None
    ) -> "SourceText":
        src = cls("", file)
        parts: list[str] = []
        offset = 0
        for number, raw in enumerate(normalize_quotes(text).splitlines(), start=1):
            line, shift = strip_comment(raw.rstrip("\r"))
            if not line.strip():
                line, shift = "", 0  # kept empty so line numbers stay aligned
            if lookup is not None and "$" in line:
                line = substitute_line(line, lookup, SourceLocation(file, number, 1))
            src.starts.append(offset)
            src.lines.append(number)
            src.shifts.append(shift)
            parts.append(line)
            offset += len(line) + 1
        src.text = "\n".join(parts)
        return src


@dataclass(frozen=True)
class Argument:
    """One command argument; ``quoted`` ones are never options."""

    text: str
    quoted: bool = False

    def option(self) -> tuple[str, str] | None:
        """(name, value) if this is ``name=value`` (value's quotes removed), else None."""
        if self.quoted or "=" not in self.text:
            return None
        name, _, value = self.text.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        return name.strip(), value


@dataclass
class Statement:
    """A classified MEL statement.

    kind: ``command`` (name, args), ``ndl`` (text: one in-line NDL statement),
    ``snippet`` (target, text: the bracket body).
    """

    kind: str
    location: SourceLocation
    text: str
    name: str = ""
    args: list[Argument] = field(default_factory=list)
    target: str = ""
    body_location: SourceLocation | None = None
    body_span: tuple[int, int] | None = None  # offsets of a snippet's body in the SourceText


def _match(text: str, i: int, src: SourceText) -> int:
    """Index of the bracket/quote closing the one at ``i`` (A.3 brace stack)."""
    stack = [_OPEN[text[i]]]
    j = i + 1
    n = len(text)
    while j < n:
        c = text[j]
        if stack[-1] == '"':
            if c == '"':
                stack.pop()
        elif c in _OPEN:
            stack.append(_OPEN[c])
        elif c in _CLOSE:
            if c != stack[-1]:
                raise ParseError(f"unmatched bracket '{c}' (expected '{stack[-1]}')",
                                 location=src.location(j))
            stack.pop()
        if not stack:
            return j
        j += 1
    raise ParseError(f"no closing '{_OPEN[text[i]]}' found for this '{text[i]}'",
                     location=src.location(i))


def _records(src: SourceText, start: int, end: int, seps: str) -> list[tuple[int, int]]:
    """Record spans of ``src.text[start:end]`` (A.3); a top-level bracketed block is entered."""
    text = src.text
    out: list[tuple[int, int]] = []
    frames = [(start, end)]
    while frames:
        i, stop = frames.pop()
        while i < stop:
            while i < stop and (text[i] in seps or text[i] in " \t"):
                i += 1
            if i >= stop:
                break
            c = text[i]
            if c in "([{":
                j = _match(text, i, src)
                frames.append((j + 1, stop))
                frames.append((i + 1, j))
                break
            r = i
            while r < stop and text[r] not in seps and text[r] not in _OPEN:
                if text[r] in _CLOSE:
                    raise ParseError(f"unmatched bracket '{text[r]}'", location=src.location(r))
                r += 1
            if r < stop and text[r] in _OPEN:
                r = _match(text, r, src) + 1
            out.append((i, r))
            i = r
    return out


def split_arguments(src: SourceText, start: int, end: int) -> list[Argument]:
    """A command's argument list: ``,``/newline separated, brackets kept whole, quotes removed."""
    args: list[Argument] = []
    text = src.text
    i = start
    while i < end:
        while i < end and text[i] in ",\n\r \t":
            i += 1
        if i >= end:
            break
        r = i
        while r < end and text[r] not in ",\n\r":
            if text[r] in _OPEN:
                r = _match(text, r, src)
            elif text[r] in _CLOSE:
                raise ParseError(f"unmatched bracket '{text[r]}'", location=src.location(r))
            r += 1
        piece = text[i:r].strip()
        if len(piece) >= 2 and piece[0] == '"' and piece[-1] == '"' and _match(text, i, src) == i + len(piece) - 1:
            args.append(Argument(piece[1:-1], quoted=True))
        elif piece:
            args.append(Argument(piece))
        i = r
    return args


def _first_brace(text: str) -> int:
    for i, c in enumerate(text):
        if c in _OPEN:
            return i
    return -1


def parse_script(src: SourceText, start: int = 0, end: int | None = None) -> list[Statement]:
    """Split and classify every statement of a MEL text, or of ``text[start:end]`` (C.2)."""
    statements: list[Statement] = []
    text = src.text
    for s, e in _records(src, start, len(text) if end is None else end, ",;\r\n"):
        record = text[s:e]
        loc = src.location(s)
        eq = record.find("=")
        brace = _first_brace(record)
        if eq != -1 and (brace == -1 or eq < brace):
            key = record[:eq].strip()
            value_start = eq + 1
            while value_start < len(record) and record[value_start] in " \t\n":
                value_start += 1
            value = record[value_start:].rstrip()
            if not value:
                raise ParseError(f"'{key} =' has no value (an '=' at the end of a line is not allowed)",
                                 location=loc)
            if not key:
                raise ParseError("a statement cannot start with '='", location=loc)
            if value[0] in "[{":
                close = _match(text, s + value_start, src)
                body_start = s + value_start + 1
                statements.append(Statement(
                    "snippet", loc, record, target=key, body_location=src.location(body_start),
                    args=[Argument(text[body_start:close])], body_span=(body_start, close),
                ))
                continue
            if value[0] in '("':
                raise ParseError(
                    f"'{key} = {value[:20]}' is neither in-line NDL nor an NDL snippet; "
                    f"a snippet is written {key} = [ ... ]", location=loc)
            paren = value.find("(")
            if paren > 0:
                fname = value[:paren].strip()
                close = _match(text, s + value_start + paren, src)
                statements.append(Statement(
                    "assign", loc, record, name=fname, target=key,
                    args=split_arguments(src, s + value_start + paren + 1, close),
                ))
                continue
            statements.append(Statement("ndl", loc, record))
            continue
        if brace == -1:
            raise ParseError(f"Invalid line '{record.strip()}', expecting a function call "
                             "such as SetInput(node, 0, input) or an assignment", location=loc)
        if record[brace] != "(":
            raise ParseError(f"Invalid line '{record.strip()}', expecting a function call",
                             location=loc)
        name = record[:brace].strip()
        close = _match(text, s + brace, src)
        after = text[e:].lstrip(" \t")
        if after.startswith("="):
            raise ParseError(
                f"'{record.strip()} = ...' looks like a macro definition: macros cannot be defined "
                "in MEL", location=loc,
                hint="put it in a macro file (netsurgeon edit --macros FILE) or an NDL snippet "
                "m = [ ... ]")
        trailing = text[close + 1:e].strip()
        if trailing:
            raise ParseError(f"unexpected text after {name}(...): '{trailing}'", location=loc)
        statements.append(Statement(
            "command", loc, record, name=name, args=split_arguments(src, s + brace + 1, close),
        ))
    return statements
