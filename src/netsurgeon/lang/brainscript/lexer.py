"""BrainScript lexer (brainscript.md §1): tokens with file:line:col, and token-level ``include``.

Comments, strings without escapes, CNTK's number rule (``1..10`` is ``1 .. 10``) and the
``/* … */`` quirk (after a ``*`` the next character is consumed before testing for ``/``)
are copied from CNTK's ``BrainScriptParser.cpp``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from netsurgeon.errors import ParseError, SourceLocation
from netsurgeon.lang.config import read_text_file

__all__ = ["Token", "SourceText", "tokenize", "KEYWORDS", "syntax_error"]

KEYWORDS = frozenset({"include", "new", "with", "true", "false", "if", "then", "else", "array"})
_TWO = ("[|", "|]", "**", ".*", "||", "&&", "<<", ">>", "==", ">=", "!=", "<=", "=>", "..")
_ONE = set("=;,[](){}+-*/%!<>:.")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[^\W\d]\w*")


class SourceText:
    """One source text and its lines, so errors can quote the line and put a caret under it."""

    __slots__ = ("name", "text", "lines", "line_starts")

    def __init__(self, text: str, name: str = "<string>") -> None:
        self.name = name
        self.text = text.replace("\r\n", "\n").replace("\r", "\n")
        self.lines = self.text.split("\n")
        starts = [0]
        for line in self.lines[:-1]:
            starts.append(starts[-1] + len(line) + 1)
        self.line_starts = starts

    def location(self, offset: int) -> SourceLocation:
        import bisect

        line = bisect.bisect_right(self.line_starts, offset) - 1
        return SourceLocation(self.name, line + 1, offset - self.line_starts[line] + 1)


# location -> SourceText, so that syntax errors can show the offending line
_SOURCES: dict[str, SourceText] = {}


def syntax_error(message: str, location: SourceLocation | None,
                 hint: str | None = None) -> ParseError:
    """A ParseError whose message quotes the source line with a caret under the column."""
    src = _SOURCES.get(location.file or "") if location is not None else None
    if src is not None and location is not None and location.line is not None:
        text = src.lines[location.line - 1] if location.line - 1 < len(src.lines) else ""
        col = max((location.column or 1) - 1, 0)
        shown = text.expandtabs(1)
        if hint:
            message, hint = f"{message} ({hint})", None
        message = f"{message}\n    {shown}\n    {' ' * col}^"
    return ParseError(message, location=location, hint=hint)


@dataclass(frozen=True, slots=True)
class Token:
    """kind: ``num``, ``str``, ``id``, ``kw``, ``op`` or ``eof``; ``value`` is the payload."""

    kind: str
    text: str
    value: object
    location: SourceLocation


def _lex(src: SourceText) -> list[Token]:
    text = src.text
    n = len(text)
    i = 0
    out: list[Token] = []
    _SOURCES[src.name] = src
    while True:
        # white space and comments
        while i < n:
            c = text[i]
            if c in " \t\n\r\f\v":
                i += 1
            elif c == "#" or text.startswith("//", i):
                j = text.find("\n", i)
                i = n if j < 0 else j
            elif text.startswith("/*", i):
                start = i
                i += 2
                while True:
                    if i >= n:
                        raise syntax_error("unterminated /* comment", src.location(start))
                    if text[i] == "*":
                        nxt = text[i + 1] if i + 1 < n else ""
                        i += 2
                        if nxt == "/":
                            break
                    else:
                        i += 1
            else:
                break
        if i >= n:
            out.append(Token("eof", "", None, src.location(n)))
            return out
        loc = src.location(i)
        c = text[i]
        if c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            m = _NUMBER.match(text, i)
            num = m.group(0)
            if num.endswith(".") and m.end() < n and text[m.end()] == ".":
                num = num[:-1]
            value = float(int(num, 16)) if num[:2].lower() == "0x" else float(num)
            out.append(Token("num", num, value, loc))
            i += len(num)
        elif c == "_" or c.isalpha():
            m = _IDENT.match(text, i)
            word = m.group(0)
            out.append(Token("kw" if word in KEYWORDS else "id", word, word, loc))
            i = m.end()
        elif c in "'\"":
            j = text.find(c, i + 1)
            if j < 0:
                raise syntax_error("string literal is not closed", loc,
                                   hint=f"add the closing {c}")
            out.append(Token("str", text[i:j + 1], text[i + 1:j], loc))
            i = j + 1
        elif text[i:i + 2] in _TWO:
            out.append(Token("op", text[i:i + 2], text[i:i + 2], loc))
            i += 2
        elif c in _ONE:
            out.append(Token("op", c, c, loc))
            i += 1
        else:
            raise syntax_error(f"invalid character {c!r}", loc,
                               hint="'$var$' must be substituted before BrainScript sees it"
                               if c == "$" else None)


def _find_include(name: str, current_dir: Path | None, include_dirs: list[Path]) -> Path | None:
    bare = Path(name).name
    candidates = [Path(name)]
    if current_dir is not None:
        candidates.append(current_dir / name)
    candidates += [d / bare for d in include_dirs]
    stdlib = Path(__file__).parent / "stdlib"
    candidates.append(stdlib / bare)
    if bare.lower() == "cntk.core.bs":
        candidates.insert(0, stdlib / "cntk.core.bs")
    for c in candidates:
        if c.is_file():
            return c
    return None


def tokenize(text: str, name: str = "<string>",
             include_dirs: list[Path] | None = None) -> list[Token]:
    """All tokens of ``text`` with every ``include "file"`` spliced in (iteratively)."""
    dirs = list(include_dirs or [])
    base = Path(name).parent if name and not name.startswith("<") else None
    pending: list[tuple[list[Token], int, Path | None]] = [(_lex(SourceText(text, name)), 0, base)]
    out: list[Token] = []
    depth_guard: list[str] = [name]
    while pending:
        toks, pos, cur_dir = pending.pop()
        while pos < len(toks):
            tok = toks[pos]
            if tok.kind == "eof":
                pos += 1
                continue
            if tok.kind == "kw" and tok.text == "include":
                nxt = toks[pos + 1] if pos + 1 < len(toks) else None
                if nxt is None or nxt.kind != "str":
                    raise syntax_error("'include' must be followed by a string literal",
                                       nxt.location if nxt else tok.location)
                path = _find_include(str(nxt.value), cur_dir, dirs)
                if path is None:
                    raise syntax_error(f"include file '{nxt.value}' not found", nxt.location,
                                       hint="searched the current directory, the include "
                                       "directories and the library")
                if len(depth_guard) > 100:
                    raise syntax_error("include files nested more than 100 levels (include cycle?)",
                                       tok.location)
                depth_guard.append(str(path))
                pending.append((toks, pos + 2, cur_dir))
                inc = _lex(SourceText(read_text_file(path, "include file"), str(path)))
                pending.append((inc, 0, path.parent))
                dirs.insert(0, path.parent)
                break
            out.append(tok)
            pos += 1
    last = out[-1].location if out else SourceLocation(name, 1, 1)
    end = last if not text else _SOURCES[name].location(len(_SOURCES[name].text))
    out.append(Token("eof", "", None, end))
    return out
