"""Node-name patterns as MEL reads them (ndl-mel.md §C.5).

A pattern without ``*`` is an exact, case-insensitive name. With ``*``, only the first ``*``
is special: a name matches when it starts with the text before it and ends with the text
after it (case-sensitive; head and tail may overlap, so ``ab*ba`` matches ``aba``).

Deliberate deviation: CNTK's unsigned wrap-around, which also matched names one character
shorter than the tail (so ``*.W`` matched every one-letter name), is not reproduced.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Pattern", "split_model_prefix", "map_name", "close_names"]


@dataclass(frozen=True, slots=True)
class Pattern:
    """A parsed node-name pattern: ``head*tail`` or an exact name."""

    text: str

    @property
    def has_wildcard(self) -> bool:
        return "*" in self.text

    @property
    def head(self) -> str:
        return self.text.split("*", 1)[0]

    @property
    def tail(self) -> str:
        parts = self.text.split("*", 1)
        return parts[1] if len(parts) == 2 else ""

    def matches(self, name: str) -> bool:
        """True if ``name`` matches (exact patterns compare case-insensitively)."""
        if not self.has_wildcard:
            return name.lower() == self.text.lower()
        head, tail = self.head, self.tail
        return (len(name) >= max(len(head), len(tail)) and name.startswith(head)
                and name.endswith(tail))

    def filter(self, names: Iterable[str]) -> list[str]:
        """All matching names, in the given order; one pass, linear in the number of names."""
        if not self.has_wildcard:
            low = self.text.lower()
            return [n for n in names if n.lower() == low]
        head, tail = self.head, self.tail
        need = max(len(head), len(tail))
        return [n for n in names if len(n) >= need and n.startswith(head) and n.endswith(tail)]

    def middle(self, name: str) -> str:
        """The part of a matching ``name`` that the ``*`` stood for (CNTK's GenerateNames)."""
        end = len(name) - len(self.tail)
        return name[len(self.head):end] if end >= len(self.head) else ""


def split_model_prefix(text: str, model_names: Iterable[str]) -> tuple[str | None, str]:
    """Split ``model.pattern`` or ``model*pattern`` when the part before the first ``.`` or
    ``*`` is a model name (case-insensitive). Returns (model name or None, pattern); a bare
    model name selects the whole model (pattern ``*``)."""
    cut = len(text)
    for sep in (".", "*"):
        i = text.find(sep)
        if i != -1:
            cut = min(cut, i)
    first = text[:cut]
    lowered = {m.lower(): m for m in model_names}
    model = lowered.get(first.lower())
    if model is None:
        return None, text
    rest = text[cut + 1:]
    return model, rest if rest else "*"


def map_name(source: Pattern, target: Pattern, name: str) -> str:
    """Target name for source node ``name``: target head + the ``*`` part + target tail."""
    if not source.has_wildcard:
        return target.text
    if not target.has_wildcard:
        return target.text + source.middle(name)
    return target.head + source.middle(name) + target.tail


def close_names(names: list[str], pattern: str) -> str:
    """'did you mean' names close to ``pattern`` (for a wildcard: patterns made of the names'
    first and last parts, ``L1.*`` / ``*.W``); "" when nothing is close."""
    from netsurgeon.errors import close_matches

    if "*" in pattern:
        pool = {n.split(".")[0] + ".*" for n in names} | {"*." + n.split(".")[-1] for n in names}
        pool.discard(pattern)
        return close_matches(pattern, sorted(pool))
    return close_matches(pattern, names)
