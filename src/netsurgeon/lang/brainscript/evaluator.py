"""BrainScript evaluator (brainscript.md §3–§4): lazy values, scopes, calls, operators, paths.

Every evaluation carries the expression path that names the nodes it creates (§4.1).
Evaluation recurses over the *source nesting* only; :func:`deep_call` gives it room for
very deep programs, and a circular definition is reported by the thunk state machine.
"""

from __future__ import annotations

import math
from typing import Any

from netsurgeon.errors import EvaluationError, NetsurgeonError, SourceLocation, close_matches
from netsurgeon.graph import Network, Node
from netsurgeon.lang.brainscript.deep import deep_call
from netsurgeon.lang.brainscript.parser import Expr
from netsurgeon.lang.brainscript.values import (
    Array,
    Function,
    Record,
    Thunk,
    fail,
    index_path,
    join_path,
    type_name,
)

__all__ = ["Evaluator", "flatten", "as_int"]

# operator -> the Name in "<Name>Args[i]" (§4.1)
_OP_NAMES = {
    "*": "Times", "/": "Div", ".*": "ElementTimes", "**": "Pow", "%": "Mod", "+": "Plus",
    "-": "Minus", "<": "LT", "==": "Equal", ">": "GT", ">=": "GT", "!=": "NotEqual",
    "<=": "LE", "&&": "And", "||": "Or", ">>": "Before", "<<": "Shift", "with": "With",
}
_COMPARE_NODE = {"<": "Less", "==": "Equal", ">": "Greater", ">=": "GreaterEqual",
                 "!=": "NotEqual", "<=": "LessEqual"}


