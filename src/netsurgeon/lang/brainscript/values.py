"""BrainScript runtime values (brainscript.md §3.1–§3.2): thunks, records, arrays, functions,
and the expression paths that name nodes (§4.1).

Doubles, Bools and Strings are Python ``float``/``bool``/``str``; nodes are
:class:`netsurgeon.graph.Node` objects (detached while the program runs, adopted when a
network is assembled); networks are :class:`netsurgeon.graph.Network` objects.

Paths are built lazily (:class:`LazyPath`): ``k = 1+1+…+1`` nests 20,000 levels, and the path
``k.PlusArgs[0].PlusArgs[0]…`` of every level as a string would take gigabytes. A path becomes
text only when a node is named after it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from netsurgeon.errors import EvaluationError, SourceLocation
from netsurgeon.lang.brainscript.diagnostics import one_line

if TYPE_CHECKING:
    from netsurgeon.lang.brainscript.evaluator import Evaluator
    from netsurgeon.lang.brainscript.parser import Expr

__all__ = ["Thunk", "Record", "Array", "LazyItems", "Function", "LazyPath", "PathLike",
           "join_path", "index_path", "type_name", "fail", "is_integral", "PENDING", "RUNNING",
           "DONE"]

PENDING, RUNNING, DONE = 0, 1, 2


class LazyPath:
    """An expression path as a parent path plus a suffix (``.name`` or ``[i]``); ``str()``
    makes (and keeps) the text, ``len()`` is known without it."""

    __slots__ = ("parent", "piece", "length", "text")

    def __init__(self, parent: PathLike, piece: str) -> None:
        self.parent = parent
        self.piece = piece
        self.length = len(parent) + len(piece)
        self.text: str | None = None

    def __len__(self) -> int:
        return self.length

    def __str__(self) -> str:
        text = self.text
        if text is None:
            pieces = []
            p: PathLike = self
            while p.__class__ is LazyPath and p.text is None:
                pieces.append(p.piece)
                p = p.parent
            pieces.append(p if p.__class__ is str else p.text)
            pieces.reverse()
            text = self.text = "".join(pieces)
        return text

    def __repr__(self) -> str:
        return f"<path {str(self)[:60]!r}{'…' if self.length > 60 else ''}>"


PathLike = str | LazyPath


def join_path(path: PathLike, name: str) -> PathLike:
    """CNTK's expression-path rule: ``P.id`` when both are non-empty, else the non-empty one."""
    if path and name:
        return LazyPath(path, "." + name)
    return path or name


def index_path(path: PathLike, i: int) -> LazyPath:
    """The expression path of element ``i`` of the array at ``path``: ``P[i]``."""
    return LazyPath(path, f"[{i}]")


def is_integral(value: Any) -> bool:
    """A finite Double with an integral value (never raises, unlike ``math.floor(inf)``)."""
    return (isinstance(value, float) and not isinstance(value, bool) and math.isfinite(value)
            and value == int(value))


class Thunk:
    """A lazy value: an expression with its scope and path, or a callable returning the value
    (or evaluator work producing it); cached. Forcing happens in the evaluator's work loop."""

    __slots__ = ("expr", "scope", "path", "state", "value", "fn", "name")

    def __init__(self, expr: Expr | None, scope: Record | None, path: PathLike, *,
                 fn: Callable[[], Any] | None = None, value: Any = None, done: bool = False,
                 name: str = "") -> None:
        self.expr = expr
        self.scope = scope
        self.path = path
        self.fn = fn
        self.name = name
        self.state = DONE if done else PENDING
        self.value = value

    @classmethod
    def of(cls, value: Any, path: PathLike = "") -> Thunk:
        return cls(None, None, path, value=value, done=True)

    @property
    def location(self) -> SourceLocation | None:
        return self.expr.location if self.expr is not None else None

    def get(self, ev: Evaluator) -> Any:
        """The value, computed now if needed (for Python code outside the work loop)."""
        if self.state == DONE:
            return self.value
        return ev.force(self)


