"""The core library (brainscript.md §6) and the registry's ``bs`` layer derived from it.

The library is ``stdlib/cntk.core.bs`` plus one generated definition per registry function of
language ``bs`` that the text does not define (an op added to the registry with a plain
``(x)``/``(a, b)`` signature is callable from BrainScript at once). The ``bs`` layer
(:data:`BS_LIBRARY`) tells, per op, which library functions create it: the definitions whose
``new ComputationNode`` says ``operation = 'X'`` and their aliases (``ReLU =
RectifiedLinear``). Every other op is reachable only through ``new ComputationNode`` and is
marked :class:`~netsurgeon.ops.Unsupported` with that reason; internal ops not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from netsurgeon.ops import OPS, REQUIRED, Category, FunctionSpec, Layer, OpSpec, Unsupported

if TYPE_CHECKING:
    from netsurgeon.lang.brainscript.parser import Expr

__all__ = ["LibraryEntry", "LibraryFunctions", "BS_LIBRARY", "STDLIB", "GENERATED",
           "library_sources", "library_functions"]

STDLIB = Path(__file__).parent / "stdlib" / "cntk.core.bs"
#: the source name of the generated definitions (ends like the library, so errors inside
#: library code point at the user's call, not here)
GENERATED = "<registry>/cntk.core.bs"


@runtime_checkable
class LibraryEntry(Protocol):
    """The ``bs`` layer's entry for an op: the core-library functions that create it."""

    functions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LibraryFunctions:
    """A :class:`LibraryEntry`: qualified library names (``BS.Boolean.If``), library order."""

    functions: tuple[str, ...]


@lru_cache(maxsize=1)
def library_sources() -> tuple[tuple[str, str], ...]:
    """``(text, source name)`` of the library file and of the generated definitions."""
    text = STDLIB.read_text(encoding="utf-8")
    return (text, str(STDLIB)), (_generated(_top_level_names(text)), GENERATED)


def _top_level_names(text: str) -> set[str]:
    from netsurgeon.lang.brainscript.parser import parse

    return set(parse(text, str(STDLIB)).named)


def _generated(defined: set[str]) -> str:
    """Definitions for the registry's ``bs`` spellings the library text lacks."""
    lines: list[str] = []
    for fn in OPS.functions("bs"):
        if fn.broken:
            continue
        base = next((s for s in fn.spellings if s in defined), None)
        if base is None and _plain_inputs(fn):
            params = [p.name for p in fn.forms[0].params]
            lines.append(f"{fn.name} ({', '.join(params)}, tag='') = new ComputationNode "
                         f"[ operation = '{fn.op}' ; inputs = _AsNodes ({' : '.join(params)}) ]")
            base = fn.name
            defined.add(base)
        if base is None:
            continue
        for spelling in fn.spellings:
            if spelling not in defined:
                lines.append(f"{spelling} = {base}")
                defined.add(spelling)
    return "\n".join(lines) + "\n"


def _plain_inputs(fn: FunctionSpec) -> bool:
    """One signature of required node inputs and no options: a definition can be generated."""
    return (len(fn.forms) == 1 and not fn.options and bool(fn.forms[0].params)
            and all(p.kind == "input" and p.default is REQUIRED for p in fn.forms[0].params))


@lru_cache(maxsize=1)
def library_functions() -> dict[str, tuple[str, ...]]:
    """Canonical op name -> the library functions that create it (see the module docstring)."""
    from netsurgeon.lang.brainscript.parser import parse

    creates: dict[str, list[str]] = {}
    aliases: dict[str, str] = {}  # qualified name -> the qualified name it stands for
    for text, source in library_sources():
        stack = [("", parse(text, source))]
        while stack:
            prefix, record = stack.pop()
            for member, expr in record.named.items():
                name = f"{prefix}{member}"
                if expr.op == "[]":
                    stack.append((name + ".", expr))
                elif expr.op == "id":  # a sibling member, else a top-level name
                    aliases[name] = f"{prefix}{expr.id}" if expr.id in record.named else expr.id
                else:
                    for op in _operations(expr):
                        creates.setdefault(op, []).append(name)
    return {op: _with_aliases(list(dict.fromkeys(names)), aliases)
            for op, names in creates.items()}


def _with_aliases(names: list[str], aliases: dict[str, str]) -> tuple[str, ...]:
    """``names`` followed by every alias (also an alias of an alias) of one of them; the
    library's private ``__`` names (``__Plus``, through which CNTK2 reaches ``Plus``) are
    followed but not listed."""
    found = [n for n in names if not n.startswith("__")]
    for alias, target in aliases.items():
        if alias.startswith("__"):
            continue
        seen = {alias}
        while target in aliases and target not in seen:
            seen.add(target)
            target = aliases[target]
        if target in names and alias not in found:
            found.append(alias)
    return tuple(found)


def _operations(expr: Expr) -> list[str]:
    """Canonical op names a definition's ``new ComputationNode [operation = …]`` spells out."""
    found: list[str] = []
    stack = [expr]
    while stack:
        e = stack.pop()
        if e.op == "new" and e.id == "ComputationNode" and "operation" in e.args[0].named:
            texts = [e.args[0].named["operation"]]
            while texts:
                t = texts.pop()
                if t.op == "s":
                    spec = OPS.find_op(str(t.value))
                    if spec is not None:
                        found.append(spec.name)
                else:
                    texts.extend(t.args)
        stack.extend(reversed(e.args))
        stack.extend(reversed(list(e.named.values())))
    return found


def _derive(spec: OpSpec) -> LibraryFunctions | Unsupported:
    if Category.INTERNAL in spec.categories:
        return Unsupported("an internal op made by a compiler pass; BrainScript never creates it")
    names = library_functions().get(spec.name)
    if names:
        return LibraryFunctions(names)
    return Unsupported(f"not in the core library; reachable with new ComputationNode "
                       f"[operation = '{spec.name}' ; inputs = ...]")


BS_LIBRARY: Layer[LibraryEntry] = Layer("bs", LibraryEntry, doc="BrainScript library function",
                                        derive=_derive)
OPS.attach(BS_LIBRARY)
