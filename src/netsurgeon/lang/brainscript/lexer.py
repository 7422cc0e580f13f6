"""BrainScript lexer (brainscript.md §1): tokens with file:line:col, and token-level ``include``.

Comments, strings without escapes, CNTK's number rule (``1..10`` is ``1 .. 10``) and the
``/* … */`` quirk (after a ``*`` the next character is consumed before testing for ``/``)
are copied from CNTK's ``BrainScriptParser.cpp``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from netsurgeon.errors import SourceLocation
from netsurgeon.lang.brainscript.diagnostics import SourceText, remember, syntax_error
from netsurgeon.lang.config import read_text_file

__all__ = ["Token", "SourceText", "tokenize", "KEYWORDS", "syntax_error"]

KEYWORDS = frozenset({"include", "new", "with", "true", "false", "if", "then", "else", "array"})
_TWO = ("[|", "|]", "**", ".*", "||", "&&", "<<", ">>", "==", ">=", "!=", "<=", "=>", "..")
_ONE = set("=;,[](){}+-*/%!<>:.")
# numbers are ASCII, as C's wcstod reads them ('¹' or '٣' is not a digit to CNTK)
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_IDENT = re.compile(r"[^\W\d]\w*")
_DIGITS = "0123456789"
_QUOTES = "\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u2032\u2033\u00b4\u0060"


def _invalid(c: str, location: SourceLocation):
    """The error for a character no token starts with, with a hint where one helps."""
    code = f"U+{ord(c):04X}"
    name = unicodedata.name(c, "")
    what = f"invalid character {c!r} ({code}{' ' + name if name else ''})"
    hint = None
    if c == "$":
        hint = "'$var$' must be substituted before BrainScript sees it"
    elif c in _QUOTES:
        hint = "strings are quoted with ' or \""
    elif c.isnumeric():
        hint = "numbers are written with the digits 0-9"
    elif c.isspace():
        hint = "only space, tab and line breaks separate tokens"
    return syntax_error(what, location, hint=hint)


def _number(num: str) -> float:
    if num[:2].lower() == "0x":
        try:
            return float(int(num, 16))
        except OverflowError:
            return math.inf
    return float(num)


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
    remember(src)
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
        m = None
        if c in _DIGITS or (c == "." and i + 1 < n and text[i + 1] in _DIGITS):
            m = _NUMBER.match(text, i)
        if m is not None:
            num = m.group(0)
            if num.endswith(".") and m.end() < n and text[m.end()] == ".":
                num = num[:-1]
            out.append(Token("num", num, _number(num), loc))
            i += len(num)
        elif (c == "_" or c.isalpha()) and (m := _IDENT.match(text, i)) is not None:
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
            raise _invalid(c, loc)


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
        try:  # the first that exists: a FIFO or directory there is refused when it is read
            if c.exists():
                return c
        except (OSError, ValueError):  # a name too long, with a NUL byte, ...
            continue
    return None


def tokenize(text: str, name: str = "<string>",
             include_dirs: list[Path] | None = None, locate=None) -> list[Token]:
    """All tokens of ``text`` with every ``include "file"`` spliced in (iteratively).

    ``locate`` maps offsets of ``text`` to file locations when ``text`` is part of a bigger
    file (a config's builder block), so errors count lines from the file."""
    dirs = list(include_dirs or [])
    base = Path(name).parent if name and not name.startswith("<") else None
    main = SourceText(text, name, locate)
    pending: list[tuple[list[Token], int, Path | None]] = [(_lex(main), 0, base)]
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
    end = last if not text else main.location(len(main.text))
    out.append(Token("eof", "", None, end))
    return out