class Record:
    """A record value and a scope: ordered name -> Thunk, plus a parent scope."""

    __slots__ = ("members", "parent", "location", "__weakref__")

    def __init__(self, members: dict[str, Thunk] | None = None, parent: Record | None = None,
                 location: SourceLocation | None = None) -> None:
        self.members = members if members is not None else {}
        self.parent = parent
        self.location = location

    def find(self, name: str) -> Thunk | None:
        """``name`` here or in a parent scope (CNTK's scope-chain lookup)."""
        scope: Record | None = self
        while scope is not None:
            t = scope.members.get(name)
            if t is not None:
                return t
            scope = scope.parent
        return None

    def visible_names(self) -> list[str]:
        names: list[str] = []
        scope: Record | None = self
        while scope is not None:
            names.extend(scope.members)
            scope = scope.parent
        return names

    def __repr__(self) -> str:
        return f"<Record [{', '.join(sorted(self.members))}]>"


class LazyItems:
    """The elements of ``array[a..b](f)``: thunks made when first used, so a long range costs
    nothing until its elements are read. Supports ``len``, indexing, slicing and iteration."""

    __slots__ = ("make", "start", "stop", "made")

    def __init__(self, make: Callable[[int], Thunk], count: int, *, start: int = 0,
                 made: dict[int, Thunk] | None = None) -> None:
        self.make = make
        self.start = start
        self.stop = start + count
        self.made = made if made is not None else {}

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, k: int | slice) -> Any:
        if isinstance(k, slice):
            lo, hi, step = k.indices(len(self))
            if step != 1:
                return [self[i] for i in range(lo, hi, step)]
            return LazyItems(self.make, max(hi - lo, 0), start=self.start + lo, made=self.made)
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(k)
        j = self.start + k
        t = self.made.get(j)
        if t is None:
            t = self.made[j] = self.make(j)
        return t

    def __iter__(self) -> Iterator[Thunk]:
        for k in range(len(self)):
            yield self[k]

    def __reversed__(self) -> Iterator[Thunk]:
        for k in range(len(self) - 1, -1, -1):
            yield self[k]


class Array:
    """A BrainScript array: first index plus lazy elements (a list or :class:`LazyItems`)."""

    __slots__ = ("first", "items")

    def __init__(self, first: int, items: list[Thunk] | LazyItems) -> None:
        self.first = first
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"<Array [{self.first}..{self.first + len(self.items) - 1}]>"


class Function:
    """A BrainScript function (ConfigLambda).

    ``params``: positional parameter names. ``defaults``: optional parameter name -> Thunk
    evaluated in the definition scope (shared by all calls of this value). The body is
    ``body_expr`` evaluated in a new parameter scope whose parent is ``scope``, or
    ``native(ev, args, named, path, location)`` for functions implemented in Python (which
    may return a generator of evaluator work, see :mod:`.evaluator`).
    """

    __slots__ = ("params", "defaults", "scope", "body_expr", "native", "name")

    def __init__(self, params: list[str], defaults: dict[str, Thunk], *,
                 scope: Record | None = None, body_expr: Expr | None = None,
                 native: Callable | None = None,
                 name: PathLike = "function") -> None:
        self.params = params
        self.defaults = defaults
        self.scope = scope
        self.body_expr = body_expr
        self.native = native
        self.name = name

    def __repr__(self) -> str:
        return f"<Function {str(self.name)[:60]}({', '.join(self.params)})>"


def type_name(value: Any) -> str:
    """The BrainScript name of a value's type, as error messages spell it."""
    from netsurgeon.graph import Network, Node

    if value is None:
        return "nothing"
    for cls, name in ((bool, "Bool"), (float, "Double"), (str, "String"), (Record, "record"),
                      (Array, "array"), (Function, "function"), (Node, "ComputationNode"),
                      (Network, "ComputationNetwork")):
        if isinstance(value, cls):
            return name
    return type(value).__name__


def fail(message: str, location: SourceLocation | None = None, hint: str | None = None,
         node: str | None = None) -> EvaluationError:
    """The EvaluationError to raise for ``message``: one line, with the location (the source
    line and a caret are available from :func:`.diagnostics.source_excerpt`)."""
    return EvaluationError(one_line(message), location=location,
                           hint=one_line(hint) if hint else None, node=node)
