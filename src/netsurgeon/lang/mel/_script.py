"""Reading MEL text into statements (ndl-mel.md §A.1–A.3, §C.2).

The config layer (:mod:`netsurgeon.lang.config`) does the lexing, as in CNTK, where MEL goes
through the same reader and tokenizer as NDL and ``.cntk`` files:

1. :func:`read_mel`: typographic quotes become ``"``, CNTK's comment rule (A.1), then
   ``$var$`` substitution (A.2) from the caller's variables; every character keeps its
   original line and column;
2. the record tokenizer (A.3): statements are records with the extra separator ``;``
   (so ``,`` ``;`` and newlines separate them); a command's arguments are the records of its
   ``( ... )`` block with the extra separator ``,`` and no ``*`` repetition (C.2);
3. classification (C.2), here: command call, ``m = CreateModel()``/``m = LoadModel(...)``,
   NDL snippet ``m = [ ... ]``, or in-line NDL.

MEL's differences from the shared rules, both passed to the config layer as parameters:
dropped lines stay as empty lines (``keep_empty_lines``), so a snippet body or a multi-line
statement handed on as text keeps its line numbers; and CNTK's "custom separator" rule (a
first argument starting with ``*``, ``.``, ``-``, ``_``, ``~`` ... lost that character) is
deliberately not reproduced (``custom_separators=False``): ``Copy(*.W, ...)`` means what it
says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from netsurgeon.errors import ParseError, SourceLocation
from netsurgeon.lang.config import OPEN_BRACES, SourceText, Tokenizer, find_braces, read_source

__all__ = [
    "Argument",
    "Statement",
    "read_mel",
    "parse_script",
    "split_arguments",
    "SourceText",
]


def read_mel(text: str, file: str | None,
             lookup: Callable[[str], str | None] | None = None) -> SourceText:
    """MEL text after comment stripping and ``$var$`` substitution (A.1, A.2), with a map back
    to the original positions; lines A.1 drops are kept empty, so line numbers stay aligned."""
    return read_source(text, file, lookup, keep_empty_lines=True)


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


def split_arguments(src: SourceText, open_at: int, close_at: int) -> list[Argument]:
    """The arguments of the ``( ... )`` block from ``open_at`` to ``close_at`` (C.2): the
    block's records with separator ``,``, brackets kept whole, quoted ones without quotes."""
    return [Argument(rec.text, quoted=rec.quoted)
            for rec in Tokenizer(src, ",", open_at, close_at + 1, custom_separators=False)]


def _first_brace(text: str) -> int:
    for i, c in enumerate(text):
        if c in OPEN_BRACES:
            return i
    return -1


def parse_script(src: SourceText, start: int = 0, end: int | None = None) -> list[Statement]:
    """Split and classify every statement of a MEL text, or of ``text[start:end]`` (C.2)."""
    statements: list[Statement] = []
    text = src.text
    for rec in Tokenizer(src, ";", start, end, custom_separators=False):
        record, s, e = rec.text, rec.start, rec.end
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
                raise ParseError(f"'{key} =' has no value (an '=' at the end of a line is not "
                                 "allowed)", location=loc)
            if not key:
                raise ParseError("a statement cannot start with '='", location=loc)
            if value[0] in "[{":
                close = find_braces(text, s + value_start, e, src.location)
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
                close = find_braces(text, s + value_start + paren, e, src.location)
                statements.append(Statement(
                    "assign", loc, record, name=fname, target=key,
                    args=split_arguments(src, s + value_start + paren, close),
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
        close = find_braces(text, s + brace, e, src.location)
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
            "command", loc, record, name=name, args=split_arguments(src, s + brace, close),
        ))
    return statements
