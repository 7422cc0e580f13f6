"""Named sentinel values ("not given", "required"): one object each, compared with ``is``."""

from __future__ import annotations

__all__ = ["Sentinel"]


class Sentinel:
    """A unique marker that prints as its name, is falsy, and survives copying as itself."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __bool__(self) -> bool:
        return False

    def __copy__(self) -> Sentinel:
        return self

    def __deepcopy__(self, memo: dict) -> Sentinel:
        return self
