"""The Python API reference (docs/api.md), generated from the public objects' signatures and
docstrings: ``python -m netsurgeon._apidoc > docs/api.md`` (a test keeps the file current).

Lists ``netsurgeon.__all__`` and, for the classes, their public methods and properties.
Importing the objects imports torch (``Trainer``, ``to_torch``), so this runs as a script,
never at ``import netsurgeon``.
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["render_api"]


def _signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""


def _doc(obj: Any) -> str:
    return inspect.cleandoc(inspect.getdoc(obj) or "(no docstring)")


def _members(cls: type) -> list[tuple[str, Any]]:
    """Public methods and properties defined by ``cls`` itself, in source order."""
    found = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, property) and not inspect.getdoc(value):
            continue  # documented in the class docstring's attribute list
        if isinstance(value, property) or inspect.isfunction(value) or \
                isinstance(value, (classmethod, staticmethod)):
            found.append((name, value))
    return found


def render_api() -> str:
    """docs/api.md: one section per public object of ``netsurgeon``."""
    import netsurgeon

    lines = ["# Python API reference", "",
             "Generated from the docstrings by `python -m netsurgeon._apidoc > docs/api.md`; "
             "`import netsurgeon` imports torch only when `Trainer`, `to_torch` or `evaluate` "
             "is first used.", ""]
    for name in netsurgeon.__all__:
        obj = getattr(netsurgeon, name)
        if inspect.ismodule(obj):
            lines += [f"## `netsurgeon.{name}` (module)", "", _doc(obj), ""]
            continue
        if not (inspect.isclass(obj) or callable(obj)):
            lines += [f"## `netsurgeon.{name}`", "", f"`{type(obj).__name__}` instance: "
                      f"{_doc(type(obj)).splitlines()[0]}", ""]
            continue
        kind = "class" if inspect.isclass(obj) else "function"
        lines += [f"## `netsurgeon.{name}{_signature(obj)}` ({kind})", "", _doc(obj), ""]
        if inspect.isclass(obj):
            for member, value in _members(obj):
                target = value.fget if isinstance(value, property) else \
                    getattr(value, "__func__", value)
                sig = "" if isinstance(value, property) else _signature(target)
                lines += [f"### `{name}.{member}{sig}`", "", _doc(target), ""]
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    print(render_api(), end="")
