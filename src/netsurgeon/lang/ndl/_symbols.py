"""NDL's parser-level nodes and symbol tables (ndl-mel.md §B.3, §B.4).

An NDL script is a tree of *symbols*: constants, function calls, macro calls (each with a
private copy of the macro body, its own :class:`Scope`), arrays, options, formal-parameter
placeholders and undetermined (forward or external) references. Function calls get their
computation node (a graph :class:`~netsurgeon.graph.Node`) in the initial pass; everything
else is resolved through them.

Symbol tables are case-insensitive. :meth:`Scope.find` implements CNTK's dot rule: a full
dotted key first, then ``a.b.c`` walks into macro instances, and a dotted name whose head is
a plain node resolves to that node (``F.anything`` is ``F``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from netsurgeon.errors import SourceLocation

if TYPE_CHECKING:
    from netsurgeon.graph import Node
    from netsurgeon.lang.ndl._macros import MacroDef
    from netsurgeon.ops import FunctionSpec

__all__ = [
    "Sym", "NdlConst", "NdlCall", "NdlMacroCall", "NdlArray", "NdlOption", "NdlRef",
    "NdlParam", "Scope", "join_name",
]


def join_name(base: str, name: str) -> str:
    """``base.name``, or ``name`` at top level."""
    return f"{base}.{name}" if base else name


class NdlConst:
    """A numeric literal (``784``, ``1e-3``); ``text`` is kept for integer conversion."""

    __slots__ = ("name", "text", "value", "location")
    kind = "constant"

    def __init__(self, name: str, text: str, value: float, location: SourceLocation | None) -> None:
        self.name = name
        self.text = text
        self.value = value
        self.location = location


class NdlOption:
    """``name=value`` in an argument list; the value stays text until a function reads it."""

    __slots__ = ("name", "value", "scope", "location")
    kind = "option"

    def __init__(self, name: str, value: str, scope: Scope,
                 location: SourceLocation | None) -> None:
        self.name = name
        self.value = value
        self.scope = scope
        self.location = location


class NdlArray:
    """``{a, b, c}`` or ``(a, b)``: special-node lists and array-valued scalars."""

    __slots__ = ("name", "elements", "location")
    kind = "array"

    def __init__(self, name: str, elements: list[Sym], location: SourceLocation | None) -> None:
        self.name = name
        self.elements = elements
        self.location = location


class NdlRef:
    """An undetermined symbol: a name not (yet) defined where it was written.

    Resolved late: first in ``scope`` again (the name may have been defined since), then as
    the full name of a node of the network (references into a loaded model, forward dotted
    references such as ``CE.BFF.FF.P``).
    """

    __slots__ = ("name", "scope", "location")
    kind = "undetermined"

    def __init__(self, name: str, scope: Scope, location: SourceLocation | None) -> None:
        self.name = name
        self.scope = scope
        self.location = location


class NdlParam:
    """A macro instance's formal parameter; bound to the caller's argument when evaluated."""

    __slots__ = ("name", "bound", "location")
    kind = "parameter"

    def __init__(self, name: str, location: SourceLocation | None) -> None:
        self.name = name
        self.bound: Sym | None = None
        self.location = location


class NdlCall:
    """A call of a built-in function; ``comp`` is its computation node once created.

    ``input_map[j]`` is the index in ``positional`` of the argument feeding node input ``j``,
    None for an input the function leaves empty, or a Node the function asked for besides
    its arguments (BatchNormalization's ``run_sample_count``).
    """

    __slots__ = ("name", "fn", "args", "scope", "location", "comp", "input_map", "initialized",
                 "nested")
    kind = "function"

    def __init__(self, name: str, fn: FunctionSpec, scope: Scope,
                 location: SourceLocation | None, args: list[Sym] | None = None) -> None:
        self.name = name
        self.fn = fn
        self.args: list[Sym] = [] if args is None else args
        self.scope = scope
        self.location = location
        self.comp: Node | None = None
        self.input_map: list[Any] = []
        self.initialized = False
        self.nested: list[Sym] = []  # calls created while parsing the arguments

    @property
    def positional(self) -> list[Sym]:
        return [a for a in self.args if not isinstance(a, NdlOption)]

    @property
    def options(self) -> list[NdlOption]:
        return [a for a in self.args if isinstance(a, NdlOption)]


class NdlMacroCall:
    """A call of a macro: ``body`` is the instance's private scope (None while defining)."""

    __slots__ = ("name", "macro", "args", "scope", "body", "location", "nested", "bound")
    kind = "macro"

    def __init__(self, name: str, macro: MacroDef, scope: Scope,
                 location: SourceLocation | None) -> None:
        self.name = name
        self.macro = macro
        self.args: list[Sym] = []
        self.scope = scope
        self.body: Scope | None = None
        self.location = location
        self.nested: list[Sym] = []  # calls created while parsing the arguments
        self.bound = False

    def return_symbol(self) -> Sym | None:
        """The body's symbol named like the macro, else its last call statement (§B.5)."""
        body = self.body
        if body is None:
            return None
        own = body.table.get(self.macro.name.lower())
        if own is not None and isinstance(own, (NdlCall, NdlMacroCall, NdlRef, NdlArray, NdlConst)):
            return own
        for stmt in reversed(body.statements):
            if isinstance(stmt, (NdlCall, NdlMacroCall)):
                return stmt
        return None


Sym = NdlConst | NdlOption | NdlArray | NdlRef | NdlParam | NdlCall | NdlMacroCall


class Scope:
    """One symbol table: the top-level script or a macro instance's body.

    ``statements`` are the statement-level calls and macro calls in text order (what the
    passes evaluate); ``table`` maps lower-case keys to symbols.
    """

    __slots__ = ("table", "statements", "parent", "macro_call", "params")

    def __init__(self, parent: Scope | None = None, macro_call: NdlMacroCall | None = None) -> None:
        self.table: dict[str, Any] = {}
        self.statements: list[Sym] = []
        self.parent = parent
        self.macro_call = macro_call
        self.params: list[NdlParam] = []

    def get(self, name: str) -> Sym | None:
        return self.table.get(name.lower())

    def find(self, name: str, skip: object = None) -> Sym | None:
        """CNTK's ``FindSymbol`` with the dot rule; iterative.

        ``skip``: a symbol the full-key lookup must not return (an undetermined reference
        looking itself up walks the dotted path instead).
        """
        scope = self
        rest = name
        while True:
            found = scope.table.get(rest.lower())
            if found is not None and found is not skip:
                return found
            dot = rest.find(".")
            if dot < 0:
                return None
            head = scope.table.get(rest[:dot].lower())
            if head is None:
                return None
            if isinstance(head, NdlMacroCall) and head.body is not None:
                scope = head.body
                rest = rest[dot + 1:]
                continue
            if isinstance(head, NdlParam) and head.bound is not None:
                # a formal parameter bound to a caller's instance: walk into it
                target = head.bound
                if isinstance(target, NdlMacroCall) and target.body is not None:
                    scope = target.body
                    rest = rest[dot + 1:]
                    continue
            return head  # quirk: 'F.anything' resolves to F
