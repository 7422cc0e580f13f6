"""BrainScript runtime values (brainscript.md §3.1–§3.2): thunks, records, arrays, functions.

Doubles, Bools and Strings are Python ``float``/``bool``/``str``; nodes are
:class:`netsurgeon.graph.Node` objects (detached while the program runs, adopted when a
network is assembled); networks are :class:`netsurgeon.graph.Network` objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from netsurgeon.errors import EvaluationError, SourceLocation

if TYPE_CHECKING:
    from netsurgeon.lang.brainscript.evaluator import Evaluator
    from netsurgeon.lang.brainscript.parser import Expr

__all__ = ["Thunk", "Record", "Array", "Function", "join_path", "index_path", "type_name"]

PENDING, RUNNING, DONE = 0, 1, 2


def join_path(path: str, name: str) -> str:
    """CNTK's expression-path rule: ``P.id`` when both are non-empty, else the non-empty one."""
    if path and name:
        return f"{path}.{name}"
    return path or name


def index_path(path: str, i: int) -> str:
    """The expression path of element ``i`` of the array at ``path``: ``P[i]``."""
    return f"{path}[{i}]"


class Thunk:
    """A lazy value: an expression with its scope and path, or a Python callable; cached."""

    __slots__ = ("expr", "scope", "path", "state", "value", "fn", "name")

    def __init__(self, expr: Expr | None, scope: Record | None, path: str, *,
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
    def of(cls, value: Any, path: str = "") -> Thunk:
        return cls(None, None, path, value=value, done=True)

    @property
    def location(self) -> SourceLocation | None:
        return self.expr.location if self.expr is not None else None

    def get(self, ev: Evaluator) -> Any:
        if self.state == DONE:
            return self.value
        if self.state == RUNNING:
            ev.circular(self)
        self.state = RUNNING
        ev.running.append(self)
        try:
            if self.fn is not None:
                value = self.fn()
            else:
                value = ev.eval(self.expr, self.scope, self.path)
        except BaseException:
            self.state = PENDING
            raise
        finally:
            ev.running.pop()
        self.value = value
        self.state = DONE
        self.expr = self.scope = self.fn = None
        return value


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


class Array:
    """A BrainScript array: first index plus lazy elements."""

    __slots__ = ("first", "items")

    def __init__(self, first: int, items: list[Thunk]) -> None:
        self.first = first
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"<Array [{self.first}..{self.first + len(self.items) - 1}]>"


class Function:
    """A BrainScript function (ConfigLambda).

    ``params``: positional parameter names. ``defaults``: optional parameter name -> Thunk
    evaluated in the definition scope (shared by all calls of this value). ``body``:
    ``body(ev, scope, path)`` evaluated in the new parameter scope, or ``native(ev, args,
    named, path, location)`` for functions implemented in Python.
    """

    __slots__ = ("params", "defaults", "scope", "body_expr", "native", "name")

    def __init__(self, params: list[str], defaults: dict[str, Thunk], *,
                 scope: Record | None = None, body_expr: Expr | None = None,
                 native: Callable | None = None,
                 name: str = "function") -> None:
        self.params = params
        self.defaults = defaults
        self.scope = scope
        self.body_expr = body_expr
        self.native = native
        self.name = name

    def __repr__(self) -> str:
        return f"<Function {self.name}({', '.join(self.params)})>"


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
    """The EvaluationError to raise for ``message``; with a location its message quotes the
    source line with a caret, as the lexer's syntax errors do."""
    from netsurgeon.lang.brainscript.lexer import syntax_error

    if location is not None:
        err = syntax_error(message, location, hint)
        return EvaluationError(err.message, location=location, hint=err.hint, node=node)
    return EvaluationError(message, location=location, hint=hint, node=node)
