"""One-line BrainScript errors, and the source line with a caret shown on request.

Every BrainScript error is one :class:`~netsurgeon.errors.NetsurgeonError` whose message is
one line: ``file:line:col: what went wrong (what would fix it)``. The source texts seen
last are remembered, so :func:`source_excerpt` can quote the line of an error's location with
a caret under the column (``netsurgeon bs --show-source`` prints it under the error).
"""

from __future__ import annotations

import bisect
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from netsurgeon.errors import NetsurgeonError, ParseError, SourceLocation

__all__ = ["SourceText", "remember", "source_excerpt", "syntax_error", "one_line",
           "one_line_errors", "MAX_MESSAGE"]

#: characters that would break an error line (or a terminal): shown as escapes
_BREAKING = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
#: longest message text kept (longer texts, e.g. huge generated names, are elided)
MAX_MESSAGE = 2000
_KEEP = 64  # source texts remembered for excerpts


class SourceText:
    """One source text and its line starts, so offsets become line:col."""

    __slots__ = ("name", "text", "line_starts", "locate")

    def __init__(self, text: str, name: str = "<string>",
                 locate: Callable[[int], SourceLocation] | None = None) -> None:
        self.name = name
        #: offsets -> where the text was written, for a text taken out of a bigger file (a
        #: config's builder block); None: the text is the whole file
        self.locate = locate
        self.text = text.replace("\r\n", "\n").replace("\r", "\n")
        starts = [0]
        find = self.text.find
        pos = find("\n")
        while pos >= 0:
            starts.append(pos + 1)
            pos = find("\n", pos + 1)
        self.line_starts = starts

    def location(self, offset: int) -> SourceLocation:
        if self.locate is not None:
            return self.locate(offset)
        line = bisect.bisect_right(self.line_starts, offset) - 1
        return SourceLocation(self.name, line + 1, offset - self.line_starts[line] + 1)

    def line(self, number: int) -> str | None:
        """The text of 1-based line ``number``, or None."""
        if not 1 <= number <= len(self.line_starts):
            return None
        start = self.line_starts[number - 1]
        end = self.text.find("\n", start)
        return self.text[start:] if end < 0 else self.text[start:end]


_SOURCES: OrderedDict[str, SourceText] = OrderedDict()


def remember(src: SourceText) -> SourceText:
    """Keep ``src`` (by name) for :func:`source_excerpt`; the oldest of many are forgotten.
    A text taken out of a bigger file is not kept (its locations are the file's lines: the
    caller keeps the whole file)."""
    if src.locate is not None:
        return src
    _SOURCES[src.name] = src
    _SOURCES.move_to_end(src.name)
    while len(_SOURCES) > _KEEP:
        _SOURCES.popitem(last=False)
    return src


def source_excerpt(location: SourceLocation | None, width: int = 160) -> str | None:
    """The source line of ``location`` and a caret under its column (two lines, indented four
    spaces; long lines are cut around the column), or None if the text is not known."""
    if location is None or location.line is None:
        return None
    src = _SOURCES.get(location.file or "")
    text = src.line(location.line) if src is not None else None
    if text is None:
        return None
    col = max((location.column or 1) - 1, 0)
    text = text.expandtabs(1)
    if len(text) > width:
        start = max(0, min(col - width // 2, len(text) - width))
        text = ("…" if start else "") + text[start:start + width] + (
            "…" if start + width < len(text) else "")
        col = col - start + (1 if start else 0)
    shown = _BREAKING.sub(" ", text)
    return f"    {shown}\n    {' ' * col}^"


def one_line(text: str) -> str:
    """``text`` with line breaks and control characters escaped, long texts elided."""
    text = _BREAKING.sub(lambda m: repr(m.group())[1:-1], str(text))
    if len(text) > MAX_MESSAGE:
        half = MAX_MESSAGE // 2
        text = f"{text[:half]}…({len(text) - MAX_MESSAGE} characters left out)…{text[-half:]}"
    return text


def syntax_error(message: str, location: SourceLocation | None,
                 hint: str | None = None) -> ParseError:
    """A one-line ParseError at ``location``."""
    return ParseError(one_line(message), location=location, hint=one_line(hint) if hint else None)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Make any NetsurgeonError leaving the block print as one line (messages from other
    layers may quote user strings holding line breaks)."""
    try:
        yield
    except NetsurgeonError as exc:
        text = str(exc)
        if "\n" in text or len(text) > MAX_MESSAGE or _BREAKING.search(text):
            exc.message = one_line(exc.message)
            if exc.hint:
                exc.hint = one_line(exc.hint)
            exc.args = (one_line(text),)
        raise
