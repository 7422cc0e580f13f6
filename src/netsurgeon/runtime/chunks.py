"""Split a huge generated ``forward`` into functions of bounded size.

CPython compiles one function in time and memory that grow faster than its length (a
1,000,000-line function takes minutes and gigabytes), so code generation cuts the body of
long networks into chunk functions of about :data:`CHUNK_LINES` lines, each compiled on its
own. ``forward`` then only calls them in order; the values alive across a cut are handed over
in a list that the callee empties at once, so no frame keeps a value alive after its last
use. Cuts are made only between top-level units (a recurrent loop stays in one chunk) and
only where few values are alive (at most a quarter of the chunk's length, so handing them over
costs less than the chunk itself: linear in the end).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Container, Sequence

__all__ = ["CHUNK_LINES", "SPLIT_ABOVE", "split"]

CHUNK_LINES = 2000  # target length of one chunk function
SPLIT_ABOVE = 10_000  # bodies up to this many lines stay one function (all real models)
_MIN_LIVE = 64  # values that may always be handed over at a cut

# identifiers that are not attributes; string literals and comments are matched (and ignored)
_NAMES = re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"|#[^\n]*|(?<![.\w])([A-Za-z_]\w*)")

Line = tuple[str, "str | None"]  # (text, node name)


def split(lines: Sequence[Line], ends: Sequence[int], args: Sequence[str],
          extra: Sequence[str], local: Container[str],
          mint: Callable[[str], str], lead: Sequence[str] = (),
          function: str = "forward") -> tuple[list[Line], tuple[int, ...]] | None:
    """Cut a forward body into chunks, or None when it is short enough as it is.

    Args:
        lines: the body (indented one level), its last line the ``return``.
        ends: line index after each top-level unit (the possible cuts), increasing.
        args: forward's value arguments (the input variables).
        extra: arguments every chunk receives too (mask, lengths, B, T).
        local: the identifiers that are variables of the body (not globals).
        mint: a fresh identifier for a chunk function.
        lead: arguments every function takes (``self`` of method code), before ``extra``.
        function: the entry function's name.

    Returns:
        (all lines: ``forward`` first, then the chunk functions; 1-based first line of each
        function), each function to be compiled on its own.
    """
    if len(lines) <= SPLIT_ABOVE:
        return None
    units = _units(ends, len(lines))
    first: dict[str, int] = {a: -1 for a in args}
    last: dict[str, int] = {}
    setdefault = first.setdefault
    for u, (a, b) in enumerate(units):
        # a ``del`` ends values last used in the same unit: it never makes one live longer
        text = "\n".join(t for t, _ in lines[a:b] if not t.startswith("    del "))
        for name in _NAMES.findall(text):
            if name and (name in first or name in local):
                setdefault(name, u)
                last[name] = u
    cuts = _cuts(units, first, last)
    if not cuts:
        return None
    # values alive across each cut (defined at or before it, used after it)
    alive: list[list[str]] = [[] for _ in cuts]
    for name, f in first.items():
        lo, hi = bisect_left(cuts, f), bisect_right(cuts, last.get(name, -1) - 1)
        for k in range(lo, hi):
            alive[k].append(name)
    for names in alive:
        names.sort()
    bounds = [0] + [units[c][1] for c in cuts] + [len(lines)]
    funcs = [mint("chunk") for _ in range(len(cuts) + 1)]
    tail = ", ".join([*lead, *extra])
    entry = sorted(a for a in args if a in last)
    out: list[Line] = [(f"def {function}({', '.join([*lead, *args, *extra])}):", None),
                       (f"    s = [{', '.join(entry)}]", None)]
    if entry:
        out.append((f"    del {', '.join(entry)}", None))
    for k, fn in enumerate(funcs):
        call = f"{fn}(s, {tail})"
        out.append((f"    s = {call}" if k < len(funcs) - 1 else f"    return {call}", None))
    starts = [1]
    handed = [entry] + alive
    for k, fn in enumerate(funcs):
        starts.append(len(out) + 1)
        out.append((f"def {fn}(s, {tail}):", None))
        if handed[k]:
            out.append((f"    {', '.join(handed[k])}, = s", None))
        out.append(("    s.clear()", None))
        out.extend(lines[bounds[k]:bounds[k + 1]])
        if k < len(funcs) - 1:
            out.append((f"    return [{', '.join(alive[k])}]", None))
    return out, tuple(starts)


def _units(ends: Sequence[int], total: int) -> list[tuple[int, int]]:
    """Line ranges of the units; the lines after the last unit (the return) are one more."""
    units, start = [], 0
    for e in [*ends, total]:
        if e > start:
            units.append((start, e))
            start = e
    return units


def _cuts(units: list[tuple[int, int]], first: dict[str, int],
          last: dict[str, int]) -> list[int]:
    """Units after which to cut: once a chunk is long enough, at the first unit boundary
    where the values alive are few compared with the chunk's length."""
    change = [0] * (len(units) + 1)
    for name, f in first.items():
        end = last.get(name, -1)
        if end > f:
            change[max(f, 0)] += 1
            change[end] -= 1
    cuts, live, start = [], 0, 0
    for u, (_, b) in enumerate(units[:-1]):
        live += change[u]
        length = b - units[start][0]
        if length >= CHUNK_LINES and live <= max(_MIN_LIVE, length // 4):
            cuts.append(u)
            start = u + 1
    return cuts