def as_int(value: Any, what: str, location: SourceLocation | None = None) -> int:
    """A Double with an integral value as ``int``; EvaluationError naming ``what`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, float) or value != math.floor(value):
        raise fail(f"{what} must be an integer, not {type_name(value)} {value!r}", location)
    return int(value)


def flatten(ev: Evaluator, value: Any) -> list[Any]:
    """Flatten nested arrays into a Python list (iteratively), as shape/list consumers do."""
    out: list[Any] = []
    stack: list[Any] = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, Array):
            stack.extend(t.get(ev) for t in reversed(v.items))
        elif isinstance(v, (list, tuple)):
            stack.extend(reversed(v))
        else:
            out.append(v)
    return out


class Evaluator:
    """Evaluates parse trees; holds the node factory and the runtime-type registry."""

    def __init__(self, *, seed: int = 1, include_dirs=None) -> None:
        from netsurgeon.lang.brainscript.nodes import NodeFactory
        from netsurgeon.lang.brainscript.runtime_types import RUNTIME_TYPES

        self.running: list[Thunk] = []
        self.nodes = NodeFactory(self, seed=seed)
        self.types = RUNTIME_TYPES
        self.include_dirs = list(include_dirs or [])

    # ---- errors -----------------------------------------------------------------------
    def circular(self, thunk: Thunk) -> None:
        chain = []
        for t in reversed(self.running):
            chain.append(t.path or t.name or "?")
            if t is thunk:
                break
        chain.reverse()
        if len(chain) > 8:
            chain = chain[:4] + [f"... {len(chain) - 8} more ..."] + chain[-4:]
        chain.append(thunk.path or thunk.name or "?")
        raise fail("circular reference: '" + (thunk.path or thunk.name) + "' is needed to compute "
                   "itself (" + " -> ".join(chain) + ")", thunk.location,
                   hint="break the cycle, or put a PastValue/FutureValue in it")

    # ---- entry points ------------------------------------------------------------------
    def run(self, fn):
        """Run ``fn()`` with deep-recursion room (see deep.py)."""
        return deep_call(fn)

    def force(self, thunk: Thunk) -> Any:
        return self.run(lambda: thunk.get(self))

    # ---- the evaluator -----------------------------------------------------------------
    def eval(self, e: Expr, scope: Record, path: str) -> Any:
        op = e.op
        if op == "d" or op == "s" or op == "b":
            return e.value
        if op == "id":
            t = scope.find(e.id)
            if t is None:
                raise fail(f"unknown identifier '{e.id}'", e.location,
                           hint=close_matches(e.id, set(scope.visible_names())))
            return t.get(self)
        if op == "[]":
            rec = Record(parent=scope, location=e.location)
            for name, m in e.named.items():
                rec.members[name] = Thunk(m, rec, join_path(path, name), name=name)
            return rec
        if op == ":":
            return Array(0, [Thunk(a, scope, index_path(path, i)) for i, a in enumerate(e.args)])
        if op == "=>":
            plist = e.args[0]
            defaults = {n: Thunk(d, scope, join_path(path, n), name=n)
                        for n, d in plist.named.items()}
            return Function([a.id for a in plist.args], defaults, scope=scope, body_expr=e.args[1],
                            name=path or "lambda")
        if op == "(" or op == "{":
            return self.call_expr(e, scope, path)
        if op == ".":
            value = self.eval(e.args[0], scope, path)
            return self.member(value, e.id, e.location)
        if op == "[":
            arr = self.eval(e.args[0], scope, join_path(path, "_vector"))
            idx = self.eval(e.args[1], scope, join_path(path, "_index"))
            return self.index(arr, idx, e.location)
        if op == "if":
            return self.eval_if(e, scope, path)
        if op == "array":
            return self.eval_array(e, scope, path)
        if op == "new":
            entry = self.types.get(e.id)
            if entry is None:
                raise fail(f"unknown runtime type '{e.id}'", e.location,
                           hint=close_matches(e.id, self.types))
            record_like, ctor = entry
            cfg = self.eval(e.args[0], scope, "" if record_like else path)
            if not isinstance(cfg, Record):
                raise fail(f"'new {e.id}' needs a record, not a {type_name(cfg)}", e.location)
            try:
                return ctor(self, cfg, path, e.location)
            except EvaluationError:
                raise
            except NetsurgeonError as exc:
                if e.location.file == "<builder>":
                    raise  # the injected program line says nothing to the user
                raise exc.with_location(e.location) from None
        if op in ("+(", "-(", "!("):
            return self.unary(e, scope, path)
        if op == "with":
            raise fail("'with' is not implemented (CNTK never implemented it either)", e.location)
        return self.binary(e, scope, path)

    # ---- calls ---------------------------------------------------------------------------
    def call_expr(self, e: Expr, scope: Record, path: str) -> Any:
        fn = self.eval(e.args[0], scope, path)
        if not isinstance(fn, Function):
            raise fail(f"cannot call a {type_name(fn)}: it is not a function", e.location)
        alist = e.args[1]
        if len(alist.args) != len(fn.params):
            raise fail(f"function expects {len(fn.params)} positional parameters, "
                       f"{len(alist.args)} were provided", e.location,
                       hint="parameters: ("
                       + ", ".join(fn.params + [k + "=…" for k in fn.defaults]) + ")")
        args = [Thunk(a, scope, join_path(path, p), name=p) for a, p in zip(alist.args, fn.params)]
        named = {}
        for n, a in alist.named.items():
            if n not in fn.defaults:
                raise fail(f"function does not have an optional argument '{n}'", a.location,
                           hint=close_matches(n, fn.defaults) or (
                               f"optional arguments: {', '.join(fn.defaults) or 'none'}"))
            named[n] = Thunk(a, scope, join_path(path, n), name=n)
        return self.apply(fn, args, named, path, e.location)

    def apply(self, fn: Function, args: list[Thunk], named: dict[str, Thunk], path: str,
              location: SourceLocation | None = None) -> Any:
        if fn.native is not None:
            try:
                return fn.native(self, args, named, path, location)
            except EvaluationError:
                raise
            except NetsurgeonError as exc:
                if location is None:
                    raise
                raise exc.with_location(location) from None
        inner = Record(parent=fn.scope, location=location)
        for p, t in zip(fn.params, args):
            inner.members[p] = t
        for n, d in fn.defaults.items():
            inner.members[n] = named.get(n, d)
        return self.eval(fn.body_expr, inner, path)

    def call_value(self, fn: Any, values: list[Any], path: str, location=None) -> Any:
        """Call a function with already evaluated positional arguments."""
        if not isinstance(fn, Function):
            raise fail(f"expected a function, got a {type_name(fn)}", location)
        if len(values) != len(fn.params):
            raise fail(f"function expects {len(fn.params)} positional parameters, "
                       f"{len(values)} were provided", location)
        return self.apply(fn, [Thunk.of(v, join_path(path, p)) for v, p in zip(values, fn.params)],
                          {}, path, location)

    # ---- member access and indexing ------------------------------------------------------------
    def member(self, value: Any, name: str, location: SourceLocation | None) -> Any:
        if isinstance(value, Record):
            t = value.find(name)
            if t is None:
                raise fail(f"unknown member '{name}'", location,
                           hint=close_matches(name, value.members) or
                           f"the record has: {', '.join(sorted(value.members)) or 'no members'}")
            return t.get(self)
        if isinstance(value, Node):
            from netsurgeon.lang.brainscript.nodes import node_member

            return node_member(self, value, name, location)
        if isinstance(value, Network):
            from netsurgeon.lang.brainscript.network import network_member

            return network_member(value, name, location)
        raise fail(f"cannot read member '{name}' of a {type_name(value)}", location)

    def index(self, arr: Any, idx: Any, location: SourceLocation | None) -> Any:
        if not isinstance(arr, Array):
            raise fail(f"cannot index a {type_name(arr)}; only arrays can be indexed", location)
        i = as_int(idx, "an array index", location)
        k = i - arr.first
        if k < 0 or k >= len(arr.items):
            raise fail(f"index {i} out of bounds [{arr.first}..{arr.first + len(arr.items) - 1}]",
                       location)
        return arr.items[k].get(self)

    # ---- if / array --------------------------------------------------------------------------
    def eval_if(self, e: Expr, scope: Record, path: str) -> Any:
        cond = self.eval(e.args[0], scope, join_path(path, "if"))
        if isinstance(cond, bool):
            return self.eval(e.args[1] if cond else e.args[2], scope, path)
        if isinstance(cond, Node):
            t = self.eval(e.args[1], scope, join_path(path, "then"))
            f = self.eval(e.args[2], scope, join_path(path, "else"))
            ins = []
            for v, p in ((t, "then"), (f, "else")):
                if isinstance(v, bool):
                    raise fail("a branch of a node-valued 'if' must be a node or a number, "
                               "not a Bool", e.location)
                ins.append(self.nodes.as_node(v, join_path(path, p), e.location))
            return self.nodes.make("If", [cond] + ins, name=path, location=e.location)
        raise fail(f"the condition of 'if' must be a Bool, not a {type_name(cond)}",
                   e.args[0].location)

    def eval_array(self, e: Expr, scope: Record, path: str) -> Array:
        first = as_int(self.eval(e.args[0], scope, join_path(path, "array_first")),
                       "the first index of array[a..b]", e.location)
        last = as_int(self.eval(e.args[1], scope, join_path(path, "array_last")),
                      "the last index of array[a..b]", e.location)
        fn = self.eval(e.args[2], scope, path)
        if not isinstance(fn, Function) or len(fn.params) != 1:
            raise fail("the initializer of array[a..b](f) must be a function of one parameter",
                       e.args[2].location)
        items = []
        for i in range(first, last + 1):
            p = index_path(path, i) if path else ""
            items.append(Thunk(None, None, p, fn=(lambda i=i, p=p: self.call_value(
                fn, [float(i)], p, e.location))))
        return Array(first, items)

    # ---- operators ---------------------------------------------------------------------------
    def unary(self, e: Expr, scope: Record, path: str) -> Any:
        op = e.op[0]
        sub = {"-": join_path(path, "_negate"), "+": path, "!": join_path(path, "_not")}[op]
        v = self.eval(e.args[0], scope, sub)
        if op == "-":
            if isinstance(v, float):
                return -v
            if isinstance(v, Node):
                return self.nodes.make("Negate", [v], name=path, location=e.location)
        elif op == "+":
            if isinstance(v, (float, Node)) and not isinstance(v, bool):
                return v
        else:
            if isinstance(v, bool):
                return not v
            if isinstance(v, Node):
                one = self.nodes.constant(1.0, join_path(path, "MinusArgs[0]"))
                return self.nodes.make("Minus", [one, v], name=path, location=e.location)
        raise fail(f"unary '{op}' cannot be applied to a {type_name(v)}", e.location)

    def binary(self, e: Expr, scope: Record, path: str) -> Any:
        op = e.op
        name = _OP_NAMES.get(op)
        if name is None:
            raise fail(f"unknown operator '{op}'", e.location)
        lp, rp = join_path(path, f"{name}Args[0]"), join_path(path, f"{name}Args[1]")
        a = self.eval(e.args[0], scope, lp)
        b = self.eval(e.args[1], scope, rp)
        loc = e.location
        if isinstance(a, Node) or isinstance(b, Node):
            return self.node_op(op, a, b, lp, rp, path, loc)
        ta, tb = type_name(a), type_name(b)
        if ta == tb == "Double":
            if op in ("+", "-", "*", "/", "%", "**"):
                try:
                    if op == "+":
                        return a + b
                    if op == "-":
                        return a - b
                    if op == "*":
                        return a * b
                    if op == "/":
                        return a / b if b != 0 else (math.copysign(math.inf, a) if a else math.nan)
                    if op == "%":
                        return math.fmod(a, b) if b != 0 else math.nan
                    return float(a ** b)
                except (OverflowError, ValueError):
                    return math.nan
        if ta == tb and ta in ("Double", "String", "Bool") and op in _COMPARE_NODE:
            return {"<": a < b, "==": a == b, ">": a > b, ">=": a >= b, "!=": a != b,
                    "<=": a <= b}[op]
        if ta == tb == "String" and op == "+":
            return a + b
        if ta == tb == "Bool" and op in ("&&", "||"):
            return (a and b) if op == "&&" else (a or b)
        if op == ">>" and isinstance(a, Function) and isinstance(b, Function):
            return self.compose(a, b, loc)
        if op == "<<" and isinstance(a, Array) and ta == "array" and tb == "Double":
            n = as_int(b, "the shift count of '<<'", loc)
            if a.first != 0:
                raise fail("'<<' needs an array that begins with index 0", loc)
            return Array(0, a.items[n:])
        if op == ".*" and ta == tb == "Double":
            raise fail("'.*' cannot be applied to numbers; use '*'", loc)
        raise fail(f"operator '{op}' cannot be applied to a {ta} and a {tb}", loc)

    def compose(self, f: Function, g: Function, loc) -> Function:
        def native(ev, args, named, path, location):
            inner = ev.apply(f, args, named, path, location)
            return ev.call_value(g, [inner], path, location)

        return Function(list(f.params), dict(f.defaults), native=native, name="composition")

    def node_op(self, op: str, a: Any, b: Any, lp: str, rp: str, path: str, loc) -> Node:
        nf = self.nodes
        if op == "&&":
            if a is False or b is False:
                return a
            if isinstance(a, float) or isinstance(b, float):
                raise fail("'&&' cannot mix a node with a number", loc)
            return nf.make("ElementTimes", [nf.as_node(a, lp, loc), nf.as_node(b, rp, loc)],
                           name=path, location=loc)
        if op == "||":
            if a is True or b is True:
                return a
            raise fail("'||' on nodes is not supported", loc)
        for v in (a, b):
            if isinstance(v, bool):
                raise fail(f"operator '{op}' is not applicable to type Bool", loc)
            if not isinstance(v, (float, Node)):
                raise fail(f"operator '{op}' cannot be applied to a {type_name(v)} and a node", loc)
        if op == "+":
            return nf.make("Plus", [nf.as_node(a, lp, loc), nf.as_node(b, rp, loc)], name=path,
                           location=loc)
        if op == "-":
            return nf.make("Minus", [nf.as_node(a, lp, loc), nf.as_node(b, rp, loc)], name=path,
                           location=loc)
        if op == "*":
            if isinstance(a, Node) and isinstance(b, Node):
                return nf.make("Times", [a, b], name=path, location=loc)
            return nf.make("ElementTimes", [nf.as_node(a, lp, loc), nf.as_node(b, rp, loc)],
                           name=path, location=loc)
        if op == ".*":
            return nf.make("ElementTimes", [nf.as_node(a, lp, loc), nf.as_node(b, rp, loc)],
                           name=path, location=loc)
        if op == "/":
            if isinstance(a, float):
                if a != 1.0:
                    raise fail("a number divided by a node must have numerator 1 (1/x)", loc)
                return nf.make("Reciprocal", [b], name=path, location=loc)
            if isinstance(b, float):
                return nf.make("ElementTimes", [a, nf.constant(1.0 / b, rp)], name=path,
                               location=loc)
            raise fail("a node cannot be divided by a node; use ElementDivide", loc)
        if op in _COMPARE_NODE:
            return nf.make(_COMPARE_NODE[op], [nf.as_node(a, lp, loc), nf.as_node(b, rp, loc)],
                           name=path, location=loc)
        raise fail(f"operator '{op}' is not implemented for nodes", loc)
